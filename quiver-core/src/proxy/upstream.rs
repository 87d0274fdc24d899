//! The upstream pool: pooled connections to proxies, shared by every tunnel to the same proxy
//! with the same connection-affecting settings (MASQUE's `masque_upstream_pool`).
//!
//! Each key (a fingerprint: host, port, transport, and a hash of trust and ALPN settings,
//! order-independent) gets its own coordinator: concurrent callers wait on one dial
//! (single-flight), a slow proxy stalls only its own key, a full connection gets a sibling, idle
//! connections close. HTTP/1.1 is not pooled: asking for it is `pool_unsupported_for_transport`,
//! and callers use a connection per tunnel instead.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use super::Proxy;
use crate::config::{PoolOptions, Protocol};
use crate::conn::resolve::Resolver;
use crate::conn::tcp::DirectDial;
use crate::conn::tls::RuleTls;
use crate::conn::Connector;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::pool::h2::{self, H2Pool};
#[cfg(feature = "masque")]
use crate::pool::h3::{self as h3pool, H3Pool};
use crate::stats::OriginStats;

/// Which protocol a pooled proxy connection speaks.
#[cfg_attr(not(feature = "masque"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    Http1,
    Http2,
    Http3,
}

/// The key of a pooled proxy connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// Hash of the trust settings and ALPN list (sorted), so that list order does not matter.
    pub settings: u64,
}

impl Fingerprint {
    pub(crate) fn new(
        origin: &Origin,
        transport: Transport,
        options: &PoolOptions,
        alpn: &[&[u8]],
    ) -> Fingerprint {
        let mut h = DefaultHasher::new();
        options.danger_accept_invalid_certs.hash(&mut h);
        options.ca_file.hash(&mut h);
        options.tls_roots.hash(&mut h);
        options.client_cert.hash(&mut h);
        options.client_key.hash(&mut h);
        let mut alpn: Vec<&[u8]> = alpn.to_vec();
        alpn.sort();
        alpn.hash(&mut h);
        Fingerprint {
            host: origin.host().to_authority_string(),
            port: origin.port(),
            transport,
            settings: h.finish(),
        }
    }
}

#[derive(Clone)]
enum Upstream {
    Http2(Arc<H2Pool>),
    #[cfg(feature = "masque")]
    Http3(Arc<H3Pool>),
}

/// The registry of pooled proxy connections of one client.
pub(crate) struct Upstreams {
    runtime: Handle,
    /// The client's resolver, for the proxies' own names.
    pub(crate) resolver: Arc<Resolver>,
    pools: Mutex<HashMap<Fingerprint, Upstream>>,
}

impl Upstreams {
    pub(crate) fn new(runtime: Handle, resolver: Arc<Resolver>) -> Upstreams {
        Upstreams {
            runtime,
            resolver,
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, Upstream>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The options of a pooled proxy connection: the routing rule's, with the protocol fixed.
    fn options_for(options: &PoolOptions, protocol: Protocol) -> Arc<PoolOptions> {
        let mut o = options.clone();
        o.protocol = protocol;
        o.early_data = false;
        o.proxy = None;
        Arc::new(o)
    }

    /// The pooled HTTP/2 connections to `proxy`.
    pub(crate) fn http2(&self, proxy: &Proxy, tls: &RuleTls, options: &PoolOptions) -> Arc<H2Pool> {
        let key = Fingerprint::new(
            &proxy.origin,
            Transport::Http2,
            options,
            &[crate::conn::tls::ALPN_H2],
        );
        let mut pools = self.lock();
        if let Some(Upstream::Http2(p)) = pools.get(&key) {
            return p.clone();
        }
        let options = Self::options_for(options, Protocol::Http2);
        let connector = Connector {
            dial: Arc::new(DirectDial::new(&self.resolver, &options)),
            tls: matches!(proxy.origin.scheme(), crate::origin::Scheme::Https)
                .then(|| tls.http2.clone()),
            connect_timeout: options.connect_timeout,
            cap: None,
            events: None,
        };
        let pool = h2::new_pool(
            proxy.origin.clone(),
            options,
            connector,
            self.runtime.clone(),
        );
        pools.insert(key, Upstream::Http2(pool.clone()));
        pool
    }

    /// The pooled HTTP/3 connections to `proxy` (datagrams on, MTU sized to carry QUIC).
    #[cfg(feature = "masque")]
    pub(crate) fn http3(
        &self,
        proxy: &Proxy,
        tls: &RuleTls,
        options: &PoolOptions,
    ) -> Result<Arc<H3Pool>> {
        let key = Fingerprint::new(
            &proxy.origin,
            Transport::Http3,
            options,
            &[crate::conn::tls::ALPN_H3],
        );
        let mut pools = self.lock();
        if let Some(Upstream::Http3(p)) = pools.get(&key) {
            return Ok(p.clone());
        }
        let options = Self::options_for(options, Protocol::Http3);
        let path = crate::conn::udp::DirectUdp::new(&self.resolver, &options);
        let pool = h3pool::new_pool(
            proxy.origin.clone(),
            options,
            tls.http3.clone(),
            self.runtime.clone(),
            // Room for a tunnelled QUIC packet (at least 1200 bytes) plus the framing.
            Arc::new(path.with_initial_mtu(1452)),
            None,
            None,
        )?;
        pools.insert(key, Upstream::Http3(pool.clone()));
        Ok(pool)
    }

    /// Pooled connections of the given transport; HTTP/1.1 is not pooled.
    #[cfg_attr(not(feature = "masque"), allow(dead_code))]
    pub(crate) fn check_transport(transport: Transport) -> Result<()> {
        match transport {
            Transport::Http1 => Err(Error::new(
                ErrorKind::PoolUnsupportedForTransport,
                "tunnels over HTTP/1.1 are not pooled: each uses a connection of its own",
            )),
            Transport::Http2 | Transport::Http3 => Ok(()),
        }
    }

    /// Tears every pooled proxy connection down; callers in flight get a `shutdown` error.
    pub(crate) fn close_all(&self) {
        let pools: Vec<Upstream> = self.lock().drain().map(|(_, p)| p).collect();
        for pool in pools {
            match pool {
                Upstream::Http2(p) => p.close_all(),
                #[cfg(feature = "masque")]
                Upstream::Http3(p) => p.close_all(),
            }
        }
    }

    /// Stats of every pooled proxy connection set.
    pub(crate) fn stats(&self) -> Vec<OriginStats> {
        let pools: Vec<Upstream> = self.lock().values().cloned().collect();
        pools
            .iter()
            .map(|p| match p {
                Upstream::Http2(p) => p.stats(),
                #[cfg(feature = "masque")]
                Upstream::Http3(p) => p.stats(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_trust_and_ignore_alpn_order() {
        let origin = Origin::parse("https://proxy.example:8443").unwrap();
        let base = PoolOptions::default();
        let a = Fingerprint::new(&origin, Transport::Http2, &base, &[b"h2", b"http/1.1"]);
        let b = Fingerprint::new(&origin, Transport::Http2, &base, &[b"http/1.1", b"h2"]);
        assert_eq!(a, b, "ALPN order does not matter");
        let mut other_trust = base.clone();
        other_trust.danger_accept_invalid_certs = true;
        assert_ne!(
            a,
            Fingerprint::new(&origin, Transport::Http2, &other_trust, &[b"h2"])
        );
        let mut other_ca = base.clone();
        other_ca.ca_file = Some("/etc/other-ca.pem".into());
        assert_ne!(
            a.settings,
            Fingerprint::new(&origin, Transport::Http2, &other_ca, &[b"h2", b"http/1.1"]).settings
        );
        // Per-tunnel settings are not part of the key.
        let mut other_timeout = base.clone();
        other_timeout.checkout_timeout = std::time::Duration::from_secs(1);
        assert_eq!(
            a,
            Fingerprint::new(
                &origin,
                Transport::Http2,
                &other_timeout,
                &[b"h2", b"http/1.1"]
            )
        );
        assert_ne!(
            a,
            Fingerprint::new(&origin, Transport::Http3, &base, &[b"h2", b"http/1.1"])
        );
        assert!(Upstreams::check_transport(Transport::Http1).is_err());
    }
}
