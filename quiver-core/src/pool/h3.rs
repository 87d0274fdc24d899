//! HTTP/3 over QUIC (quinn + h3): one UDP endpoint per pool, connections tried address by
//! address, the asynchronous handshake reported to the coordinator, 0-RTT with transparent
//! replay, GOAWAY draining, flow-controlled bodies (QUIC stream credit is returned as the
//! caller reads), and HTTP/3 datagrams routed to channels by stream id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use h3::error::{Code, ConnectionError, StreamError};
use h3::quic::ConnectionErrorIncoming;
use h3::ConnectionState;
use http::Method;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use super::head::request_head;
use super::mux::{BoxFuture, ConnLink, Coordinator, StreamLease};
use super::{Retries, Retry, UploadGuard};
use crate::config::PoolOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::request::{Body, BodyStream, Request};
use crate::response::{ResponseBody, StreamResponse};
use crate::timeout::Watchdog;
use crate::transport::{self, Activity};

pub(crate) type H3Send = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type H3Driver = h3::client::Connection<h3_quinn::Connection, Bytes>;
pub(crate) type H3Recv = h3::client::RequestStream<h3_quinn::RecvStream, Bytes>;
pub(crate) type H3SendHalf = h3::client::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// Where a 0-RTT connection's handshake stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Resumed with 0-RTT: early data may be sent, the handshake is not done.
    Early,
    /// Handshake complete (1-RTT).
    Confirmed,
}

/// An event on a datagram channel: a datagram (from the connection's worker) or what its
/// request stream carries (from the channel's reader task).
#[derive(Debug)]
pub(crate) enum ChannelEvent {
    Datagram(Bytes),
    Data(Bytes),
    Trailers(http::HeaderMap),
    End,
    Failed(Error),
}

/// One HTTP/3 connection as requests see it.
pub(crate) struct H3Conn {
    pub(crate) quic: quinn::Connection,
    /// Replaced when a rejected 0-RTT flight forces a fresh HTTP/3 session.
    send: Mutex<H3Send>,
    handshake: watch::Receiver<Handshake>,
    close_reason: OnceLock<(ErrorKind, String)>,
    /// Datagram channels on this connection, by request stream id.
    pub(crate) channels: Mutex<HashMap<u64, mpsc::Sender<ChannelEvent>>>,
    pub(crate) origin: Origin,
}

impl H3Conn {
    pub(crate) fn sender(&self) -> H3Send {
        self.send.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the peer advertised SETTINGS_H3_DATAGRAM: `None` until its SETTINGS frame has
    /// been read (h3 hands out defaults, as an owned value, before that).
    pub(crate) fn peer_datagrams(&self) -> Option<bool> {
        let send = self.send.lock().unwrap_or_else(|p| p.into_inner());
        match send.settings() {
            std::borrow::Cow::Borrowed(s) => Some(s.enable_datagram()),
            std::borrow::Cow::Owned(_) => None,
        }
    }

    /// Waits (polling; a cold path) until the peer's SETTINGS arrived, or `limit` passed.
    async fn peer_datagrams_within(&self, limit: std::time::Duration) -> Option<bool> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(known) = self.peer_datagrams() {
                return Some(known);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    async fn confirmed(&self) {
        let mut rx = self.handshake.clone();
        let _ = rx.wait_for(|h| *h == Handshake::Confirmed).await;
    }
}

/// What a caller needs to open a stream on one HTTP/3 connection.
#[derive(Clone)]
pub(crate) struct H3Handle {
    pub(crate) conn: Arc<H3Conn>,
}

/// The HTTP/3 pool of one origin.
pub(crate) type H3Pool = Coordinator<H3Handle>;

/// How a pool's QUIC connections reach their origin.
pub(crate) enum Path {
    /// Straight to the origin over the pool's own UDP sockets.
    Direct,
    /// Connections to a MASQUE proxy: a larger first MTU, so that tunnelled QUIC packets
    /// (at least 1200 bytes each) fit in its datagrams.
    Masque,
    /// QUIC to the origin through a CONNECT-UDP tunnel of this proxy.
    Tunneled(Arc<crate::proxy::tunnel::TunnelOpener>),
}

/// The pool's UDP endpoints: one per address family (created on first use), or one over a
/// CONNECT-UDP tunnel (re-opened when the tunnel ends).
struct Endpoints {
    v4: Mutex<Option<quinn::Endpoint>>,
    v6: Mutex<Option<quinn::Endpoint>>,
    tunnel: Option<Arc<crate::proxy::tunnel::TunnelOpener>>,
    tunneled: tokio::sync::Mutex<Option<(quinn::Endpoint, Arc<std::sync::atomic::AtomicBool>)>>,
}

/// The address quinn is told a tunnelled origin has (TEST-NET-1: the proxy resolves the real one).
fn tunnel_peer(origin: &Origin) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], origin.port()))
}

impl Endpoints {
    fn new(tunnel: Option<Arc<crate::proxy::tunnel::TunnelOpener>>) -> Endpoints {
        Endpoints {
            v4: Mutex::new(None),
            v6: Mutex::new(None),
            tunnel,
            tunneled: tokio::sync::Mutex::new(None),
        }
    }

    fn for_addr(&self, addr: SocketAddr) -> Result<quinn::Endpoint> {
        let (slot, bind): (&Mutex<Option<quinn::Endpoint>>, SocketAddr) = if addr.is_ipv4() {
            (&self.v4, SocketAddr::from(([0, 0, 0, 0], 0)))
        } else {
            (&self.v6, SocketAddr::from(([0u16; 8], 0)))
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| {
            Error::with_source(
                ErrorKind::ConnectFailed,
                format!("cannot open a UDP socket: {e}"),
                e,
            )
        })?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// Where to send QUIC for `origin`: each resolved address in turn, or the tunnel.
    async fn candidates(&self, origin: &Origin) -> Result<Vec<(quinn::Endpoint, SocketAddr)>> {
        let Some(opener) = &self.tunnel else {
            let addrs = transport::resolve(origin).await?;
            return addrs
                .into_iter()
                .map(|a| Ok((self.for_addr(a)?, a)))
                .collect();
        };
        let mut cached = self.tunneled.lock().await;
        if let Some((endpoint, alive)) = cached.as_ref() {
            if alive.load(std::sync::atomic::Ordering::Acquire) {
                return Ok(vec![(endpoint.clone(), tunnel_peer(origin))]);
            }
        }
        let options = crate::proxy::udp::UdpTunnelOptions {
            protocol: match opener.proxy.protocol {
                crate::config::Protocol::Http2 => crate::config::Protocol::Http2,
                _ => crate::config::Protocol::Http3,
            },
            headers: Vec::new(),
        };
        let host = origin.host().to_authority_string();
        let tunnel =
            crate::proxy::udp::UdpTunnel::open(opener, &host, origin.port(), &options).await?;
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let socket = crate::proxy::udp::TunnelSocket::new(
            tunnel,
            tunnel_peer(origin),
            &Handle::current(),
            alive.clone(),
        );
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| {
            Error::new(
                ErrorKind::ConnectFailed,
                format!("cannot start QUIC over the tunnel: {e}"),
            )
        })?;
        *cached = Some((endpoint.clone(), alive));
        Ok(vec![(endpoint, tunnel_peer(origin))])
    }
}

/// Makes the HTTP/3 pool for `origin` with the rule's TLS config (ALPN h3).
pub(crate) fn new_pool(
    origin: Origin,
    options: Arc<PoolOptions>,
    tls: Arc<rustls::ClientConfig>,
    runtime: Handle,
    path: Path,
) -> Result<Arc<H3Pool>> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| Error::invalid_config(format!("TLS config unusable for QUIC: {e}")))?;
    let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
    quic.transport_config(Arc::new(transport_config(&options, &path)?));
    let endpoints = Arc::new(Endpoints::new(match path {
        Path::Tunneled(opener) => Some(opener),
        Path::Direct | Path::Masque => None,
    }));
    let connect_origin = origin.clone();
    let connect_options = options.clone();
    let connect = Box::new(
        move |link: ConnLink<H3Handle>| -> BoxFuture<Result<(H3Handle, usize)>> {
            let (origin, options, quic, endpoints) = (
                connect_origin.clone(),
                connect_options.clone(),
                quic.clone(),
                endpoints.clone(),
            );
            Box::pin(async move { connect(link, origin, options, quic, endpoints).await })
        },
    );
    Ok(Coordinator::new(origin, options, "http3", runtime, connect))
}

fn transport_config(options: &PoolOptions, path: &Path) -> Result<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    match path {
        Path::Direct => {}
        // Outer connection: room for an inner QUIC packet (>= 1200) plus the framing.
        Path::Masque => {
            t.initial_mtu(1452);
        }
        // Inner connection: probes beyond what the tunnel carries would only be lost.
        Path::Tunneled(_) => {
            t.mtu_discovery_config(None);
        }
    }
    let idle = quinn::IdleTimeout::try_from(options.quic_idle_timeout)
        .map_err(|_| Error::invalid_config("option `quic_idle_timeout` is too large for QUIC"))?;
    t.max_idle_timeout(Some(idle));
    t.keep_alive_interval(options.ping_interval);
    t.stream_receive_window(quinn::VarInt::from_u32(options.stream_window));
    t.receive_window(quinn::VarInt::from_u32(options.connection_window));
    // The server opens no request streams towards a client.
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    t.datagram_receive_buffer_size(Some(1 << 20));
    Ok(t)
}

/// Connects (each resolved address in turn, `connect_timeout` each), sets up HTTP/3 and spawns
/// the connection's worker. With `early_data` and a session ticket, returns before the
/// handshake completes (0-RTT); the worker tells requests when it is confirmed.
async fn connect(
    link: ConnLink<H3Handle>,
    origin: Origin,
    options: Arc<PoolOptions>,
    quic: quinn::ClientConfig,
    endpoints: Arc<Endpoints>,
) -> Result<(H3Handle, usize)> {
    let candidates = endpoints.candidates(&origin).await?;
    let server_name = match origin.host() {
        crate::origin::Host::Name(n) => n.clone(),
        crate::origin::Host::Ip(ip) => ip.to_string(),
    };
    let mut last_err = None;
    let mut established = None;
    for (endpoint, addr) in candidates {
        let connecting = match endpoint.connect_with(quic.clone(), addr, &server_name) {
            Ok(c) => c,
            Err(e) => {
                last_err = Some(Error::new(
                    ErrorKind::ConnectFailed,
                    format!("cannot connect to {origin} ({addr}): {e}"),
                ));
                continue;
            }
        };
        // With early data and a session ticket, 0-RTT: the connection is usable at once.
        let attempt = if options.early_data {
            connecting.into_0rtt()
        } else {
            Err(connecting)
        };
        match attempt {
            Ok((conn, accepted)) => {
                established = Some((conn, Some(accepted)));
                break;
            }
            Err(connecting) => {
                match tokio::time::timeout(options.connect_timeout, connecting).await {
                    Ok(Ok(conn)) => {
                        established = Some((conn, None));
                        break;
                    }
                    Ok(Err(e)) => last_err = Some(connect_error(&e, &origin, addr)),
                    Err(_) => last_err = Some(connect_timeout(&origin, addr, &options)),
                }
            }
        }
    }
    let Some((quic_conn, accepted)) = established else {
        return Err(last_err
            .unwrap_or_else(|| Error::new(ErrorKind::Dns, format!("{origin} has no address"))));
    };
    let (driver, send) = h3_session(&quic_conn, &origin).await?;
    let early = accepted.is_some();
    let (handshake_tx, handshake_rx) = watch::channel(if early {
        Handshake::Early
    } else {
        Handshake::Confirmed
    });
    let conn = Arc::new(H3Conn {
        quic: quic_conn,
        send: Mutex::new(send),
        handshake: handshake_rx,
        close_reason: OnceLock::new(),
        channels: Mutex::new(HashMap::new()),
        origin: origin.clone(),
    });
    Handle::current().spawn(worker(
        driver,
        conn.clone(),
        link,
        accepted,
        handshake_tx,
        origin,
    ));

    Ok((H3Handle { conn }, options.initial_max_streams))
}

async fn h3_session(quic: &quinn::Connection, origin: &Origin) -> Result<(H3Driver, H3Send)> {
    h3::client::builder()
        .enable_extended_connect(true)
        .enable_datagram(true)
        .build(h3_quinn::Connection::new(quic.clone()))
        .await
        .map_err(|e| map_connection_error(&e, origin))
}

fn connect_timeout(origin: &Origin, addr: SocketAddr, options: &PoolOptions) -> Error {
    Error::new(
        ErrorKind::ConnectTimeout,
        format!(
            "the QUIC handshake with {origin} ({addr}) took longer than {} ms",
            options.connect_timeout.as_millis()
        ),
    )
}

fn connect_error(e: &quinn::ConnectionError, origin: &Origin, addr: SocketAddr) -> Error {
    let mut err = map_quinn_error(e, origin);
    if err.kind() == ErrorKind::ConnectionClosed {
        err = Error::new(
            ErrorKind::ConnectFailed,
            format!("cannot connect to {origin} ({addr}): {e}"),
        );
    }
    err
}

/// Drives one connection: the h3 control stream (GOAWAY → draining), the 0-RTT verdict (a
/// rejected early flight gets a fresh HTTP/3 session on the now 1-RTT connection), incoming
/// datagrams (routed to channels), and closing when the coordinator asks.
async fn worker(
    mut driver: H3Driver,
    conn: Arc<H3Conn>,
    link: ConnLink<H3Handle>,
    accepted: Option<quinn::ZeroRttAccepted>,
    handshake: watch::Sender<Handshake>,
    origin: Origin,
) {
    let mut accepted = accepted;
    let mut draining = false;
    let mut datagrams_open = true;
    loop {
        tokio::select! {
            err = std::future::poll_fn(|cx| driver.poll_close(cx)) => {
                if !err.is_h3_no_error() {
                    let mapped = map_connection_error(&err, &origin);
                    let _ = conn.close_reason.set((mapped.kind(), mapped.message().to_owned()));
                }
                break;
            }
            ok = async { accepted.as_mut().expect("guarded").await }, if accepted.is_some() => {
                accepted = None;
                if !ok {
                    // The server refused the early flight: what was sent in it is lost. Start
                    // the HTTP/3 session again; requests replay on it.
                    match h3_session(&conn.quic, &origin).await {
                        Ok((new_driver, send)) => {
                            driver = new_driver;
                            *conn.send.lock().unwrap_or_else(|p| p.into_inner()) = send;
                        }
                        Err(e) => {
                            let _ = conn.close_reason.set((e.kind(), e.message().to_owned()));
                            break;
                        }
                    }
                }
                let _ = handshake.send(Handshake::Confirmed);
            }
            dg = conn.quic.read_datagram(), if datagrams_open => match dg {
                Ok(bytes) => route_datagram(&conn, bytes),
                Err(_) => datagrams_open = false,
            },
            _ = link.control().closed() => {
                let _ = conn.close_reason.set((ErrorKind::Shutdown, "the connection was closed by the pool".into()));
                conn.quic.close(quinn::VarInt::from_u32(Code::H3_NO_ERROR.value() as u32), b"");
                break;
            }
        }
        if !draining && conn.sender().is_closing() {
            draining = true;
            link.draining();
        }
    }
    let _ = handshake.send(Handshake::Confirmed);
    let (kind, message) = conn.close_reason.get().cloned().unwrap_or((
        ErrorKind::ConnectionClosed,
        format!("the HTTP/3 connection to {origin} closed"),
    ));
    for (_, tx) in conn
        .channels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
    {
        let _ = tx.try_send(ChannelEvent::Failed(Error::new(kind, message.clone())));
    }
    link.closed();
}

fn route_datagram(conn: &H3Conn, bytes: Bytes) {
    let Ok(datagram) = h3_datagram::datagram::Datagram::decode(bytes) else {
        return;
    };
    let id = datagram.stream_id().into_inner();
    let tx = conn
        .channels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    if let Some(tx) = tx {
        // A full channel drops the datagram: datagrams are unreliable by contract.
        let _ = tx.try_send(ChannelEvent::Datagram(datagram.into_payload()));
    }
}

/// Whether a request may go in a 0-RTT flight by default (safe, idempotent methods).
fn early_by_default(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Sends `req` over the pool; returns once the response head arrived.
pub(crate) async fn send(pool: &Arc<H3Pool>, mut req: Request) -> Result<StreamResponse> {
    let options = pool.options.clone();
    let mut watchdog = Watchdog::new(
        options.read_timeout,
        req.timeout.or(options.request_timeout),
    );
    let replayable = req.body.try_clone().is_some();
    let early_ok = req
        .early_data
        .unwrap_or_else(|| early_by_default(&req.method));
    let mut avoid = None;
    let mut retries = Retries::default();
    let mut early_replayed = false;
    loop {
        let lease = watchdog
            .guard(&Activity::new(), pool.checkout(avoid))
            .await??;
        let conn = lease.handle().conn.clone();
        let activity = Activity::new();
        if *conn.handshake.borrow() == Handshake::Early && (!early_ok || early_replayed) {
            watchdog.guard(&activity, conn.confirmed()).await?;
        }
        let sent_early = *conn.handshake.borrow() == Handshake::Early;
        let mut head = request_head(&req, &pool.origin, http::Version::HTTP_3)?;
        if sent_early {
            head.headers_mut()
                .insert("early-data", http::HeaderValue::from_static("1"));
        }
        let body = match req.body.try_clone() {
            Some(b) => b,
            None => std::mem::take(&mut req.body),
        };
        let mut sender = conn.sender();
        let opened = watchdog.guard(&activity, sender.send_request(head)).await?;
        let stream = match opened {
            Ok(s) => s,
            Err(e) => {
                let err = map_stream_error(&e, &conn, &pool.origin);
                if matches!(e, StreamError::RemoteClosing) {
                    pool.draining(lease.conn_id());
                }
                if sent_early && !early_replayed && zero_rtt_rejected(&e) {
                    early_replayed = true;
                    req.body = body;
                    continue;
                }
                if retries.before_open(err.kind(), &pool.counters) == Retry::Again {
                    req.body = body;
                    continue;
                }
                return Err(err);
            }
        };
        let (send_half, mut recv) = stream.split();
        let upload_error = Arc::new(OnceLock::new());
        let upload_guard = UploadGuard::spawn(
            pool.runtime(),
            upload(body, send_half, activity.clone(), upload_error.clone()),
        );
        let head = watchdog.guard(&activity, recv.recv_response()).await?;
        match head {
            Ok(resp)
                if resp.status() == http::StatusCode::TOO_EARLY
                    && sent_early
                    && !early_replayed
                    && replayable =>
            {
                // 425: the server wants this request after the handshake.
                early_replayed = true;
                continue;
            }
            Ok(resp) => {
                let (parts, ()) = resp.into_parts();
                let body = H3Body::new(
                    recv,
                    lease,
                    activity,
                    conn,
                    pool.origin.clone(),
                    upload_guard,
                );
                return Ok(StreamResponse::new(
                    parts,
                    ResponseBody::http3(body, watchdog),
                ));
            }
            Err(e) => {
                if let Some(upload) = upload_error.get() {
                    return Err(Error::duplicate(upload));
                }
                let err = map_stream_error(&e, &conn, &pool.origin);
                let conn_id = lease.conn_id();
                drop(lease);
                if sent_early && !early_replayed && replayable && zero_rtt_rejected(&e) {
                    early_replayed = true;
                    continue;
                }
                if err.kind() == ErrorKind::Goaway {
                    pool.draining(conn_id);
                }
                match retries.after_send(err.kind(), replayable, &pool.counters) {
                    Retry::No => return Err(err),
                    Retry::Again => continue,
                    Retry::Elsewhere => {
                        avoid = Some(conn_id);
                        continue;
                    }
                }
            }
        }
    }
}

/// Sends the request body (QUIC flow control paces `send_data`), then finishes the stream.
async fn upload(body: Body, mut send: H3SendHalf, activity: Activity, error: Arc<OnceLock<Error>>) {
    let result: std::result::Result<(), Option<Error>> = async {
        match body {
            Body::Empty => {}
            Body::Bytes(b) => {
                if !b.is_empty() {
                    send.send_data(b).await.map_err(|_| None)?;
                    activity.touch();
                }
            }
            Body::Stream(mut s) => {
                let s: &mut BodyStream = &mut s;
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.map_err(Some)?;
                    if chunk.is_empty() {
                        continue;
                    }
                    send.send_data(chunk).await.map_err(|_| None)?;
                    activity.touch();
                }
            }
        }
        send.finish().await.map_err(|_| None)
    }
    .await;
    if let Err(Some(e)) = result {
        let _ = error.set(e);
        send.stop_stream(Code::H3_REQUEST_CANCELLED);
    }
}

/// True when the error shows the 0-RTT flight was rejected by the server.
fn zero_rtt_rejected(e: &StreamError) -> bool {
    let text = format!("{e:?}");
    text.contains("ZeroRttRejected")
}

/// Maps an h3 stream error to a quiver error (a known reason for closing the connection wins).
pub(crate) fn map_stream_error(e: &StreamError, conn: &H3Conn, origin: &Origin) -> Error {
    if let Some((kind, message)) = conn.close_reason.get() {
        return Error::new(*kind, format!("{origin}: {message}"));
    }
    match e {
        StreamError::RemoteClosing => Error::new(
            ErrorKind::Goaway,
            format!("{origin} sent GOAWAY and did not process the request"),
        ),
        StreamError::RemoteTerminate { code } if *code == Code::H3_REQUEST_REJECTED => {
            if conn.sender().is_closing() {
                Error::new(ErrorKind::Goaway, format!("{origin} sent GOAWAY and rejected the request unprocessed"))
            } else {
                Error::new(ErrorKind::RefusedStream, format!("{origin} rejected the request unprocessed (H3_REQUEST_REJECTED)"))
            }
        }
        StreamError::RemoteTerminate { code } => {
            Error::new(ErrorKind::StreamReset, format!("{origin} reset the stream ({code})"))
        }
        StreamError::HeaderTooBig { actual_size, max_size } => Error::new(
            ErrorKind::HeaderListTooLarge,
            format!("the request's header section is {actual_size} bytes; {origin} accepts at most {max_size} (SETTINGS_MAX_FIELD_SECTION_SIZE)"),
        ),
        StreamError::ConnectionError(c) => map_connection_error(c, origin),
        StreamError::StreamError { code, reason } => {
            Error::new(ErrorKind::Protocol, format!("HTTP/3 stream error with {origin}: {code} {reason}"))
        }
        other => Error::new(ErrorKind::ConnectionClosed, format!("HTTP/3 stream to {origin} failed: {other}")),
    }
}

fn map_connection_error(e: &ConnectionError, origin: &Origin) -> Error {
    match e {
        ConnectionError::Remote(ConnectionErrorIncoming::ApplicationClose { error_code }) => {
            let code = Code::from(*error_code);
            if code == Code::H3_NO_ERROR {
                Error::new(ErrorKind::ConnectionClosed, format!("{origin} closed the HTTP/3 connection"))
            } else {
                Error::new(ErrorKind::Protocol, format!("{origin} closed the HTTP/3 connection: {code}"))
            }
        }
        ConnectionError::Remote(ConnectionErrorIncoming::Timeout) | ConnectionError::Timeout => Error::new(
            ErrorKind::ConnectionClosed,
            format!("the QUIC connection to {origin} timed out (no packets within quic_idle_timeout)"),
        ),
        ConnectionError::Remote(ConnectionErrorIncoming::Undefined(inner)) => {
            match inner.downcast_ref::<quinn::ConnectionError>() {
                Some(q) => map_quinn_error(q, origin),
                None => Error::new(ErrorKind::ConnectionClosed, format!("HTTP/3 connection to {origin} failed: {inner}")),
            }
        }
        other => Error::new(ErrorKind::ConnectionClosed, format!("HTTP/3 connection to {origin} failed: {other:?}")),
    }
}

/// Maps a QUIC connection error, TLS alerts (crypto errors) included.
fn map_quinn_error(e: &quinn::ConnectionError, origin: &Origin) -> Error {
    use quinn::ConnectionError as Q;
    match e {
        Q::TimedOut => Error::new(
            ErrorKind::ConnectionClosed,
            format!("the QUIC connection to {origin} timed out"),
        ),
        Q::Reset => Error::new(
            ErrorKind::ConnectionReset,
            format!("{origin} reset the QUIC connection"),
        ),
        Q::ApplicationClosed(_) => Error::new(
            ErrorKind::ConnectionClosed,
            format!("{origin} closed the connection"),
        ),
        Q::LocallyClosed => Error::new(ErrorKind::Shutdown, "the connection was closed locally"),
        Q::TransportError(t) => transport_error(u64::from(t.code), &t.reason, origin),
        Q::ConnectionClosed(c) => transport_error(
            u64::from(c.error_code),
            &String::from_utf8_lossy(&c.reason),
            origin,
        ),
        other => Error::new(
            ErrorKind::QuicTransport,
            format!("QUIC error with {origin}: {other}"),
        ),
    }
}

/// QUIC transport error codes: 0x100..=0x1ff carry a TLS alert (RFC 9001 §4.8).
fn transport_error(code: u64, reason: &str, origin: &Origin) -> Error {
    if (0x100..=0x1ff).contains(&code) {
        return Error::new(
            ErrorKind::Tls,
            format!(
                "TLS failed with {origin} (QUIC CRYPTO_ERROR 0x{code:x}, TLS alert {}): {reason}",
                code - 0x100
            ),
        );
    }
    Error::new(
        ErrorKind::QuicTransport,
        format!("QUIC transport error 0x{code:x} with {origin}: {reason}"),
    )
}

/// An HTTP/3 response body: h3 reads from QUIC only as the caller pulls, so the stream's
/// receive credit (MAX_STREAM_DATA) follows the consumer.
pub(crate) struct H3Body {
    recv: H3Recv,
    lease: Option<StreamLease<H3Handle>>,
    activity: Activity,
    conn: Arc<H3Conn>,
    origin: Origin,
    _upload: UploadGuard,
    data_done: bool,
}

impl H3Body {
    fn new(
        recv: H3Recv,
        lease: StreamLease<H3Handle>,
        activity: Activity,
        conn: Arc<H3Conn>,
        origin: Origin,
        upload: UploadGuard,
    ) -> H3Body {
        H3Body {
            recv,
            lease: Some(lease),
            activity,
            conn,
            origin,
            _upload: upload,
            data_done: false,
        }
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>>>> {
        if !self.data_done {
            match self.recv.poll_recv_data(cx) {
                Poll::Ready(Ok(Some(mut buf))) => {
                    self.activity.touch();
                    let data = buf.copy_to_bytes(buf.remaining());
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Poll::Ready(Ok(None)) => self.data_done = true,
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Some(Err(map_stream_error(&e, &self.conn, &self.origin))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        match self.recv.poll_recv_trailers(cx) {
            Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(http_body::Frame::trailers(t)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => {
                Poll::Ready(Some(Err(map_stream_error(&e, &self.conn, &self.origin))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The stream ended (or failed): free its slot.
    pub(crate) fn finish(&mut self) {
        self.lease = None;
    }
}

/// Opens a datagram channel: an extended CONNECT on a pooled connection, registered for the
/// connection's datagrams before the response arrives (a datagram may precede the 200).
pub(crate) async fn open_channel(
    pool: &Arc<H3Pool>,
    req: Request,
    options: crate::datagram::DatagramOptions,
) -> Result<crate::datagram::DatagramChannel> {
    let protocol = match options.protocol.as_str() {
        "connect-udp" => h3::ext::Protocol::CONNECT_UDP,
        "webtransport" => h3::ext::Protocol::WEB_TRANSPORT,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidHeader,
                format!("extended CONNECT protocol `{other}` is not supported over HTTP/3 (connect-udp, webtransport)"),
            ))
        }
    };
    let limits = pool.options.clone();
    let mut watchdog = Watchdog::new(
        limits.read_timeout,
        req.timeout
            .or(Some(limits.connect_timeout + limits.read_timeout)),
    );
    let lease = watchdog
        .guard(&Activity::new(), pool.checkout(None))
        .await??;
    let conn = lease.handle().conn.clone();
    let activity = Activity::new();
    watchdog.guard(&activity, conn.confirmed()).await?;
    let mut head = request_head(&req, &pool.origin, http::Version::HTTP_3)?;
    head.extensions_mut().insert(protocol);
    head.headers_mut()
        .insert("capsule-protocol", http::HeaderValue::from_static("?1"));
    let mut sender = conn.sender();
    let stream = watchdog
        .guard(&activity, sender.send_request(head))
        .await?
        .map_err(|e| map_stream_error(&e, &conn, &pool.origin))?;
    let stream_id = stream.id().into_inner();
    let (tx, rx) = mpsc::channel(options.queue.clamp(16, 65_536));
    conn.channels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(stream_id, tx.clone());
    let unregister = |conn: &H3Conn| {
        conn.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&stream_id);
    };
    let (send, mut recv) = stream.split();
    let response = match watchdog.guard(&activity, recv.recv_response()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            unregister(&conn);
            return Err(map_stream_error(&e, &conn, &pool.origin));
        }
        Err(e) => {
            unregister(&conn);
            return Err(e);
        }
    };
    if conn.peer_datagrams_within(limits.read_timeout).await != Some(true) {
        unregister(&conn);
        return Err(Error::new(
            ErrorKind::DatagramsDisabled,
            format!(
                "{} did not enable HTTP/3 datagrams (SETTINGS_H3_DATAGRAM)",
                pool.origin
            ),
        ));
    }
    if !response.status().is_success() {
        unregister(&conn);
        return Err(Error::new(
            ErrorKind::DatagramError,
            format!(
                "{} answered the extended CONNECT with {}",
                pool.origin,
                response.status()
            ),
        ));
    }
    let reader_conn = conn.clone();
    pool.runtime().spawn(async move {
        let event = loop {
            match recv.recv_data().await {
                Ok(Some(mut buf)) => {
                    let data = buf.copy_to_bytes(buf.remaining());
                    if tx.send(ChannelEvent::Data(data)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => match recv.recv_trailers().await {
                    Ok(Some(t)) => {
                        let _ = tx.send(ChannelEvent::Trailers(t)).await;
                        break ChannelEvent::End;
                    }
                    Ok(None) => break ChannelEvent::End,
                    Err(e) => {
                        break ChannelEvent::Failed(map_stream_error(
                            &e,
                            &reader_conn,
                            &reader_conn.origin,
                        ))
                    }
                },
                Err(e) => {
                    break ChannelEvent::Failed(map_stream_error(
                        &e,
                        &reader_conn,
                        &reader_conn.origin,
                    ))
                }
            }
        };
        let _ = tx.send(event).await;
    });
    let (parts, ()) = response.into_parts();
    Ok(crate::datagram::DatagramChannel::new(
        parts.into(),
        conn,
        stream_id,
        send,
        rx,
        options.queue,
        lease,
    ))
}
