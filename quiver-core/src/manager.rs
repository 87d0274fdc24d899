//! The pool manager: origin → pool, each pool built once from the rule that matches its
//! origin, with the dialer (direct, or a proxy's) its connections use.
//!
//! The hot path takes a read lock only; a pool is created once per origin under the write lock
//! (racing first requests end up on the same pool).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::runtime::Handle;

use crate::config::{PoolOptions, Protocol, ResolvedRule, RuleTable};
#[cfg(feature = "http3")]
use crate::conn::altsvc::AltSvcCache;
use crate::conn::limit::{Cap, ConnLimit};
use crate::conn::resolve::Resolver;
use crate::conn::tcp::DirectDial;
use crate::conn::tls::RuleTls;
use crate::conn::{Connector, Dial};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Origin, Scheme};
use crate::pool::auto::AutoPool;
use crate::pool::h1::H1Pool;
use crate::pool::{h2, Pool};
use crate::proxy::connect::ProxyRoute;
use crate::proxy::upstream::Upstreams;
use crate::proxy::{EnvProxies, Proxy};
use crate::request::ProxyForm;
use crate::stats::OriginStats;

/// An origin's pool and the rule it was built from.
#[derive(Clone)]
pub(crate) struct Route {
    pub pool: Pool,
    pub rule: Arc<ResolvedRule>,
}

type Pools = HashMap<Origin, Route>;

/// The origin → pool registry of one client, and what steers it.
pub(crate) struct Manager {
    rules: RuleTable,
    tls: HashMap<String, RuleTls>,
    runtime: Handle,
    /// Shared with the connection cap's evictor, which closes idle connections to make room.
    pools: Arc<RwLock<Pools>>,
    /// Pools for requests that ask for another protocol than their origin's rule (one per
    /// origin and protocol), shared with the evictor too.
    other_protocols: Arc<RwLock<HashMap<(Origin, Protocol), Route>>>,
    /// The client-wide connection cap (`max_total_connections`), if set.
    cap: Option<Arc<ConnLimit>>,
    /// The proxy environment variables, read when the client was built.
    env: EnvProxies,
    /// Pooled connections to proxies.
    pub(crate) upstreams: Arc<Upstreams>,
    /// Name resolution and its cache, shared by every pool.
    resolver: Arc<Resolver>,
    /// HTTP/3 alternatives origins advertised, shared by every `auto` pool.
    #[cfg(feature = "http3")]
    pub(crate) alt_svc: Arc<AltSvcCache>,
    /// HTTPS-record resolvers (`https_rr`), shared by every `auto` pool.
    #[cfg(feature = "https-rr")]
    https_records: Arc<crate::conn::https_rr::HttpsRecords>,
    /// The client's event listeners, if any (connections report their life to them).
    events: Option<crate::events::Events>,
    closed: AtomicBool,
}

impl Manager {
    pub(crate) fn new(
        rules: RuleTable,
        runtime: Handle,
        resolver: Arc<Resolver>,
        events: Option<crate::events::Events>,
    ) -> Result<Manager> {
        let mut tls = HashMap::new();
        for rule in rules.all() {
            let configs = RuleTls::new(&rule.options).map_err(|e| {
                Error::invalid_config(format!("pool rule `{}`: {}", rule.name, e.message()))
            })?;
            tls.insert(rule.name.clone(), configs);
        }
        let pools: Arc<RwLock<Pools>> = Arc::default();
        let other_protocols: Arc<RwLock<HashMap<(Origin, Protocol), Route>>> = Arc::default();
        let cap = match rules.defaults().max_total_connections {
            0 => None,
            max => {
                let limit = ConnLimit::new(max);
                let (weak, weak_other) = (Arc::downgrade(&pools), Arc::downgrade(&other_protocols));
                limit.set_evictor(Box::new(move || {
                    let mut all: Vec<Pool> = Vec::new();
                    if let Some(pools) = weak.upgrade() {
                        let pools = pools.read().unwrap_or_else(|p| p.into_inner());
                        all.extend(pools.values().map(|r| r.pool.clone()));
                    }
                    if let Some(pools) = weak_other.upgrade() {
                        let pools = pools.read().unwrap_or_else(|p| p.into_inner());
                        all.extend(pools.values().map(|r| r.pool.clone()));
                    }
                    all.iter().any(Pool::evict_idle)
                }));
                Some(limit)
            }
        };
        Ok(Manager {
            cap,
            rules,
            tls,
            env: EnvProxies::from_env(),
            upstreams: Arc::new(Upstreams::new(runtime.clone(), resolver.clone())),
            resolver,
            #[cfg(feature = "http3")]
            alt_svc: Arc::new(AltSvcCache::default()),
            #[cfg(feature = "https-rr")]
            https_records: Arc::default(),
            runtime,
            pools,
            other_protocols,
            events,
            closed: AtomicBool::new(false),
        })
    }

    /// The rule table the client was built with.
    pub(crate) fn rules(&self) -> &RuleTable {
        &self.rules
    }

    /// Shuts every pool and pooled proxy connection down; later requests fail with `shutdown`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut pools: Vec<Pool> = self
            .pools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, r)| r.pool)
            .collect();
        pools.extend(
            self.other_protocols
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .drain()
                .map(|(_, r)| r.pool),
        );
        for pool in pools {
            pool.close_all();
        }
        self.upstreams.close_all();
    }

    /// The pool for `origin`, created on first use.
    #[cfg(feature = "http3")]
    pub(crate) fn pool(&self, origin: &Origin) -> Result<Pool> {
        self.route(origin, None).map(|r| r.pool)
    }

    /// The pool for `origin` and its rule, created on first use; with `protocol`, the origin's
    /// pool for that protocol instead of the rule's (a request asking for one).
    pub(crate) fn route(&self, origin: &Origin, protocol: Option<Protocol>) -> Result<Route> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Shutdown, "the client was closed"));
        }
        if let Some(route) = self
            .pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
        {
            match protocol {
                Some(p) if p != route.rule.options.protocol => {}
                _ => return Ok(route.clone()),
            }
        }
        if let Some(p) = protocol {
            let rule = self.rules.lookup(origin);
            if p != rule.options.protocol {
                return self.other_protocol(origin, p);
            }
        }
        let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
        if let Some(route) = pools.get(origin) {
            return Ok(route.clone());
        }
        let rule = self.rules.lookup(origin).clone();
        let route = Route {
            pool: self.build_pool(origin, &rule.options)?,
            rule,
        };
        pools.insert(origin.clone(), route.clone());
        Ok(route)
    }

    fn other_protocol(&self, origin: &Origin, protocol: Protocol) -> Result<Route> {
        let key = (origin.clone(), protocol);
        if let Some(route) = self
            .other_protocols
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(route.clone());
        }
        let mut pools = self
            .other_protocols
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(route) = pools.get(&key) {
            return Ok(route.clone());
        }
        let rule = self.rules.lookup(origin).clone();
        let mut options = (*rule.options).clone();
        options.protocol = protocol;
        options.early_data &= protocol == Protocol::Http3;
        options.validate(Some(origin.scheme())).map_err(|e| {
            Error::invalid_config(format!("protocol {protocol} for {origin}: {}", e.message()))
        })?;
        let route = Route {
            pool: self.build_pool(origin, &Arc::new(options))?,
            rule,
        };
        pools.insert(key, route.clone());
        Ok(route)
    }

    fn rule_tls(&self, rule: &ResolvedRule) -> Result<RuleTls> {
        self.tls
            .get(&rule.name)
            .cloned()
            .ok_or_else(|| Error::internal("no TLS config for a rule"))
    }

    fn build_pool(&self, origin: &Origin, options: &Arc<PoolOptions>) -> Result<Pool> {
        let rule: &Arc<ResolvedRule> = self.rules.lookup(origin);
        let options = options.clone();
        let tls = self.rule_tls(rule)?;
        let https = origin.scheme() == Scheme::Https;
        let runtime = self.runtime.clone();
        // Cleartext origins speak HTTP/1.1 unless asked for h2c (http3 from a client-wide
        // default cannot apply to them).
        let protocol = match (options.protocol, https) {
            (Protocol::Auto | Protocol::Http3, false) => Protocol::Http1,
            (p, _) => p,
        };
        // TLS to the proxy is verified with the proxy's own rule: an origin's trust settings
        // (`danger_accept_invalid_certs`, its client certificate) never reach the proxy.
        let proxy = match options.unix_socket {
            Some(_) => None,
            None => Proxy::for_origin(&options, &self.env, origin)?,
        };
        let socks = match &proxy {
            Some(p) if p.socks.is_some() => {
                if protocol == Protocol::Http3 {
                    return Err(Error::invalid_config(format!(
                        "{origin} speaks HTTP/3, which a SOCKS5 proxy cannot carry"
                    )));
                }
                #[cfg(feature = "socks")]
                let dial = crate::proxy::socks::dialer(p, &self.resolver, &options);
                #[cfg(not(feature = "socks"))]
                let dial = None;
                Some(dial.ok_or_else(|| {
                    Error::invalid_config("SOCKS5 proxies need quiver's `socks` feature")
                })?)
            }
            _ => None,
        };
        let route = match proxy.filter(|p| p.socks.is_none()) {
            Some(proxy) => {
                let proxy_rule = self.rules.lookup(&proxy.origin);
                Some(Arc::new(ProxyRoute {
                    tls: self.rule_tls(proxy_rule)?,
                    proxy_options: proxy_rule.options.clone(),
                    proxy,
                    options: options.clone(),
                    upstreams: self.upstreams.clone(),
                }))
            }
            None => None,
        };
        #[cfg(feature = "http3")]
        let direct = socks.is_none() && route.is_none() && options.unix_socket.is_none();
        // http targets through a proxy go to it in absolute form; everything else tunnels.
        let (dial, proxy_form): (Arc<dyn Dial>, Option<ProxyForm>) = match (socks, &route, protocol)
        {
            (Some(socks), _, _) => (socks, None),
            #[cfg(unix)]
            (None, None, _) if options.unix_socket.is_some() => (
                Arc::new(crate::conn::unix::UnixDial::new(
                    options.unix_socket.clone().unwrap_or_default(),
                )),
                None,
            ),
            (None, None, _) => (Arc::new(DirectDial::new(&self.resolver, &options)), None),
            (None, Some(r), Protocol::Http1) if !https => (
                r.forward_dial(),
                Some(ProxyForm {
                    authorization: r.proxy.authorization.clone(),
                }),
            ),
            (None, Some(r), _) => (r.tunnel_dial(), None),
        };
        let cap = self.cap.clone().map(|limit| Cap {
            limit,
            wait: options.checkout_timeout,
        });
        let connector = |config: &Arc<rustls::ClientConfig>| Connector {
            dial: dial.clone(),
            tls: https.then(|| config.clone()),
            connect_timeout: options.connect_timeout,
            cap: cap.clone(),
            events: self.events.clone(),
        };
        Ok(match protocol {
            #[cfg(feature = "http3")]
            Protocol::Http3 => {
                let path: Arc<dyn crate::conn::udp::QuicPath> = match route {
                    #[cfg(feature = "masque")]
                    Some(r) => Arc::new(crate::proxy::socket::TunneledQuic::new(r)),
                    #[cfg(not(feature = "masque"))]
                    Some(_) => {
                        return Err(Error::invalid_config(
                            "HTTP/3 through a proxy needs quiver's `masque` feature",
                        ))
                    }
                    None => Arc::new(crate::conn::udp::DirectUdp::new(&self.resolver, &options)),
                };
                Pool::Http3(crate::pool::h3::new_pool(
                    origin.clone(),
                    options.clone(),
                    tls.http3.clone(),
                    runtime,
                    path,
                    cap,
                    self.events.clone(),
                )?)
            }
            #[cfg(not(feature = "http3"))]
            Protocol::Http3 => {
                return Err(Error::invalid_config(
                    "protocol `http3` needs quiver's `http3` feature",
                ))
            }
            Protocol::Http2 => Pool::Http2(h2::new_pool(
                origin.clone(),
                options.clone(),
                connector(&tls.http2),
                runtime,
            )),
            Protocol::Auto => {
                // HTTP/3 alternatives only on direct paths: not through proxies or a socket file.
                #[cfg(feature = "http3")]
                let alt = match options.alt_svc && direct {
                    true => {
                        let path = crate::conn::udp::DirectUdp::new(&self.resolver, &options)
                            .via_alternatives(self.alt_svc.clone());
                        let alt = crate::pool::auto::AltH3::new(
                            crate::pool::h3::new_pool(
                                origin.clone(),
                                options.clone(),
                                tls.http3.clone(),
                                runtime.clone(),
                                Arc::new(path),
                                cap.clone(),
                                self.events.clone(),
                            )?,
                            self.alt_svc.clone(),
                        );
                        #[cfg(feature = "https-rr")]
                        let alt = match options.https_rr {
                            true => alt.with_records(crate::pool::auto::RecordLookup::new(
                                self.https_records.clone(),
                                options
                                    .https_rr_nameserver
                                    .as_deref()
                                    .and_then(|ns| ns.parse().ok()),
                            )),
                            false => alt,
                        };
                        Some(alt)
                    }
                    false => None,
                };
                Pool::Auto(AutoPool::new(
                    origin.clone(),
                    options.clone(),
                    tls,
                    dial,
                    cap,
                    runtime,
                    self.events.clone(),
                    #[cfg(feature = "http3")]
                    alt,
                ))
            }
            Protocol::Http1 => Pool::Http1(H1Pool::new(
                origin.clone(),
                options.clone(),
                connector(&tls.http1),
                proxy_form,
                runtime,
            )),
        })
    }

    /// A route through `proxy_url` for UDP tunnels, with the TLS settings and limits of the rule
    /// that matches the proxy's own origin.
    #[cfg(feature = "masque")]
    pub(crate) fn proxy_route(&self, proxy_url: &str, protocol: Protocol) -> Result<ProxyRoute> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Shutdown, "the client was closed"));
        }
        let (origin, authorization) = crate::origin::parse_proxy_url(proxy_url)?;
        let rule = self.rules.lookup(&origin);
        Ok(ProxyRoute {
            proxy: Proxy {
                origin,
                authorization,
                protocol,
                socks: None,
            },
            tls: self.rule_tls(rule)?,
            proxy_options: rule.options.clone(),
            options: rule.options.clone(),
            upstreams: self.upstreams.clone(),
        })
    }

    /// Stats of every pool.
    pub(crate) fn stats(&self) -> Vec<OriginStats> {
        let pools: Vec<Pool> = self
            .pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|r| r.pool.clone())
            .collect();
        let others: Vec<Pool> = self
            .other_protocols
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|r| r.pool.clone())
            .collect();
        let mut stats: Vec<OriginStats> = pools.iter().map(Pool::stats).collect();
        stats.extend(others.iter().map(|p| OriginStats {
            per_request: true,
            ..p.stats()
        }));
        // A dial waiting for room under the cap is not a connection yet.
        if let Some(cap) = &self.cap {
            for o in &mut stats {
                let waiting = cap.waiting(&o.origin);
                o.connections = o.connections.saturating_sub(waiting);
                if o.protocol == Protocol::Http1 {
                    o.active = o.active.saturating_sub(waiting);
                }
            }
        }
        stats
    }
}
