//! HTTP/2 over the `h2` crate: connection setup and worker (PING keep-alive, GOAWAY, stream
//! limits), requests with flow-controlled uploads, and response bodies whose receive window is
//! re-opened only as the caller takes bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use h2::client::{Connection, SendRequest};
use h2::{Reason, RecvStream, SendStream};

use tokio::runtime::Handle;

use super::head::request_head;
use super::mux::{BoxFuture, ConnLink, Coordinator, StreamLease};
use super::{BufferedBytes, BufferedGuard, Retries, Retry, UploadGuard};
use crate::config::PoolOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Origin, Scheme};
use crate::request::{Body, BodyStream, Request};
use crate::response::{ResponseBody, StreamResponse};
use crate::timeout::Watchdog;
use crate::transport::sniff::{FrameSniffer, H2Signals};
use crate::transport::tls::ALPN_H2;
use crate::transport::{self, Activity, Connector, Stream, Tracked};

/// What a caller needs to open a stream on one HTTP/2 connection.
#[derive(Clone)]
pub(crate) struct H2Handle {
    send: SendRequest<Bytes>,
    shared: Arc<H2Shared>,
}

/// State shared by a connection's worker and the requests on it.
pub(crate) struct H2Shared {
    signals: Arc<H2Signals>,
    /// Why quiver closed the connection, when it did (PING timeout, idle): in-flight streams
    /// report this instead of a bare "broken pipe".
    close_reason: OnceLock<(ErrorKind, String)>,
}

/// The HTTP/2 pool of one origin.
pub(crate) type H2Pool = Coordinator<H2Handle>;

/// Makes the HTTP/2 pool for `origin`; `connector` carries the TLS config (ALPN h2) for https
/// or none for h2c.
pub(crate) fn new_pool(
    origin: Origin,
    options: Arc<PoolOptions>,
    connector: Connector,
    runtime: Handle,
) -> Arc<H2Pool> {
    let connect_origin = origin.clone();
    let connect_options = options.clone();
    let connect = Box::new(
        move |link: ConnLink<H2Handle>| -> BoxFuture<Result<(H2Handle, usize)>> {
            let origin = connect_origin.clone();
            let options = connect_options.clone();
            let connector = connector.clone();
            Box::pin(async move {
                let connected = connector.connect(&origin).await?;
                if origin.scheme() == Scheme::Https && connected.alpn.as_deref() != Some(ALPN_H2) {
                    let chose = connected
                        .alpn
                        .as_deref()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .unwrap_or_else(|| "no protocol".into());
                    return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{origin} does not speak HTTP/2 (ALPN chose {chose}); use protocol `auto` or `http1`"),
                ));
                }
                setup(link, connected.stream, origin, options).await
            })
        },
    );
    Coordinator::new(origin, options, "http2", runtime, connect)
}

/// Runs the HTTP/2 handshake on an established transport, spawns the connection's worker and
/// waits for the peer's SETTINGS (so the stream limit is known before callers are routed).
pub(crate) fn setup(
    link: ConnLink<H2Handle>,
    stream: Stream,
    origin: Origin,
    options: Arc<PoolOptions>,
) -> BoxFuture<Result<(H2Handle, usize)>> {
    Box::pin(async move {
        let signals = Arc::new(H2Signals::new());
        let io = Tracked::with_sniffer(stream, Activity::new(), FrameSniffer::new(signals.clone()));
        let mut settings = signals.changed.subscribe();
        let (send, mut conn) = h2::client::Builder::new()
            .initial_window_size(options.stream_window)
            .initial_connection_window_size(options.connection_window)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::Protocol,
                    format!("HTTP/2 handshake with {origin}: {e}"),
                    e,
                )
            })?;
        let ping = conn.ping_pong();
        let shared = Arc::new(H2Shared {
            signals: signals.clone(),
            close_reason: OnceLock::new(),
        });
        let runtime = Handle::current();
        runtime.spawn(worker(conn, ping, link, shared.clone(), options.clone()));
        let wait_settings = async {
            while !signals.settings_seen.load(Ordering::Acquire) {
                if settings.changed().await.is_err() {
                    break;
                }
            }
        };
        if tokio::time::timeout(options.connect_timeout, wait_settings)
            .await
            .is_err()
        {
            return Err(Error::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "{origin} sent no HTTP/2 SETTINGS within {} ms",
                    options.connect_timeout.as_millis()
                ),
            ));
        }
        let max = signals.max_concurrent_streams.load(Ordering::Acquire) as usize;
        let max = if max == u32::MAX as usize {
            options.initial_max_streams
        } else {
            max
        };
        Ok((H2Handle { send, shared }, max))
    })
}

/// Drives one connection: the `h2` connection future, keep-alive PINGs, GOAWAY and SETTINGS
/// changes reported to the coordinator, and closing when the coordinator asks.
async fn worker(
    conn: Connection<Tracked, Bytes>,
    mut ping: Option<h2::PingPong>,
    link: ConnLink<H2Handle>,
    shared: Arc<H2Shared>,
    options: Arc<PoolOptions>,
) {
    let mut conn = std::pin::pin!(conn);
    let mut changes = shared.signals.changed.subscribe();
    let mut draining = false;
    let mut max_streams = shared
        .signals
        .max_concurrent_streams
        .load(Ordering::Acquire);
    let interval = options.ping_interval;
    let mut next_ping = interval.map(|i| tokio::time::Instant::now() + i);
    let mut pong_due: Option<tokio::time::Instant> = None;
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    loop {
        if !draining && shared.signals.goaway.load(Ordering::Acquire) {
            draining = true;
            link.draining();
        }
        let now_max = shared
            .signals
            .max_concurrent_streams
            .load(Ordering::Acquire);
        if now_max != max_streams {
            max_streams = now_max;
            link.set_max_streams(now_max as usize);
        }
        let ping_at = if pong_due.is_none() {
            next_ping.unwrap_or(far)
        } else {
            far
        };
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    let _ = shared.close_reason.set((ErrorKind::ConnectionClosed, format!("HTTP/2 connection failed: {e}")));
                }
                break;
            }
            _ = changes.changed() => {}
            _ = link.control().closed() => {
                let _ = shared.close_reason.set((ErrorKind::Shutdown, "the connection was closed by the pool".into()));
                break;
            }
            _ = tokio::time::sleep_until(ping_at), if ping.is_some() && next_ping.is_some() && pong_due.is_none() => {
                if let Some(p) = ping.as_mut() {
                    if p.send_ping(h2::Ping::opaque()).is_ok() {
                        pong_due = Some(tokio::time::Instant::now() + options.ping_timeout);
                    }
                }
            }
            pong = std::future::poll_fn(|cx| match ping.as_mut() {
                Some(p) => p.poll_pong(cx),
                None => Poll::Pending,
            }), if pong_due.is_some() => {
                pong_due = None;
                if pong.is_err() {
                    break;
                }
                next_ping = interval.map(|i| tokio::time::Instant::now() + i);
            }
            _ = tokio::time::sleep_until(pong_due.unwrap_or(far)), if pong_due.is_some() => {
                let _ = shared.close_reason.set((
                    ErrorKind::PingTimeout,
                    format!("the peer did not answer a PING within {} ms; connection closed", options.ping_timeout.as_millis()),
                ));
                break;
            }
        }
    }
    link.closed();
    // Dropping the connection fails the streams still open on it.
}

/// Sends `req` over the pool; returns once the response head arrived. Requests the peer never
/// processed are retried transparently (see [`Retries`]).
pub(crate) async fn send(pool: &Arc<H2Pool>, mut req: Request) -> Result<StreamResponse> {
    let options = pool.options.clone();
    let mut watchdog = Watchdog::new(
        options.read_timeout,
        req.timeout.or(options.request_timeout),
    );
    let replayable = req.body.try_clone().is_some();
    let mut avoid = None;
    let mut retries = Retries::default();
    loop {
        let lease = watchdog
            .guard(&Activity::new(), pool.checkout(avoid))
            .await??;
        let handle = lease.handle().clone();
        let activity = Activity::new();
        let head = request_head(&req, &pool.origin, http::Version::HTTP_2)?;
        check_header_list_size(&head, &handle.shared)?;
        let body = match req.body.try_clone() {
            Some(b) => b,
            None => std::mem::take(&mut req.body),
        };
        let end = body.exact_len() == Some(0);
        let opened = watchdog
            .guard(&activity, async {
                let mut send = handle.send.clone().ready().await?;
                send.send_request(head, end)
            })
            .await?;
        let (response, stream) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                // The stream was never opened: the body is untouched and the request can go again.
                let err = map_h2_error(&e, &handle.shared, &pool.origin);
                if e.is_go_away() || e.is_io() {
                    pool.draining(lease.conn_id());
                }
                if retries.before_open(err.kind(), &pool.counters) == Retry::Again {
                    req.body = body;
                    continue;
                }
                return Err(err);
            }
        };
        let upload_error = Arc::new(OnceLock::new());
        let mut upload = UploadGuard::none();
        match body {
            Body::Empty => {}
            Body::Bytes(b) if b.is_empty() => {}
            Body::Bytes(b) => {
                // The caller already holds these bytes; h2 sends them as the window allows.
                send_held(stream, b);
            }
            Body::Stream(s) => {
                upload = UploadGuard::spawn(
                    pool.runtime(),
                    pump(s, stream, activity.clone(), upload_error.clone()),
                );
            }
        }
        let result = watchdog.guard(&activity, response).await?;
        match result {
            Ok(resp) => {
                let (parts, recv) = resp.into_parts();
                let body = H2Body::new(
                    recv,
                    lease,
                    activity,
                    handle.shared.clone(),
                    &options,
                    upload,
                );
                return Ok(StreamResponse::new(
                    parts,
                    ResponseBody::http2(body, watchdog),
                ));
            }
            Err(e) => {
                if let Some(upload) = upload_error.get() {
                    return Err(Error::duplicate(upload));
                }
                let err = map_h2_error(&e, &handle.shared, &pool.origin);
                let conn = lease.conn_id();
                drop(lease);
                if err.kind() == ErrorKind::Goaway {
                    pool.draining(conn);
                }
                match retries.after_send(err.kind(), replayable, &pool.counters) {
                    Retry::No => return Err(err),
                    Retry::Again => continue,
                    Retry::Elsewhere => {
                        avoid = Some(conn);
                        continue;
                    }
                }
            }
        }
    }
}

/// Hands a body the caller already holds to h2, which sends it as the window allows. A frame's
/// payload is capped at 2^31-1 bytes, so larger bodies go in pieces.
///
/// A send can fail only once the stream is closed: the server may answer and end the stream
/// before it has read the body (RFC 9113 §8.1), or reset it. Either way the response future
/// says what happened, so the error is left for it and the stream is not reset here (a local
/// reset would turn an already received response into an error).
fn send_held(mut stream: SendStream<Bytes>, mut body: Bytes) {
    const MAX_FRAME_PAYLOAD: usize = (1 << 31) - 1;
    while body.len() > MAX_FRAME_PAYLOAD {
        if stream
            .send_data(body.split_to(MAX_FRAME_PAYLOAD), false)
            .is_err()
        {
            return;
        }
    }
    let _ = stream.send_data(body, true);
}

/// Pulls the caller's body only as send capacity is granted: at most one chunk is held here,
/// and nothing goes out beyond the peer's window.
async fn pump(
    mut body: BodyStream,
    mut stream: SendStream<Bytes>,
    activity: Activity,
    error: Arc<OnceLock<Error>>,
) {
    const WANT: usize = 64 * 1024;
    let mut pending: Option<Bytes> = None;
    loop {
        // Room first: nothing is pulled from the caller's body before the window has space.
        if stream.capacity() == 0 {
            let want = pending.as_ref().map_or(WANT, |c| c.len().max(WANT));
            stream.reserve_capacity(want);
            // poll_capacity wakes when capacity grows; loop until some is actually assigned.
            while stream.capacity() == 0 {
                match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        }
        let chunk = match pending.take() {
            Some(chunk) => chunk,
            None => match body.next().await {
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    let _ = error.set(e);
                    stream.send_reset(Reason::CANCEL);
                    return;
                }
                None => {
                    let _ = stream.send_data(Bytes::new(), true);
                    return;
                }
            },
        };
        let mut chunk = chunk;
        let part = chunk.split_to(stream.capacity().min(chunk.len()));
        if !chunk.is_empty() {
            pending = Some(chunk);
        }
        if stream.send_data(part, false).is_err() {
            return;
        }
        activity.touch();
    }
}

/// Refuses, before sending, a header list larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE
/// (sizes as RFC 9113 counts them: name + value + 32 per field, pseudo-headers included).
fn check_header_list_size(head: &http::Request<()>, shared: &H2Shared) -> Result<()> {
    let max = shared.signals.max_header_list_size.load(Ordering::Acquire);
    if max == u32::MAX {
        return Ok(());
    }
    let uri = head.uri();
    let pseudo = [
        (":method".len(), head.method().as_str().len()),
        (":scheme".len(), uri.scheme_str().unwrap_or_default().len()),
        (
            ":authority".len(),
            uri.authority().map_or(0, |a| a.as_str().len()),
        ),
        (
            ":path".len(),
            uri.path_and_query().map_or(1, |p| p.as_str().len()),
        ),
    ];
    let size: usize = pseudo.iter().map(|(n, v)| n + v + 32).sum::<usize>()
        + head
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum::<usize>();
    if size > max as usize {
        return Err(Error::new(
            ErrorKind::HeaderListTooLarge,
            format!("the request's header list is {size} bytes; the server accepts at most {max} (SETTINGS_MAX_HEADER_LIST_SIZE)"),
        ));
    }
    Ok(())
}

/// Maps an `h2` error on a stream or connection to a quiver error.
fn map_h2_error(e: &h2::Error, shared: &H2Shared, origin: &Origin) -> Error {
    if let Some((kind, message)) = shared.close_reason.get() {
        return Error::new(*kind, format!("{origin}: {message}"));
    }
    if e.is_go_away() && e.is_remote() {
        return Error::new(
            ErrorKind::Goaway,
            format!(
                "{origin} sent GOAWAY ({}) and did not process the request",
                e.reason().unwrap_or(Reason::NO_ERROR)
            ),
        );
    }
    if e.is_reset() && e.is_remote() {
        let reason = e.reason().unwrap_or(Reason::INTERNAL_ERROR);
        if reason == Reason::REFUSED_STREAM {
            return Error::new(
                ErrorKind::RefusedStream,
                format!("{origin} refused the stream (REFUSED_STREAM)"),
            );
        }
        return Error::new(
            ErrorKind::StreamReset,
            format!("{origin} reset the stream ({reason})"),
        );
    }
    if let Some(io) = e.get_io() {
        return transport::io_error(io, &format!("HTTP/2 connection to {origin}"));
    }
    if e.is_io() {
        return Error::new(
            ErrorKind::ConnectionClosed,
            format!("HTTP/2 connection to {origin} closed: {e}"),
        );
    }
    Error::new(
        ErrorKind::Protocol,
        format!("HTTP/2 error with {origin}: {e}"),
    )
}

/// How many received bytes an HTTP/2 response body holds for its caller right now.
struct H2Buffered {
    flow: h2::FlowControl,
    unreleased: AtomicUsize,
}

impl BufferedBytes for H2Buffered {
    fn buffered(&self) -> u64 {
        let used = self.flow.used_capacity();
        used.saturating_sub(self.unreleased.load(Ordering::Relaxed)) as u64
    }
}

/// An HTTP/2 response body: data is taken from `h2` as the caller asks, and the window is
/// re-opened (capacity released) once the caller has taken `threshold` bytes.
pub(crate) struct H2Body {
    recv: RecvStream,
    lease: Option<StreamLease<H2Handle>>,
    activity: Activity,
    shared: Arc<H2Shared>,
    origin: Origin,
    threshold: usize,
    buffered: Arc<H2Buffered>,
    _registered: BufferedGuard,
    _upload: UploadGuard,
    data_done: bool,
}

impl H2Body {
    fn new(
        mut recv: RecvStream,
        lease: StreamLease<H2Handle>,
        activity: Activity,
        shared: Arc<H2Shared>,
        options: &PoolOptions,
        upload: UploadGuard,
    ) -> H2Body {
        let buffered = Arc::new(H2Buffered {
            flow: recv.flow_control().clone(),
            unreleased: AtomicUsize::new(0),
        });
        let registered = lease.coordinator().buffered.register(buffered.clone());
        let origin = lease.coordinator().origin.clone();
        let threshold = ((options.stream_window as f64) * options.window_update_threshold) as usize;
        let mut body = H2Body {
            recv,
            lease: Some(lease),
            activity,
            shared,
            origin,
            threshold: threshold.max(1),
            buffered,
            _registered: registered,
            _upload: upload,
            data_done: false,
        };
        body.release_if_ended();
        body
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    fn release_if_ended(&mut self) {
        if self.recv.is_end_stream() {
            self.lease = None;
        }
    }

    /// Counts `n` bytes taken by the caller; re-opens the window once `threshold` bytes are
    /// pending, or at once with `flush` (the caller caught up and waits for more: holding
    /// credit back then would only stall the sender, and on a shared connection window could
    /// stall every stream on the connection).
    fn give_back(&mut self, n: usize, flush: bool) {
        let pending = self.buffered.unreleased.fetch_add(n, Ordering::Relaxed) + n;
        if pending > 0 && (flush || pending >= self.threshold) {
            self.buffered.unreleased.store(0, Ordering::Relaxed);
            let _ = self.recv.flow_control().release_capacity(pending);
        }
    }

    /// The next frame: data, then trailers, then `None`.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>>>> {
        if !self.data_done {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    self.activity.touch();
                    self.give_back(data.len(), false);
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(map_h2_error(&e, &self.shared, &self.origin))));
                }
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => {
                    self.give_back(0, true);
                    return Poll::Pending;
                }
            }
        }
        match self.recv.poll_trailers(cx) {
            Poll::Ready(Ok(Some(trailers))) => {
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => {
                Poll::Ready(Some(Err(map_h2_error(&e, &self.shared, &self.origin))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The stream ended (or failed): free its slot.
    pub(crate) fn finish(&mut self) {
        self.lease = None;
    }
}

/// Opens a stream for a tunnel (CONNECT, or extended CONNECT with `:protocol`) on a pooled
/// connection and waits for the response head. The stream stays open both ways.
pub(crate) async fn open_tunnel_stream(
    pool: &Arc<H2Pool>,
    head: http::Request<()>,
    limit: std::time::Duration,
) -> Result<(
    StreamLease<H2Handle>,
    http::response::Parts,
    SendStream<Bytes>,
    RecvStream,
)> {
    let run = async {
        let lease = pool.checkout(None).await?;
        let handle = lease.handle().clone();
        if head.extensions().get::<h2::ext::Protocol>().is_some()
            && !handle.send.is_extended_connect_protocol_enabled()
        {
            // SETTINGS_ENABLE_CONNECT_PROTOCOL may arrive after the first SETTINGS frame.
            let mut changes = handle.shared.signals.changed.subscribe();
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), changes.changed())
                .await;
            if !handle.send.is_extended_connect_protocol_enabled() {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "{} does not allow extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)",
                        pool.origin
                    ),
                ));
            }
        }
        let mut send = handle
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| map_h2_error(&e, &handle.shared, &pool.origin))?;
        let (response, stream) = send
            .send_request(head, false)
            .map_err(|e| map_h2_error(&e, &handle.shared, &pool.origin))?;
        let response = response
            .await
            .map_err(|e| map_h2_error(&e, &handle.shared, &pool.origin))?;
        let (parts, recv) = response.into_parts();
        Ok((lease, parts, stream, recv))
    };
    match tokio::time::timeout(limit, run).await {
        Ok(res) => res,
        Err(_) => Err(Error::new(
            ErrorKind::ConnectTimeout,
            format!(
                "opening a tunnel through {} took longer than {} ms",
                pool.origin,
                limit.as_millis()
            ),
        )),
    }
}

/// A byte stream over one HTTP/2 stream (a CONNECT tunnel): reads release flow-control
/// capacity as they are consumed; writes wait for send capacity.
pub(crate) struct H2StreamIo {
    send: SendStream<Bytes>,
    recv: RecvStream,
    pending: Bytes,
    eof: bool,
    _lease: StreamLease<H2Handle>,
}

impl H2StreamIo {
    pub(crate) fn new(
        lease: StreamLease<H2Handle>,
        send: SendStream<Bytes>,
        recv: RecvStream,
    ) -> H2StreamIo {
        H2StreamIo {
            send,
            recv,
            pending: Bytes::new(),
            eof: false,
            _lease: lease,
        }
    }
}

fn h2_io_error(e: h2::Error) -> std::io::Error {
    if let Some(io) = e.get_io() {
        return std::io::Error::new(io.kind(), io.to_string());
    }
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, e.to_string())
}

impl tokio::io::AsyncRead for H2StreamIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while this.pending.is_empty() && !this.eof {
            match this.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    this.pending = data;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(h2_io_error(e))),
                Poll::Ready(None) => this.eof = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for H2StreamIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.send.capacity() == 0 {
            this.send.reserve_capacity(buf.len());
            loop {
                match this.send.poll_capacity(cx) {
                    Poll::Ready(Some(Ok(_))) if this.send.capacity() > 0 => break,
                    Poll::Ready(Some(Ok(_))) => continue,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(h2_io_error(e))),
                    Poll::Ready(None) => {
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::BrokenPipe,
                            "tunnel stream closed",
                        )))
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        let n = this.send.capacity().min(buf.len());
        this.send
            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
            .map_err(h2_io_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let _ = this.send.send_data(Bytes::new(), true);
        Poll::Ready(Ok(()))
    }
}

/// Maps an error on a tunnel's stream (a known reason for closing the connection wins, e.g.
/// `shutdown` after the pool was closed).
pub(crate) fn tunnel_error(lease: &StreamLease<H2Handle>, e: &h2::Error) -> Error {
    map_h2_error(e, &lease.handle().shared, &lease.coordinator().origin)
}
