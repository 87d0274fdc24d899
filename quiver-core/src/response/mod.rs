//! Responses: fully read ([`Response`]) or streamed ([`StreamResponse`], whose
//! [`ResponseBody`] is pulled chunk by chunk and holds its connection until the end).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};

use crate::config::Protocol;
use crate::conn::{ConnRecord, ConnectionInfo};
use crate::error::Result;

mod body;

pub(crate) use self::body::EndHook;
#[cfg(any(feature = "gzip", feature = "brotli", feature = "zstd"))]
pub(crate) use self::body::LayeredBody;
pub use self::body::ResponseBody;

/// The status line and headers of a response.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    /// The status code.
    pub status: StatusCode,
    /// The HTTP version the response came over.
    pub version: Version,
    /// The response headers (case-insensitive names, multiple values kept).
    pub headers: HeaderMap,
}

impl From<http::response::Parts> for ResponseHead {
    fn from(parts: http::response::Parts) -> Self {
        ResponseHead {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
        }
    }
}

impl ResponseHead {
    /// Copies each header value into memory of its own. The values a connection parses are
    /// slices of its read buffer, so a head kept alive keeps that whole buffer alive: an
    /// embedder whose response objects are freed late (by a garbage collector) calls this
    /// before handing the head over, trading a copy of a few hundred bytes for the buffer.
    pub fn unshare(&mut self) {
        let shared = std::mem::take(&mut self.headers);
        let mut owned = HeaderMap::with_capacity(shared.len());
        for (name, value) in &shared {
            let mut copy =
                http::HeaderValue::from_maybe_shared(Bytes::copy_from_slice(value.as_bytes()))
                    .unwrap_or_else(|_| value.clone());
            copy.set_sensitive(value.is_sensitive());
            owned.append(name.clone(), copy);
        }
        self.headers = owned;
    }
}

/// One redirect the client followed on the way to a response: what answered, and where.
#[derive(Clone, Debug)]
pub struct Redirect {
    /// The redirect's status (301, 302, 303, 307 or 308).
    pub status: StatusCode,
    /// The URL that answered with the redirect.
    pub url: String,
    /// The HTTP version it came over.
    pub version: Version,
    /// Its headers (`location` among them).
    pub headers: HeaderMap,
}

/// How long each step of a request took and which connection carried it, as curl's
/// `CURLINFO_*_TIME` tell. Durations of phases, not cumulative: `queued` + `dns` + `connect` +
/// `tls` + the server's time + transfer make up `ttfb` for a request without redirects.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Timings {
    /// Waiting for a connection or stream slot (of the last hop).
    pub queued: Duration,
    /// Name resolution, when the request opened its connection (`None` on a reused one).
    pub dns: Option<Duration>,
    /// The transport's connect (TCP; HTTP/3: the QUIC handshake), when the request opened its
    /// connection.
    pub connect: Option<Duration>,
    /// The TLS handshake (over TCP), when the request opened its connection.
    pub tls: Option<Duration>,
    /// From the start of the request (redirects included) to the response head.
    pub ttfb: Duration,
    /// Spent on redirects before the last hop started.
    pub redirects: Duration,
    /// The connection that carried the last hop: id, ALPN, resumption, peer address.
    pub connection: Arc<ConnectionInfo>,
    /// True when that connection had carried requests before.
    pub reused: bool,
    /// The protocol the response came over.
    pub protocol: Protocol,
    /// The HTTP/2 or HTTP/3 stream id, when there is one.
    pub stream: Option<u64>,
    /// Where the total is recorded when the body ends (none in a placeholder).
    pub(crate) end: Option<Arc<OnceLock<Duration>>>,
}

impl Timings {
    /// From the start of the request to the end of its body; `None` until the body ended.
    pub fn total(&self) -> Option<Duration> {
        self.end.as_ref()?.get().copied()
    }
}

/// The connection of timings that have none: one shared value, so that a placeholder
/// (a response before the client layer records its timings) allocates nothing.
pub(crate) fn no_connection() -> Arc<ConnectionInfo> {
    static NONE: OnceLock<Arc<ConnectionInfo>> = OnceLock::new();
    NONE.get_or_init(Arc::default).clone()
}

impl Default for Timings {
    fn default() -> Timings {
        Timings {
            queued: Duration::ZERO,
            dns: None,
            connect: None,
            tls: None,
            ttfb: Duration::ZERO,
            redirects: Duration::ZERO,
            connection: no_connection(),
            reused: false,
            protocol: Protocol::default(),
            stream: None,
            end: None,
        }
    }
}

/// What the pool that carried a request knows about it: how long it waited and on which
/// connection and stream it went.
#[derive(Clone, Debug, Default)]
pub(crate) struct Via {
    pub queued: Duration,
    pub record: Option<Arc<ConnRecord>>,
    pub reused: bool,
    pub stream: Option<u64>,
}

/// Where a response came from: its URL, the redirects followed to reach it, why a redirect it
/// carries was not followed, and how long it all took.
#[derive(Clone, Debug, Default)]
struct Provenance {
    url: String,
    history: Vec<Redirect>,
    unfollowed: Option<String>,
    timings: Timings,
}

/// A response read to its end: head, body and trailers.
#[derive(Clone)]
pub struct Response {
    head: ResponseHead,
    body: Bytes,
    trailers: Option<HeaderMap>,
    from: Provenance,
}

impl Response {
    /// The URL that answered (after redirects: the last one).
    pub fn url(&self) -> &str {
        &self.from.url
    }

    /// The redirects followed to get here, oldest first (empty when none).
    pub fn history(&self) -> &[Redirect] {
        &self.from.history
    }

    /// Why this response is a redirect that was not followed although redirects are on (a
    /// 307/308 whose streamed body cannot be sent again); `None` otherwise.
    pub fn unfollowed_redirect(&self) -> Option<&str> {
        self.from.unfollowed.as_deref()
    }

    /// How long each step took, and the connection that carried it.
    pub fn timings(&self) -> &Timings {
        &self.from.timings
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The HTTP version the response came over.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The status line and headers.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Trailer fields, when the response had any.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.head.status)
            .field("version", &self.head.version)
            .field("headers", &self.head.headers)
            .field("body_len", &self.body.len())
            .field("trailers", &self.trailers)
            .finish()
    }
}

/// A response whose head has arrived and whose body is pulled chunk by chunk.
///
/// The connection (or stream slot) stays with this response until the body ends or the
/// response is dropped; dropping it early closes an HTTP/1.1 connection rather than reusing it.
pub struct StreamResponse {
    head: ResponseHead,
    body: ResponseBody,
    from: Provenance,
    /// Set by the pool that carried the request; read by the client layer.
    pub(crate) via: Via,
}

impl StreamResponse {
    pub(crate) fn new(head: http::response::Parts, body: ResponseBody) -> StreamResponse {
        StreamResponse {
            head: head.into(),
            body,
            from: Provenance::default(),
            via: Via::default(),
        }
    }

    /// How long each step took, and the connection that carried it (`total` once the body
    /// ended).
    pub fn timings(&self) -> &Timings {
        &self.from.timings
    }

    /// The URL that answered (after redirects: the last one).
    pub fn url(&self) -> &str {
        &self.from.url
    }

    /// The redirects followed to get here, oldest first (empty when none).
    pub fn history(&self) -> &[Redirect] {
        &self.from.history
    }

    /// Why this response is a redirect that was not followed although redirects are on;
    /// `None` otherwise.
    pub fn unfollowed_redirect(&self) -> Option<&str> {
        self.from.unfollowed.as_deref()
    }

    /// Records where the response came from (the client layer, once per response).
    pub(crate) fn set_provenance(
        &mut self,
        url: String,
        history: Vec<Redirect>,
        unfollowed: Option<String>,
        timings: Timings,
    ) {
        self.from = Provenance {
            url,
            history,
            unfollowed,
            timings,
        };
    }

    /// Runs `hook` once when the body ends or fails.
    pub(crate) fn on_end(&mut self, hook: EndHook) {
        self.body.on_end(hook);
    }

    /// Counts the body bytes the caller takes in `progress`.
    pub(crate) fn count_in(&mut self, progress: Arc<crate::request::Progress>) {
        self.body.count_in(progress);
    }

    /// Records in `cell` how long after `started` the body ended (or failed).
    pub(crate) fn time_to_end(
        &mut self,
        started: std::time::Instant,
        cell: Arc<OnceLock<Duration>>,
    ) {
        self.body.time_to_end(started, cell);
    }

    /// Replaces the body with a stage stacked on it (`wrap` gets the current body).
    pub(crate) fn map_body(&mut self, wrap: impl FnOnce(ResponseBody) -> ResponseBody) {
        let body = std::mem::replace(&mut self.body, ResponseBody::empty());
        self.body = wrap(body);
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The HTTP version the response came over.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The status line and headers.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The next chunk of the body; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.body.chunk().await
    }

    /// Trailer fields, available once the body has ended.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.body.trailers()
    }

    /// The body, for pulling chunks or using it as a `Stream`.
    pub fn body_mut(&mut self) -> &mut ResponseBody {
        &mut self.body
    }

    /// Splits into the head and the body (the URL and history are dropped: read them first).
    pub fn into_parts(self) -> (ResponseHead, ResponseBody) {
        (self.head, self.body)
    }

    /// Reads the rest of the body.
    pub async fn collect(mut self) -> Result<Response> {
        let hint = self
            .head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let body = self.body.read_all(hint).await?;
        Ok(Response {
            head: self.head,
            body,
            trailers: self.body.take_trailers(),
            from: self.from,
        })
    }
}

impl fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamResponse")
            .field("status", &self.head.status)
            .field("version", &self.head.version)
            .field("headers", &self.head.headers)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod unshare_tests {
    use super::*;

    #[test]
    fn unshared_headers_keep_their_values_and_no_longer_point_into_the_buffer() {
        let buffer = Bytes::from_static(b"text/plain; charset=utf-8secret-token");
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_maybe_shared(buffer.slice(0..25)).unwrap(),
        );
        let mut secret = http::HeaderValue::from_maybe_shared(buffer.slice(25..)).unwrap();
        secret.set_sensitive(true);
        headers.append("x-token", secret.clone());
        headers.append("x-token", http::HeaderValue::from_static("second"));
        let mut head = ResponseHead {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers,
        };
        head.unshare();
        assert_eq!(head.headers["content-type"], "text/plain; charset=utf-8");
        let tokens: Vec<_> = head.headers.get_all("x-token").iter().collect();
        assert_eq!(tokens, ["secret-token", "second"]);
        assert!(tokens[0].is_sensitive());
        for value in head.headers.values() {
            assert!(!range.contains(&(value.as_bytes().as_ptr() as usize)));
        }
    }
}
