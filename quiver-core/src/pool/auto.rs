//! The `auto` pool of an https origin: its first connection offers ALPN h2 and http/1.1, and
//! the server's choice decides, for the pool's lifetime, whether the origin gets an HTTP/2 or an
//! HTTP/1.1 pool. That first connection becomes the new pool's first connection (no throwaway
//! probe). Concurrent first callers wait on the one decision.
//!
//! With an HTTP/3 alternative (`alt_svc`, see [`AltH3`]) the pool also holds an HTTP/3 pool, to
//! the alternative the origin advertised: while it is fresh and not broken, requests go over
//! HTTP/3, a new QUIC connection racing TCP (QUIC first, TCP `happy_eyeballs_delay` later, the
//! first up carries the request); a QUIC failure marks the alternative broken and the request
//! goes over TCP, unseen by the caller.

#[cfg(feature = "http3")]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
#[cfg(feature = "http3")]
use std::time::Instant;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::h1::H1Pool;
use super::{h2, Counters, Pool};
use crate::config::{PoolOptions, Protocol};
#[cfg(feature = "http3")]
use crate::conn::altsvc::{Advertised, AltSvcCache};
use crate::conn::limit::Cap;
use crate::conn::tls::{RuleTls, ALPN_H2};
use crate::conn::{Connector, Dial};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::stats::OriginStats;

type Waiters = Vec<oneshot::Sender<Result<Pool>>>;

/// An https origin's pool before and after ALPN decided its protocol.
pub(crate) struct AutoPool {
    origin: Origin,
    options: Arc<PoolOptions>,
    tls: RuleTls,
    dial: Arc<dyn Dial>,
    cap: Option<Cap>,
    runtime: Handle,
    /// The client's event listeners, if any.
    events: Option<crate::events::Events>,
    decided: OnceLock<Pool>,
    /// `Some` while a decision is in flight: the callers waiting for it.
    deciding: Mutex<Option<Waiters>>,
    /// Requests that failed before a protocol was decided.
    counters: Counters,
    /// The HTTP/3 alternative, when the pool may use one.
    #[cfg(feature = "http3")]
    alt: Option<AltH3>,
}

/// An `auto` pool's way to HTTP/3: the pool over the advertised alternative, and the
/// client-wide cache that says whether there is one.
#[cfg(feature = "http3")]
pub(crate) struct AltH3 {
    pub(crate) pool: Arc<super::h3::H3Pool>,
    pub(crate) cache: Arc<AltSvcCache>,
    /// Requests meant for HTTP/3 that went over TCP (QUIC lost the race, failed, or was still
    /// connecting).
    fallbacks: AtomicU64,
    /// Whether the latest request went over HTTP/3.
    last_h3: AtomicBool,
    /// Whether this origin's latest `alt-svc` named an alternative: until then requests skip
    /// the (client-wide, locked) cache.
    advertised: AtomicBool,
    /// `https_rr`: the origin's HTTPS records, looked up before its first request.
    #[cfg(feature = "https-rr")]
    records: Option<RecordLookup>,
}

/// One origin's HTTPS-record lookup, done once (concurrent first callers wait for it).
#[cfg(feature = "https-rr")]
pub(crate) struct RecordLookup {
    pub(crate) records: Arc<crate::conn::https_rr::HttpsRecords>,
    pub(crate) nameserver: Option<std::net::SocketAddr>,
    done: tokio::sync::OnceCell<()>,
}

#[cfg(feature = "https-rr")]
impl RecordLookup {
    pub(crate) fn new(
        records: Arc<crate::conn::https_rr::HttpsRecords>,
        nameserver: Option<std::net::SocketAddr>,
    ) -> RecordLookup {
        RecordLookup {
            records,
            nameserver,
            done: tokio::sync::OnceCell::new(),
        }
    }
}

#[cfg(feature = "http3")]
impl AltH3 {
    pub(crate) fn new(pool: Arc<super::h3::H3Pool>, cache: Arc<AltSvcCache>) -> AltH3 {
        AltH3 {
            pool,
            cache,
            fallbacks: AtomicU64::new(0),
            last_h3: AtomicBool::new(false),
            advertised: AtomicBool::new(false),
            #[cfg(feature = "https-rr")]
            records: None,
        }
    }

    /// Looks the origin's HTTPS records up before its first request.
    #[cfg(feature = "https-rr")]
    pub(crate) fn with_records(mut self, lookup: RecordLookup) -> AltH3 {
        self.records = Some(lookup);
        self
    }
}

impl AutoPool {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        origin: Origin,
        options: Arc<PoolOptions>,
        tls: RuleTls,
        dial: Arc<dyn Dial>,
        cap: Option<Cap>,
        runtime: Handle,
        events: Option<crate::events::Events>,
        #[cfg(feature = "http3")] alt: Option<AltH3>,
    ) -> Arc<AutoPool> {
        Arc::new(AutoPool {
            origin,
            options,
            tls,
            dial,
            cap,
            runtime,
            events,
            decided: OnceLock::new(),
            deciding: Mutex::new(None),
            counters: Counters::default(),
            #[cfg(feature = "http3")]
            alt,
        })
    }

    /// The pool the next request goes through: the HTTP/3 alternative's when it is usable
    /// (racing TCP when a connection must be made), else the TCP pool ALPN decided.
    pub(crate) async fn route(self: &Arc<Self>) -> Result<Pool> {
        #[cfg(feature = "http3")]
        if let Some(alt) = &self.alt {
            let routed = self.race(alt).await;
            let h3 = matches!(routed, Some(Ok(Pool::Http3(_))));
            // Written only on a change: no shared cache line bounced per request.
            if alt.last_h3.load(Ordering::Relaxed) != h3 {
                alt.last_h3.store(h3, Ordering::Relaxed);
            }
            if let Some(routed) = routed {
                return routed;
            }
        }
        self.pool().await
    }

    /// HTTP/3 if its alternative is usable and wins; `None`: go over TCP as usual.
    #[cfg(feature = "http3")]
    async fn race(self: &Arc<Self>, alt: &AltH3) -> Option<Result<Pool>> {
        #[cfg(feature = "https-rr")]
        if let Some(lookup) = &alt.records {
            lookup
                .done
                .get_or_init(|| async {
                    let found = lookup
                        .records
                        .h3_alternatives(
                            &self.origin,
                            lookup.nameserver,
                            self.options.connect_timeout,
                        )
                        .await;
                    if !found.is_empty() {
                        alt.cache.learn(
                            &self.origin,
                            Advertised::Alternatives(found),
                            Instant::now(),
                        );
                        alt.advertised.store(true, Ordering::Relaxed);
                    }
                })
                .await;
        }
        if !alt.advertised.load(Ordering::Relaxed) {
            return None;
        }
        let h3 = || Some(Ok(Pool::Http3(alt.pool.clone())));
        // An established QUIC connection keeps serving (no cache lookup on this path); the
        // cache decides only whether to make a new one.
        let (ready, connecting) = alt.pool.readiness();
        if ready {
            return h3();
        }
        alt.cache.usable(&self.origin, Instant::now())?;
        // Every way to TCP from here on is a fallback: counted once, where it is taken.
        let fallback = |tcp: Option<Result<Pool>>| {
            alt.fallbacks.fetch_add(1, Ordering::Relaxed);
            tcp
        };
        if connecting && self.decided.get().is_some() {
            // An earlier request's QUIC attempt is under way: TCP is here now.
            return fallback(None);
        }
        // QUIC gets its own task: its outcome marks the alternative whoever wins the race.
        let (tx, mut quic) = oneshot::channel();
        let (pool, cache, origin) = (alt.pool.clone(), alt.cache.clone(), self.origin.clone());
        self.runtime.spawn(async move {
            let res = pool.checkout(None, None, None).await.map(drop);
            match &res {
                Ok(()) => cache.confirmed(&origin),
                Err(e) if !matches!(e.kind(), ErrorKind::CheckoutTimeout | ErrorKind::Shutdown) => {
                    cache.broken(&origin, Instant::now())
                }
                Err(_) => {}
            }
            let _ = tx.send(res);
        });
        tokio::select! {
            res = &mut quic => return match res {
                Ok(Ok(())) => h3(),
                _ => fallback(None),
            },
            _ = tokio::time::sleep(self.options.happy_eyeballs_delay) => {}
        }
        // The head start is over: TCP too, still taking QUIC if it is up first.
        let tcp = self.pool();
        tokio::pin!(tcp);
        tokio::select! {
            res = &mut quic => if matches!(res, Ok(Ok(()))) {
                return h3();
            },
            res = &mut tcp => return fallback(Some(res)),
        }
        fallback(Some(tcp.await))
    }

    /// Takes in the `alt-svc` headers of a response from this origin.
    pub(crate) fn learn(&self, headers: &http::HeaderMap) {
        #[cfg(feature = "http3")]
        if let Some(alt) = &self.alt {
            let values = headers.get_all(http::header::ALT_SVC);
            if values.iter().next().is_none() {
                return;
            }
            if let Some(advertised) =
                crate::conn::altsvc::parse(values.iter().map(|v| v.as_bytes()))
            {
                let named = matches!(&advertised,
                    Advertised::Alternatives(a) if a.iter().any(|a| !a.max_age.is_zero()));
                alt.cache.learn(&self.origin, advertised, Instant::now());
                alt.advertised.store(named, Ordering::Relaxed);
            }
        }
        #[cfg(not(feature = "http3"))]
        let _ = headers;
    }

    /// The decided pool, deciding it first if needed (once, whoever asks).
    pub(crate) async fn pool(self: &Arc<Self>) -> Result<Pool> {
        if let Some(pool) = self.decided.get() {
            return Ok(pool.clone());
        }
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut deciding = self.deciding.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(pool) = self.decided.get() {
                return Ok(pool.clone());
            }
            match deciding.as_mut() {
                Some(waiters) => {
                    waiters.push(tx);
                    false
                }
                None => {
                    *deciding = Some(vec![tx]);
                    true
                }
            }
        };
        if start {
            // A task of its own: a caller that gives up must not strand the others.
            let me = self.clone();
            self.runtime.spawn(async move {
                let result = me.decide().await;
                // Publish the decision under the lock that newcomers check, so that no caller
                // can slip between "waiters taken" and "decided" and start a second decision.
                let waiters = {
                    let mut deciding = me.deciding.lock().unwrap_or_else(|p| p.into_inner());
                    if let Ok(pool) = &result {
                        let _ = me.decided.set(pool.clone());
                    }
                    deciding.take().unwrap_or_default()
                };
                match result {
                    Ok(pool) => {
                        for w in waiters {
                            let _ = w.send(Ok(pool.clone()));
                        }
                    }
                    Err(e) => {
                        for w in waiters {
                            let _ = w.send(Err(e.clone()));
                        }
                    }
                }
            });
        }
        let res = match rx.await {
            Ok(res) => res,
            Err(_) => Err(Error::new(ErrorKind::Shutdown, "the pool was closed")),
        };
        if res.is_err() {
            self.counters.request();
            self.counters.error();
        }
        res
    }

    fn connector(&self, tls: &Arc<rustls::ClientConfig>) -> Connector {
        Connector {
            dial: self.dial.clone(),
            tls: Some(tls.clone()),
            connect_timeout: self.options.connect_timeout,
            cap: self.cap.clone(),
            events: self.events.clone(),
        }
    }

    async fn decide(&self) -> Result<Pool> {
        let connector = self.connector(&self.tls.auto);
        let connected = connector.connect(&self.origin).await?;
        let runtime = self.runtime.clone();
        if connected.alpn.as_deref() == Some(ALPN_H2) {
            // Later connections offer h2 only: the origin is an HTTP/2 origin now.
            let connector = self.connector(&self.tls.http2);
            let pool = h2::new_pool(
                self.origin.clone(),
                self.options.clone(),
                connector,
                runtime,
            );
            let (origin, options, stream, info, events) = (
                self.origin.clone(),
                self.options.clone(),
                connected.stream,
                connected.info,
                self.events.clone(),
            );
            pool.adopt(move |link| {
                crate::proto::h2::setup(link, stream, origin, options, info, events)
            });
            Ok(Pool::Http2(pool))
        } else {
            let connector = self.connector(&self.tls.http1);
            let pool = H1Pool::new(
                self.origin.clone(),
                self.options.clone(),
                connector,
                None,
                runtime,
            );
            pool.adopt(connected.stream, connected.info).await?;
            Ok(Pool::Http1(pool))
        }
    }

    /// Closes one idle connection of the decided pool or the HTTP/3 alternative's.
    pub(crate) fn evict_idle(&self) -> bool {
        #[cfg(feature = "http3")]
        if self.alt.as_ref().is_some_and(|alt| alt.pool.evict_idle()) {
            return true;
        }
        self.decided.get().is_some_and(Pool::evict_idle)
    }

    /// Closes the decided pool and the HTTP/3 alternative's, if any.
    pub(crate) fn close_all(&self) {
        if let Some(pool) = self.decided.get() {
            pool.close_all();
        }
        #[cfg(feature = "http3")]
        if let Some(alt) = &self.alt {
            alt.pool.close_all();
        }
    }

    pub(crate) fn stats(&self) -> OriginStats {
        let mut stats = match self.decided.get() {
            Some(pool) => pool.stats(),
            None => self.counters.snapshot(&self.origin, Protocol::Auto),
        };
        if self.decided.get().is_some() {
            let before = self.counters.snapshot(&self.origin, Protocol::Auto);
            stats.requests += before.requests;
            stats.errors += before.errors;
        }
        #[cfg(feature = "http3")]
        if let Some(alt) = &self.alt {
            let h3 = alt.pool.stats();
            let now = Instant::now();
            stats.add(&h3);
            if alt.last_h3.load(Ordering::Relaxed) {
                stats.protocol = Protocol::Http3;
            }
            stats.fallbacks = alt.fallbacks.load(Ordering::Relaxed);
            stats.alt_svc = alt.cache.describe(&self.origin, now);
            stats.alt_svc_broken = alt.cache.is_broken(&self.origin, now);
        }
        stats
    }
}
