//! The client-wide connection cap (`max_total_connections`): a connection to any origin takes a
//! permit before it is dialled and gives it back when it closes. Dials wait for a permit in
//! FIFO order, up to `checkout_timeout`; while they wait, idle connections anywhere in the
//! client are closed to make room (as httpx does), since an idle connection is worth less than
//! a caller waiting.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Stream;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// How often a waiting dial looks for an idle connection to close.
const EVICT_EVERY: Duration = Duration::from_millis(25);

/// Closes one idle connection somewhere in the client; `true` if there was one.
pub(crate) type Evictor = Box<dyn Fn() -> bool + Send + Sync>;

/// The permits of one client's connections.
pub(crate) struct ConnLimit {
    max: usize,
    permits: Arc<Semaphore>,
    evict: OnceLock<Evictor>,
    /// Dials waiting for room, by origin (`scheme://host:port`): pools count them as
    /// connections being opened, which they are not yet.
    waiting: Mutex<HashMap<String, usize>>,
}

/// Counts one dial as waiting while it lives.
struct Waiting<'a> {
    limit: &'a ConnLimit,
    origin: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waiting = self.limit.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = waiting.get_mut(&self.origin) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.origin);
            }
        }
    }
}

impl ConnLimit {
    pub(crate) fn new(max: usize) -> Arc<ConnLimit> {
        Arc::new(ConnLimit {
            max,
            permits: Arc::new(Semaphore::new(max)),
            evict: OnceLock::new(),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    /// Sets how room is made while dials wait (once; the client's pool registry).
    pub(crate) fn set_evictor(&self, evict: Evictor) {
        let _ = self.evict.set(evict);
    }

    /// Dials to `origin` (`scheme://host:port`) waiting for room now.
    pub(crate) fn waiting(&self, origin: &str) -> usize {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.get(origin).copied().unwrap_or(0)
    }

    /// Waits, in FIFO order and up to `wait`, for room for one more connection to `origin`.
    pub(crate) async fn acquire(
        &self,
        origin: &Origin,
        wait: Duration,
    ) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let origin_name = origin.to_string();
        *self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(origin_name.clone())
            .or_default() += 1;
        let _waiting = Waiting {
            limit: self,
            origin: origin_name,
        };
        let acquire = self.permits.clone().acquire_owned();
        tokio::pin!(acquire);
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            if let Some(evict) = self.evict.get() {
                evict();
            }
            tokio::select! {
                biased;
                permit = &mut acquire => {
                    return permit.map_err(|_| Error::new(ErrorKind::Shutdown, "the client was closed"));
                }
                _ = &mut deadline => {
                    return Err(Error::new(
                        ErrorKind::CheckoutTimeout,
                        format!(
                            "no room for a connection to {origin} within {} ms: the client's {} connections (max_total_connections) are busy",
                            wait.as_millis(),
                            self.max
                        ),
                    ));
                }
                _ = tokio::time::sleep(EVICT_EVERY) => {}
            }
        }
    }
}

/// A pool's share of the cap: the client's permits and how long its dials wait for one
/// (`checkout_timeout`).
#[derive(Clone)]
pub(crate) struct Cap {
    pub(crate) limit: Arc<ConnLimit>,
    pub(crate) wait: Duration,
}

impl Cap {
    /// Waits for room for one more connection to `origin`.
    pub(crate) async fn acquire(&self, origin: &Origin) -> Result<OwnedSemaphorePermit> {
        self.limit.acquire(origin, self.wait).await
    }
}

/// `stream`, holding `permit` until the connection is dropped.
pub(crate) fn permitted(stream: Stream, permit: OwnedSemaphorePermit) -> Stream {
    Stream::Boxed(Box::new(Permitted {
        stream,
        _permit: permit,
    }))
}

/// A connection holding its permit until it is dropped.
struct Permitted {
    stream: Stream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
