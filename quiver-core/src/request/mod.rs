//! Requests: the builder, validation of everything a caller supplies, and request bodies.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use crate::config::Protocol;
use crate::origin::Target;

mod auth;
mod body;
mod builder;
mod framing;
mod multipart;
mod progress;

pub use self::auth::{Auth, Secret};
pub use self::body::{Body, BodyStream};
pub(crate) use self::body::{SentHook, WireBody};
pub use self::builder::RequestBuilder;
pub(crate) use self::multipart::random_hex;
pub use self::multipart::{Multipart, Part};
pub use self::progress::Progress;

/// What to do with a redirect response (301, 302, 303, 307, 308 with a `location`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedirectMode {
    /// Follow it, up to `max_redirects` hops (fetch's `redirect: 'follow'`).
    Follow,
    /// Return it as the response (fetch's `'manual'`, httpx's `follow_redirects=False`).
    Manual,
    /// Fail with kind `redirect_refused` (fetch's `'error'`).
    Error,
}

/// Per-request settings of the client layer; unset ones come from the origin's rule.
#[derive(Clone, Debug, Default)]
pub(crate) struct LayerOptions {
    pub redirect: Option<RedirectMode>,
    pub max_redirects: Option<usize>,
    pub decompress: Option<bool>,
    pub auth: Option<Auth>,
    pub protocol: Option<Protocol>,
}

/// A validated request: method, URL, headers in order (duplicates kept) and a body.
#[derive(Debug)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) target: Target,
    pub(crate) url: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Body,
    pub(crate) timeout: Option<Duration>,
    /// Overrides the pool's `read_timeout`.
    pub(crate) read_timeout: Option<Duration>,
    /// Overrides the pool's `checkout_timeout`.
    pub(crate) checkout_timeout: Option<Duration>,
    pub(crate) early_data: Option<bool>,
    pub(crate) layer: LayerOptions,
    /// Its link to the client's listeners, when anyone listens.
    pub(crate) trace: Option<crate::events::Trace>,
    /// Where its upload and download progress is kept, when asked for.
    pub(crate) progress: Option<std::sync::Arc<Progress>>,
}

impl Request {
    /// Starts a request with any method (`"GET"`, `"PURGE"`, ...).
    pub fn builder(method: &str, url: &str) -> RequestBuilder {
        RequestBuilder::new(method, url)
    }

    /// Starts a GET request.
    pub fn get(url: &str) -> RequestBuilder {
        RequestBuilder::new("GET", url)
    }

    /// Starts a POST request.
    pub fn post(url: &str) -> RequestBuilder {
        RequestBuilder::new("POST", url)
    }

    /// Starts a PUT request.
    pub fn put(url: &str) -> RequestBuilder {
        RequestBuilder::new("PUT", url)
    }

    /// Starts a DELETE request.
    pub fn delete(url: &str) -> RequestBuilder {
        RequestBuilder::new("DELETE", url)
    }

    /// Starts a HEAD request.
    pub fn head(url: &str) -> RequestBuilder {
        RequestBuilder::new("HEAD", url)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers, in the order given, duplicates kept.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The hook a pool gives the upload, to hear when the body went out whole (the `body_sent`
    /// event, the upload progress); `None` when nobody listens.
    pub(crate) fn sent_hook(
        &self,
        origin: &crate::origin::Origin,
        protocol: Protocol,
        connection: Option<u64>,
        stream: Option<u64>,
    ) -> Option<SentHook> {
        if self.trace.is_none() && self.progress.is_none() {
            return None;
        }
        let (trace, progress) = (self.trace.clone(), self.progress.clone());
        let origin = origin.clone();
        Some(Box::new(move |bytes| {
            if let Some(p) = progress {
                p.set_uploaded(bytes);
            }
            if let Some(t) = trace {
                t.emit(
                    &origin,
                    Some(protocol),
                    connection,
                    stream,
                    crate::events::EventKind::BodySent { bytes },
                );
            }
        }))
    }

    /// Builds the `http::Request` for HTTP/1.1: origin-form target and a `Host` header
    /// (`host`, the origin's authority, unless the caller set one).
    ///
    /// With `proxy` (absolute form through an HTTP proxy), the target is the absolute URL and
    /// the proxy's Proxy-Authorization, if any, is added (it goes to the proxy only).
    pub(crate) fn to_http1(
        &self,
        body: Body,
        host: &HeaderValue,
        proxy: Option<&ProxyForm>,
        on_sent: Option<SentHook>,
    ) -> http::Request<WireBody> {
        let mut req = http::Request::new(WireBody::new(body, on_sent));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = match proxy {
            Some(_) => http::Uri::builder()
                .scheme(self.target.origin.scheme().as_str())
                .authority(self.target.origin.authority().as_str())
                .path_and_query(self.target.path_and_query.clone())
                .build()
                .unwrap_or_else(|_| http::Uri::from(self.target.path_and_query.clone())),
            None => http::Uri::from(self.target.path_and_query.clone()),
        };
        if let Some(auth) = proxy.and_then(|p| p.authorization.as_ref()) {
            req.headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
        let headers = req.headers_mut();
        headers.reserve(self.headers.len() + 1);
        if !self.headers.iter().any(|(n, _)| n == http::header::HOST) {
            headers.insert(http::header::HOST, host.clone());
        }
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        req
    }
}

/// How an HTTP/1.1 request addresses a forward proxy (absolute-form target).
pub(crate) struct ProxyForm {
    /// Proxy-Authorization for the proxy.
    pub authorization: Option<HeaderValue>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn builds_and_keeps_header_order() {
        let req = Request::post("http://example.com/x")
            .header("b", "1")
            .header("a", "2")
            .header("b", "3")
            .body("hello")
            .build()
            .unwrap();
        let names: Vec<_> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(names, vec![("b", "1"), ("a", "2"), ("b", "3")]);
        let wire = req.to_http1(
            Body::Empty,
            &HeaderValue::from_static("example.com"),
            None,
            None,
        );
        assert_eq!(wire.headers()["host"], "example.com");
        assert_eq!(wire.uri(), "/x");
        let bs: Vec<_> = wire.headers().get_all("b").iter().collect();
        assert_eq!(bs, vec!["1", "3"]);
    }

    #[test]
    fn rejects_bad_input() {
        let kind = |b: RequestBuilder| b.build().unwrap_err().kind();
        assert_eq!(
            kind(Request::get("http://e.com").header("x", "a\r\nb: c")),
            ErrorKind::InvalidHeader
        );
        assert_eq!(
            kind(Request::get("http://e.com").header("x", "a\nb")),
            ErrorKind::InvalidHeader
        );
        assert_eq!(
            kind(Request::get("http://e.com").header("x", "a\0b")),
            ErrorKind::InvalidHeader
        );
        assert_eq!(
            kind(Request::get("http://e.com").header("bad name", "v")),
            ErrorKind::InvalidHeader
        );
        assert_eq!(
            kind(Request::get("http://e.com").header("x\r", "v")),
            ErrorKind::InvalidHeader
        );
        assert_eq!(
            kind(Request::builder("GE T", "http://e.com")),
            ErrorKind::InvalidMethod
        );
        assert_eq!(
            kind(Request::get("gopher://e.com")),
            ErrorKind::InvalidScheme
        );
        assert_eq!(kind(Request::get("http//e.com")), ErrorKind::InvalidUrl);
        for cl in ["abc", "-1", "99999999999999999999999", "1e3", ""] {
            assert_eq!(
                kind(Request::post("http://e.com").header("content-length", cl)),
                ErrorKind::InvalidBody,
                "{cl}"
            );
        }
        assert_eq!(
            kind(
                Request::post("http://e.com")
                    .header("content-length", "3")
                    .body("hello")
            ),
            ErrorKind::InvalidBody
        );
        assert_eq!(
            kind(
                Request::post("http://e.com")
                    .header("content-length", "5")
                    .header("content-length", "6")
            ),
            ErrorKind::InvalidBody
        );
        assert_eq!(
            kind(Request::post("http://e.com").header("transfer-encoding", "gzip")),
            ErrorKind::InvalidBody
        );
        assert!(Request::post("http://e.com")
            .header("content-length", "5")
            .body("hello")
            .build()
            .is_ok());
    }
}
