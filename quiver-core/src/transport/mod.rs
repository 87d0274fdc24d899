//! Transports: name resolution, TCP (nodelay) and TLS, with per-connection activity tracking
//! for the idle-between-bytes timeout.

pub(crate) mod sniff;
pub(crate) mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Host, Origin, Scheme};

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

/// Anything a connection can run over: byte streams the proxy tunnels hand out.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A connection's byte stream: TCP, TLS over any stream, or a tunnel through a proxy.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<Stream>>),
    Tunnel(Box<dyn Io>),
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
            Stream::Tunnel($s) => {
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
            Stream::Tunnel(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_shutdown(cx))
    }
}

/// A stream that records each successful read and write in an [`Activity`] and, for HTTP/2,
/// lets a [`sniff::FrameSniffer`] see the bytes read.
pub(crate) struct Tracked {
    inner: Stream,
    activity: Activity,
    sniffer: Option<Box<sniff::FrameSniffer>>,
}

impl Tracked {
    pub(crate) fn new(inner: Stream, activity: Activity) -> Tracked {
        Tracked {
            inner,
            activity,
            sniffer: None,
        }
    }

    pub(crate) fn with_sniffer(
        inner: Stream,
        activity: Activity,
        sniffer: sniff::FrameSniffer,
    ) -> Tracked {
        Tracked {
            inner,
            activity,
            sniffer: Some(Box::new(sniffer)),
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
            if let Some(sniffer) = &mut this.sniffer {
                sniffer.feed(&buf.filled()[before..]);
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

/// What connecting produced: the stream and the protocol the server chose by ALPN.
pub(crate) struct Connected {
    pub stream: Stream,
    #[allow(dead_code)] // read by the protocol choice (auto) once HTTP/2 lands
    pub alpn: Option<Vec<u8>>,
}

/// How to reach an origin: its TLS config (https) and the connect timeout.
#[derive(Clone)]
pub(crate) struct Connector {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_timeout: Duration,
    pub route: Route,
}

/// How a pool's connections reach its origin.
#[derive(Clone)]
pub(crate) enum Route {
    /// Straight to the origin.
    Direct,
    /// Through a CONNECT tunnel (TLS to the origin inside it, for https origins).
    Tunnel(Arc<crate::proxy::tunnel::TunnelOpener>),
    /// To the proxy itself, which takes HTTP/1.1 requests in absolute form (`http://` origins).
    AbsoluteForm(Arc<crate::proxy::tunnel::TunnelOpener>),
}

impl Connector {
    /// Resolves, connects (each address in turn) and, for https, runs the TLS handshake,
    /// all within `connect_timeout`.
    pub(crate) fn connect<'a>(
        &'a self,
        origin: &'a Origin,
    ) -> Pin<Box<dyn Future<Output = Result<Connected>> + Send + 'a>> {
        // Boxed as a Send future by name: a tunnel connects to its proxy through a (direct)
        // Connector again, a cycle the compiler cannot see through otherwise.
        Box::pin(self.connect_inner(origin))
    }

    async fn connect_inner(&self, origin: &Origin) -> Result<Connected> {
        let fut = async {
            let raw = match &self.route {
                Route::Direct => {
                    let addrs = resolve(origin).await?;
                    Stream::Tcp(connect_any(origin, &addrs).await?)
                }
                Route::Tunnel(opener) => opener.open(origin).await?,
                Route::AbsoluteForm(opener) => {
                    return Ok(Connected {
                        stream: opener.connect_proxy(true).await?,
                        alpn: None,
                    });
                }
            };
            match (origin.scheme(), &self.tls) {
                (Scheme::Https, Some(config)) => {
                    let name = tls::server_name(origin.host())?;
                    let connector = tokio_rustls::TlsConnector::from(config.clone());
                    let tls = connector
                        .connect(name, raw)
                        .await
                        .map_err(|e| handshake_error(e, origin, config))?;
                    let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
                    Ok(Connected {
                        stream: Stream::Tls(Box::new(tls)),
                        alpn,
                    })
                }
                _ => Ok(Connected {
                    stream: raw,
                    alpn: None,
                }),
            }
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

/// Resolves the origin's host (an IP literal resolves to itself).
pub(crate) async fn resolve(origin: &Origin) -> Result<Vec<SocketAddr>> {
    match origin.host() {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, origin.port())]),
        Host::Name(name) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), origin.port()))
                .await
                .map_err(|e| {
                    Error::with_source(ErrorKind::Dns, format!("cannot resolve `{name}`"), e)
                })?
                .collect();
            if addrs.is_empty() {
                return Err(Error::new(
                    ErrorKind::Dns,
                    format!("`{name}` has no address"),
                ));
            }
            Ok(addrs)
        }
    }
}

async fn connect_any(origin: &Origin, addrs: &[SocketAddr]) -> Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                // Nagle only delays small requests; quiver writes whole frames.
                tcp.set_nodelay(true)
                    .map_err(|e| io_error(&e, "cannot set TCP_NODELAY"))?;
                return Ok(tcp);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let Some((addr, e)) = last else {
        return Err(Error::new(
            ErrorKind::Dns,
            format!("{origin} has no address"),
        ));
    };
    let kind = match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
        _ => ErrorKind::ConnectFailed,
    };
    Err(Error::with_source(
        kind,
        format!("cannot connect to {origin} ({addr}): {e}"),
        e,
    ))
}

fn handshake_error(e: io::Error, origin: &Origin, config: &rustls::ClientConfig) -> Error {
    let alert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)) =
        alert
    {
        let offered: Vec<String> = config
            .alpn_protocols
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        return Error::new(
            ErrorKind::Tls,
            format!(
                "{origin} accepts none of the protocols offered by ALPN ({}); check the pool's `protocol` option",
                offered.join(", ")
            ),
        );
    }
    io_error(
        &e,
        &format!("TLS handshake with {}", origin.host().to_authority_string()),
    )
}

/// Maps an I/O error (a TLS error inside one included) to a quiver error.
pub(crate) fn io_error(e: &io::Error, context: &str) -> Error {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls::tls_error(tls, context);
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
