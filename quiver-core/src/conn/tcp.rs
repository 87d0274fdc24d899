//! Direct TCP: name resolution and connecting to the resolved addresses, nodelay set.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::{io_error, BoxFuture, Dial, Stream};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Host, Origin};

/// Dials the origin itself over TCP.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DirectDial;

impl Dial for DirectDial {
    fn dial<'a>(&'a self, origin: &'a Origin) -> BoxFuture<'a, Result<Stream>> {
        Box::pin(async move {
            let addrs = resolve(origin).await?;
            Ok(Stream::Tcp(connect_any(origin, &addrs).await?))
        })
    }
}

/// Resolves the origin's host (an IP literal resolves to itself).
pub(crate) async fn resolve(origin: &Origin) -> Result<Vec<SocketAddr>> {
    match origin.host() {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, origin.port())]),
        Host::Name(name) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), origin.port()))
                .await
                .map_err(|e| {
                    Error::with_source(ErrorKind::Dns, format!("cannot resolve `{name}`"), e)
                })?
                .collect();
            if addrs.is_empty() {
                return Err(Error::new(
                    ErrorKind::Dns,
                    format!("`{name}` has no address"),
                ));
            }
            Ok(addrs)
        }
    }
}

/// Connects to each address in turn until one answers.
async fn connect_any(origin: &Origin, addrs: &[SocketAddr]) -> Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                // Nagle only delays small requests; quiver writes whole frames.
                tcp.set_nodelay(true)
                    .map_err(|e| io_error(&e, "cannot set TCP_NODELAY"))?;
                return Ok(tcp);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let Some((addr, e)) = last else {
        return Err(Error::new(
            ErrorKind::Dns,
            format!("{origin} has no address"),
        ));
    };
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
