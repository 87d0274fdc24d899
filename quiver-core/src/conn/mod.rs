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
}

/// What connecting produced: the stream and the protocol the server chose by ALPN.
pub(crate) struct Connected {
    pub stream: Stream,
    pub alpn: Option<Vec<u8>>,
}

/// How a pool reaches its origin: a dialer, TLS for https origins, the connect timeout.
#[derive(Clone)]
pub(crate) struct Connector {
    pub dial: Arc<dyn Dial>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_timeout: Duration,
    /// The client-wide connection cap, when `max_total_connections` is set.
    pub cap: Option<limit::Cap>,
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
        let mut connected = self.connect_now(origin).await?;
        if let Some(permit) = permit {
            connected.stream = limit::permitted(connected.stream, permit);
        }
        Ok(connected)
    }

    async fn connect_now(&self, origin: &Origin) -> Result<Connected> {
        let fut = async {
            let raw = self.dial.dial(origin).await?;
            match (origin.scheme(), &self.tls) {
                (Scheme::Https, Some(config)) => tls::handshake(raw, origin, config).await,
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
