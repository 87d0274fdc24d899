//! The pools, one kind per protocol: HTTP/1.1 (`h1`), one multiplexed shape for HTTP/2 and
//! HTTP/3 (`mux` coordinator, `send` loop, `h2` and `h3`), and `auto`, which lets ALPN decide.
//! Decisions live in sans-IO structs (`h1_state`, `mux_state`).

pub(crate) mod auto;
pub(crate) mod h1;
pub(crate) mod h1_state;
pub(crate) mod h2;
#[cfg(feature = "http3")]
pub(crate) mod h3;
pub(crate) mod mux;
pub(crate) mod mux_state;
pub(crate) mod retry;
pub(crate) mod send;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::Protocol;
use crate::error::Result;
use crate::origin::Origin;
use crate::request::Request;
use crate::response::StreamResponse;
use crate::stats::OriginStats;

use self::auto::AutoPool;
use self::h1::H1Pool;
use self::h2::H2Pool;
#[cfg(feature = "http3")]
use self::h3::H3Pool;

/// How long a caller whose checkout started a dial may wait for it: the dial is bounded by
/// `connect_timeout`, and a little more lets its outcome (its own error) arrive first.
pub(crate) fn dial_deadline(options: &crate::config::PoolOptions) -> tokio::time::Instant {
    tokio::time::Instant::now() + options.connect_timeout + std::time::Duration::from_millis(500)
}

/// Monotonic counters every pool keeps.
#[derive(Default, Debug)]
pub(crate) struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    connections_opened: AtomicU64,
}

impl Counters {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn connection_opened(&self) {
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Stats with the counters filled in and the gauges left for the pool to set.
    pub(crate) fn snapshot(&self, origin: &Origin, protocol: Protocol) -> OriginStats {
        OriginStats {
            origin: origin.to_string(),
            protocol,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            connections_opened: self.connections_opened.load(Ordering::Relaxed),
            ..OriginStats::default()
        }
    }
}

/// Something holding received bytes the caller has not taken yet (one live response body).
pub(crate) trait BufferedBytes: Send + Sync {
    fn buffered(&self) -> u64;
}

/// The live response bodies of a pool, for the `buffered_bytes` stat.
#[derive(Default)]
pub(crate) struct Buffered {
    next: AtomicU64,
    entries: std::sync::Mutex<HashMap<u64, Arc<dyn BufferedBytes>>>,
}

impl Buffered {
    /// Registers a body; dropping the guard unregisters it.
    pub(crate) fn register(self: &Arc<Self>, entry: Arc<dyn BufferedBytes>) -> BufferedGuard {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, entry);
        BufferedGuard {
            registry: self.clone(),
            key,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        let entries: Vec<_> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        entries.iter().map(|e| e.buffered()).sum()
    }
}

/// Unregisters a body from its pool's [`Buffered`] registry when dropped.
pub(crate) struct BufferedGuard {
    registry: Arc<Buffered>,
    key: u64,
}

impl Drop for BufferedGuard {
    fn drop(&mut self) {
        self.registry
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// One origin's pool.
#[derive(Clone)]
pub(crate) enum Pool {
    Http1(Arc<H1Pool>),
    Http2(Arc<H2Pool>),
    #[cfg(feature = "http3")]
    Http3(Arc<H3Pool>),
    /// https with protocol `auto`: the first connection's ALPN decides.
    Auto(Arc<AutoPool>),
}

impl Pool {
    /// Sends a request through this pool; returns once the response head arrived.
    pub(crate) async fn send(&self, req: Request) -> Result<StreamResponse> {
        let decided;
        let pool = match self {
            Pool::Auto(auto) => {
                decided = auto.route().await?;
                &decided
            }
            other => other,
        };
        let counters = match pool {
            Pool::Http1(p) => &p.counters,
            Pool::Http2(p) => &p.counters,
            #[cfg(feature = "http3")]
            Pool::Http3(p) => &p.counters,
            Pool::Auto(_) => {
                return Err(crate::error::Error::internal(
                    "an auto pool decided on auto",
                ))
            }
        };
        counters.request();
        let res = match pool {
            Pool::Http1(p) => p.send(req).await,
            Pool::Http2(p) => send::send(p, req).await,
            // Boxed: HTTP/3's exchange is the largest of the three (QUIC stream set-up and
            // its guards), and held inline it would size every request's future, and each
            // copy of it, to HTTP/3's whatever the protocol.
            #[cfg(feature = "http3")]
            Pool::Http3(p) => Box::pin(send::send(p, req)).await,
            Pool::Auto(_) => Err(crate::error::Error::internal(
                "an auto pool decided on auto",
            )),
        };
        match &res {
            Ok(resp) => {
                if let Pool::Auto(auto) = self {
                    auto.learn(resp.headers());
                }
            }
            Err(_) => counters.error(),
        }
        res
    }

    /// Closes the pool's connections; waiting callers (and, on HTTP/2 and HTTP/3, streams in
    /// flight) get `shutdown`.
    pub(crate) fn close_all(&self) {
        match self {
            Pool::Http1(p) => p.close_all(),
            Pool::Http2(p) => p.close_all(),
            #[cfg(feature = "http3")]
            Pool::Http3(p) => p.close_all(),
            Pool::Auto(p) => p.close_all(),
        }
    }

    /// Closes one idle connection of this pool, if it has one (room under the client-wide
    /// cap); `true` if it did.
    pub(crate) fn evict_idle(&self) -> bool {
        match self {
            Pool::Http1(p) => p.evict_idle(),
            Pool::Http2(p) => p.evict_idle(),
            #[cfg(feature = "http3")]
            Pool::Http3(p) => p.evict_idle(),
            Pool::Auto(p) => p.evict_idle(),
        }
    }

    pub(crate) fn stats(&self) -> OriginStats {
        match self {
            Pool::Http1(p) => p.stats(),
            Pool::Http2(p) => p.stats(),
            #[cfg(feature = "http3")]
            Pool::Http3(p) => p.stats(),
            Pool::Auto(p) => p.stats(),
        }
    }
}
