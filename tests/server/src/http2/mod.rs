//! HTTP/2 transport: serves one connection (`h2c` with prior knowledge, or TLS after ALPN `h2`)
//! with the `h2` crate directly, so that faults can be injected, dispatching every stream to
//! [`crate::endpoints::handle`].
//!
//! One task (the caller's) polls the [`h2::server::Connection`]: it accepts streams, applies
//! `refuse_every` and `goaway_after`, obeys the endpoints' [`ConnControl`] requests (`/freeze`:
//! it stops polling the connection altogether; `/close`: GOAWAY) and spawns one task per
//! stream. A stream task builds the [`http::Request`], calls the endpoint, then writes the
//! response body as flow control allows: it reserves room for a chunk, waits for the capacity,
//! and sends that much, so no more than the peer's window is ever buffered.

mod body;
mod gate;

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::{Builder, Connection, SendResponse};
use h2::{Reason, RecvStream, SendStream};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::body::BoxBody;
use crate::endpoints::{self, ConnControl, ConnCtx};
use crate::stats::Counters;
use crate::H2Options;

use self::body::RecvBody;
use self::gate::Gate;

/// How long the client may take to send its connection preface.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest window HTTP/2 allows.
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Headers HTTP/2 forbids (RFC 9113, 8.2.2); `te` is allowed only as `trailers`.
const CONNECTION_SPECIFIC: [HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

/// Serves HTTP/2 on `io` (after the TLS handshake, if any) until the connection ends; `peer` is
/// the client's TCP address (`None` over a Unix socket), `alt_svc` the `alt-svc` header of every
/// response (see [`ConnCtx::with_alt_svc`]), `secure` whether `io` is a TLS stream.
pub(crate) async fn serve<I>(
    io: I,
    conn_id: u64,
    peer: Option<SocketAddr>,
    counters: Arc<Counters>,
    options: H2Options,
    alt_svc: Option<HeaderValue>,
    secure: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    counters.on_h2_connection();
    let (control, requests) = mpsc::unbounded_channel();
    let conn = Arc::new(
        ConnCtx::with_control(conn_id, peer, control.clone())
            .with_alt_svc(alt_svc)
            .with_secure(secure),
    );
    match options.goaway_after {
        Some(limit) => {
            let io = Gate::new(io, limit, control);
            run(io, conn, counters, options, requests).await;
        }
        None => run(io, conn, counters, options, requests).await,
    }
}

/// State of one connection's task.
struct ConnTask {
    conn: Arc<ConnCtx>,
    counters: Arc<Counters>,
    options: H2Options,
    /// Streams accepted so far, refused ones included.
    accepted: u64,
    /// Streams open now (accepted, response not finished).
    open: Arc<AtomicU64>,
    going_away: bool,
}

impl ConnTask {
    /// Starts a graceful GOAWAY (once): h2 sends a GOAWAY with last-stream-id 2^31-1 and a PING,
    /// then, on the PING's ACK, the GOAWAY naming the last stream it read; it closes the
    /// connection once the streams up to that one are finished.
    fn go_away<I, B>(&mut self, connection: &mut Connection<I, B>)
    where
        I: AsyncRead + AsyncWrite + Unpin,
        B: bytes::Buf,
    {
        if !self.going_away {
            self.going_away = true;
            self.counters.on_goaway();
            connection.graceful_shutdown();
        }
    }

    /// Whether the stream accepted as number `n` (from 1) must be refused.
    fn refuses(&self, n: u64) -> bool {
        let beyond_goaway = self.options.goaway_after.is_some_and(|limit| n > limit);
        let refused = self
            .options
            .refuse_every
            .is_some_and(|k| k > 0 && n.is_multiple_of(k));
        beyond_goaway || refused
    }
}

async fn run<I>(
    io: I,
    conn: Arc<ConnCtx>,
    counters: Arc<Counters>,
    options: H2Options,
    mut control: UnboundedReceiver<ConnControl>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new();
    builder
        .max_concurrent_streams(options.max_concurrent_streams)
        .initial_window_size(options.stream_window.min(MAX_WINDOW))
        .initial_connection_window_size(options.connection_window.min(MAX_WINDOW));
    if let Some(max) = options.max_header_list_size {
        builder.max_header_list_size(max);
    }
    let handshake = builder.handshake::<_, Bytes>(io);
    let Ok(Ok(mut connection)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await else {
        return;
    };

    let mut task = ConnTask {
        conn,
        counters,
        options,
        accepted: 0,
        open: Arc::new(AtomicU64::new(0)),
        going_away: false,
    };
    if task.options.goaway_after == Some(0) {
        task.go_away(&mut connection);
    }
    // Dropping the set (when the connection ends or the server shuts down) aborts the streams.
    let mut streams = JoinSet::new();
    let mut frozen_until: Option<Instant> = None;
    loop {
        if let Some(until) = frozen_until.take() {
            // Not polling the connection: nothing is read (PINGs wait in the socket), nothing
            // is written. The stream tasks run on but cannot reach the peer.
            tokio::time::sleep_until(until).await;
        }
        tokio::select! {
            biased;
            Some(request) = control.recv() => match request {
                ConnControl::Freeze(until) => {
                    frozen_until = Some(frozen_until.map_or(until, |f| f.max(until)));
                }
                ConnControl::GoAway => task.go_away(&mut connection),
                // Dropping the connection: the socket closes under every stream.
                ConnControl::Kill => break,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            next = connection.accept() => {
                let Some(Ok((request, respond))) = next else {
                    break;
                };
                task.accepted += 1;
                let n = task.accepted;
                if task.refuses(n) {
                    let mut respond = respond;
                    respond.send_reset(Reason::REFUSED_STREAM);
                    task.counters.on_refused();
                } else {
                    let slot = StreamSlot::new(&task.open, &task.counters);
                    streams.spawn(serve_stream(
                        request,
                        respond,
                        Arc::clone(&task.conn),
                        Arc::clone(&task.counters),
                        slot,
                    ));
                }
                if task.options.goaway_after == Some(n) {
                    task.go_away(&mut connection);
                }
            }
        }
    }
}

/// Keeps one stream counted as open on its connection.
struct StreamSlot {
    open: Arc<AtomicU64>,
}

impl StreamSlot {
    fn new(open: &Arc<AtomicU64>, counters: &Counters) -> Self {
        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
        counters.on_h2_streams_open(now);
        StreamSlot {
            open: Arc::clone(open),
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one stream: the endpoint's answer, then its body as flow control allows.
async fn serve_stream(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    conn: Arc<ConnCtx>,
    counters: Arc<Counters>,
    _slot: StreamSlot,
) {
    let (parts, body) = request.into_parts();
    let body = RecvBody::new(body, &parts.headers, Arc::clone(&counters));
    let request = Request::from_parts(parts, body);
    let handled = tokio::select! {
        handled = endpoints::handle(request, &conn, &counters) => handled,
        // The client reset the stream: stop the endpoint.
        _ = poll_fn(|cx| respond.poll_reset(cx)) => return,
    };
    let Ok(response) = handled else {
        // `/drop-next`: the HTTP/2 form of closing without an answer.
        respond.send_reset(Reason::INTERNAL_ERROR);
        return;
    };
    let (mut parts, body) = response.into_parts();
    let close = strip_connection_headers(&mut parts.headers);
    let forbids_body = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if !forbids_body && !parts.headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(len) = body.size_hint().exact() {
            parts.headers.insert(header::CONTENT_LENGTH, len.into());
        }
    }
    let end_stream = body.is_end_stream();
    let head = http::Response::from_parts(parts, ());
    if let Ok(stream) = respond.send_response(head, end_stream) {
        if !end_stream {
            send_body(body, stream, &counters).await;
        }
    }
    if close {
        // `connection: close` (`/close`) means GOAWAY once the answer is out.
        conn.control(ConnControl::GoAway);
    }
}

/// Removes the headers HTTP/2 forbids; returns whether they asked to close the connection.
pub(crate) fn strip_connection_headers(headers: &mut HeaderMap) -> bool {
    let close = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"));
    for name in &CONNECTION_SPECIFIC {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
    close
}

/// Writes `body` on `stream`: each data frame goes out in pieces no larger than the capacity
/// h2 has granted; trailers end the stream when the body has them. A body error resets the
/// stream with `INTERNAL_ERROR` (`/close-mid-body`).
async fn send_body(body: BoxBody, mut stream: SendStream<Bytes>, counters: &Counters) {
    let mut body = std::pin::pin!(body);
    loop {
        let frame = match body.frame().await {
            None => {
                let _ = stream.send_data(Bytes::new(), true);
                return;
            }
            Some(Err(_)) => {
                stream.send_reset(Reason::INTERNAL_ERROR);
                return;
            }
            Some(Ok(frame)) => frame,
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = stream.send_trailers(trailers);
                    return;
                }
                continue;
            }
        };
        while !data.is_empty() {
            stream.reserve_capacity(data.len());
            let mut granted = stream.capacity();
            while granted == 0 {
                match poll_fn(|cx| stream.poll_capacity(cx)).await {
                    Some(Ok(_)) => granted = stream.capacity(),
                    // The stream was reset or the connection is gone.
                    Some(Err(_)) | None => return,
                }
            }
            let piece = data.split_to(granted.min(data.len()));
            let len = piece.len();
            if stream.send_data(piece, false).is_err() {
                return;
            }
            counters.on_sent(len);
        }
    }
}
