//! TCP through a proxy: CONNECT tunnels (over HTTP/1.1 on a connection of their own, or as a
//! stream on a pooled HTTP/2 connection to the proxy), with TLS to the origin then running
//! inside, and plain connections to a forward proxy for absolute-form HTTP/1.1.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::upstream::Upstreams;
use super::Proxy;
use crate::config::{PoolOptions, Protocol};
use crate::conn::tcp::DirectDial;
use crate::conn::tls::RuleTls;
use crate::conn::{BoxFuture, Connector, Dial, Stream};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Origin, Scheme};
use crate::pool::h2::open_tunnel_stream;
use crate::proto::h2::tunnel::H2StreamIo;

/// One proxy as a pool's connections use it.
pub(crate) struct ProxyRoute {
    pub proxy: Proxy,
    /// Trust settings for TLS to the proxy itself: those of the rule matching the proxy's own
    /// origin, never the target's.
    pub tls: RuleTls,
    /// The options of the rule matching the proxy's own origin: they key and shape the pooled
    /// connections to it.
    pub proxy_options: Arc<PoolOptions>,
    /// Limits (connect and checkout timeouts) of the pool being served.
    pub options: Arc<PoolOptions>,
    /// Pooled connections to proxies.
    pub upstreams: Arc<Upstreams>,
}

/// The authority-form target of a CONNECT (`host:port`).
pub(crate) fn authority(target: &Origin) -> String {
    format!("{}:{}", target.host().to_authority_string(), target.port())
}

fn connect_failed(proxy: &Proxy, target: &Origin, status: StatusCode) -> Error {
    Error::new(
        ErrorKind::ProxyConnectFailed,
        format!(
            "proxy {} answered CONNECT {} with {}",
            proxy.origin,
            authority(target),
            status
        ),
    )
}

impl ProxyRoute {
    /// A dialer that opens CONNECT tunnels to the target through this proxy.
    pub(crate) fn tunnel_dial(self: &Arc<Self>) -> Arc<dyn Dial> {
        Arc::new(TunnelDial(self.clone()))
    }

    /// A dialer whose streams lead to the proxy itself (absolute-form HTTP/1.1).
    pub(crate) fn forward_dial(self: &Arc<Self>) -> Arc<dyn Dial> {
        Arc::new(ForwardDial(self.clone()))
    }

    /// A connection to the proxy itself (TLS when the proxy URL is https).
    async fn connect_proxy(&self) -> Result<Stream> {
        let connector = Connector {
            dial: Arc::new(DirectDial::new(
                &self.upstreams.resolver,
                &self.proxy_options,
            )),
            tls: match self.proxy.origin.scheme() {
                Scheme::Https => Some(self.tls.http1.clone()),
                Scheme::Http => None,
            },
            connect_timeout: self.options.connect_timeout,
            cap: None,
            events: None,
        };
        Ok(connector.connect(&self.proxy.origin).await?.stream)
    }

    /// CONNECT over HTTP/1.1, one proxy connection per tunnel.
    async fn http1(&self, target: &Origin) -> Result<Stream> {
        let run = async {
            let stream = self.connect_proxy().await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                    .await
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::ConnectFailed,
                            format!("proxy {}: {e}", self.proxy.origin),
                        )
                    })?;
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
            let target_authority = authority(target);
            let mut req = Request::builder()
                .method(Method::CONNECT)
                .uri(target_authority.as_str())
                .header(header::HOST, target_authority.as_str())
                .body(Empty::new())
                .map_err(|e| {
                    Error::new(ErrorKind::InvalidUrl, format!("bad CONNECT target: {e}"))
                })?;
            if let Some(auth) = &self.proxy.authorization {
                req.headers_mut()
                    .insert(header::PROXY_AUTHORIZATION, auth.clone());
            }
            let resp = sender.send_request(req).await.map_err(|e| {
                Error::new(
                    ErrorKind::ConnectionClosed,
                    format!("proxy {} closed during CONNECT: {e}", self.proxy.origin),
                )
            })?;
            if !resp.status().is_success() {
                return Err(connect_failed(&self.proxy, target, resp.status()));
            }
            let upgraded = hyper::upgrade::on(resp).await.map_err(|e| {
                Error::new(
                    ErrorKind::ConnectionClosed,
                    format!("proxy {}: {e}", self.proxy.origin),
                )
            })?;
            Ok(Stream::Boxed(Box::new(TokioIo::new(upgraded))))
        };
        self.bounded(run).await
    }

    /// CONNECT as a stream on a pooled HTTP/2 connection to the proxy (RFC 9113 §8.5).
    async fn http2(&self, target: &Origin) -> Result<Stream> {
        let pool = self
            .upstreams
            .http2(&self.proxy, &self.tls, &self.proxy_options);
        let target_authority = authority(target);
        let mut head = Request::builder()
            .method(Method::CONNECT)
            .uri(target_authority.as_str())
            .body(())
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, format!("bad CONNECT target: {e}")))?;
        if let Some(auth) = &self.proxy.authorization {
            head.headers_mut()
                .insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        let limit = self.options.connect_timeout + self.options.checkout_timeout;
        let (lease, parts, send, recv) = open_tunnel_stream(&pool, head, limit).await?;
        if !parts.status.is_success() {
            return Err(connect_failed(&self.proxy, target, parts.status));
        }
        Ok(Stream::Boxed(Box::new(H2StreamIo::new(
            Box::new(lease),
            send,
            recv,
        ))))
    }

    async fn bounded<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let limit: Duration = self.options.connect_timeout;
        match tokio::time::timeout(limit, fut).await {
            Ok(res) => res,
            Err(_) => Err(Error::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "the tunnel through {} took longer than {} ms",
                    self.proxy.origin,
                    limit.as_millis()
                ),
            )),
        }
    }
}

/// Byte streams to the target through CONNECT tunnels.
struct TunnelDial(Arc<ProxyRoute>);

impl Dial for TunnelDial {
    fn dial<'a>(&'a self, target: &'a Origin) -> BoxFuture<'a, Result<Stream>> {
        Box::pin(async move {
            match self.0.proxy.protocol {
                Protocol::Http2 => self.0.http2(target).await,
                // Validation keeps http3 to MASQUE; a TCP tunnel over it is not offered.
                Protocol::Auto | Protocol::Http1 | Protocol::Http3 => self.0.http1(target).await,
            }
        })
    }
}

/// Byte streams to the forward proxy itself, which takes absolute-form requests.
struct ForwardDial(Arc<ProxyRoute>);

impl Dial for ForwardDial {
    fn dial<'a>(&'a self, _target: &'a Origin) -> BoxFuture<'a, Result<Stream>> {
        Box::pin(self.0.connect_proxy())
    }
}
