//! Requests: the builder, validation of everything a caller supplies, and request bodies.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};
use http::{HeaderName, HeaderValue, Method};

use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::origin::Target;

mod framing;

use self::framing::{check_framing, LengthChecked};

/// A request body stream: chunks pulled only as the connection can send them.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// A request body: nothing, bytes in memory (replayable), or a stream of chunks.
#[derive(Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A body held in memory; can be sent again if a retry is needed.
    Bytes(Bytes),
    /// A body produced chunk by chunk, pulled only when there is room to send it.
    Stream(BodyStream),
}

impl Body {
    /// Wraps a stream of chunks; a stream error fails the request with kind `body_stream`.
    pub fn from_stream<S, E>(stream: S) -> Body
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Body::Stream(Box::pin(stream.map(|item| {
            item.map_err(|e| {
                let e: BoxError = e.into();
                match e.downcast::<Error>() {
                    Ok(quiver) => *quiver,
                    Err(other) => Error::with_source(
                        ErrorKind::BodyStream,
                        format!("request body stream failed: {other}"),
                        other,
                    ),
                }
            })
        })))
    }

    /// The body's exact length, when known without reading it.
    pub fn exact_len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Stream(_) => None,
        }
    }

    /// A copy of the body for a retry, when it can be replayed.
    pub(crate) fn try_clone(&self) -> Option<Body> {
        match self {
            Body::Empty => Some(Body::Empty),
            Body::Bytes(b) => Some(Body::Bytes(b.clone())),
            Body::Stream(_) => None,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

macro_rules! body_from {
    ($($t:ty),*) => { $(impl From<$t> for Body { fn from(v: $t) -> Body { Body::Bytes(Bytes::from(v)) } })* };
}
body_from!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

/// The body as hyper (HTTP/1.1) pulls it: frames are produced only when hyper polls.
pub(crate) struct WireBody {
    body: Body,
}

impl WireBody {
    pub(crate) fn new(body: Body) -> WireBody {
        WireBody { body }
    }
}

impl http_body::Body for WireBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>>>> {
        let this = self.get_mut();
        match &mut this.body {
            Body::Empty => Poll::Ready(None),
            Body::Bytes(_) => match std::mem::take(&mut this.body) {
                Body::Bytes(b) if !b.is_empty() => Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
                _ => Poll::Ready(None),
            },
            Body::Stream(s) => loop {
                match s.as_mut().poll_next(cx) {
                    // Skip empty chunks: an empty chunk would end an HTTP/1.1 chunked body.
                    Poll::Ready(Some(Ok(b))) if b.is_empty() => continue,
                    Poll::Ready(Some(Ok(b))) => {
                        return Poll::Ready(Some(Ok(http_body::Frame::data(b))))
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        this.body = Body::Empty;
                        return Poll::Ready(None);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Body::Empty => true,
            Body::Bytes(b) => b.is_empty(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.body.exact_len() {
            Some(n) => http_body::SizeHint::with_exact(n),
            None => http_body::SizeHint::default(),
        }
    }
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
    pub(crate) early_data: Option<bool>,
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
    ) -> http::Request<WireBody> {
        let mut req = http::Request::new(WireBody::new(body));
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
    early_data: Option<bool>,
}

impl RequestBuilder {
    fn new(method: &str, url: &str) -> RequestBuilder {
        RequestBuilder {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Body::Empty,
            timeout: None,
            early_data: None,
        }
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
        if let Some(t) = self.timeout {
            if t > crate::config::MAX_DURATION {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!("the request timeout ({t:?}) must be at most a year"),
                ));
            }
        }
        let declared = check_framing(&mut headers, &self.body)?;
        let body = match (declared, self.body) {
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
            early_data: self.early_data,
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
        let wire = req.to_http1(Body::Empty, &HeaderValue::from_static("example.com"), None);
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
