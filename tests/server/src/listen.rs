//! Binding one port on both `127.0.0.1` and `[::1]`, for TCP listeners and UDP (QUIC) sockets.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use tokio::net::TcpListener;

/// How many ports to try before giving up when `[::1]` has the chosen port taken.
const ATTEMPTS: usize = 64;

/// The listeners of one logical listener: the same port on both loopback addresses.
#[derive(Debug)]
pub(crate) struct DualListener {
    /// The port, the same on both addresses.
    pub(crate) port: u16,
    /// `127.0.0.1:port`.
    pub(crate) v4: TcpListener,
    /// `[::1]:port`, `None` when the host has no IPv6 loopback.
    pub(crate) v6: Option<TcpListener>,
}

impl DualListener {
    /// Every socket, for accept loops.
    pub(crate) fn into_listeners(self) -> impl Iterator<Item = TcpListener> {
        std::iter::once(self.v4).chain(self.v6)
    }
}

/// Binds an ephemeral port on `127.0.0.1`, then the same port on `[::1]`, retrying with another
/// port when that one is taken on `[::1]`. When IPv6 is unavailable altogether (and
/// `require_v6` is false), returns the IPv4 listener alone.
pub(crate) async fn bind_dual(require_v6: bool) -> io::Result<DualListener> {
    let mut last_err = None;
    for _ in 0..ATTEMPTS {
        let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = v4.local_addr()?.port();
        match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
            Ok(v6) => {
                return Ok(DualListener {
                    port,
                    v4,
                    v6: Some(v6),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) if require_v6 => return Err(e),
            Err(_) => return Ok(DualListener { port, v4, v6: None }),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no port free on both loopback addresses")))
}

/// The UDP sockets of one QUIC listener: the same port on both loopback addresses.
#[derive(Debug)]
pub(crate) struct DualUdp {
    /// The port, the same on both addresses.
    pub(crate) port: u16,
    /// `127.0.0.1:port`.
    pub(crate) v4: UdpSocket,
    /// `[::1]:port`, `None` when the host has no IPv6 loopback.
    pub(crate) v6: Option<UdpSocket>,
}

impl DualUdp {
    /// Every socket, one QUIC endpoint each.
    pub(crate) fn into_sockets(self) -> impl Iterator<Item = UdpSocket> {
        std::iter::once(self.v4).chain(self.v6)
    }
}

/// The UDP counterpart of [`bind_dual`]: an ephemeral port on `127.0.0.1`, then the same port on
/// `[::1]`, retrying with another port when that one is taken on `[::1]`.
pub(crate) fn bind_dual_udp(require_v6: bool) -> io::Result<DualUdp> {
    let mut last_err = None;
    for _ in 0..ATTEMPTS {
        let v4 = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let port = v4.local_addr()?.port();
        match UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            Ok(v6) => {
                return Ok(DualUdp {
                    port,
                    v4,
                    v6: Some(v6),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) if require_v6 => return Err(e),
            Err(_) => return Ok(DualUdp { port, v4, v6: None }),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no UDP port free on both loopback addresses")))
}

/// Whether the host can bind the IPv6 loopback address.
pub(crate) async fn ipv6_available() -> bool {
    TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_both() {
        let l = bind_dual(false).await.unwrap();
        assert_eq!(l.v4.local_addr().unwrap().port(), l.port);
        if let Some(v6) = &l.v6 {
            assert_eq!(v6.local_addr().unwrap().port(), l.port);
            assert!(v6.local_addr().unwrap().is_ipv6());
        }
    }

    #[test]
    fn binds_both_udp() {
        let l = bind_dual_udp(false).unwrap();
        assert_eq!(l.v4.local_addr().unwrap().port(), l.port);
        if let Some(v6) = &l.v6 {
            assert_eq!(v6.local_addr().unwrap().port(), l.port);
            assert!(v6.local_addr().unwrap().is_ipv6());
        }
    }
}
