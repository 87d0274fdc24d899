//! The pool manager (origin → pool registry) and the pools, one kind per protocol.

pub(crate) mod h1;
pub(crate) mod h1_state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::runtime::Handle;

use crate::config::{Protocol, ResolvedRule, RuleTable};
use crate::error::Result;
use crate::origin::{Origin, Scheme};
use crate::request::Request;
use crate::response::StreamResponse;
use crate::stats::OriginStats;
use crate::transport::tls::{self, ALPN_HTTP1};
use crate::transport::Connector;

use self::h1::H1Pool;

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

/// One origin's pool.
#[derive(Clone)]
pub(crate) enum Pool {
    Http1(Arc<H1Pool>),
}

impl Pool {
    fn counters(&self) -> &Counters {
        match self {
            Pool::Http1(p) => &p.counters,
        }
    }

    /// Sends a request through this pool; returns once the response head arrived.
    pub(crate) async fn send(&self, req: Request) -> Result<StreamResponse> {
        let counters = self.counters();
        counters.request();
        let res = match self {
            Pool::Http1(p) => p.send(req).await,
        };
        if res.is_err() {
            counters.error();
        }
        res
    }

    pub(crate) fn stats(&self) -> OriginStats {
        match self {
            Pool::Http1(p) => p.stats(),
        }
    }
}

/// TLS configs for one rule, built (and validated) when the client is built.
struct RuleTls {
    http1: Arc<rustls::ClientConfig>,
}

/// The origin → pool registry. The hot path takes a read lock only; a pool is created once
/// per origin under the write lock (racing first requests end up on the same pool).
pub(crate) struct Manager {
    rules: RuleTable,
    tls: HashMap<String, RuleTls>,
    runtime: Handle,
    pools: RwLock<HashMap<Origin, Pool>>,
}

impl Manager {
    pub(crate) fn new(rules: RuleTable, runtime: Handle) -> Result<Manager> {
        let mut tls = HashMap::new();
        for rule in rules.all() {
            let http1 = tls::client_config(&rule.options, &[ALPN_HTTP1]).map_err(|e| {
                crate::Error::invalid_config(format!("pool rule `{}`: {}", rule.name, e.message()))
            })?;
            tls.insert(rule.name.clone(), RuleTls { http1 });
        }
        Ok(Manager {
            rules,
            tls,
            runtime,
            pools: RwLock::new(HashMap::new()),
        })
    }

    /// The pool for `origin`, created on first use.
    pub(crate) fn pool(&self, origin: &Origin) -> Pool {
        if let Some(pool) = self
            .pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
        {
            return pool.clone();
        }
        let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
        pools
            .entry(origin.clone())
            .or_insert_with(|| self.build_pool(origin))
            .clone()
    }

    fn build_pool(&self, origin: &Origin) -> Pool {
        let rule: &Arc<ResolvedRule> = self.rules.lookup(origin);
        let options = rule.options.clone();
        let tls = self.tls.get(&rule.name);
        let connector = Connector {
            tls: match origin.scheme() {
                Scheme::Https => tls.map(|t| t.http1.clone()),
                Scheme::Http => None,
            },
            connect_timeout: options.connect_timeout,
        };
        match options.protocol {
            Protocol::Auto | Protocol::Http1 | Protocol::Http2 | Protocol::Http3 => Pool::Http1(
                H1Pool::new(origin.clone(), options, connector, self.runtime.clone()),
            ),
        }
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
