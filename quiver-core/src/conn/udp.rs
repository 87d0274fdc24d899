//! UDP paths for QUIC: where a pool's QUIC connections send their packets. [`DirectUdp`] uses
//! the pool's own UDP sockets; the proxy module provides a path through a CONNECT-UDP tunnel.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::altsvc::AltSvcCache;
use super::resolve::{PoolResolver, Resolver};
use super::BoxFuture;
use crate::config::PoolOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// Where QUIC for an origin goes: UDP endpoints and the peer addresses to try (raced with
/// Happy Eyeballs, in this order).
pub(crate) trait QuicPath: Send + Sync + 'static {
    /// The endpoints and peer addresses to try for `origin`, in order.
    fn candidates<'a>(
        &'a self,
        origin: &'a Origin,
    ) -> BoxFuture<'a, Result<Vec<(quinn::Endpoint, SocketAddr)>>>;

    /// Adjusts the QUIC transport settings of connections over this path.
    fn tune(&self, _config: &mut quinn::TransportConfig) {}
}

/// The pool's own UDP sockets: one endpoint per address family, created on first use; peer
/// addresses from the client's resolver under the pool's options.
pub(crate) struct DirectUdp {
    v4: Mutex<Option<quinn::Endpoint>>,
    v6: Mutex<Option<quinn::Endpoint>>,
    initial_mtu: Option<u16>,
    resolver: PoolResolver,
    /// Set: connect to the origin's advertised HTTP/3 alternative instead of the origin.
    alternatives: Option<Arc<AltSvcCache>>,
}

impl DirectUdp {
    pub(crate) fn new(resolver: &Arc<Resolver>, options: &PoolOptions) -> DirectUdp {
        DirectUdp {
            v4: Mutex::new(None),
            v6: Mutex::new(None),
            initial_mtu: None,
            resolver: resolver.for_pool(options),
            alternatives: None,
        }
    }

    /// A path to the alternative `cache` holds for the origin (its host and port, as
    /// advertised in `alt-svc`), rather than to the origin itself.
    pub(crate) fn via_alternatives(mut self, cache: Arc<AltSvcCache>) -> DirectUdp {
        self.alternatives = Some(cache);
        self
    }

    /// A path whose connections start with a larger MTU than QUIC's 1200 bytes (a proxy
    /// connection that must carry tunnelled QUIC packets of at least 1200 bytes each).
    #[cfg(feature = "masque")]
    pub(crate) fn with_initial_mtu(mut self, mtu: u16) -> DirectUdp {
        self.initial_mtu = Some(mtu);
        self
    }

    fn for_addr(&self, addr: SocketAddr) -> Result<quinn::Endpoint> {
        let (slot, bind): (&Mutex<Option<quinn::Endpoint>>, SocketAddr) = if addr.is_ipv4() {
            (&self.v4, SocketAddr::from(([0, 0, 0, 0], 0)))
        } else {
            (&self.v6, SocketAddr::from(([0u16; 8], 0)))
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| {
            Error::with_source(
                ErrorKind::ConnectFailed,
                format!("cannot open a UDP socket: {e}"),
                e,
            )
        })?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }
}

impl QuicPath for DirectUdp {
    fn candidates<'a>(
        &'a self,
        origin: &'a Origin,
    ) -> BoxFuture<'a, Result<Vec<(quinn::Endpoint, SocketAddr)>>> {
        Box::pin(async move {
            let addrs = match &self.alternatives {
                None => self.resolver.lookup(origin).await?,
                Some(cache) => {
                    let target = cache.usable(origin, Instant::now()).ok_or_else(|| {
                        Error::new(
                            ErrorKind::ConnectFailed,
                            format!("{origin} has no usable HTTP/3 alternative now"),
                        )
                    })?;
                    if target.hints.is_empty() {
                        let alternative = Origin::new(origin.scheme(), target.host, target.port);
                        self.resolver.lookup(&alternative).await?
                    } else {
                        let port = target.port;
                        target
                            .hints
                            .iter()
                            .map(|ip| SocketAddr::new(*ip, port))
                            .collect()
                    }
                }
            };
            super::happy::interleave(addrs)
                .into_iter()
                .map(|a| Ok((self.for_addr(a)?, a)))
                .collect()
        })
    }

    fn tune(&self, config: &mut quinn::TransportConfig) {
        if let Some(mtu) = self.initial_mtu {
            config.initial_mtu(mtu);
        }
    }
}
