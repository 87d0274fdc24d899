//! Direct TCP: the resolver's addresses raced with Happy Eyeballs, nodelay set.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::resolve::{PoolResolver, Resolver};
use super::{happy, io_error, BoxFuture, Dial, Stream};
use crate::config::PoolOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// Dials the origin itself over TCP, resolving with the client's resolver under a pool's
/// options (`resolve`, `dns_cache_ttl`, `happy_eyeballs_delay`).
#[derive(Clone)]
pub(crate) struct DirectDial {
    resolver: PoolResolver,
    delay: Duration,
}

impl DirectDial {
    pub(crate) fn new(resolver: &Arc<Resolver>, options: &PoolOptions) -> DirectDial {
        DirectDial {
            resolver: resolver.for_pool(options),
            delay: options.happy_eyeballs_delay,
        }
    }

    /// The addresses of `origin`, as this dialer resolves them (SOCKS5 targets).
    #[cfg(feature = "socks")]
    pub(crate) async fn lookup(&self, origin: &Origin) -> Result<Vec<SocketAddr>> {
        self.resolver.lookup(origin).await
    }
}

impl Dial for DirectDial {
    fn dial<'a>(&'a self, origin: &'a Origin) -> BoxFuture<'a, Result<Stream>> {
        Box::pin(async move { Ok(self.dial_timed(origin).await?.0) })
    }

    fn dial_timed<'a>(
        &'a self,
        origin: &'a Origin,
    ) -> BoxFuture<'a, Result<(Stream, super::Resolved)>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let addrs = self.resolver.lookup(origin).await?;
            let resolved = (started.elapsed(), addrs.len());
            let shown = origin.to_string();
            let tcp = happy::connect(origin, happy::interleave(addrs), self.delay, |addr| {
                Box::pin(connect_one(shown.clone(), addr))
            })
            .await?;
            Ok((Stream::Tcp(tcp), Some(resolved)))
        })
    }
}

/// One connection attempt (bounded by the connector's connect timeout around the race).
async fn connect_one(origin: String, addr: SocketAddr) -> Result<TcpStream> {
    match TcpStream::connect(addr).await {
        Ok(tcp) => {
            // Nagle only delays small requests; quiver writes whole frames.
            tcp.set_nodelay(true)
                .map_err(|e| io_error(&e, "cannot set TCP_NODELAY"))?;
            Ok(tcp)
        }
        Err(e) => {
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
    }
}
