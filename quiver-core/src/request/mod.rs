//! Requests: the builder, validation of everything a caller supplies, and request bodies.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use crate::config::Protocol;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Target;

mod auth;
mod body;
mod framing;
mod multipart;
mod progress;

pub use self::auth::{Auth, Secret};
pub use self::body::{Body, BodyStream};
pub(crate) use self::body::{SentHook, WireBody};
pub(crate) use self::multipart::random_hex;
pub use self::multipart::{Multipart, Part};
pub use self::progress::Progress;

use self::framing::{check_framing, LengthChecked};

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

/// Builds a [`Request`]; every problem is reported by [`RequestBuilder::build`] as an
/// `invalid` error, before anything is sent.
#[must_use]
pub struct RequestBuilder {
    method: String,
    url: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Body,
    timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    checkout_timeout: Option<Duration>,
    early_data: Option<bool>,
    layer: LayerOptions,
    multipart: Option<Multipart>,
    cookies: Vec<(String, String)>,
    progress: Option<std::sync::Arc<Progress>>,
}

impl RequestBuilder {
    fn new(method: &str, url: &str) -> RequestBuilder {
        RequestBuilder {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Body::Empty,
            timeout: None,
            read_timeout: None,
            checkout_timeout: None,
            early_data: None,
            layer: LayerOptions::default(),
            multipart: None,
            cookies: Vec::new(),
            progress: None,
        }
    }

    /// Whether to follow redirects (overrides the rule's `follow_redirects`).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.layer.redirect = Some(if follow {
            RedirectMode::Follow
        } else {
            RedirectMode::Manual
        });
        self
    }

    /// What to do with redirects: follow, return them, or fail.
    pub fn redirect(mut self, mode: RedirectMode) -> Self {
        self.layer.redirect = Some(mode);
        self
    }

    /// Most redirects followed before failing with `too_many_redirects` (overrides the rule's
    /// `max_redirects`; 0 returns the first redirect as the response).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.layer.max_redirects = Some(max);
        self
    }

    /// Whether to ask for compressed responses and decode them (overrides the rule's
    /// `decompress`); `false` gives the bytes as the server sent them.
    pub fn decompress(mut self, decompress: bool) -> Self {
        self.layer.decompress = Some(decompress);
        self
    }

    /// Credentials for this request's origin (override the rule's and the client's;
    /// [`Auth::None`] sends none). An explicit `authorization` header wins over all of them.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.layer.auth = Some(auth);
        self
    }

    /// Basic credentials for this request's origin.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        self.auth(Auth::basic(user, password))
    }

    /// A bearer token for this request's origin.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.auth(Auth::bearer(token))
    }

    /// Sends this request over `protocol` instead of the rule's (its own pool for the origin).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.layer.protocol = Some(protocol);
        self
    }

    /// Keeps this request's upload and download progress in `progress` (read it while the
    /// request runs).
    pub fn progress(mut self, progress: std::sync::Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// A `multipart/form-data` body; sets `content-type` (with the boundary) and, when every
    /// part's length is known, `content-length`.
    pub fn multipart(mut self, form: Multipart) -> Self {
        self.multipart = Some(form);
        self
    }

    /// A cookie sent with this request only (joined into one `cookie` header); the client's
    /// jar, if any, adds nothing when the request has a `cookie` header.
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.cookies.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Appends a header (duplicates are kept, in order).
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// Limits this request's total time, overriding the pool's `request_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Longest this request may go without a byte moving on its connection, overriding the
    /// pool's `read_timeout` (httpx's `read` timeout).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Longest this request waits for a connection or stream slot, overriding the pool's
    /// `checkout_timeout` (httpx's `pool` timeout).
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = Some(timeout);
        self
    }

    /// HTTP/3 with `early_data`: whether this request may go in the 0-RTT flight. Default:
    /// only idempotent, safe methods (GET, HEAD, OPTIONS, TRACE).
    pub fn early_data(mut self, allowed: bool) -> Self {
        self.early_data = Some(allowed);
        self
    }

    /// Validates and builds the request.
    pub fn build(self) -> Result<Request> {
        let method = Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidMethod,
                format!(
                    "`{}` is not a valid HTTP method",
                    self.method.escape_debug()
                ),
            )
        })?;
        let target = Target::parse(&self.url)?;
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            let shown = String::from_utf8_lossy(&name).escape_debug().to_string();
            let name = HeaderName::from_bytes(&name).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("invalid header name `{shown}`"),
                )
            })?;
            let value = HeaderValue::from_bytes(&value).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("invalid value for header `{name}` (control characters such as CR, LF or NUL are not allowed)"),
                )
            })?;
            headers.push((name, value));
        }
        for (what, t) in [
            ("request timeout", self.timeout),
            ("read timeout", self.read_timeout),
            ("checkout timeout", self.checkout_timeout),
        ] {
            match t {
                Some(t) if t > crate::config::MAX_DURATION => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("the {what} ({t:?}) must be at most a year"),
                    ))
                }
                Some(t) if t.is_zero() && what != "request timeout" => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("the {what} must be greater than zero"),
                    ))
                }
                _ => {}
            }
        }
        if let Some(auth) = &self.layer.auth {
            auth.validate()?;
        }
        if !self.cookies.is_empty() {
            let joined = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let value = HeaderValue::from_str(&joined).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    "a cookie name or value contains a character a header cannot carry",
                )
            })?;
            headers.push((http::header::COOKIE, value));
        }
        let mut body = self.body;
        if let Some(form) = self.multipart {
            let content_type = HeaderValue::from_str(&form.content_type())
                .map_err(|_| Error::new(ErrorKind::InvalidBody, "bad multipart boundary"))?;
            let (form_body, len) = form.into_body()?;
            headers.retain(|(n, _)| {
                n != http::header::CONTENT_TYPE
                    && n != http::header::CONTENT_LENGTH
                    && n != http::header::TRANSFER_ENCODING
            });
            headers.push((http::header::CONTENT_TYPE, content_type));
            if let (Some(len), Body::Stream(_)) = (len, &form_body) {
                headers.push((http::header::CONTENT_LENGTH, HeaderValue::from(len)));
            }
            body = form_body;
        }
        let declared = check_framing(&mut headers, &body)?;
        let body = match (declared, body) {
            (Some(len), Body::Stream(s)) => Body::Stream(Box::pin(LengthChecked::new(s, len))),
            (_, body) => body,
        };
        Ok(Request {
            method,
            target,
            url: self.url,
            headers,
            body,
            timeout: self.timeout,
            read_timeout: self.read_timeout,
            checkout_timeout: self.checkout_timeout,
            early_data: self.early_data,
            layer: self.layer,
            trace: None,
            progress: self.progress,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
