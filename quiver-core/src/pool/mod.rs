//! The pool manager (origin → pool registry) and the pools, one kind per protocol.

pub(crate) mod auto;
pub(crate) mod h1;
pub(crate) mod h1_state;
pub(crate) mod h2;
pub(crate) mod h3;
pub(crate) mod head;
pub(crate) mod mux;
pub(crate) mod mux_state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::runtime::Handle;

use crate::config::{Protocol, ResolvedRule, RuleTable};
use crate::error::{ErrorKind, Result};
use crate::origin::{Origin, Scheme};
use crate::proxy::tunnel::TunnelOpener;
use crate::proxy::{Proxy, ProxyContext};
use crate::request::Request;
use crate::response::StreamResponse;
use crate::stats::OriginStats;
use crate::transport::tls::RuleTls;
use crate::transport::{Connector, Route};

use self::auto::AutoPool;
use self::h1::H1Pool;
use self::h2::H2Pool;
use self::h3::H3Pool;

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
    pub(crate) fn snapshot(&self, origin: &Origin, protocol: &'static str) -> OriginStats {
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
                decided = auto.pool().await?;
                &decided
            }
            other => other,
        };
        let counters = match pool {
            Pool::Http1(p) => &p.counters,
            Pool::Http2(p) => &p.counters,
            Pool::Http3(p) => &p.counters,
            Pool::Auto(_) => return Err(crate::Error::internal("an auto pool decided on auto")),
        };
        counters.request();
        let res = match pool {
            Pool::Http1(p) => p.send(req).await,
            Pool::Http2(p) => h2::send(p, req).await,
            Pool::Http3(p) => h3::send(p, req).await,
            Pool::Auto(_) => unreachable!("handled above"),
        };
        if res.is_err() {
            counters.error();
        }
        res
    }

    /// Closes the pool's connections; waiting callers (and, on HTTP/2 and HTTP/3, streams in
    /// flight) get `shutdown`.
    pub(crate) fn close_all(&self) {
        match self {
            Pool::Http1(p) => p.close_all(),
            Pool::Http2(p) => p.close_all(),
            Pool::Http3(p) => p.close_all(),
            Pool::Auto(p) => p.close_all(),
        }
    }

    pub(crate) fn stats(&self) -> OriginStats {
        match self {
            Pool::Http1(p) => p.stats(),
            Pool::Http2(p) => p.stats(),
            Pool::Http3(p) => p.stats(),
            Pool::Auto(p) => p.stats(),
        }
    }
}

/// The origin → pool registry. The hot path takes a read lock only; a pool is created once
/// per origin under the write lock (racing first requests end up on the same pool).
pub(crate) struct Manager {
    rules: RuleTable,
    tls: HashMap<String, RuleTls>,
    runtime: Handle,
    pools: RwLock<HashMap<Origin, Pool>>,
    pub(crate) proxy: ProxyContext,
    closed: std::sync::atomic::AtomicBool,
}

impl Manager {
    pub(crate) fn new(rules: RuleTable, runtime: Handle) -> Result<Manager> {
        let mut tls = HashMap::new();
        for rule in rules.all() {
            let configs = RuleTls::new(&rule.options).map_err(|e| {
                crate::Error::invalid_config(format!("pool rule `{}`: {}", rule.name, e.message()))
            })?;
            tls.insert(rule.name.clone(), configs);
        }
        Ok(Manager {
            rules,
            tls,
            proxy: ProxyContext {
                env: crate::proxy::EnvProxies::from_env(),
                upstreams: Arc::new(crate::proxy::upstream::Upstreams::new(runtime.clone())),
            },
            runtime,
            pools: RwLock::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Shuts every pool and pooled proxy connection down; later requests fail with `shutdown`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let pools: Vec<Pool> = self
            .pools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        for pool in pools {
            pool.close_all();
        }
        self.proxy.upstreams.close_all();
    }

    /// The pool for `origin`, created on first use.
    pub(crate) fn pool(&self, origin: &Origin) -> Result<Pool> {
        if self.closed.load(Ordering::Acquire) {
            return Err(crate::Error::new(
                crate::ErrorKind::Shutdown,
                "the client was closed",
            ));
        }
        if let Some(pool) = self
            .pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
        {
            return Ok(pool.clone());
        }
        let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = pools.get(origin) {
            return Ok(pool.clone());
        }
        let pool = self.build_pool(origin)?;
        pools.insert(origin.clone(), pool.clone());
        Ok(pool)
    }

    fn build_pool(&self, origin: &Origin) -> Result<Pool> {
        let rule: &Arc<ResolvedRule> = self.rules.lookup(origin);
        let options = rule.options.clone();
        let tls = self
            .tls
            .get(&rule.name)
            .cloned()
            .ok_or_else(|| crate::Error::internal("no TLS config for a rule"))?;
        let https = origin.scheme() == Scheme::Https;
        let runtime = self.runtime.clone();
        // Cleartext origins speak HTTP/1.1 unless asked for h2c (http3 from a client-wide
        // default cannot apply to them).
        let protocol = match (options.protocol, https) {
            (Protocol::Auto | Protocol::Http3, false) => Protocol::Http1,
            (p, _) => p,
        };
        let opener = Proxy::for_origin(&options, &self.proxy.env, origin)?.map(|proxy| {
            Arc::new(TunnelOpener {
                proxy,
                tls: tls.clone(),
                options: options.clone(),
                upstreams: self.proxy.upstreams.clone(),
            })
        });
        let route = match (&opener, protocol, https) {
            (None, ..) => Route::Direct,
            (Some(o), Protocol::Http1, false) => Route::AbsoluteForm(o.clone()),
            (Some(o), ..) => Route::Tunnel(o.clone()),
        };
        let connector = |config: &Arc<rustls::ClientConfig>| Connector {
            tls: https.then(|| config.clone()),
            connect_timeout: options.connect_timeout,
            route: route.clone(),
        };
        Ok(match protocol {
            Protocol::Http3 => {
                let path = match opener {
                    Some(o) => h3::Path::Tunneled(o),
                    None => h3::Path::Direct,
                };
                Pool::Http3(h3::new_pool(
                    origin.clone(),
                    options.clone(),
                    tls.http3.clone(),
                    runtime,
                    path,
                )?)
            }
            Protocol::Http2 => Pool::Http2(h2::new_pool(
                origin.clone(),
                options.clone(),
                connector(&tls.http2),
                runtime,
            )),
            Protocol::Auto => Pool::Auto(AutoPool::new(
                origin.clone(),
                options.clone(),
                tls,
                route,
                runtime,
            )),
            Protocol::Http1 => Pool::Http1(H1Pool::new(
                origin.clone(),
                options.clone(),
                connector(&tls.http1),
                runtime,
            )),
        })
    }

    /// An opener for tunnels through `proxy_url`, with the TLS settings and limits of the rule
    /// that matches the proxy's own origin.
    pub(crate) fn tunnel_opener(
        &self,
        proxy_url: &str,
        protocol: Protocol,
    ) -> Result<TunnelOpener> {
        let (origin, authorization) = crate::proxy::parse_proxy_url(proxy_url)?;
        let rule = self.rules.lookup(&origin);
        let tls = self
            .tls
            .get(&rule.name)
            .cloned()
            .ok_or_else(|| crate::Error::internal("no TLS config for a rule"))?;
        Ok(TunnelOpener {
            proxy: Proxy {
                origin,
                authorization,
                protocol,
            },
            tls,
            options: rule.options.clone(),
            upstreams: self.proxy.upstreams.clone(),
        })
    }

    /// Stats of every pool.
    pub(crate) fn stats(&self) -> Vec<OriginStats> {
        let pools: Vec<Pool> = self
            .pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        pools.iter().map(Pool::stats).collect()
    }
}

/// Keeps a request's upload task alive; dropping it (the request or its response body went
/// away) stops the task, which drops the stream it writes to, so the stream is reset and the
/// caller's body is no longer pulled.
pub(crate) struct UploadGuard(#[allow(dead_code)] Option<tokio::sync::oneshot::Sender<()>>);

impl UploadGuard {
    /// A guard for a request with no upload task.
    pub(crate) fn none() -> UploadGuard {
        UploadGuard(None)
    }

    /// Spawns `upload` on `runtime`, to run until it ends or the guard is dropped.
    pub(crate) fn spawn(
        runtime: &Handle,
        upload: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> UploadGuard {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            tokio::select! {
                _ = rx => {}
                _ = upload => {}
            }
        });
        UploadGuard(Some(tx))
    }
}

/// What to do after a multiplexed request failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Give the error to the caller.
    No,
    /// Send again (on whichever connection the coordinator picks; a draining one is skipped).
    Again,
    /// Send again, on another connection than the one that refused it.
    Elsewhere,
}

/// The transparent-retry budget of one HTTP/2 or HTTP/3 request. Requests the peer provably
/// never processed are safe to send again: streams left out by a GOAWAY (or that could not even
/// be opened) up to [`Retries::UNPROCESSED`] times, which stops a peer that GOAWAYs every
/// connection from looping us; a stream refused with REFUSED_STREAM once, elsewhere. A body
/// already being streamed cannot be replayed.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    unprocessed: u32,
    refused: bool,
}

impl Retries {
    /// Most re-sends of a request left unprocessed by GOAWAY.
    pub(crate) const UNPROCESSED: u32 = 3;

    /// After an error before the stream was opened: the body is untouched, so it can always go
    /// again while the budget lasts.
    pub(crate) fn before_open(&mut self, kind: ErrorKind, counters: &Counters) -> Retry {
        let unprocessed = matches!(
            kind,
            ErrorKind::Goaway | ErrorKind::ConnectionClosed | ErrorKind::ConnectionReset
        );
        if unprocessed && self.unprocessed < Self::UNPROCESSED {
            self.unprocessed += 1;
            counters.retried();
            return Retry::Again;
        }
        Retry::No
    }

    /// After the stream failed: only unprocessed requests with a replayable body go again.
    pub(crate) fn after_send(
        &mut self,
        kind: ErrorKind,
        replayable: bool,
        counters: &Counters,
    ) -> Retry {
        if !replayable {
            return Retry::No;
        }
        let decision = match kind {
            ErrorKind::Goaway if self.unprocessed < Self::UNPROCESSED => {
                self.unprocessed += 1;
                Retry::Again
            }
            ErrorKind::RefusedStream if !self.refused => {
                self.refused = true;
                Retry::Elsewhere
            }
            _ => Retry::No,
        };
        if decision != Retry::No {
            counters.retried();
        }
        decision
    }
}
