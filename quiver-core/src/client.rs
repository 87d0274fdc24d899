//! The client: resolves a request's origin, asks the pool manager for that origin's pool and
//! delegates. Cheap to clone; every clone shares the same pools.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::FutureExt;
use tokio::runtime::Handle;

use crate::config::{OptionValue, PoolSettings, RuleTable};
use crate::conn::resolve::{Resolve, Resolver};
#[cfg(feature = "http3")]
use crate::datagram::{DatagramChannel, DatagramOptions};
use crate::embed::runtime;
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::manager::Manager;
#[cfg(feature = "http3")]
use crate::pool::Pool;
#[cfg(feature = "masque")]
use crate::proxy::masque::{UdpTunnel, UdpTunnelOptions};
use crate::request::Request;
use crate::response::{Response, StreamResponse};
use crate::signal::Signal;
use crate::stats::ClientStats;

/// An HTTP client with a connection pool per origin. `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Manager,
    /// Redirects, decoding, cookies and credentials around each request.
    layer: Layer,
    runtime: Handle,
    fork_generation: u64,
    /// Fired by `close()`.
    closed: Arc<Signal>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client with every option at its default.
    pub fn new() -> Result<Client> {
        Client::builder().build()
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The runtime that owns this client's connections.
    pub fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// True in a child process forked after this client was created: the client refuses to
    /// work there (kind `forked`); create a new one in the child.
    pub fn is_forked(&self) -> bool {
        runtime::fork_generation() != self.inner.fork_generation
    }

    fn check_fork(&self) -> Result<()> {
        if self.is_forked() {
            return Err(Error::new(
                ErrorKind::Forked,
                "this client was created before fork(); create a new client in the child process",
            ));
        }
        Ok(())
    }

    /// Sends a request and reads the whole response.
    pub async fn request(&self, req: Request) -> Result<Response> {
        self.stream(req).await?.collect().await
    }

    /// Sends a GET request and reads the whole response.
    pub async fn get(&self, url: &str) -> Result<Response> {
        self.request(Request::get(url).build()?).await
    }

    /// Sends a request and returns as soon as the response head arrives; the body is pulled
    /// chunk by chunk from the returned [`StreamResponse`].
    pub async fn stream(&self, req: Request) -> Result<StreamResponse> {
        self.check_fork()?;
        let client = self.clone();
        self.in_runtime(async move { client.send(req).await }).await
    }

    /// Runs `fut` here when the caller is inside a tokio runtime, else on quiver's own (timers
    /// and sockets need one). Returns one of two futures, not an `async` block: a block would
    /// hold `fut` twice (as what it matched and as what it awaits), doubling the size of every
    /// request's future and of each copy of it.
    fn in_runtime<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T>> + Send + 'static,
    ) -> impl Future<Output = Result<T>> {
        if Handle::try_current().is_ok() {
            Either::Left(fut)
        } else {
            Either::Right(self.inner.runtime.spawn(fut).map(joined))
        }
    }

    async fn send(&self, req: Request) -> Result<StreamResponse> {
        self.inner.layer.send(&self.inner.manager, req).await
    }

    /// The client's cookie jar, when it keeps one (option `cookies`).
    #[cfg(feature = "cookies")]
    pub fn cookies(&self) -> Option<Arc<crate::layer::cookies::CookieJar>> {
        self.inner.layer.cookies().cloned()
    }

    /// Opens an RFC 9297 datagram channel: an extended CONNECT (`options.protocol`, such as
    /// `connect-udp`) to `url` on a pooled HTTP/3 connection with datagrams enabled. The
    /// origin's pool must use protocol `http3`.
    #[cfg(feature = "http3")]
    pub async fn open_datagram_channel<K, V>(
        &self,
        url: &str,
        headers: impl IntoIterator<Item = (K, V)>,
        options: DatagramOptions,
    ) -> Result<DatagramChannel>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.check_fork()?;
        let mut builder = Request::builder("CONNECT", url);
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        let req = builder.build()?;
        let client = self.clone();
        let run = async move {
            match client.inner.manager.pool(&req.target.origin)? {
                Pool::Http3(pool) => {
                    let kind = crate::pool::h3::ChannelKind {
                        prefix: b"",
                        max_payload: usize::MAX,
                        keep_stream_data: true,
                    };
                    crate::pool::h3::open_channel(&pool, req, &options, kind).await
                }
                _ => Err(Error::new(
                    ErrorKind::PoolUnsupportedForTransport,
                    format!(
                        "datagram channels need HTTP/3: set protocol `http3` for {}",
                        req.target.origin
                    ),
                )),
            }
        };
        self.in_runtime(run).await
    }

    /// Opens a MASQUE CONNECT-UDP tunnel (RFC 9298) to `target_host:target_port` through the
    /// proxy at `proxy` (`https://host:port`), over a pooled HTTP/3 connection (datagrams) or
    /// HTTP/2 connection (capsules) to it. Trust settings for the proxy come from the rule
    /// matching the proxy's origin.
    #[cfg(feature = "masque")]
    pub async fn open_udp_tunnel(
        &self,
        proxy: &str,
        target_host: &str,
        target_port: u16,
        options: UdpTunnelOptions,
    ) -> Result<UdpTunnel> {
        self.check_fork()?;
        let route = self.inner.manager.proxy_route(proxy, options.protocol)?;
        let host = target_host.to_owned();
        self.in_runtime(async move { UdpTunnel::open(&route, &host, target_port, &options).await })
            .await
    }

    /// Closes the client, now: every connection closes, and everything in flight on it — a
    /// request waiting for a connection or for its response head, a body being read, a
    /// datagram channel, a UDP tunnel — ends with a `shutdown` error; later calls on this
    /// client (and its clones) fail with `shutdown`. Idempotent. The same in every binding.
    pub fn close(&self) {
        self.inner.closed.fire();
        self.inner.manager.close();
    }

    /// Fired when [`Client::close`] is called, for embedders that wait on things of their own.
    pub fn closed_signal(&self) -> Arc<Signal> {
        self.inner.closed.clone()
    }

    /// Tears down every pooled connection to proxies; tunnels and callers in flight on them
    /// get a `shutdown` error.
    pub fn close_all_tunnels(&self) {
        self.inner.manager.upstreams.close_all();
    }

    /// Statistics per origin and in total (pooled proxy connections under `proxies`).
    pub fn stats(&self) -> ClientStats {
        let mut stats = ClientStats::from_origins(self.inner.manager.stats());
        stats.proxies = self.inner.manager.upstreams.stats();
        stats
    }
}

/// Configures a [`Client`]: client-wide pool options and per-origin rules.
///
/// Option problems are collected and reported by [`ClientBuilder::build`] as one `invalid`
/// error naming the rule and the option.
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    defaults: PoolSettings,
    rules: Vec<(String, PoolSettings)>,
    runtime: Option<Handle>,
    resolver: Option<Arc<dyn Resolve>>,
    #[cfg(feature = "cookies")]
    jar: Option<Arc<crate::layer::cookies::CookieJar>>,
    listeners: Vec<Arc<dyn crate::events::Listener>>,
    error: Option<Error>,
}

impl Clone for ClientBuilder {
    fn clone(&self) -> Self {
        ClientBuilder {
            defaults: self.defaults.clone(),
            rules: self.rules.clone(),
            runtime: self.runtime.clone(),
            resolver: self.resolver.clone(),
            #[cfg(feature = "cookies")]
            jar: self.jar.clone(),
            listeners: self.listeners.clone(),
            error: self.error.clone(),
        }
    }
}

impl ClientBuilder {
    /// Replaces the client-wide options (they apply to every origin unless a rule overrides).
    pub fn defaults(mut self, settings: PoolSettings) -> Self {
        self.defaults = settings;
        self
    }

    /// Adds or replaces the rule for an origin pattern (`https://api.example.com`,
    /// `https://*.example.com`).
    pub fn rule(mut self, pattern: &str, settings: PoolSettings) -> Self {
        match self.rules.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, s)) => *s = settings,
            None => self.rules.push((pattern.to_owned(), settings)),
        }
        self
    }

    /// Sets a client-wide option by name.
    pub fn set(mut self, option: &str, value: impl Into<OptionValue>) -> Self {
        if let Err(e) = self.defaults.set(option, value) {
            self.error.get_or_insert(e);
        }
        self
    }

    /// Sets an option by name for one origin pattern (creating its rule if needed).
    pub fn set_for(mut self, pattern: &str, option: &str, value: impl Into<OptionValue>) -> Self {
        let index = match self.rules.iter().position(|(p, _)| p == pattern) {
            Some(i) => i,
            None => {
                self.rules
                    .push((pattern.to_owned(), PoolSettings::default()));
                self.rules.len() - 1
            }
        };
        if let Err(e) = self.rules[index].1.set(option, value) {
            self.error.get_or_insert(Error::invalid_config(format!(
                "pool rule `{pattern}`: {}",
                e.message()
            )));
        }
        self
    }

    /// Runs this client's connections on `handle` instead of quiver's background runtime.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Resolves names with `resolver` instead of the system's (`resolve` overrides and the
    /// `dns_cache_ttl` cache still apply in front of it).
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Keeps cookies in `jar` (turns the `cookies` option on): clients given the same jar share
    /// their cookies.
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(mut self, jar: Arc<crate::layer::cookies::CookieJar>) -> Self {
        self.jar = Some(jar);
        self
    }

    /// Adds a listener for the client's request and connection events (see
    /// [`crate::Event`]); with none, events cost nothing.
    pub fn listener(mut self, listener: impl crate::events::Listener) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Validates every option and rule and builds the client.
    pub fn build(self) -> Result<Client> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let rules = RuleTable::build(&self.defaults, &self.rules)?;
        let runtime = match self.runtime {
            Some(h) => h,
            None => runtime::background()?,
        };
        let resolver = Arc::new(match self.resolver {
            Some(custom) => Resolver::new(custom),
            None => Resolver::default(),
        });
        #[cfg_attr(not(feature = "tracing"), allow(unused_mut))]
        let mut listeners = self.listeners;
        #[cfg(feature = "tracing")]
        if tracing::dispatcher::has_been_set() {
            listeners.push(Arc::new(crate::events::TracingListener));
        }
        let events = crate::events::Events::new(listeners);
        #[cfg(feature = "cookies")]
        let layer = Layer::new(rules.defaults(), self.jar, events.clone())?;
        #[cfg(not(feature = "cookies"))]
        let layer = Layer::new(rules.defaults(), events.clone())?;
        let manager = Manager::new(rules, runtime.clone(), resolver, events)?;
        Ok(Client {
            inner: Arc::new(Inner {
                manager,
                layer,
                runtime,
                fork_generation: runtime::fork_generation(),
                closed: Arc::new(Signal::new()),
            }),
        })
    }
}

/// The result of a task `in_runtime` spawned: its own, or an internal error when it panicked.
fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| Error::internal(format!("task failed: {e}")))?
}
