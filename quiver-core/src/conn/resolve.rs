//! Name resolution: the [`Resolve`] trait (the system resolver by default, or one a Rust user
//! supplies), `resolve` overrides (`host:port:address`, as `curl --resolve` takes them) and a
//! client-wide cache whose entries live for the pool's `dns_cache_ttl`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Override, PoolOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Host, Origin};

/// What a [`Resolve`] implementation returns: the addresses of a name, in preference order.
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses. Implement it to plug in another resolver (a DNS library,
/// service discovery) with [`crate::ClientBuilder::resolver`]; quiver caches what it returns
/// for `dns_cache_ttl` and races the addresses with Happy Eyeballs.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `name` (lower-case, no trailing dot), best first. An empty list or an
    /// error fails the connection with a `dns` error.
    fn resolve(&self, name: &str) -> Resolving;
}

/// The operating system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: &str) -> Resolving {
        let name = name.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Most names the cache holds; past it, expired entries go, then everything.
const CACHE_LIMIT: usize = 4096;

/// Cached answers: name → addresses and when they expire.
type Cache = HashMap<String, (Arc<[IpAddr]>, Instant)>;

/// One client's resolver: the resolver proper and the cache in front of it.
pub(crate) struct Resolver {
    inner: Arc<dyn Resolve>,
    cache: Mutex<Cache>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(Arc::new(SystemResolver))
    }
}

impl Resolver {
    pub(crate) fn new(inner: Arc<dyn Resolve>) -> Resolver {
        Resolver {
            inner,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Name resolution as one pool does it: its `resolve` overrides (parsed once, here) and
    /// its `dns_cache_ttl`, in front of this resolver.
    pub(crate) fn for_pool(self: &Arc<Self>, options: &PoolOptions) -> PoolResolver {
        PoolResolver {
            resolver: self.clone(),
            // Validated when the client was built.
            overrides: options
                .resolve
                .as_deref()
                .map(|spec| Override::parse_all(spec).unwrap_or_default())
                .unwrap_or_default(),
            ttl: options.dns_cache_ttl.filter(|t| !t.is_zero()),
        }
    }
}

/// One pool's view of the client's resolver.
#[derive(Clone)]
pub(crate) struct PoolResolver {
    resolver: Arc<Resolver>,
    overrides: Vec<Override>,
    ttl: Option<Duration>,
}

impl PoolResolver {
    /// The addresses to try for `origin`: an IP literal is itself, a `resolve` override wins,
    /// then a fresh cache entry, then the resolver.
    pub(crate) async fn lookup(&self, origin: &Origin) -> Result<Vec<SocketAddr>> {
        let port = origin.port();
        let name = match origin.host() {
            Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
            Host::Name(name) => name,
        };
        if let Some(addrs) = Override::find(&self.overrides, name, port) {
            return Ok(addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        }
        let (ttl, this) = (self.ttl, &*self.resolver);
        if ttl.is_some() {
            let cache = this.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((addrs, until)) = cache.get(name.as_str()) {
                if *until > Instant::now() {
                    return Ok(addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
                }
            }
        }
        let addrs = this.inner.resolve(name).await.map_err(|e| {
            Error::with_source(ErrorKind::Dns, format!("cannot resolve `{name}`: {e}"), e)
        })?;
        if addrs.is_empty() {
            return Err(Error::new(
                ErrorKind::Dns,
                format!("`{name}` has no address"),
            ));
        }
        if let Some(ttl) = ttl {
            let mut cache = this.cache.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if cache.len() >= CACHE_LIMIT {
                cache.retain(|_, (_, until)| *until > now);
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
            }
            cache.insert(name.clone(), (addrs.as_slice().into(), now + ttl));
        }
        Ok(addrs
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(std::sync::atomic::AtomicUsize);
    impl Resolve for Counting {
        fn resolve(&self, _: &str) -> Resolving {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Ok(vec![IpAddr::from([127, 0, 0, 1])]) })
        }
    }

    #[tokio::test]
    async fn the_cache_serves_within_its_ttl_and_asks_again_after() {
        let counting = Arc::new(Counting(Default::default()));
        let resolver = Arc::new(Resolver::new(counting.clone()));
        let origin = Origin::parse("http://cached.test:8080").unwrap();
        let mut options = PoolOptions {
            dns_cache_ttl: Some(Duration::from_millis(200)),
            ..PoolOptions::default()
        };
        let calls = || counting.0.load(std::sync::atomic::Ordering::SeqCst);
        let first = resolver.for_pool(&options).lookup(&origin).await.unwrap();
        assert_eq!(first, vec![SocketAddr::from(([127, 0, 0, 1], 8080))]);
        resolver.for_pool(&options).lookup(&origin).await.unwrap();
        assert_eq!(calls(), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        resolver.for_pool(&options).lookup(&origin).await.unwrap();
        assert_eq!(calls(), 2);
        options.dns_cache_ttl = None;
        resolver.for_pool(&options).lookup(&origin).await.unwrap();
        resolver.for_pool(&options).lookup(&origin).await.unwrap();
        assert_eq!(calls(), 4);
    }
}
