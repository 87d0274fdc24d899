//! Redirects: which responses are followed, to where, with which method and body, and which
//! headers stay behind when the origin changes. Decisions only; the layer does the sending.

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_LOCATION,
    CONTENT_TYPE, COOKIE, HOST, LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Scheme, Target};
use crate::request::RedirectMode;

/// How a request's redirects are handled: its mode, the most hops, and whether https may lead
/// to http.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub mode: RedirectMode,
    pub max: usize,
    pub allow_insecure: bool,
}

/// Where a followed redirect goes, and how.
#[derive(Debug)]
pub(crate) struct Hop {
    pub url: String,
    pub target: Target,
    pub method: Method,
    /// The body is dropped (the method became GET): content headers go with it.
    pub drop_body: bool,
}

/// What to do with a response.
#[derive(Debug)]
pub(crate) enum Step {
    /// Not a redirect to follow: hand it to the caller.
    Deliver,
    /// A redirect left unfollowed, with the reason the caller sees.
    Unfollowed(String),
    /// Follow it.
    Follow(Hop),
}

/// True for the statuses that redirect with a `location` (300 and 304 do not).
fn redirects(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Decides about a response to `method` on `url`, after `hops` redirects already followed
/// (`visited`: their URLs). `replayable`: whether the request body can be sent again.
pub(crate) fn next_step(
    policy: &Policy,
    status: StatusCode,
    headers: &HeaderMap,
    method: &Method,
    url: &str,
    visited: &[&str],
    replayable: bool,
) -> Result<Step> {
    if !redirects(status) {
        return Ok(Step::Deliver);
    }
    let Some(location) = headers.get(LOCATION) else {
        return Ok(Step::Deliver);
    };
    match policy.mode {
        RedirectMode::Manual => return Ok(Step::Deliver),
        RedirectMode::Error => {
            return Err(Error::new(
                ErrorKind::RedirectRefused,
                format!("{url} answered {status} and redirect mode is `error`"),
            ))
        }
        RedirectMode::Follow if policy.max == 0 => return Ok(Step::Deliver),
        RedirectMode::Follow => {}
    }
    let refused = |why: String| Err(Error::new(ErrorKind::RedirectRefused, why));
    let base = url::Url::parse(url)
        .map_err(|e| Error::with_source(ErrorKind::InvalidUrl, format!("bad URL `{url}`"), e))?;
    // A location is bytes; servers send UTF-8 or Latin-1. The URL parser percent-encodes.
    let text = match location.to_str() {
        Ok(t) => t.to_owned(),
        Err(_) => String::from_utf8_lossy(location.as_bytes()).into_owned(),
    };
    let next = match base.join(text.trim()) {
        Ok(u) => u,
        Err(e) => {
            return refused(format!(
                "{url} redirects to `{text}`, which is not a URL ({e})"
            ))
        }
    };
    if !matches!(next.scheme(), "http" | "https") {
        return refused(format!(
            "{url} redirects to `{next}`: only http and https are followed"
        ));
    }
    let target = Target::parse(next.as_str()).map_err(|e| {
        Error::new(
            ErrorKind::RedirectRefused,
            format!("{url} redirects to `{next}`: {}", e.message()),
        )
    })?;
    if base.scheme() == "https" && target.origin.scheme() == Scheme::Http && !policy.allow_insecure
    {
        return refused(format!(
            "{url} redirects to {next}: from https to http is refused (option allow_insecure_redirects)"
        ));
    }
    if visited.len() >= policy.max {
        let looped = visited.contains(&next.as_str()) || next.as_str() == url;
        return Err(Error::new(
            ErrorKind::TooManyRedirects,
            format!(
                "more than {} redirects (max_redirects){}; the last one: {url} to {next}",
                policy.max,
                if looped { ", in a loop" } else { "" }
            ),
        ));
    }
    let (method, drop_body) = match status.as_u16() {
        303 if method != Method::HEAD => (Method::GET, true),
        301 | 302 if method == Method::POST => (Method::GET, true),
        _ => (method.clone(), false),
    };
    if !drop_body && !replayable {
        return Ok(Step::Unfollowed(format!(
            "{status} to {next} not followed: it must resend the request body, which was a \
             stream and cannot be sent again (give the body as bytes to have it followed)"
        )));
    }
    Ok(Step::Follow(Hop {
        url: next.into(),
        target,
        method,
        drop_body,
    }))
}

/// The headers for the next hop: body headers go when the body does, credentials and cookies
/// (and a `host` set by the caller) when the origin changes.
pub(crate) fn carry_headers(
    headers: &mut Vec<(HeaderName, HeaderValue)>,
    drop_body: bool,
    cross_origin: bool,
) {
    headers.retain(|(name, _)| {
        let body = [
            CONTENT_LENGTH,
            CONTENT_TYPE,
            CONTENT_ENCODING,
            CONTENT_LANGUAGE,
            CONTENT_LOCATION,
            TRANSFER_ENCODING,
        ];
        let origin = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST];
        !(drop_body && body.contains(name) || cross_origin && origin.contains(name))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: usize) -> Policy {
        Policy {
            mode: RedirectMode::Follow,
            max,
            allow_insecure: false,
        }
    }

    fn step(
        status: u16,
        location: &str,
        method: Method,
        url: &str,
        replayable: bool,
    ) -> Result<Step> {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_str(location).unwrap());
        next_step(
            &policy(10),
            StatusCode::from_u16(status).unwrap(),
            &h,
            &method,
            url,
            &[],
            replayable,
        )
    }

    fn hop(s: Result<Step>) -> Hop {
        match s.unwrap() {
            Step::Follow(h) => h,
            other => panic!("expected a hop, got {other:?}"),
        }
    }

    #[test]
    fn methods_and_bodies() {
        let h = hop(step(301, "/x", Method::POST, "http://a.com/p", true));
        assert_eq!((h.method, h.drop_body), (Method::GET, true));
        let h = hop(step(302, "/x", Method::PUT, "http://a.com/p", true));
        assert_eq!((h.method, h.drop_body), (Method::PUT, false));
        let h = hop(step(303, "/x", Method::PUT, "http://a.com/p", false));
        assert_eq!((h.method, h.drop_body), (Method::GET, true));
        let h = hop(step(303, "/x", Method::HEAD, "http://a.com/p", true));
        assert_eq!(h.method, Method::HEAD);
        for s in [307, 308] {
            let h = hop(step(s, "/x", Method::POST, "http://a.com/p", true));
            assert_eq!((h.method, h.drop_body), (Method::POST, false));
            assert!(matches!(
                step(s, "/x", Method::POST, "http://a.com/p", false).unwrap(),
                Step::Unfollowed(_)
            ));
        }
    }

    #[test]
    fn locations_resolve() {
        let u = |loc: &str| {
            hop(step(
                302,
                loc,
                Method::GET,
                "https://a.com:8443/d/p?q=1",
                true,
            ))
            .url
        };
        assert_eq!(u("x"), "https://a.com:8443/d/x");
        assert_eq!(u("/x?y=2"), "https://a.com:8443/x?y=2");
        assert_eq!(u("//b.com/z"), "https://b.com/z");
        assert_eq!(u("https://c.com/"), "https://c.com/");
        assert_eq!(u("/a b"), "https://a.com:8443/a%20b");
        assert!(matches!(
            step(302, "http://c.com/", Method::GET, "https://a.com/", true)
                .unwrap_err()
                .kind(),
            ErrorKind::RedirectRefused
        ));
        assert!(matches!(
            step(302, "ftp://c.com/", Method::GET, "http://a.com/", true)
                .unwrap_err()
                .kind(),
            ErrorKind::RedirectRefused
        ));
        assert!(matches!(
            step(300, "/x", Method::GET, "http://a.com/", true).unwrap(),
            Step::Deliver
        ));
    }

    #[test]
    fn limit_and_modes() {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_static("/a"));
        let e = next_step(
            &policy(2),
            StatusCode::FOUND,
            &h,
            &Method::GET,
            "http://x.com/b",
            &["http://x.com/a", "http://x.com/b"],
            true,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooManyRedirects);
        assert!(e.message().contains("loop"), "{e}");
        let mut p = policy(2);
        p.mode = RedirectMode::Error;
        assert_eq!(
            next_step(
                &p,
                StatusCode::FOUND,
                &h,
                &Method::GET,
                "http://x.com/",
                &[],
                true
            )
            .unwrap_err()
            .kind(),
            ErrorKind::RedirectRefused
        );
        p.mode = RedirectMode::Manual;
        assert!(matches!(
            next_step(
                &p,
                StatusCode::FOUND,
                &h,
                &Method::GET,
                "http://x.com/",
                &[],
                true
            )
            .unwrap(),
            Step::Deliver
        ));
    }

    #[test]
    fn headers_left_behind() {
        let mut h = vec![
            (AUTHORIZATION, HeaderValue::from_static("x")),
            (COOKIE, HeaderValue::from_static("a=1")),
            (CONTENT_TYPE, HeaderValue::from_static("text/plain")),
            (
                HeaderName::from_static("x-keep"),
                HeaderValue::from_static("1"),
            ),
        ];
        carry_headers(&mut h, false, false);
        assert_eq!(h.len(), 4);
        carry_headers(&mut h, true, false);
        assert_eq!(h.len(), 3);
        carry_headers(&mut h, false, true);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].0, "x-keep");
    }
}
