//! The HTTP endpoints, independent of the transport: they take an [`http::Request`] with any
//! body and produce an [`http::Response`] with a [`BoxBody`]. What only HTTP/3 knows (0-RTT,
//! datagrams) reaches them as an [`H3RequestInfo`] request extension.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ALT_SVC, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE,
    HOST, LOCATION, SET_COOKIE, TRAILER, VARY, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::auth::{self, Algorithm, DigestInput, Qop, DIGEST_OPAQUE, DIGEST_REALM};
use crate::body::{self, BoxBody, BoxError, PatternBody};
use crate::coding::{self, Coding, EncodedBody, Fill};
use crate::http3::datagram::EchoSlot;
use crate::stats::Counters;

/// Default `chunk_size` of `/bytes`, and the chunk size of other generated bodies.
const DEFAULT_CHUNK: usize = 16 * 1024;

/// What an endpoint asks of the HTTP/2 or HTTP/3 connection task serving its stream.
#[derive(Debug)]
pub(crate) enum ConnControl {
    /// Stop reading and writing on the connection until then (`/freeze`).
    Freeze(Instant),
    /// Start a GOAWAY shutdown (`/close`, `goaway_after`).
    GoAway,
    /// Close the connection at once, under every stream (`/chaos`).
    Kill,
}

/// Per-connection state shared by the requests of one connection.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    id: u64,
    /// The client's address: the TCP peer (HTTP/1.1, HTTP/2) or the QUIC remote address
    /// (HTTP/3); `/headers` reports it as `peer`.
    peer: Option<SocketAddr>,
    requests: AtomicU64,
    drop_next: AtomicBool,
    /// The HTTP/2 or HTTP/3 connection task's control channel; `None` on HTTP/1.1.
    control: Option<UnboundedSender<ConnControl>>,
    /// The `alt-svc` header every response of the connection carries (the `https_alt` and
    /// `https_alt_blocked` listeners), unless the endpoint set its own (`/alt-svc`).
    alt_svc: Option<HeaderValue>,
    /// The connection runs over TLS (TLS listeners, HTTP/3): `/redirect/{n}?kind=absolute`
    /// writes `https://`.
    secure: bool,
}

impl ConnCtx {
    /// A fresh context for the connection numbered `id`, whose client is at `peer`.
    pub(crate) fn new(id: u64, peer: Option<SocketAddr>) -> Self {
        ConnCtx {
            id,
            peer,
            requests: AtomicU64::new(0),
            drop_next: AtomicBool::new(false),
            control: None,
            alt_svc: None,
            secure: false,
        }
    }

    /// The same context, marked as running over TLS (or QUIC) when `secure`.
    pub(crate) fn with_secure(self, secure: bool) -> Self {
        ConnCtx { secure, ..self }
    }

    /// The same context, with `alt_svc` added to every response that has no `alt-svc` of its
    /// own.
    pub(crate) fn with_alt_svc(self, alt_svc: Option<HeaderValue>) -> Self {
        ConnCtx { alt_svc, ..self }
    }

    /// A fresh context for the HTTP/2 or HTTP/3 connection numbered `id`, whose client is at
    /// `peer`, controlled through `control`.
    pub(crate) fn with_control(
        id: u64,
        peer: Option<SocketAddr>,
        control: UnboundedSender<ConnControl>,
    ) -> Self {
        ConnCtx {
            control: Some(control),
            ..ConnCtx::new(id, peer)
        }
    }

    /// Asks the connection task (HTTP/2 and HTTP/3) to do `what`; a no-op on HTTP/1.1 or once
    /// the connection is gone.
    pub(crate) fn control(&self, what: ConnControl) {
        if let Some(control) = &self.control {
            let _ = control.send(what);
        }
    }
}

/// What the HTTP/3 transport tells the endpoints about a request (a request extension; absent
/// on HTTP/1.1 and HTTP/2).
#[derive(Debug, Clone)]
pub(crate) struct H3RequestInfo {
    /// The request arrived as 0-RTT early data (its stream was accepted before the handshake
    /// completed).
    pub(crate) early: bool,
    /// Set on an extended CONNECT with `:protocol: connect-udp` when datagrams are on: what
    /// `/datagram-echo` registers its stream with.
    pub(crate) echo: Option<EchoSlot>,
}

/// Returned instead of a response when the connection must be closed without a byte written
/// (`/drop-next`). HTTP/1.1 drops the connection when it gets it, HTTP/2 and HTTP/3 reset the
/// stream with `INTERNAL_ERROR` / `H3_INTERNAL_ERROR`.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose (/drop-next)")
    }
}

impl StdError for DropConnection {}

/// What `/chaos` does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chaos {
    /// A normal answer.
    Answer,
    /// A normal answer after 100 ms.
    Slow,
    /// GOAWAY on the connection, then a normal answer.
    GoAway,
    /// The stream reset (the connection closed on HTTP/1.1) before the request is processed.
    ResetUnprocessed,
    /// The connection closed under every stream before the request is processed.
    KillUnprocessed,
    /// Processed, then the body cut off half way.
    CutMidBody,
    /// Processed, then the connection stalls for 2 s (past the soak's timeouts).
    Stall,
}

/// A per-attempt pseudo-random draw (splitmix64 over a counter: no crate needed).
fn chaos_draw() -> Chaos {
    static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut z = NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    match z % 100 {
        0..=63 => Chaos::Answer,
        64..=71 => Chaos::Slow,
        72..=77 => Chaos::GoAway,
        78..=85 => Chaos::ResetUnprocessed,
        86..=89 => Chaos::KillUnprocessed,
        90..=96 => Chaos::CutMidBody,
        _ => Chaos::Stall,
    }
}

/// `/chaos`: misbehaves at random (see [`Chaos`]). A request with `x-request-id` is recorded
/// when processed (the endpoint went past the point of no return), so a test can check that no
/// request was processed twice and that every success was processed once.
async fn chaos<B>(
    req: Request<B>,
    conn: &ConnCtx,
    counters: &Counters,
) -> Result<Response<BoxBody>, DropConnection>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let draw = chaos_draw();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let size = query_num(req.uri().query().unwrap_or(""), "size")
        .ok()
        .flatten()
        .unwrap_or(2048) as usize;
    match draw {
        Chaos::ResetUnprocessed => return Err(DropConnection),
        Chaos::KillUnprocessed => {
            if req.version() == Version::HTTP_11 {
                return Err(DropConnection);
            }
            conn.control(ConnControl::Kill);
            // Never answered: the connection goes away under the stream.
            tokio::time::sleep(Duration::from_secs(5)).await;
            return Err(DropConnection);
        }
        _ => {}
    }
    // Past this point the request counts as processed (its body read, its id recorded).
    let _ = sink(req.into_body()).await;
    if let Some(id) = &id {
        counters.on_chaos_processed(
            id,
            !matches!(draw, Chaos::Answer | Chaos::Slow | Chaos::GoAway),
        );
    }
    match draw {
        Chaos::Slow => tokio::time::sleep(Duration::from_millis(100)).await,
        Chaos::GoAway => conn.control(ConnControl::GoAway),
        Chaos::Stall => {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Chaos::CutMidBody => return Ok(close_mid_body(size.max(2) as u64)),
        _ => {}
    }
    Ok(respond(
        StatusCode::OK,
        None,
        body::full(crate::pattern(size)),
    ))
}

/// Serves one request: counts it, applies `/drop-next`, routes it, and adds the `x-conn-id`
/// and `x-conn-requests` headers.
pub(crate) async fn handle<B>(
    req: Request<B>,
    conn: &ConnCtx,
    counters: &Counters,
) -> Result<Response<BoxBody>, DropConnection>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    counters.on_request();
    let _handling = counters.on_handling();
    let served = conn.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if conn.drop_next.swap(false, Ordering::SeqCst) {
        return Err(DropConnection);
    }
    match req.uri().path() {
        "/count-and-drop" => {
            // Reads the whole request, counts it as processed, then closes without an answer.
            let _ = sink(req.into_body()).await;
            counters.on_processed_then_dropped();
            return Err(DropConnection);
        }
        "/chaos" => {
            let mut resp = chaos(req, conn, counters).await?;
            resp.headers_mut().insert("x-conn-id", conn.id.into());
            add_alt_svc(&mut resp, conn);
            return Ok(resp);
        }
        _ => {}
    }
    let is_head = req.method() == Method::HEAD;
    // The client-layer endpoints answer without reading the request body (a redirect, a
    // challenge): read it after them, as servers that answer early do.
    let linger = req.version() != http::Version::HTTP_3
        && matches!(
            req.uri().path().trim_start_matches('/').split('/').next(),
            Some(
                "redirect-to"
                    | "redirect"
                    | "redirect-loop"
                    | "basic-auth"
                    | "bearer"
                    | "set-cookie"
                    | "cookies"
            )
        );
    let req = req.map(|b| body::DrainOnDrop::new(Box::pin(b), linger));
    let mut resp = route(req, conn, served, counters).await;
    if is_head {
        // Headers only; keep the announced length.
        let len = resp.body().size_hint().exact();
        let (mut parts, _) = resp.into_parts();
        if let Some(len) = len {
            parts.headers.entry(CONTENT_LENGTH).or_insert(len.into());
        }
        resp = Response::from_parts(parts, body::empty());
    }
    let headers = resp.headers_mut();
    headers.insert("x-conn-id", conn.id.into());
    headers.insert("x-conn-requests", served.into());
    add_alt_svc(&mut resp, conn);
    Ok(resp)
}

/// Adds the connection's `alt-svc` (if any) to a response that has none.
fn add_alt_svc(resp: &mut Response<BoxBody>, conn: &ConnCtx) {
    if let Some(alt_svc) = &conn.alt_svc {
        resp.headers_mut().entry(ALT_SVC).or_insert(alt_svc.clone());
    }
}

fn respond(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: BoxBody,
) -> Response<BoxBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    resp
}

fn text(status: StatusCode, text: impl Into<Bytes>) -> Response<BoxBody> {
    respond(status, Some("text/plain"), body::full(text))
}

fn json(value: &impl Serialize) -> Response<BoxBody> {
    json_status(StatusCode::OK, value)
}

fn json_status(status: StatusCode, value: &impl Serialize) -> Response<BoxBody> {
    match serde_json::to_vec(value) {
        Ok(bytes) => respond(status, Some("application/json"), body::full(bytes)),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A request the endpoints cannot make sense of; answered 400 with the reason.
struct BadRequest(String);

fn bad_request(what: &str) -> BadRequest {
    BadRequest(what.to_owned())
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_num(query: &str, name: &str) -> Result<Option<u64>, BadRequest> {
    match query_param(query, name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| bad_request(&format!("query {name}={v}"))),
    }
}

fn path_num(segment: &str) -> Result<u64, BadRequest> {
    segment
        .parse()
        .map_err(|_| bad_request(&format!("not a number: {segment}")))
}

async fn route<B>(
    req: Request<B>,
    conn: &ConnCtx,
    served: u64,
    counters: &Counters,
) -> Response<BoxBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let result = match segments.as_slice() {
        // `/` answers like `/health`, for clients that just want any 200.
        [""] | ["health"] => Ok(text(StatusCode::OK, "ok")),
        ["bytes", n] => bytes_endpoint(n, &query),
        ["echo"] => Ok(echo(req)),
        ["headers"] => Ok(headers_endpoint(&req, conn)),
        ["status", code] => status_endpoint(code),
        ["slow", ms] => slow(ms, &query).await,
        ["close-mid-body", n] => path_num(n).map(close_mid_body),
        ["conn"] => Ok(json(&ConnJson {
            conn_id: conn.id,
            requests: served,
        })),
        ["trailers"] => Ok(trailers()),
        ["big-headers", n] => path_num(n).map(big_headers),
        ["drop-next"] => {
            conn.drop_next.store(true, Ordering::SeqCst);
            Ok(text(StatusCode::OK, "armed"))
        }
        ["close"] => {
            let mut resp = text(StatusCode::OK, "bye");
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            Ok(resp)
        }
        ["stats"] => Ok(json(&counters.report())),
        ["stats", "reset"] if req.method() == Method::POST => {
            counters.reset();
            Ok(json(&counters.report()))
        }
        ["stats", "reset"] => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use POST")),
        ["sink"] => Ok(sink(req.into_body()).await),
        ["slow-sink"] => slow_sink(req.into_body(), &query).await,
        ["freeze", ms] => freeze(ms, req.version(), conn).await,
        ["early"] => Ok(json(&EarlyJson {
            early: is_early(&req),
        })),
        ["too-early"] if is_early(&req) => Ok(text(too_early(), "too early")),
        ["too-early"] => Ok(text(StatusCode::OK, "ok")),
        ["datagram-echo"] => datagram_echo(req),
        ["alt-svc"] => alt_svc_endpoint(&query),
        ["redirect-to"] => redirect_to(&query),
        ["redirect", n] => redirect_n(&req, conn, n, &query),
        ["redirect-loop"] => Ok(redirect(
            StatusCode::FOUND,
            HeaderValue::from_static("/redirect-loop"),
        )),
        ["set-cookie"] => set_cookie(&query),
        ["cookies"] => Ok(cookies(&req)),
        ["encoded", codings, n] => encoded(codings, n, &query).await,
        ["corrupt", coding] => corrupt(coding, &query),
        ["basic-auth", user, passwd] => basic_auth(&req, user, passwd),
        ["bearer", token] => bearer(&req, token),
        ["digest-auth", qop, user, passwd] => {
            digest_auth(req, [qop, user, passwd], None, &query, counters).await
        }
        ["digest-auth", qop, user, passwd, algorithm] => {
            digest_auth(req, [qop, user, passwd], Some(algorithm), &query, counters).await
        }
        ["multipart"] => multipart_endpoint(req, &query).await,
        _ => Ok(text(StatusCode::NOT_FOUND, "not found")),
    };
    result.unwrap_or_else(|BadRequest(what)| {
        text(StatusCode::BAD_REQUEST, format!("bad request: {what}"))
    })
}

/// `/alt-svc?v=VALUE`: 200 `ok` with one `alt-svc` header per `v` (in order), each the
/// percent-decoded value verbatim (`+` decodes to a space, `%2B` to a `+`). Without `v`, no
/// `alt-svc` header. A value that does not decode, or decodes to bytes a header value cannot
/// hold (control characters), is a 400.
fn alt_svc_endpoint(query: &str) -> Result<Response<BoxBody>, BadRequest> {
    let mut resp = text(StatusCode::OK, "ok");
    let values = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| *k == "v");
    for (_, raw) in values {
        let value = percent_decode(raw)
            .and_then(|bytes| HeaderValue::from_bytes(&bytes).ok())
            .ok_or_else(|| bad_request(&format!("alt-svc value v={raw}")))?;
        resp.headers_mut().append(ALT_SVC, value);
    }
    Ok(resp)
}

/// Every value of the query parameter `name`, percent-decoded into a header value; a broken
/// escape or a value no header can hold is a 400.
fn query_header_values(query: &str, name: &str) -> Result<Vec<HeaderValue>, BadRequest> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, raw)| {
            percent_decode(raw)
                .and_then(|bytes| HeaderValue::from_bytes(&bytes).ok())
                .ok_or_else(|| bad_request(&format!("{name}={raw}")))
        })
        .collect()
}

/// The `status` query parameter of a redirect: 302 when absent, else a 3xx.
fn redirect_status(query: &str) -> Result<StatusCode, BadRequest> {
    match query_num(query, "status")? {
        None => Ok(StatusCode::FOUND),
        Some(code) => u16::try_from(code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .filter(StatusCode::is_redirection)
            .ok_or_else(|| bad_request(&format!("redirect status {code}"))),
    }
}

/// A redirect: `status`, `location`, body `redirect`.
fn redirect(status: StatusCode, location: HeaderValue) -> Response<BoxBody> {
    let mut resp = text(status, "redirect");
    resp.headers_mut().insert(LOCATION, location);
    resp
}

/// `/redirect-to?url=URL[&status=3xx][&set_cookie=VALUE...]`: a redirect (302 unless `status`
/// says which 3xx) to the percent-decoded `url`, verbatim (relative, scheme-relative or
/// absolute), body `redirect`, with one `set-cookie` per `set_cookie` (percent-decoded).
fn redirect_to(query: &str) -> Result<Response<BoxBody>, BadRequest> {
    let raw = query_param(query, "url").ok_or_else(|| bad_request("redirect-to needs url="))?;
    let location = percent_decode(raw)
        .and_then(|bytes| HeaderValue::from_bytes(&bytes).ok())
        .ok_or_else(|| bad_request(&format!("redirect-to url={raw}")))?;
    let cookies = query_header_values(query, "set_cookie")?;
    let mut resp = redirect(redirect_status(query)?, location);
    for cookie in cookies {
        resp.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(resp)
}

/// `/redirect/{n}?status=3xx&kind=relative|absolute|scheme-relative`: `n` > 0 redirects to
/// `/redirect/{n-1}` with the same query, written as `kind` says (the host from `:authority`
/// or `host`, the scheme from the listener); `/redirect/0` answers like `/headers`.
fn redirect_n<B>(
    req: &Request<B>,
    conn: &ConnCtx,
    n: &str,
    query: &str,
) -> Result<Response<BoxBody>, BadRequest> {
    let n = path_num(n)?;
    if n == 0 {
        return Ok(headers_endpoint(req, conn));
    }
    let status = redirect_status(query)?;
    let mut target = format!("/redirect/{}", n - 1);
    if !query.is_empty() {
        target.push('?');
        target.push_str(query);
    }
    let host = || {
        req.uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .ok_or_else(|| bad_request("no host or :authority to redirect to"))
    };
    let location = match query_param(query, "kind").unwrap_or("relative") {
        "relative" => target,
        "absolute" => {
            let scheme = if conn.secure { "https" } else { "http" };
            format!("{scheme}://{}{target}", host()?)
        }
        "scheme-relative" => format!("//{}{target}", host()?),
        other => return Err(bad_request(&format!("redirect kind={other}"))),
    };
    let location = HeaderValue::from_str(&location)
        .map_err(|_| bad_request(&format!("location {location}")))?;
    Ok(redirect(status, location))
}

/// `/cookies`: a JSON object of the cookies the request carried (every `cookie` header, pairs
/// split on `;`; a later duplicate overwrites an earlier one).
fn cookies<B>(req: &Request<B>) -> Response<BoxBody> {
    let mut map = serde_json::Map::new();
    for header in req.headers().get_all(COOKIE) {
        let header = String::from_utf8_lossy(header.as_bytes());
        for pair in header.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                let name = name.trim();
                if !name.is_empty() {
                    map.insert(
                        name.to_owned(),
                        serde_json::Value::String(value.trim().to_owned()),
                    );
                }
            }
        }
    }
    json(&map)
}

/// The largest `n` of `/encoded` (2^40).
const ENCODED_MAX: u64 = 1 << 40;
/// The largest `n` of `/encoded` without `chunked=1` (the body is built first).
const ENCODED_WHOLE_MAX: u64 = 64 << 20;
/// The largest `chunk_size` of `/encoded`.
const ENCODED_CHUNK_MAX: u64 = 16 << 20;

/// `/encoded/{codings}/{n}`: the `n`-byte pattern (or zero, `fill=zero`) body compressed with
/// `codings` (comma-separated, applied in order), labelled with `content-encoding`. Built
/// whole with a `content-length` (n up to 64 MiB), or with `chunked=1` compressed lazily as the
/// client reads, `chunk_size` bytes per step, `delay_ms` between steps.
async fn encoded(codings: &str, n: &str, query: &str) -> Result<Response<BoxBody>, BadRequest> {
    let spec = path_decode(codings)?;
    let chain = coding::parse_chain(&spec)
        .ok_or_else(|| bad_request(&format!("unknown content coding {spec}")))?;
    let n = path_num(n)?;
    if n > ENCODED_MAX {
        return Err(bad_request(&format!("n={n} is over 2^40")));
    }
    let fill = match query_param(query, "fill") {
        None | Some("pattern") => Fill::Pattern,
        Some("zero") => Fill::Zero,
        Some(other) => return Err(bad_request(&format!("fill={other}"))),
    };
    let chunk_size = match query_num(query, "chunk_size")? {
        None => DEFAULT_CHUNK as u64,
        Some(k) if k == 0 || k > ENCODED_CHUNK_MAX => {
            return Err(bad_request(&format!("chunk_size={k}")))
        }
        Some(k) => k,
    };
    let delay = query_num(query, "delay_ms")?.map(Duration::from_millis);
    let chunked = matches!(query_param(query, "chunked"), Some("1" | "true")) || delay.is_some();
    let mut resp = if chunked {
        let body = EncodedBody::new(&chain, fill, n, chunk_size, delay)
            .map_err(|e| bad_request(&e.to_string()))?;
        respond(
            StatusCode::OK,
            Some("application/octet-stream"),
            body.boxed_unsync(),
        )
    } else {
        if n > ENCODED_WHOLE_MAX {
            return Err(bad_request(&format!(
                "n={n} is over 64 MiB: use chunked=1 for larger bodies"
            )));
        }
        let data = whole_encoded(&chain, fill, n).await?;
        let len = data.len() as u64;
        let mut resp = respond(
            StatusCode::OK,
            Some("application/octet-stream"),
            body::full(data),
        );
        resp.headers_mut().insert(CONTENT_LENGTH, len.into());
        resp
    };
    let headers = resp.headers_mut();
    if let Ok(label) = HeaderValue::from_str(&coding::chain_label(&chain)) {
        headers.insert(CONTENT_ENCODING, label);
    }
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert("x-uncompressed-length", n.into());
    Ok(resp)
}

/// Whole `/encoded` bodies recently built, so that repeated requests (benchmarks) measure the
/// client, not the server compressing: the newest few, at most [`WHOLE_CACHE_BYTES`] in all.
static WHOLE_CACHE: std::sync::Mutex<Vec<(WholeKey, Bytes)>> = std::sync::Mutex::new(Vec::new());
/// The codings (as parsed), whether the body is zeros, and its decoded length.
type WholeKey = (String, bool, u64);
const WHOLE_CACHE_BYTES: usize = 160 << 20;

/// The whole compressed body of `/encoded` (from the cache when it was built lately).
async fn whole_encoded(chain: &[Coding], fill: Fill, n: u64) -> Result<Bytes, BadRequest> {
    let key = (format!("{chain:?}"), fill == Fill::Zero, n);
    let cached = WHOLE_CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, b)| b.clone());
    if let Some(data) = cached {
        return Ok(data);
    }
    let codings = chain.to_vec();
    let data = tokio::task::spawn_blocking(move || coding::compress_all(&codings, fill, n))
        .await
        .map_err(|e| bad_request(&e.to_string()))?
        .map_err(|e| bad_request(&e.to_string()))?;
    let data = Bytes::from(data);
    let mut cache = WHOLE_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|(k, _)| *k != key);
    cache.push((key, data.clone()));
    while cache.iter().map(|(_, b)| b.len()).sum::<usize>() > WHOLE_CACHE_BYTES {
        cache.remove(0);
    }
    Ok(data)
}

/// `/corrupt/{coding}?kind=garbage|truncated`: a compressed body no decoder accepts, see
/// [`coding::garbage`] and [`coding::truncated`].
fn corrupt(coding: &str, query: &str) -> Result<Response<BoxBody>, BadRequest> {
    let coding = Coding::parse(coding)
        .filter(|c| {
            matches!(
                c,
                Coding::Gzip | Coding::Deflate | Coding::Br | Coding::Zstd
            )
        })
        .ok_or_else(|| bad_request(&format!("corrupt coding {coding}")))?;
    let data = match query_param(query, "kind") {
        None | Some("garbage") => coding::garbage(coding),
        Some("truncated") => coding::truncated(coding),
        Some(other) => return Err(bad_request(&format!("corrupt kind={other}"))),
    }
    .map_err(|e| bad_request(&e.to_string()))?;
    let len = data.len() as u64;
    let mut resp = respond(
        StatusCode::OK,
        Some("application/octet-stream"),
        body::full(data),
    );
    let headers = resp.headers_mut();
    headers.insert(CONTENT_LENGTH, len.into());
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.label()));
    Ok(resp)
}

/// A 401 with `www-authenticate: {challenge}` and `{"authenticated": false}`.
fn unauthorized(challenge: HeaderValue) -> Response<BoxBody> {
    let mut resp = json_status(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({ "authenticated": false }),
    );
    resp.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    resp
}

/// `/basic-auth/{user}/{passwd}`: 200 when `authorization: Basic base64(user:passwd)`, else
/// 401 with a Basic challenge.
fn basic_auth<B>(
    req: &Request<B>,
    user: &str,
    passwd: &str,
) -> Result<Response<BoxBody>, BadRequest> {
    let user = path_decode(user)?;
    let passwd = path_decode(passwd)?;
    let ok = req
        .headers()
        .get_all(AUTHORIZATION)
        .iter()
        .any(|v| auth::basic_ok(v.as_bytes(), &user, &passwd));
    Ok(if ok {
        json(&serde_json::json!({ "authenticated": true, "user": user }))
    } else {
        unauthorized(HeaderValue::from_static("Basic realm=\"quiver\""))
    })
}

/// `/bearer/{token}`: 200 when `authorization: Bearer {token}`, else 401 with a Bearer
/// challenge.
fn bearer<B>(req: &Request<B>, token: &str) -> Result<Response<BoxBody>, BadRequest> {
    let token = path_decode(token)?;
    let ok = req
        .headers()
        .get_all(AUTHORIZATION)
        .iter()
        .any(|v| auth::bearer_ok(v.as_bytes(), &token));
    Ok(if ok {
        json(&serde_json::json!({ "authenticated": true, "token": token }))
    } else {
        unauthorized(HeaderValue::from_static("Bearer realm=\"quiver\""))
    })
}

/// A 401 with a fresh Digest challenge (counted in `digest_challenges`).
fn digest_challenge(
    counters: &Counters,
    qop: Qop,
    algorithm: Algorithm,
    stale: bool,
) -> Response<BoxBody> {
    let nonce = counters.digest_nonces.issue(stale);
    let mut value = format!("Digest realm=\"{DIGEST_REALM}\"");
    if let Some(qop) = qop.value() {
        value.push_str(&format!(", qop=\"{qop}\""));
    }
    value.push_str(&format!(
        ", nonce=\"{nonce}\", opaque=\"{DIGEST_OPAQUE}\", algorithm={}",
        algorithm.name()
    ));
    if stale {
        value.push_str(", stale=true");
    }
    counters.on_digest_challenge();
    unauthorized(HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Digest")))
}

/// `/digest-auth/{qop}/{user}/{passwd}[/{algorithm}][?stale=1]` (RFC 7616).
async fn digest_auth<B>(
    req: Request<B>,
    [qop, user, passwd]: [&str; 3],
    algorithm: Option<&str>,
    query: &str,
    counters: &Counters,
) -> Result<Response<BoxBody>, BadRequest>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let qop = Qop::parse(qop).ok_or_else(|| bad_request(&format!("digest qop {qop}")))?;
    let algorithm = match algorithm {
        None => Algorithm::Md5,
        Some(a) => {
            Algorithm::parse(a).ok_or_else(|| bad_request(&format!("digest algorithm {a}")))?
        }
    };
    let user = path_decode(user)?;
    let passwd = path_decode(passwd)?;
    let stale_mode = matches!(query_param(query, "stale"), Some("1" | "true"));
    let challenge = |stale| Ok(digest_challenge(counters, qop, algorithm, stale));
    let Some(params) = req
        .headers()
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(auth::parse_digest_header)
    else {
        return challenge(false);
    };
    let get = |name: &str| params.get(name).map(String::as_str);
    let uri = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let checked = || -> Option<auth::NonceInfo> {
        let userhash = get("userhash").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let username = get("username")?;
        let user_ok = if userhash {
            username.eq_ignore_ascii_case(&algorithm.hash(&format!("{user}:{DIGEST_REALM}")))
        } else {
            username == user
        };
        let algorithm_ok = match get("algorithm") {
            Some(a) => a.eq_ignore_ascii_case(algorithm.name()),
            None => algorithm == Algorithm::Md5,
        };
        let qop_ok = match (get("qop"), qop.value()) {
            (Some(got), Some(want)) => {
                got.eq_ignore_ascii_case(want) && get("nc").is_some() && get("cnonce").is_some()
            }
            (None, None) => true,
            _ => false,
        };
        let ok = user_ok
            && algorithm_ok
            && qop_ok
            && get("realm")? == DIGEST_REALM
            && get("uri")? == uri
            && get("opaque").is_none_or(|o| o == DIGEST_OPAQUE);
        if !ok {
            return None;
        }
        counters.digest_nonces.get(get("nonce")?)
    };
    let Some(nonce_info) = checked() else {
        return challenge(false);
    };
    let body_hash = if qop == Qop::AuthInt {
        let mut hasher = algorithm.hasher();
        let mut body = pin!(req.into_body());
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Ok(text(StatusCode::BAD_REQUEST, "request body error"));
            };
            if let Some(data) = frame.data_ref() {
                hasher.update(data);
            }
        }
        hasher.finish()
    } else {
        String::new()
    };
    let nonce = get("nonce").unwrap_or_default();
    let expected = auth::digest_response(&DigestInput {
        algorithm,
        user: &user,
        realm: DIGEST_REALM,
        passwd: &passwd,
        method: &method,
        uri: &uri,
        nonce,
        nc: get("nc").unwrap_or_default(),
        cnonce: get("cnonce").unwrap_or_default(),
        qop: qop.value(),
        body_hash: &body_hash,
    });
    if !get("response").is_some_and(|r| r.eq_ignore_ascii_case(&expected)) {
        return challenge(false);
    }
    if stale_mode && !nonce_info.replacement {
        counters.digest_nonces.forget(nonce);
        return challenge(true);
    }
    counters.on_digest_ok();
    Ok(json(&serde_json::json!({
        "authenticated": true,
        "user": user,
        "nc": get("nc"),
        "algorithm": algorithm.name(),
    })))
}

/// `/multipart[?delay_ms=D]`: the parts of a `multipart/form-data` body, parsed as it streams
/// in; 400 with the parser's error when it is not valid multipart.
async fn multipart_endpoint<B>(
    req: Request<B>,
    query: &str,
) -> Result<Response<BoxBody>, BadRequest>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let delay = query_num(query, "delay_ms")?.map(Duration::from_millis);
    Ok(match crate::multipart::parse(req, delay).await {
        Ok(form) => json(&form),
        Err(e) => text(StatusCode::BAD_REQUEST, e),
    })
}

/// `/set-cookie?v=COOKIE[&v=...]`: 200 `ok` with one `set-cookie` header per `v`, each the
/// percent-decoded value verbatim (attributes included, e.g. `a=1; Path=/; Max-Age=60`).
fn set_cookie(query: &str) -> Result<Response<BoxBody>, BadRequest> {
    let mut resp = text(StatusCode::OK, "ok");
    let values = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "v");
    for (_, raw) in values {
        let value = percent_decode(raw)
            .and_then(|bytes| HeaderValue::from_bytes(&bytes).ok())
            .ok_or_else(|| bad_request(&format!("set-cookie value v={raw}")))?;
        resp.headers_mut().append(SET_COOKIE, value);
    }
    Ok(resp)
}

/// Decodes a query value: `%XX` to its byte, `+` to a space; `None` on a broken escape.
fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    percent_decode_with(raw, true)
}

/// Decodes `%XX` escapes (and `+` to a space when `plus_is_space`); `None` on a broken escape.
fn percent_decode_with(raw: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
    }
    Some(out)
}

/// Decodes a path segment (`%XX` escapes; `+` stays a `+`) into UTF-8 text.
fn path_decode(segment: &str) -> Result<String, BadRequest> {
    percent_decode_with(segment, false)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| bad_request(&format!("path segment {segment}")))
}

#[derive(Serialize)]
struct ConnJson {
    conn_id: u64,
    requests: u64,
}

fn bytes_endpoint(n: &str, query: &str) -> Result<Response<BoxBody>, BadRequest> {
    let n = path_num(n)?;
    let chunk_size = match query_num(query, "chunk_size")? {
        None => DEFAULT_CHUNK,
        Some(0) => return Err(bad_request("chunk_size=0")),
        Some(k) => usize::try_from(k).unwrap_or(usize::MAX),
    };
    let delay = query_num(query, "delay_ms")?.map(Duration::from_millis);
    let chunked = matches!(query_param(query, "chunked"), Some("1" | "true")) || delay.is_some();
    if chunked {
        let body = PatternBody::streamed(n, chunk_size, delay).boxed_unsync();
        Ok(respond(
            StatusCode::OK,
            Some("application/octet-stream"),
            body,
        ))
    } else {
        let body = PatternBody::exact(n, chunk_size).boxed_unsync();
        let mut resp = respond(StatusCode::OK, Some("application/octet-stream"), body);
        resp.headers_mut().insert(CONTENT_LENGTH, n.into());
        Ok(resp)
    }
}

fn echo<B>(req: Request<B>) -> Response<BoxBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let mut resp = respond(
        StatusCode::OK,
        None,
        body.map_err(Into::into).boxed_unsync(),
    );
    let headers = resp.headers_mut();
    if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, ct.clone());
    }
    if let Ok(method) = HeaderValue::from_str(parts.method.as_str()) {
        headers.insert("x-echo-method", method);
    }
    resp
}

#[derive(Serialize)]
struct HeadersJson {
    method: String,
    path: String,
    query: String,
    version: String,
    headers: Vec<(String, String)>,
    /// The connection's client address, `IP:PORT` (`[IP]:PORT` for IPv6).
    peer: Option<String>,
}

fn headers_endpoint<B>(req: &Request<B>, conn: &ConnCtx) -> Response<BoxBody> {
    json(&HeadersJson {
        peer: conn.peer.map(|peer| peer.to_string()),
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or("").to_owned(),
        version: format!("{:?}", req.version()),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
    })
}

fn status_endpoint(code: &str) -> Result<Response<BoxBody>, BadRequest> {
    let status = code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| bad_request(&format!("status {code}")))?;
    if status.is_informational() {
        // An interim status cannot be the final answer of a request (hyper would turn it into
        // a 500, or a 101 into a half-done upgrade): refuse it plainly.
        return Err(bad_request(&format!(
            "status {code} is informational, it cannot be a final response"
        )));
    }
    let forbids_body = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    Ok(if forbids_body {
        respond(status, None, body::empty())
    } else {
        text(status, format!("status {}", status.as_u16()))
    })
}

async fn slow(ms: &str, query: &str) -> Result<Response<BoxBody>, BadRequest> {
    let ms = path_num(ms)?;
    let bytes = query_num(query, "bytes")?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(match bytes {
        None => text(StatusCode::OK, "slow"),
        Some(n) => {
            let mut resp = respond(
                StatusCode::OK,
                Some("application/octet-stream"),
                PatternBody::exact(n, DEFAULT_CHUNK).boxed_unsync(),
            );
            resp.headers_mut().insert(CONTENT_LENGTH, n.into());
            resp
        }
    })
}

/// `/big-headers/{n}`: a response whose `x-big` header holds `n` bytes.
fn big_headers(n: u64) -> Response<BoxBody> {
    let value = "a".repeat(usize::try_from(n).unwrap_or(0).min(16 << 20));
    let mut resp = text(StatusCode::OK, "big");
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert("x-big", v);
    }
    resp
}

fn close_mid_body(n: u64) -> Response<BoxBody> {
    let mut resp = respond(
        StatusCode::OK,
        Some("application/octet-stream"),
        PatternBody::aborting(n / 2, DEFAULT_CHUNK).boxed_unsync(),
    );
    resp.headers_mut().insert(CONTENT_LENGTH, n.into());
    resp
}

fn trailers() -> Response<BoxBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-trailer-one", HeaderValue::from_static("1"));
    trailers.insert("x-trailer-two", HeaderValue::from_static("2"));
    let frames: [Result<Frame<Bytes>, BoxError>; 2] = [
        Ok(Frame::data(Bytes::from_static(b"hello trailers"))),
        Ok(Frame::trailers(trailers)),
    ];
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
    let mut resp = respond(StatusCode::OK, Some("text/plain"), body);
    resp.headers_mut().insert(
        TRAILER,
        HeaderValue::from_static("x-trailer-one, x-trailer-two"),
    );
    resp
}

#[derive(Serialize)]
struct SinkJson {
    received: u64,
}

async fn sink<B>(body: B) -> Response<BoxBody>
where
    B: Body<Data = Bytes>,
{
    let mut body = pin!(body);
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    received += data.len() as u64;
                }
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "request body error"),
        }
    }
    json(&SinkJson { received })
}

/// `/slow-sink`: reads the body at most `chunk` bytes at a time, sleeping `delay_ms` between
/// reads. Over HTTP/2 the body releases flow-control capacity for a frame only when the next
/// one is asked for, so the client's window fills up while this dawdles.
async fn slow_sink<B>(body: B, query: &str) -> Result<Response<BoxBody>, BadRequest>
where
    B: Body<Data = Bytes>,
{
    let chunk = match query_num(query, "chunk")? {
        None => DEFAULT_CHUNK as u64,
        Some(0) => return Err(bad_request("chunk=0")),
        Some(k) => k,
    };
    let delay = Duration::from_millis(query_num(query, "delay_ms")?.unwrap_or(10));
    let mut body = pin!(body);
    let mut received = 0u64;
    let mut first = true;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Ok(text(StatusCode::BAD_REQUEST, "request body error"));
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let mut left = data.len() as u64;
        while left > 0 {
            if !first {
                tokio::time::sleep(delay).await;
            }
            first = false;
            let piece = left.min(chunk);
            received += piece;
            left -= piece;
        }
    }
    Ok(json(&SinkJson { received }))
}

/// `/freeze/{ms}`: on HTTP/2 and HTTP/3 the whole connection stops for `ms`; on HTTP/1.1 a
/// plain sleep.
async fn freeze(
    ms: &str,
    version: Version,
    conn: &ConnCtx,
) -> Result<Response<BoxBody>, BadRequest> {
    let duration = Duration::from_millis(path_num(ms)?);
    if version == Version::HTTP_2 || version == Version::HTTP_3 {
        conn.control(ConnControl::Freeze(Instant::now() + duration));
    }
    tokio::time::sleep(duration).await;
    Ok(text(StatusCode::OK, "thawed"))
}

#[derive(Serialize)]
struct EarlyJson {
    early: bool,
}

/// Whether the request arrived as HTTP/3 0-RTT early data (never on HTTP/1.1 and HTTP/2).
fn is_early<B>(req: &Request<B>) -> bool {
    req.extensions()
        .get::<H3RequestInfo>()
        .is_some_and(|info| info.early)
}

/// 425 Too Early (RFC 8470).
fn too_early() -> StatusCode {
    StatusCode::from_u16(425).unwrap_or(StatusCode::BAD_REQUEST)
}

/// `/datagram-echo`: an HTTP/3 extended CONNECT (`:protocol: connect-udp`) on a server with
/// datagrams. Answers 200 with `capsule-protocol: ?1`; while the stream is open the connection's
/// datagram task sends back every datagram of this stream. The body is `echo ready`, then,
/// once the client has finished its side (the stream data it sends is read and discarded), the
/// trailers `x-datagrams-echoed: N`. `?stream_mib=N`: N MiB of stream data (`s` bytes) follow
/// `echo ready`, paced by the client's reading. Anything else: 400.
fn datagram_echo<B>(req: Request<B>) -> Result<Response<BoxBody>, BadRequest>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let connect_udp = req.method() == Method::CONNECT
        && req.extensions().get::<h3::ext::Protocol>() == Some(&h3::ext::Protocol::CONNECT_UDP);
    let slot = req
        .extensions()
        .get::<H3RequestInfo>()
        .and_then(|info| info.echo.clone());
    let (Some(slot), true) = (slot, connect_udp) else {
        return Err(bad_request(
            "/datagram-echo needs an HTTP/3 extended CONNECT (connect-udp) with datagrams on",
        ));
    };
    let stream_mib = query_num(req.uri().query().unwrap_or(""), "stream_mib")?.unwrap_or(0);
    let piece = Bytes::from(vec![b's'; 1 << 20]);
    let stream_data = futures_util::stream::iter(
        (0..stream_mib).map(move |_| Ok::<_, BoxError>(Frame::data(piece.clone()))),
    );
    let registration = slot.register();
    let request_body = req.into_body();
    let ready = futures_util::stream::once(async {
        Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"echo ready")))
    });
    let end = futures_util::stream::once(async move {
        let mut request_body = pin!(request_body);
        while let Some(frame) = request_body.frame().await {
            frame.map_err(Into::into)?;
        }
        let echoed = registration.finish();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-datagrams-echoed", echoed.into());
        Ok(Frame::trailers(trailers))
    });
    let body = StreamBody::new(futures_util::StreamExt::chain(
        futures_util::StreamExt::chain(ready, stream_data),
        end,
    ))
    .boxed_unsync();
    let mut resp = respond(StatusCode::OK, None, body);
    resp.headers_mut()
        .insert("capsule-protocol", HeaderValue::from_static("?1"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(query_param("a=1&chunked=1", "chunked"), Some("1"));
        assert_eq!(query_param("chunked", "chunked"), Some(""));
        assert_eq!(query_param("xchunked=1", "chunked"), None);
        assert_eq!(query_num("bytes=12", "bytes").ok(), Some(Some(12)));
        assert!(query_num("bytes=x", "bytes").is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("h3%3D%22%3A443%22%3B+ma%3D60").as_deref(),
            Some(&b"h3=\":443\"; ma=60"[..])
        );
        assert_eq!(percent_decode("a%2Bb").as_deref(), Some(&b"a+b"[..]));
        assert_eq!(percent_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn alt_svc_values() {
        let resp = alt_svc_endpoint("v=clear&x=1&v=h3%3D%22%3A1%22")
            .ok()
            .unwrap();
        let values: Vec<_> = resp.headers().get_all(ALT_SVC).iter().collect();
        assert_eq!(values, ["clear", "h3=\":1\""]);
        let resp = alt_svc_endpoint("").ok().unwrap();
        assert!(!resp.headers().contains_key(ALT_SVC));
        assert!(alt_svc_endpoint("v=%0A").is_err());
        assert!(alt_svc_endpoint("v=%G0").is_err());
    }
}
