//! SOCKS5 proxies (RFC 1928, username/password per RFC 1929) as a dialer: a TCP connection to
//! the proxy (through the client's resolver, Happy Eyeballs included), then CONNECT to the
//! origin by address (`socks5://`, resolved here) or by name (`socks5h://`, resolved by the
//! proxy). TLS to the origin, if any, runs inside as over any stream.

use std::sync::Arc;

use tokio_socks::tcp::Socks5Stream;
use tokio_socks::TargetAddr;

use super::Proxy;
use crate::config::PoolOptions;
use crate::conn::resolve::Resolver;
use crate::conn::tcp::DirectDial;
use crate::conn::{BoxFuture, Dial, Stream};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Host, Origin, SocksUrl};

/// Dials origins through one SOCKS5 proxy.
pub(crate) struct SocksDial {
    proxy: Origin,
    remote_dns: bool,
    credentials: Option<(String, String)>,
    /// Reaches the proxy, and resolves targets for `socks5://`.
    direct: DirectDial,
}

impl SocksDial {
    pub(crate) fn new(url: SocksUrl, direct: DirectDial) -> SocksDial {
        SocksDial {
            proxy: url.origin,
            remote_dns: url.remote_dns,
            credentials: url.credentials,
            direct,
        }
    }

    async fn target(&self, origin: &Origin) -> Result<TargetAddr<'static>> {
        match origin.host() {
            Host::Name(name) if self.remote_dns => {
                Ok(TargetAddr::Domain(name.clone().into(), origin.port()))
            }
            _ => Ok(TargetAddr::Ip(self.direct.lookup(origin).await?[0])),
        }
    }
}

impl Dial for SocksDial {
    fn dial<'a>(&'a self, origin: &'a Origin) -> BoxFuture<'a, Result<Stream>> {
        Box::pin(async move {
            let target = self.target(origin).await?;
            let socket = match self.direct.dial(&self.proxy).await? {
                Stream::Tcp(tcp) => tcp,
                _ => return Err(Error::internal("a direct dial yields TCP")),
            };
            let done = match &self.credentials {
                Some((user, pass)) => {
                    Socks5Stream::connect_with_password_and_socket(socket, target, user, pass).await
                }
                None => Socks5Stream::connect_with_socket(socket, target).await,
            };
            match done {
                Ok(stream) => Ok(Stream::Boxed(Box::new(stream))),
                Err(e) => Err(socks_error(&self.proxy, origin, e)),
            }
        })
    }
}

fn socks_error(proxy: &Origin, origin: &Origin, e: tokio_socks::Error) -> Error {
    use tokio_socks::Error as S;
    let context = format!(
        "SOCKS5 proxy {} could not reach {origin}",
        proxy.authority()
    );
    match e {
        S::Io(io) => {
            Error::with_source(ErrorKind::ConnectionClosed, format!("{context}: {io}"), io)
        }
        S::NoAcceptableAuthMethods | S::PasswordAuthFailure(_) | S::AuthorizationRequired => {
            Error::new(
                ErrorKind::ProxyConnectFailed,
                format!("{context}: authentication failed ({e})"),
            )
        }
        other => Error::new(ErrorKind::ProxyConnectFailed, format!("{context}: {other}")),
    }
}

/// The SOCKS5 dialer for `proxy`, when it is a SOCKS one.
pub(crate) fn dialer(
    proxy: &Proxy,
    resolver: &Arc<Resolver>,
    options: &PoolOptions,
) -> Option<Arc<dyn Dial>> {
    let url = proxy.socks.clone()?;
    Some(Arc::new(SocksDial::new(
        url,
        DirectDial::new(resolver, options),
    )))
}
