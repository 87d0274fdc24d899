//! The dialing layer: how a connection reaches its origin. [`Dial`] yields a byte stream (direct
//! TCP here; CONNECT tunnels and proxies implement it in `proxy`), [`Connector`] adds TLS and the
//! connect timeout on top, and [`udp::QuicPath`] yields the UDP endpoints QUIC runs over. Nothing
//! here knows which protocol runs over the stream or whether a proxy is involved.

#[cfg(feature = "http3")]
pub(crate) mod altsvc;
pub(crate) mod happy;
#[cfg(feature = "https-rr")]
pub(crate) mod https_rr;
pub(crate) mod limit;
pub(crate) mod resolve;
pub(crate) mod tcp;
pub(crate) mod tls;
#[cfg(feature = "http3")]
pub(crate) mod udp;
#[cfg(unix)]
pub(crate) mod unix;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Origin, Scheme};

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// When a connection last moved a byte, shared between the I/O wrapper and the requests
/// waiting on the connection.
#[derive(Clone, Debug)]
pub(crate) struct Activity(Arc<AtomicU64>);

impl Activity {
    pub(crate) fn new() -> Activity {
        let a = Activity(Arc::new(AtomicU64::new(0)));
        a.touch();
        a
    }

    /// Records activity now.
    pub(crate) fn touch(&self) {
        let ms = epoch().elapsed().as_millis() as u64;
        self.0.store(ms, Ordering::Relaxed);
    }

    /// When the connection last moved a byte.
    pub(crate) fn last(&self) -> Instant {
        epoch() + Duration::from_millis(self.0.load(Ordering::Relaxed))
    }
}

/// Anything a connection can run over (the byte streams dialers hand out).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A connection's byte stream: TCP, TLS over any stream, or a stream a dialer built (a tunnel).
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<Stream>>),
    Boxed(Box<dyn Io>),
}

macro_rules! dispatch {
    ($self:expr, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            Stream::Boxed($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            Stream::Boxed(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_shutdown(cx))
    }
}

/// Sees the bytes read from a connection as they pass (the HTTP/2 frame sniffer).
pub(crate) trait ReadObserver: Send + 'static {
    /// Called with every run of bytes just read from the peer.
    fn feed(&mut self, bytes: &[u8]);
}

/// A stream that records each successful read and write in an [`Activity`] and, optionally,
/// shows the bytes read to a [`ReadObserver`].
pub(crate) struct Tracked {
    inner: Stream,
    activity: Activity,
    observer: Option<Box<dyn ReadObserver>>,
}

impl Tracked {
    pub(crate) fn new(inner: Stream, activity: Activity) -> Tracked {
        Tracked {
            inner,
            activity,
            observer: None,
        }
    }

    pub(crate) fn observed(
        inner: Stream,
        activity: Activity,
        observer: Box<dyn ReadObserver>,
    ) -> Tracked {
        Tracked {
            inner,
            activity,
            observer: Some(observer),
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
            if let Some(observer) = &mut this.observer {
                observer.feed(&buf.filled()[before..]);
            }
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Yields a byte stream to an origin: straight over TCP, or through whatever a dialer wraps
/// (a CONNECT tunnel, a connection to a forward proxy). TLS to the origin is not its job.
pub(crate) trait Dial: Send + Sync + 'static {
    /// Opens a stream towards `origin`; bounded by the [`Connector`]'s connect timeout.
    fn dial<'a>(&'a self, origin: &'a Origin) -> BoxFuture<'a, Result<Stream>>;

    /// Like [`Dial::dial`], also telling how long name resolution took and how many addresses
    /// it gave, where the dialer resolves names itself.
    fn dial_timed<'a>(&'a self, origin: &'a Origin) -> BoxFuture<'a, Result<(Stream, Resolved)>> {
        Box::pin(async move { Ok((self.dial(origin).await?, None)) })
    }
}

/// How long name resolution took and how many addresses it gave, when a dialer resolved.
pub(crate) type Resolved = Option<(Duration, usize)>;

/// How one connection was made: its id, and how long each step took. A request that opened
/// the connection it ran on reports these steps in its timings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's id, unique in the process (as in events).
    pub id: u64,
    /// Name resolution, when this connection resolved a name itself.
    pub dns: Option<Duration>,
    /// The transport's connect (TCP; for HTTP/3 the QUIC handshake, TLS included).
    pub connect: Option<Duration>,
    /// The TLS handshake (TCP connections to https origins).
    pub tls: Option<Duration>,
    /// The protocol ALPN chose, if any.
    pub alpn: Option<String>,
    /// True when TLS resumed an earlier session.
    pub resumed: bool,
    /// The peer's address, when connected directly.
    pub remote: Option<std::net::SocketAddr>,
}

/// A live connection's record, shared by the pool and the requests on it: how it was made, and
/// how many requests it started (so a request knows whether it reused it).
#[derive(Debug, Default)]
pub(crate) struct ConnRecord {
    pub info: Arc<ConnectionInfo>,
    /// How many addresses name resolution gave, when this connection resolved a name.
    #[cfg_attr(not(feature = "http3"), allow(dead_code))]
    pub addresses: Option<usize>,
    started: AtomicU64,
}

impl ConnRecord {
    pub(crate) fn new(info: ConnectionInfo) -> Arc<ConnRecord> {
        ConnRecord::resolved(info, None)
    }

    pub(crate) fn resolved(info: ConnectionInfo, addresses: Option<usize>) -> Arc<ConnRecord> {
        Arc::new(ConnRecord {
            info: Arc::new(info),
            addresses,
            started: AtomicU64::new(0),
        })
    }

    /// Counts a request starting on the connection; true when it is not the first.
    pub(crate) fn start_request(&self) -> bool {
        self.started.fetch_add(1, Ordering::Relaxed) > 0
    }
}

/// What connecting produced: the stream, the protocol the server chose by ALPN, and how it went.
pub(crate) struct Connected {
    pub stream: Stream,
    pub alpn: Option<Vec<u8>>,
    pub info: ConnectionInfo,
}

/// How a pool reaches its origin: a dialer, TLS for https origins, the connect timeout.
#[derive(Clone)]
pub(crate) struct Connector {
    pub dial: Arc<dyn Dial>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_timeout: Duration,
    /// The client-wide connection cap, when `max_total_connections` is set.
    pub cap: Option<limit::Cap>,
    /// The client's event listeners, if any.
    pub events: Option<crate::events::Events>,
}

impl Connector {
    /// Takes room under the client-wide cap (if any), then dials and, for https, runs the TLS
    /// handshake, those two within `connect_timeout`.
    pub(crate) async fn connect(&self, origin: &Origin) -> Result<Connected> {
        // Room under the cap first: waiting for it is not connecting.
        let permit = match &self.cap {
            Some(cap) => Some(cap.acquire(origin).await?),
            None => None,
        };
        let id = crate::events::next_id();
        let mut connected = match self.connect_now(origin, id).await {
            Ok(c) => c,
            Err(e) => {
                if let Some(events) = &self.events {
                    events.connection(
                        origin,
                        None,
                        Some(id),
                        crate::events::EventKind::ConnectionFailed { error: e.clone() },
                    );
                }
                return Err(e);
            }
        };
        if let Some(permit) = permit {
            connected.stream = limit::permitted(connected.stream, permit);
        }
        Ok(connected)
    }

    async fn connect_now(&self, origin: &Origin, id: u64) -> Result<Connected> {
        let fut = async {
            let started = Instant::now();
            let (raw, resolved) = self.dial.dial_timed(origin).await?;
            let dialed = Instant::now();
            let remote = match &raw {
                Stream::Tcp(tcp) => tcp.peer_addr().ok(),
                _ => None,
            };
            let mut info = ConnectionInfo {
                id,
                dns: resolved.map(|(d, _)| d),
                connect: Some(dialed - started - resolved.map_or(Duration::ZERO, |(d, _)| d)),
                remote,
                ..ConnectionInfo::default()
            };
            let connected = match (origin.scheme(), &self.tls) {
                (Scheme::Https, Some(config)) => {
                    let mut c = tls::handshake(raw, origin, config).await?;
                    info.tls = Some(dialed.elapsed());
                    info.alpn = c.info.alpn.take();
                    info.resumed = c.info.resumed;
                    c.info = info;
                    c
                }
                _ => Connected {
                    stream: raw,
                    alpn: None,
                    info,
                },
            };
            if let Some(events) = self.events.as_ref().filter(|e| e.enabled()) {
                emit_dial(
                    events,
                    origin,
                    started,
                    resolved.map(|(_, n)| n),
                    &connected.info,
                );
            }
            Ok(connected)
        };
        match tokio::time::timeout(self.connect_timeout, fut).await {
            Ok(res) => res,
            Err(_) => Err(Error::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "connecting to {origin} took longer than {} ms",
                    self.connect_timeout.as_millis()
                ),
            )),
        }
    }
}

/// The events of a finished dial, each at the instant its step ended.
pub(crate) fn emit_dial(
    events: &crate::events::Events,
    origin: &Origin,
    started: Instant,
    addresses: Option<usize>,
    info: &ConnectionInfo,
) {
    use crate::events::{Event, EventKind};
    let event = |at: Instant, kind: EventKind| Event {
        kind,
        at,
        request: None,
        origin: origin.clone(),
        protocol: None,
        connection: Some(info.id),
        stream: None,
    };
    let mut at = started;
    if let (Some(dns), Some(addresses)) = (info.dns, addresses) {
        at += dns;
        events.emit(event(at, EventKind::DnsResolved { addresses }));
    }
    at += info.connect.unwrap_or_default();
    events.emit(event(
        at,
        EventKind::Connected {
            remote: info.remote,
        },
    ));
    if let Some(tls) = info.tls {
        events.emit(event(
            at + tls,
            EventKind::TlsDone {
                alpn: info.alpn.clone(),
                resumed: info.resumed,
            },
        ));
    }
}

/// Maps an I/O error (a TLS error inside one included) to a quiver error.
pub(crate) fn io_error(e: &io::Error, context: &str) -> Error {
    if let Some(err) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls::tls_error(err, context);
    }
    let kind = match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ErrorKind::ConnectionReset,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted => {
            ErrorKind::ConnectionClosed
        }
        io::ErrorKind::TimedOut => ErrorKind::ReadTimeout,
        _ => ErrorKind::ConnectionClosed,
    };
    Error::new(kind, format!("{context}: {e}"))
}
