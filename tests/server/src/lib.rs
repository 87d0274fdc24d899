//! Quiver's loopback test server.
//!
//! One [`TestServer`] runs many listeners, most on one port bound on both `127.0.0.1` and
//! `[::1]`: over TCP `http` (HTTP/1.1), `https` (HTTP/1.1 or HTTP/2 over TLS, by ALPN), `mtls`
//! (TLS requiring a client certificate), `idle_close` (HTTP/1.1 closing connections idle for
//! 200 ms), `raw` (hand-written answers for fault injection) and `h2c` (HTTP/2 with prior
//! knowledge); over UDP `h3` (HTTP/3, accepting 0-RTT) and `h3_reject_early` (HTTP/3, resuming
//! `h3`'s sessions but rejecting 0-RTT). A forward proxy listens too: `proxy` (HTTP/1.1),
//! `proxy_tls` (HTTP/1.1 or HTTP/2 over TLS) and `proxy_h3` (HTTP/3, CONNECT-UDP), with
//! `udp_echo` (plain UDP) as a UDP target. Two SOCKS5 proxies listen as well: `socks5` (no
//! authentication) and `socks5_auth` (username/password). `https_alt` and `https_alt_blocked` are
//! `https` with an `alt-svc` naming `h3`, or `udp_blackhole` (a UDP port swallowing everything);
//! `blackhole` answers HTTP/1.1 on `127.0.0.1` but hangs connects to `127.0.0.2` and `[::1]`.
//! `dns` (UDP, 127.0.0.1) answers HTTPS resource record queries for `quiver.test` origins.
//! Two Unix sockets in [`TestServer::dir`] serve HTTP/1.1 (`http.sock`) and h2c (`h2c.sock`).
//! `second` (HTTP/1.1) and `second_tls` (like `https`) serve the same endpoints on other ports:
//! a second origin, for cross-origin redirects and cookies.
//! The endpoints, the proxies and the certificates are described in the crate's README;
//! [`H2Options`] shape the HTTP/2 side, [`H3Options`] the HTTP/3 side, [`ProxyOptions`] the
//! HTTP proxy.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = quiver_testserver::TestServer::start(quiver_testserver::Options::default()).await?;
//! let url = server.http_url("/health"); // "http://127.0.0.1:PORT/health"
//! let stats = server.stats();
//! # let _ = (url, stats);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod auth;
mod blackhole;
mod body;
mod certs;
mod coding;
mod dns;
mod endpoints;
mod h1;
pub mod h2o;
pub mod hostile;
pub mod hypercorn;

mod http2;
mod http3;
mod listen;
mod multipart;
pub mod nginx;
mod peer;
mod proxy;
mod raw;
pub mod scenarios;
mod socks;
mod stats;
mod unix;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use proxy::h2::HOSTILE_CAPSULE_PORT;
pub use proxy::PROXY_AUTHORIZATION;
pub use socks::{SOCKS5_PASSWORD, SOCKS5_USERNAME};
pub use stats::Stats;

/// The first `len` bytes of the pattern every generated body (`/bytes/{n}`, the static files of
/// the nginx and h2o launchers) is made of: `b'a' + (i % 26)` at offset `i`. For checking
/// what a client received.
pub fn pattern(len: usize) -> Vec<u8> {
    body::pattern_chunk(0, len).to_vec()
}

use certs::Pki;
use endpoints::ConnCtx;
use proxy::ProxyCtx;
use stats::Counters;

/// How long a connection on the `idle_close` listener may wait for its next request.
pub const IDLE_CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Start-up options of a [`TestServer`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where to write the certificates. `None`: a fresh folder under [`std::env::temp_dir`],
    /// removed when the server is dropped.
    pub dir: Option<PathBuf>,
    /// The HTTP/2 side (`https` after ALPN `h2`, and `h2c`).
    pub h2: H2Options,
    /// The HTTP/3 side (`h3` and `h3_reject_early`).
    pub h3: H3Options,
    /// The forward proxy (`proxy`, `proxy_tls`, `proxy_h3`).
    pub proxy: ProxyOptions,
}

/// How the forward proxy behaves (on `proxy`, `proxy_tls` and `proxy_h3`).
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// How long the proxy waits before dialing for each CONNECT (TCP tunnels and CONNECT-UDP,
    /// on every proxy listener), once the request passed its checks (the refusals, 407, 400,
    /// 404 and 403, answer at once): a slow proxy. Forwarded requests are not delayed. Default
    /// zero.
    pub dial_delay: Duration,
}

/// How the server speaks HTTP/2 (on `https` connections that negotiate `h2`, and on `h2c`).
/// The same for every HTTP/2 connection; counts ("the N-th stream") are per connection.
#[derive(Debug, Clone)]
pub struct H2Options {
    /// SETTINGS_MAX_CONCURRENT_STREAMS announced to clients. Default 100.
    pub max_concurrent_streams: u32,
    /// The server's initial stream receive window (SETTINGS_INITIAL_WINDOW_SIZE): how much a
    /// client may upload on one stream before the endpoint consumes it. Default 1 MiB; capped
    /// at 2^31-1.
    pub stream_window: u32,
    /// The server's connection receive window (raised with a WINDOW_UPDATE after the
    /// handshake; HTTP/2 starts every connection at 65,535). Default 4 MiB; capped at 2^31-1.
    pub connection_window: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE announced to clients. h2 enforces it without an endpoint
    /// seeing the request: over it, a 431 answer and a reset stream; over four times it, a
    /// GOAWAY (`ENHANCE_YOUR_CALM`) ending the connection. Default `None` (not announced; h2's
    /// own 16 MiB limit applies).
    pub max_header_list_size: Option<u32>,
    /// After accepting this many streams on a connection, send GOAWAY whose last-stream-id is
    /// the N-th stream, serve the accepted streams to the end, then close. Streams the client
    /// opened beyond the N-th are not processed (the client learns it from the GOAWAY).
    /// `Some(0)`: GOAWAY with last-stream-id 0 right after the handshake. Default `None`.
    pub goaway_after: Option<u64>,
    /// Reset every K-th stream of a connection (K, 2K, ...) with `REFUSED_STREAM` before it
    /// reaches an endpoint. `Some(0)` is the same as `None`. Default `None`.
    pub refuse_every: Option<u64>,
}

impl Default for H2Options {
    fn default() -> Self {
        H2Options {
            max_concurrent_streams: 100,
            stream_window: 1 << 20,
            connection_window: 4 << 20,
            max_header_list_size: None,
            goaway_after: None,
            refuse_every: None,
        }
    }
}

/// How the server speaks HTTP/3 (on `h3` and `h3_reject_early`). The same for every HTTP/3
/// connection; counts ("the N-th stream") are per connection.
#[derive(Debug, Clone)]
pub struct H3Options {
    /// How many bidirectional (request) streams a client may have open at once
    /// (`initial_max_streams_bidi`, kept topped up by quinn). Default 100.
    pub max_concurrent_streams: u32,
    /// The QUIC stream receive window: how much a client may upload on one stream before the
    /// endpoint reads it. Default 1 MiB; capped at 2^62-1.
    pub stream_window: u64,
    /// The QUIC connection receive window, over all streams. Default 4 MiB; capped at 2^62-1.
    pub connection_window: u64,
    /// After accepting this many request streams on a connection, send GOAWAY naming the
    /// stream after the N-th: the streams the client opened from there on are reset with
    /// `H3_REQUEST_REJECTED` (never processed), the accepted ones are served to the end, then
    /// the connection closes. `Some(0)`: GOAWAY(0) right after the HTTP/3 set-up, every request
    /// rejected. Default `None`.
    pub goaway_after: Option<u64>,
    /// Advertise HTTP/3 datagrams (SETTINGS_H3_DATAGRAM, the QUIC `max_datagram_frame_size`
    /// transport parameter) and extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL), and serve
    /// `/datagram-echo`. Off: none of them, and `/datagram-echo` answers 400. Default `true`.
    pub datagrams: bool,
    /// Simulated network latency on receive: every UDP datagram the listeners' QUIC endpoints
    /// receive reaches quinn only this long after it arrived (in order, none dropped; sends are
    /// not delayed). Each round trip then takes at least this long, so a client's 0-RTT flight
    /// (the requests it sends until its handshake completes) reliably arrives before the server
    /// can complete the handshake, which on bare loopback takes microseconds. Default zero
    /// (the plain socket).
    pub latency: Duration,
}

impl Default for H3Options {
    fn default() -> Self {
        H3Options {
            max_concurrent_streams: 100,
            stream_window: 1 << 20,
            connection_window: 4 << 20,
            goaway_after: None,
            datagrams: true,
            latency: Duration::ZERO,
        }
    }
}

/// A running test server. Dropping it (or [`TestServer::shutdown`]) stops the listeners and
/// closes every open connection.
#[derive(Debug)]
pub struct TestServer {
    http: u16,
    https: u16,
    mtls: u16,
    raw: u16,
    idle_close: u16,
    h2c: u16,
    h3: u16,
    h3_reject_early: u16,
    proxy: u16,
    proxy_tls: u16,
    proxy_h3: u16,
    udp_echo: u16,
    blackhole: u16,
    blackhole_has_v6: bool,
    /// The black-holed listeners and the connections filling their queues.
    _blackhole_held: blackhole::Held,
    udp_blackhole: u16,
    socks5: u16,
    socks5_auth: u16,
    https_alt: u16,
    https_alt_blocked: u16,
    dns: u16,
    second: u16,
    second_tls: u16,
    unix_http: PathBuf,
    unix_h2c: PathBuf,
    /// The hostile listeners' ports, by mode.
    hostile_h2: Vec<(hostile::H2Mode, u16)>,
    hostile_h3: Vec<(hostile::H3Mode, u16)>,
    has_ipv6: bool,
    dir: PathBuf,
    owns_dir: bool,
    ca_file: PathBuf,
    wrong_ca_file: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server_cert: PathBuf,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
    /// The QUIC endpoints (one per UDP socket), closed on shutdown.
    endpoints: Vec<quinn::Endpoint>,
    shutdown: watch::Sender<bool>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TestServer>();
};

/// How a listener serves its connections.
#[derive(Clone)]
enum Transport {
    /// HTTP/1.1 cleartext, with the idle timeout of the `idle_close` listener if any.
    Http(Option<Duration>),
    /// TLS, then HTTP/2 if ALPN chose `h2`, HTTP/1.1 otherwise; every response carries the
    /// `alt-svc` value if any (`https_alt`, `https_alt_blocked`).
    Tls(TlsAcceptor, Option<HeaderValue>),
    /// The hand-written `raw` answers.
    Raw,
    /// HTTP/2 with prior knowledge.
    H2c,
    /// The forward proxy over HTTP/1.1.
    Proxy,
    /// The forward proxy over TLS: HTTP/2 if ALPN chose `h2`, HTTP/1.1 otherwise.
    ProxyTls(TlsAcceptor),
    /// A hostile HTTP/2 peer (h2c prior knowledge).
    Hostile(hostile::H2Mode),
    /// The SOCKS5 proxy.
    Socks(socks::SocksAuth),
}

impl Transport {
    fn is_proxy(&self) -> bool {
        matches!(self, Transport::Proxy | Transport::ProxyTls(_))
    }
}

/// State shared by every listener of one server.
struct Shared {
    counters: Arc<Counters>,
    next_conn_id: AtomicU64,
    h2: H2Options,
    h3: H3Options,
    proxy: Arc<ProxyCtx>,
}

/// The JSON line the binary prints.
#[derive(Serialize)]
struct Announcement {
    http: u16,
    https: u16,
    mtls: u16,
    raw: u16,
    idle_close: u16,
    h2c: u16,
    h3: u16,
    h3_reject_early: u16,
    proxy: u16,
    proxy_tls: u16,
    proxy_h3: u16,
    udp_echo: u16,
    blackhole: u16,
    blackhole_has_v6: bool,
    udp_blackhole: u16,
    socks5: u16,
    socks5_auth: u16,
    https_alt: u16,
    https_alt_blocked: u16,
    dns: u16,
    second: u16,
    second_tls: u16,
    unix_http: String,
    unix_h2c: String,
    ca_file: String,
    client_cert: String,
    client_key: String,
    wrong_ca_file: String,
}

fn fresh_temp_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "quiver-testserver-{}-{nanos}-{n}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The TLS handshake of a connection, `None` when it fails or takes too long.
async fn tls_handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let accepted = tokio::time::timeout(
        TLS_HANDSHAKE_TIMEOUT,
        acceptor.accept(stream).into_fallible(),
    )
    .await;
    match accepted {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err((_, mut tcp))) => {
            // A failed handshake (say, mTLS without a client certificate): close
            // gracefully, so the client reads our alert instead of a reset caused by
            // its own unread request bytes.
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tcp.shutdown().await;
            let mut sink = [0u8; 4096];
            let drain = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
            let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
            None
        }
        Err(_) => None,
    }
}

async fn serve_connection(stream: TcpStream, transport: Transport, shared: &Shared) {
    let peer = stream.peer_addr().ok();
    let counters = Arc::clone(&shared.counters);
    let next_conn_id = || shared.next_conn_id.fetch_add(1, Ordering::SeqCst);
    let h1_conn = |conn_id| Arc::new(ConnCtx::new(conn_id, peer));
    match transport {
        Transport::Http(idle) => h1::serve(stream, h1_conn(next_conn_id()), counters, idle).await,
        Transport::Tls(acceptor, alt_svc) => {
            let conn_id = next_conn_id();
            let Some(tls) = tls_handshake(acceptor, stream).await else {
                return;
            };
            if tls.get_ref().1.alpn_protocol() == Some(certs::ALPN_H2) {
                http2::serve(
                    tls,
                    conn_id,
                    peer,
                    counters,
                    shared.h2.clone(),
                    alt_svc,
                    true,
                )
                .await;
            } else {
                let conn = Arc::new(
                    ConnCtx::new(conn_id, peer)
                        .with_alt_svc(alt_svc)
                        .with_secure(true),
                );
                h1::serve(tls, conn, counters, None).await;
            }
        }
        Transport::Raw => raw::serve(stream, &counters).await,
        Transport::H2c => {
            http2::serve(
                stream,
                next_conn_id(),
                peer,
                counters,
                shared.h2.clone(),
                None,
                false,
            )
            .await;
        }
        Transport::Socks(auth) => socks::serve(stream, auth, &counters).await,
        Transport::Proxy => proxy::h1::serve(stream, Arc::clone(&shared.proxy)).await,
        Transport::Hostile(mode) => hostile::serve_h2(stream, mode).await,
        Transport::ProxyTls(acceptor) => {
            let Some(tls) = tls_handshake(acceptor, stream).await else {
                return;
            };
            let proxy = Arc::clone(&shared.proxy);
            if tls.get_ref().1.alpn_protocol() == Some(certs::ALPN_H2) {
                proxy::h2::serve(tls, proxy).await;
            } else {
                proxy::h1::serve(tls, proxy).await;
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or an aborted handshake: back off a little and go on.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Proxy connections are counted apart (`proxy_connections`, `socks_connections`), not
        // in `accepted`/`open`.
        let open = if transport.is_proxy() {
            shared.counters.on_proxy_connection();
            None
        } else if matches!(transport, Transport::Socks(_)) {
            shared.counters.on_socks_connection();
            None
        } else {
            Some(shared.counters.on_accept())
        };
        let shared = Arc::clone(&shared);
        let transport = transport.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _open = open;
            tokio::select! {
                () = serve_connection(stream, transport, &shared) => {}
                // Fires on shutdown, and also when the server (the sender) is gone.
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

async fn quic_accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let open = shared.counters.on_accept();
        let shared = Arc::clone(&shared);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _open = open;
            let conn_id = shared.next_conn_id.fetch_add(1, Ordering::SeqCst);
            let counters = Arc::clone(&shared.counters);
            tokio::select! {
                () = http3::serve(incoming, conn_id, counters, shared.h3.clone()) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

async fn proxy_quic_accept_loop(
    endpoint: quinn::Endpoint,
    ctx: Arc<ProxyCtx>,
    shutdown: watch::Receiver<bool>,
) {
    while let Some(incoming) = endpoint.accept().await {
        ctx.counters.on_proxy_connection();
        let ctx = Arc::clone(&ctx);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = proxy::h3::serve(incoming, ctx) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

/// One QUIC endpoint per socket of `sockets`, all serving `config`, receiving with `latency`
/// (see [`H3Options::latency`]).
fn quic_endpoints(
    sockets: listen::DualUdp,
    config: &quinn::ServerConfig,
    latency: Duration,
) -> io::Result<Vec<quinn::Endpoint>> {
    sockets
        .into_sockets()
        .map(|socket| {
            socket.set_nonblocking(true)?;
            let runtime: Arc<dyn quinn::Runtime> = Arc::new(quinn::TokioRuntime);
            let mut socket = runtime.wrap_udp_socket(socket)?;
            if !latency.is_zero() {
                socket = Arc::new(http3::latency::DelayedRecv::new(socket, latency));
            }
            quinn::Endpoint::new_with_abstract_socket(
                quinn::EndpointConfig::default(),
                Some(config.clone()),
                socket,
                runtime,
            )
        })
        .collect()
}

impl TestServer {
    /// Generates the certificates, binds every listener and starts serving on the current tokio
    /// runtime. Returns once everything is bound.
    pub async fn start(options: Options) -> io::Result<TestServer> {
        let (dir, owns_dir) = match options.dir {
            Some(dir) => (dir, false),
            None => (fresh_temp_dir()?, true),
        };
        let pki = Pki::generate(&dir)?;
        let https = TlsAcceptor::from(pki.https_config()?);
        let mtls = TlsAcceptor::from(pki.mtls_config()?);
        let proxy_tls = TlsAcceptor::from(pki.https_config()?);

        let has_ipv6 = listen::ipv6_available().await;
        // The UDP ports first: the `alt-svc` of `https_alt` and `https_alt_blocked` name them.
        let h3_sockets = listen::bind_dual_udp(has_ipv6)?;
        let udp_blackhole = listen::bind_dual_udp(has_ipv6)?;
        let (h3_port, udp_blackhole_port) = (h3_sockets.port, udp_blackhole.port);
        let alt_svc = |port: u16| HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400")).ok();
        let https_alt = TlsAcceptor::from(pki.https_config()?);
        let second_tls = TlsAcceptor::from(pki.https_config()?);

        let mut bound = Vec::new();
        for transport in [
            Transport::Http(None),
            Transport::Tls(https, None),
            Transport::Tls(mtls, None),
            Transport::Raw,
            Transport::Http(Some(IDLE_CLOSE_TIMEOUT)),
            Transport::H2c,
            Transport::Proxy,
            Transport::ProxyTls(proxy_tls),
            Transport::Socks(socks::SocksAuth::None),
            Transport::Socks(socks::SocksAuth::Password),
            Transport::Tls(https_alt.clone(), alt_svc(h3_port)),
            Transport::Tls(https_alt, alt_svc(udp_blackhole_port)),
            Transport::Http(None),
            Transport::Tls(second_tls, None),
        ] {
            bound.push((listen::bind_dual(has_ipv6).await?, transport));
        }
        let ports: Vec<u16> = bound.iter().map(|(l, _)| l.port).collect();
        let blackhole = blackhole::bind(has_ipv6).await?;
        let blackhole_port = blackhole.port;
        let blackhole_has_v6 = blackhole.has_v6;
        let blackhole_held = blackhole.held;
        bound.push((
            listen::DualListener {
                port: blackhole_port,
                v4: blackhole.open,
                v6: None,
            },
            Transport::Http(None),
        ));
        let (unix_http_listener, unix_http) = unix::bind(&pki.dir, unix::HTTP_SOCKET)?;
        let (unix_h2c_listener, unix_h2c) = unix::bind(&pki.dir, unix::H2C_SOCKET)?;
        let mut hostile_h2 = Vec::new();
        for mode in [
            hostile::H2Mode::HeaderFlood,
            hostile::H2Mode::UppercaseHeader,
            hostile::H2Mode::OversizedFrame,
        ] {
            let listener = listen::bind_dual(false).await?;
            hostile_h2.push((mode, listener.port));
            bound.push((listener, Transport::Hostile(mode)));
        }

        let h3_tls = pki.h3_configs()?;
        let h3_reject_sockets = listen::bind_dual_udp(has_ipv6)?;
        let h3_reject_port = h3_reject_sockets.port;
        let mut endpoints = quic_endpoints(
            h3_sockets,
            &http3::server_config(h3_tls.early.clone(), &options.h3)?,
            options.h3.latency,
        )?;
        endpoints.extend(quic_endpoints(
            h3_reject_sockets,
            &http3::server_config(h3_tls.reject_early, &options.h3)?,
            options.h3.latency,
        )?);
        let proxy_h3_sockets = listen::bind_dual_udp(has_ipv6)?;
        let proxy_h3_port = proxy_h3_sockets.port;
        let proxy_endpoints = quic_endpoints(
            proxy_h3_sockets,
            &proxy::h3::server_config(pki.proxy_h3_config()?)?,
            Duration::ZERO,
        )?;
        let udp_echo = listen::bind_dual_udp(has_ipv6)?;
        let udp_echo_port = udp_echo.port;
        let mut hostile_h3 = Vec::new();
        let mut hostile_endpoints = Vec::new();
        for mode in [
            hostile::H3Mode::RequestStreamUnknownFrame,
            hostile::H3Mode::ControlStreamUnknownFrame,
            hostile::H3Mode::HugeHeadersFrame,
            hostile::H3Mode::FewUniStreams,
            hostile::H3Mode::ShortBody,
            hostile::H3Mode::LongBody,
        ] {
            let sockets = listen::bind_dual_udp(false)?;
            hostile_h3.push((mode, sockets.port));
            let config = hostile::h3_server_config(h3_tls.early.clone(), mode)?;
            for endpoint in quic_endpoints(sockets, &config, Duration::ZERO)? {
                hostile_endpoints.push((endpoint, mode));
            }
        }

        let counters = Arc::new(Counters::default());
        let proxy = Arc::new(ProxyCtx {
            counters: Arc::clone(&counters),
            dial_delay: options.proxy.dial_delay,
        });
        let shared = Arc::new(Shared {
            counters: Arc::clone(&counters),
            next_conn_id: AtomicU64::new(1),
            h2: options.h2,
            h3: options.h3,
            proxy: Arc::clone(&proxy),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (listener, transport) in bound {
            for socket in listener.into_listeners() {
                tasks.push(tokio::spawn(accept_loop(
                    socket,
                    transport.clone(),
                    Arc::clone(&shared),
                    shutdown_rx.clone(),
                )));
            }
        }
        for endpoint in &endpoints {
            tasks.push(tokio::spawn(quic_accept_loop(
                endpoint.clone(),
                Arc::clone(&shared),
                shutdown_rx.clone(),
            )));
        }
        for endpoint in &proxy_endpoints {
            tasks.push(tokio::spawn(proxy_quic_accept_loop(
                endpoint.clone(),
                Arc::clone(&proxy),
                shutdown_rx.clone(),
            )));
        }
        endpoints.extend(proxy_endpoints);
        for (endpoint, mode) in hostile_endpoints {
            let mut shutdown = shutdown_rx.clone();
            let accept = endpoint.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        incoming = accept.accept() => match incoming {
                            Some(incoming) => drop(tokio::spawn(hostile::serve_h3(incoming, mode))),
                            None => break,
                        },
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                }
            }));
            endpoints.push(endpoint);
        }
        for socket in udp_echo.into_sockets() {
            tasks.push(tokio::spawn(proxy::udp::echo(
                socket,
                Arc::clone(&counters),
            )));
        }
        // The DNS listener: HTTPS records for `quiver.test` origins (the `https` and
        // `https_alt_blocked` listeners) naming the HTTP/3 port or the UDP black hole.
        let dns_socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        dns_socket.set_nonblocking(true)?;
        let dns_port = dns_socket.local_addr()?.port();
        tasks.push(tokio::spawn(dns::serve(
            dns_socket,
            dns::Zone {
                services: vec![(ports[1], h3_port), (ports[11], udp_blackhole_port)],
            },
            Arc::clone(&counters),
        )));
        for socket in udp_blackhole.into_sockets() {
            tasks.push(tokio::spawn(blackhole::discard(
                socket,
                Arc::clone(&counters),
            )));
        }
        for (listener, kind) in [
            (unix_http_listener, unix::UnixKind::Http),
            (unix_h2c_listener, unix::UnixKind::H2c),
        ] {
            tasks.push(tokio::spawn(unix::accept_loop(
                listener,
                kind,
                Arc::clone(&shared),
                shutdown_rx.clone(),
            )));
        }

        Ok(TestServer {
            http: ports[0],
            https: ports[1],
            mtls: ports[2],
            raw: ports[3],
            idle_close: ports[4],
            h2c: ports[5],
            h3: h3_port,
            h3_reject_early: h3_reject_port,
            proxy: ports[6],
            proxy_tls: ports[7],
            proxy_h3: proxy_h3_port,
            udp_echo: udp_echo_port,
            blackhole: blackhole_port,
            blackhole_has_v6,
            _blackhole_held: blackhole_held,
            udp_blackhole: udp_blackhole_port,
            socks5: ports[8],
            socks5_auth: ports[9],
            https_alt: ports[10],
            https_alt_blocked: ports[11],
            dns: dns_port,
            second: ports[12],
            second_tls: ports[13],
            unix_http,
            unix_h2c,
            hostile_h2,
            hostile_h3,
            has_ipv6,
            ca_file: pki.dir.join(certs::CA_FILE),
            wrong_ca_file: pki.dir.join(certs::WRONG_CA_FILE),
            client_cert: pki.dir.join(certs::CLIENT_CERT_FILE),
            client_key: pki.dir.join(certs::CLIENT_KEY_FILE),
            server_cert: pki.dir.join(certs::SERVER_CERT_FILE),
            dir: pki.dir,
            owns_dir,
            counters,
            tasks,
            endpoints,
            shutdown,
        })
    }

    fn url(scheme: &str, host: &str, port: u16, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{host}:{port}{slash}{path}")
    }

    /// `http://127.0.0.1:PORT{path}` on the hostile HTTP/2 listener of `mode` (h2c).
    pub fn hostile_h2_url(&self, mode: hostile::H2Mode, path: &str) -> String {
        let port = self
            .hostile_h2
            .iter()
            .find(|(m, _)| *m == mode)
            .map_or(0, |(_, p)| *p);
        Self::url("http", "127.0.0.1", port, path)
    }

    /// `https://localhost:PORT{path}` on the hostile HTTP/3 listener of `mode`.
    pub fn hostile_h3_url(&self, mode: hostile::H3Mode, path: &str) -> String {
        let port = self
            .hostile_h3
            .iter()
            .find(|(m, _)| *m == mode)
            .map_or(0, |(_, p)| *p);
        Self::url("https", "localhost", port, path)
    }

    /// `http://127.0.0.1:PORT{path}` on the `http` listener.
    pub fn http_url(&self, path: &str) -> String {
        Self::url("http", "127.0.0.1", self.http, path)
    }

    /// `http://[::1]:PORT{path}` on the `http` listener (see [`TestServer::has_ipv6`]).
    pub fn http_url_v6(&self, path: &str) -> String {
        Self::url("http", "[::1]", self.http, path)
    }

    /// `https://localhost:PORT{path}` on the `https` listener.
    pub fn https_url(&self, path: &str) -> String {
        Self::url("https", "localhost", self.https, path)
    }

    /// `https://localhost:PORT{path}` on the `mtls` listener.
    pub fn mtls_url(&self, path: &str) -> String {
        Self::url("https", "localhost", self.mtls, path)
    }

    /// `http://127.0.0.1:PORT{path}` on the `raw` listener.
    pub fn raw_url(&self, path: &str) -> String {
        Self::url("http", "127.0.0.1", self.raw, path)
    }

    /// `http://127.0.0.1:PORT{path}` on the `idle_close` listener.
    pub fn idle_close_url(&self, path: &str) -> String {
        Self::url("http", "127.0.0.1", self.idle_close, path)
    }

    /// `http://127.0.0.1:PORT{path}` on the `h2c` listener (HTTP/2 with prior knowledge).
    pub fn h2c_url(&self, path: &str) -> String {
        Self::url("http", "127.0.0.1", self.h2c, path)
    }

    /// `https://localhost:PORT{path}` on the `h3` listener (HTTP/3 over UDP, accepts 0-RTT).
    pub fn h3_url(&self, path: &str) -> String {
        Self::url("https", "localhost", self.h3, path)
    }

    /// `https://localhost:PORT{path}` on the `h3_reject_early` listener (HTTP/3 over UDP,
    /// resumes `h3`'s sessions, rejects 0-RTT).
    pub fn h3_reject_early_url(&self, path: &str) -> String {
        Self::url("https", "localhost", self.h3_reject_early, path)
    }

    /// `http://127.0.0.1:PORT` of the `proxy` listener (the forward proxy over HTTP/1.1).
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy)
    }

    /// `https://localhost:PORT` of the `proxy_tls` listener (the forward proxy over TLS:
    /// HTTP/1.1 or HTTP/2, by ALPN).
    pub fn proxy_tls_url(&self) -> String {
        format!("https://localhost:{}", self.proxy_tls)
    }

    /// `https://localhost:PORT` of the `proxy_h3` listener (the forward proxy over HTTP/3:
    /// CONNECT-UDP; a UDP port).
    pub fn proxy_h3_url(&self) -> String {
        format!("https://localhost:{}", self.proxy_h3)
    }

    /// `127.0.0.1:PORT` of the `udp_echo` listener (it also listens on `[::1]`, same port, when
    /// [`TestServer::has_ipv6`]).
    pub fn udp_echo_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.udp_echo))
    }

    /// The port of the `http` listener.
    pub fn http_port(&self) -> u16 {
        self.http
    }

    /// The port of the `https` listener.
    pub fn https_port(&self) -> u16 {
        self.https
    }

    /// The port of the `mtls` listener.
    pub fn mtls_port(&self) -> u16 {
        self.mtls
    }

    /// The port of the `raw` listener.
    pub fn raw_port(&self) -> u16 {
        self.raw
    }

    /// The port of the `idle_close` listener.
    pub fn idle_close_port(&self) -> u16 {
        self.idle_close
    }

    /// The port of the `h2c` listener.
    pub fn h2c_port(&self) -> u16 {
        self.h2c
    }

    /// The UDP port of the `h3` listener.
    pub fn h3_port(&self) -> u16 {
        self.h3
    }

    /// The UDP port of the `h3_reject_early` listener.
    pub fn h3_reject_early_port(&self) -> u16 {
        self.h3_reject_early
    }

    /// The port of the `proxy` listener.
    pub fn proxy_port(&self) -> u16 {
        self.proxy
    }

    /// The port of the `proxy_tls` listener.
    pub fn proxy_tls_port(&self) -> u16 {
        self.proxy_tls
    }

    /// The UDP port of the `proxy_h3` listener.
    pub fn proxy_h3_port(&self) -> u16 {
        self.proxy_h3
    }

    /// The UDP port of the `udp_echo` listener.
    pub fn udp_echo_port(&self) -> u16 {
        self.udp_echo
    }

    /// The port of the `blackhole` listener: `127.0.0.1:PORT` serves HTTP/1.1 like `http`, while
    /// a connect to `127.0.0.2:PORT` (and to `[::1]:PORT` when [`TestServer::blackhole_has_v6`])
    /// hangs: its SYNs go unanswered. For Happy Eyeballs tests.
    pub fn blackhole_port(&self) -> u16 {
        self.blackhole
    }

    /// Whether `[::1]:PORT` of the `blackhole` listener is black-holed (false on hosts without
    /// an IPv6 loopback, where nothing listens there).
    pub fn blackhole_has_v6(&self) -> bool {
        self.blackhole_has_v6
    }

    /// The UDP port of the `udp_blackhole` listener (on `127.0.0.1`, and `[::1]` when
    /// [`TestServer::has_ipv6`]): every datagram is read and dropped, nothing is ever sent back
    /// (no ICMP either). "UDP blocked" for HTTP/3.
    pub fn udp_blackhole_port(&self) -> u16 {
        self.udp_blackhole
    }

    /// The port of the `socks5` listener (SOCKS5 without authentication).
    pub fn socks5_port(&self) -> u16 {
        self.socks5
    }

    /// The port of the `socks5_auth` listener (SOCKS5 with username/password
    /// [`SOCKS5_USERNAME`] / [`SOCKS5_PASSWORD`]).
    pub fn socks5_auth_port(&self) -> u16 {
        self.socks5_auth
    }

    /// The port of the `https_alt` listener: like `https`, every response carrying
    /// `alt-svc: h3=":H3_PORT"; ma=86400` (the `h3` listener's port).
    pub fn https_alt_port(&self) -> u16 {
        self.https_alt
    }

    /// The port of the `https_alt_blocked` listener: like `https`, every response carrying
    /// `alt-svc: h3=":PORT"; ma=86400` naming the `udp_blackhole` port.
    pub fn https_alt_blocked_port(&self) -> u16 {
        self.https_alt_blocked
    }

    /// The UDP port (127.0.0.1) of the `dns` listener: HTTPS records (RFC 9460) for
    /// `_{https}._https.quiver.test` (HTTP/3 on the `h3` port) and
    /// `_{https_alt_blocked}._https.quiver.test` (the `udp_blackhole` port), hint 127.0.0.1.
    /// `quiver.test` is in the server certificate; clients map it to 127.0.0.1 with a
    /// `resolve` override for TCP.
    pub fn dns_port(&self) -> u16 {
        self.dns
    }

    /// The port of the `second` listener: HTTP/1.1 cleartext like `http`, another origin.
    pub fn second_port(&self) -> u16 {
        self.second
    }

    /// The port of the `second_tls` listener: HTTP/1.1 or HTTP/2 over TLS like `https`,
    /// another origin.
    pub fn second_tls_port(&self) -> u16 {
        self.second_tls
    }

    /// `http://127.0.0.1:PORT{path}` on the `second` listener.
    pub fn second_url(&self, path: &str) -> String {
        Self::url("http", "127.0.0.1", self.second, path)
    }

    /// `https://localhost:PORT{path}` on the `second_tls` listener.
    pub fn second_tls_url(&self, path: &str) -> String {
        Self::url("https", "localhost", self.second_tls, path)
    }

    /// `https://localhost:PORT{path}` on the `https_alt` listener.
    pub fn https_alt_url(&self, path: &str) -> String {
        Self::url("https", "localhost", self.https_alt, path)
    }

    /// `https://localhost:PORT{path}` on the `https_alt_blocked` listener.
    pub fn https_alt_blocked_url(&self, path: &str) -> String {
        Self::url("https", "localhost", self.https_alt_blocked, path)
    }

    /// The Unix socket `http.sock` in [`TestServer::dir`]: HTTP/1.1 like the `http` listener.
    pub fn unix_http_path(&self) -> &Path {
        &self.unix_http
    }

    /// The Unix socket `h2c.sock` in [`TestServer::dir`]: HTTP/2 with prior knowledge like the
    /// `h2c` listener.
    pub fn unix_h2c_path(&self) -> &Path {
        &self.unix_h2c
    }

    /// The target of the last SOCKS5 CONNECT request since start or the last reset, whatever
    /// came of it: `domain NAME:PORT` (the client sent the name, as `socks5h://` does),
    /// `ipv4 IP:PORT` or `ipv6 [IP]:PORT` (the client resolved it, as `socks5://` does). Also
    /// `socks_last_target` in `/stats`.
    pub fn socks_last_target(&self) -> Option<String> {
        self.counters.socks_last_target()
    }

    /// Whether the listeners are also bound on `[::1]` (false only on hosts without IPv6).
    pub fn has_ipv6(&self) -> bool {
        self.has_ipv6
    }

    /// The folder holding the certificates and the Unix sockets.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The test CA certificate (PEM), which signed the server and client certificates.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// An unrelated CA certificate (PEM) that signed nothing used here.
    pub fn wrong_ca_file(&self) -> &Path {
        &self.wrong_ca_file
    }

    /// The client certificate (PEM) accepted by the `mtls` listener.
    pub fn client_cert(&self) -> &Path {
        &self.client_cert
    }

    /// The client certificate's private key (PKCS#8 PEM).
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// The server certificate (PEM), for `localhost`, `127.0.0.1` and `::1`.
    pub fn server_cert(&self) -> &Path {
        &self.server_cert
    }

    /// The counters, over every listener together.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Whether `/chaos` processed the request with this `x-request-id`, and if so whether it
    /// then failed to answer it in full.
    pub fn chaos_outcome(&self, id: &str) -> Option<bool> {
        self.counters.chaos_outcome(id)
    }

    /// Sets the counters back to zero (`open` keeps its live value).
    pub fn reset_stats(&self) {
        self.counters.reset();
    }

    /// The single JSON line the binary prints (without the newline).
    pub fn json_line(&self) -> String {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let announcement = Announcement {
            http: self.http,
            https: self.https,
            mtls: self.mtls,
            raw: self.raw,
            idle_close: self.idle_close,
            h2c: self.h2c,
            h3: self.h3,
            h3_reject_early: self.h3_reject_early,
            proxy: self.proxy,
            proxy_tls: self.proxy_tls,
            proxy_h3: self.proxy_h3,
            udp_echo: self.udp_echo,
            blackhole: self.blackhole,
            blackhole_has_v6: self.blackhole_has_v6,
            udp_blackhole: self.udp_blackhole,
            socks5: self.socks5,
            socks5_auth: self.socks5_auth,
            https_alt: self.https_alt,
            https_alt_blocked: self.https_alt_blocked,
            dns: self.dns,
            second: self.second,
            second_tls: self.second_tls,
            unix_http: path(self.unix_http_path()),
            unix_h2c: path(self.unix_h2c_path()),
            ca_file: path(self.ca_file()),
            client_cert: path(self.client_cert()),
            client_key: path(self.client_key()),
            wrong_ca_file: path(self.wrong_ca_file()),
        };
        serde_json::to_string(&announcement).unwrap_or_default()
    }

    /// Stops accepting and closes every open connection. Idempotent; also done on drop.
    pub fn shutdown(&self) {
        for task in &self.tasks {
            task.abort();
        }
        for endpoint in &self.endpoints {
            endpoint.close(quinn::VarInt::from_u32(0x100), b"server shutdown");
        }
        self.shutdown.send_replace(true);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = std::fs::remove_file(&self.unix_http);
            let _ = std::fs::remove_file(&self.unix_h2c);
        }
    }
}
