//! The SOCKS5 proxy (RFC 1928): `socks5` (no authentication, method 0x00) and `socks5_auth`
//! (username/password, method 0x02, RFC 1929), CONNECT only.
//!
//! One connection is one handshake: the method selection, the sub-negotiation on `socks5_auth`,
//! then one request. A CONNECT to a loopback target is dialed and answered 0x00 with the local
//! address of the server's socket towards the target; the bytes are then relayed both ways
//! (`copy_bidirectional`, a half-close passed on) until both sides are done. Every refusal is
//! written, then the connection closes. The handshake is bounded by [`HANDSHAKE_TIMEOUT`].

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats::Counters;

/// The username `socks5_auth` accepts.
pub const SOCKS5_USERNAME: &str = "quiver";

/// The password `socks5_auth` accepts.
pub const SOCKS5_PASSWORD: &str = "secret";

/// How long the client may take over the whole handshake (greeting, authentication, request).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long resolving a domain name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long dialing the target may take (all its addresses together).
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused connection is drained after the server's last byte, so that the client
/// reads the refusal rather than a reset caused by bytes it had sent ahead.
const DRAIN: Duration = Duration::from_millis(200);

const VERSION: u8 = 0x05;
const AUTH_VERSION: u8 = 0x01;
const METHOD_NONE: u8 = 0x00;
const METHOD_PASSWORD: u8 = 0x02;
const METHOD_UNACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// The reply codes of RFC 1928, section 6.
mod rep {
    pub(super) const SUCCEEDED: u8 = 0x00;
    pub(super) const GENERAL_FAILURE: u8 = 0x01;
    pub(super) const NOT_ALLOWED: u8 = 0x02;
    pub(super) const NETWORK_UNREACHABLE: u8 = 0x03;
    pub(super) const HOST_UNREACHABLE: u8 = 0x04;
    pub(super) const CONNECTION_REFUSED: u8 = 0x05;
    pub(super) const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub(super) const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
}

/// Which authentication a SOCKS5 listener requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocksAuth {
    /// None (method 0x00): `socks5`.
    None,
    /// Username/password (method 0x02): `socks5_auth`.
    Password,
}

/// The target of a request, as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// An IPv4 or IPv6 address (address types 0x01, 0x04).
    Ip(SocketAddr),
    /// A domain name (address type 0x03), to be resolved here.
    Domain(String, u16),
}

impl fmt::Display for Target {
    /// `ipv4 127.0.0.1:1234`, `ipv6 [::1]:1234` or `domain localhost:1234`: what
    /// `socks_last_target` reports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(addr @ SocketAddr::V4(_)) => write!(f, "ipv4 {addr}"),
            Target::Ip(addr @ SocketAddr::V6(_)) => write!(f, "ipv6 {addr}"),
            Target::Domain(name, port) => write!(f, "domain {name}:{port}"),
        }
    }
}

/// How a handshake ended.
enum Handshake {
    /// A CONNECT request to this target, not answered yet.
    Connect(Target),
    /// Refused (the refusal, if any, written) or broken: close.
    Close,
}

/// Serves one SOCKS5 connection: the handshake, then the relay.
pub(crate) async fn serve<S>(mut client: S, auth: SocksAuth, counters: &Counters)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut client, auth)).await;
    let target = match handshake {
        Ok(Ok(Handshake::Connect(target))) => target,
        Ok(Ok(Handshake::Close)) => return close(client).await,
        // Broken or too slow: nothing more to say.
        Ok(Err(_)) | Err(_) => return,
    };
    counters.on_socks_target(target.to_string());
    let mut upstream = match dial(&target).await {
        Ok(upstream) => upstream,
        Err(code) => {
            let _ = client.write_all(&reply(code, None)).await;
            return close(client).await;
        }
    };
    counters.on_socks_connect();
    let bound = upstream.local_addr().ok();
    if client
        .write_all(&reply(rep::SUCCEEDED, bound))
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Reads the method selection, the authentication and the request; answers everything up to
/// the request, and the request itself when it is refused.
async fn handshake<S>(client: &mut S, auth: SocksAuth) -> io::Result<Handshake>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let [version, count] = read_array(client).await?;
    if version != VERSION {
        return Ok(Handshake::Close);
    }
    let methods = read_vec(client, count.into()).await?;
    let wanted = match auth {
        SocksAuth::None => METHOD_NONE,
        SocksAuth::Password => METHOD_PASSWORD,
    };
    if !methods.contains(&wanted) {
        client.write_all(&[VERSION, METHOD_UNACCEPTABLE]).await?;
        return Ok(Handshake::Close);
    }
    client.write_all(&[VERSION, wanted]).await?;
    if auth == SocksAuth::Password && !authenticate(client).await? {
        return Ok(Handshake::Close);
    }

    let [version, command, _reserved, address_type] = read_array(client).await?;
    if version != VERSION {
        client.write_all(&reply(rep::GENERAL_FAILURE, None)).await?;
        return Ok(Handshake::Close);
    }
    let target = match address_type {
        ATYP_IPV4 => {
            let ip: [u8; 4] = read_array(client).await?;
            Target::Ip(SocketAddr::from((ip, read_port(client).await?)))
        }
        ATYP_IPV6 => {
            let ip: [u8; 16] = read_array(client).await?;
            Target::Ip(SocketAddr::from((ip, read_port(client).await?)))
        }
        ATYP_DOMAIN => {
            let [len] = read_array(client).await?;
            let name = read_vec(client, len.into()).await?;
            let name = String::from_utf8_lossy(&name).into_owned();
            Target::Domain(name, read_port(client).await?)
        }
        _ => {
            // The address cannot even be skipped: its length is unknown.
            client
                .write_all(&reply(rep::ADDRESS_TYPE_NOT_SUPPORTED, None))
                .await?;
            return Ok(Handshake::Close);
        }
    };
    if command != CMD_CONNECT {
        // BIND (0x02), UDP ASSOCIATE (0x03) and anything else.
        client
            .write_all(&reply(rep::COMMAND_NOT_SUPPORTED, None))
            .await?;
        return Ok(Handshake::Close);
    }
    Ok(Handshake::Connect(target))
}

/// The username/password sub-negotiation (RFC 1929); answers it, returns whether it passed.
async fn authenticate<S>(client: &mut S) -> io::Result<bool>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let [version, user_len] = read_array(client).await?;
    let user = read_vec(client, user_len.into()).await?;
    let [pass_len] = read_array(client).await?;
    let pass = read_vec(client, pass_len.into()).await?;
    let ok = version == AUTH_VERSION
        && user == SOCKS5_USERNAME.as_bytes()
        && pass == SOCKS5_PASSWORD.as_bytes();
    client
        .write_all(&[AUTH_VERSION, if ok { 0x00 } else { 0x01 }])
        .await?;
    Ok(ok)
}

/// Connects to `target` (loopback only; a name is resolved first), trying its addresses in
/// order; the reply code on failure.
async fn dial(target: &Target) -> Result<TcpStream, u8> {
    let addrs: Vec<SocketAddr> = match target {
        Target::Ip(addr) => vec![*addr],
        Target::Domain(name, port) => {
            let lookup = tokio::net::lookup_host((name.as_str(), *port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(_)) | Err(_) => return Err(rep::HOST_UNREACHABLE),
            }
        }
    };
    if addrs.is_empty() {
        return Err(rep::HOST_UNREACHABLE);
    }
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|addr| addr.ip().is_loopback() && addr.port() != 0)
        .collect();
    if allowed.is_empty() {
        // A test server never reaches out of the host.
        return Err(rep::NOT_ALLOWED);
    }
    let attempts = async {
        let mut code = rep::GENERAL_FAILURE;
        for addr in allowed {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => code = failure_code(&e),
            }
        }
        Err(code)
    };
    tokio::time::timeout(DIAL_TIMEOUT, attempts)
        .await
        .unwrap_or(Err(rep::HOST_UNREACHABLE))
}

/// The reply code for a failed connect.
fn failure_code(e: &io::Error) -> u8 {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => rep::CONNECTION_REFUSED,
        io::ErrorKind::NetworkUnreachable => rep::NETWORK_UNREACHABLE,
        io::ErrorKind::HostUnreachable | io::ErrorKind::TimedOut => rep::HOST_UNREACHABLE,
        _ => rep::GENERAL_FAILURE,
    }
}

/// A reply: `VER REP RSV ATYP BND.ADDR BND.PORT`, the bound address `0.0.0.0:0` when none.
fn reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let bound = bound.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let mut out = vec![VERSION, code, 0x00];
    match bound.ip() {
        IpAddr::V4(ip) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            // An IPv4-mapped address goes out as what it maps.
            match ip.to_ipv4_mapped() {
                Some(v4) => {
                    out.push(ATYP_IPV4);
                    out.extend_from_slice(&v4.octets());
                }
                None => {
                    out.push(ATYP_IPV6);
                    out.extend_from_slice(&ip.octets());
                }
            }
        }
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    out
}

async fn read_array<S: AsyncRead + Unpin, const N: usize>(client: &mut S) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    client.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn read_vec<S: AsyncRead + Unpin>(client: &mut S, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    client.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn read_port<S: AsyncRead + Unpin>(client: &mut S) -> io::Result<u16> {
    Ok(u16::from_be_bytes(read_array(client).await?))
}

/// Closes after a refusal: our side first (a FIN after the refusal), then what the client
/// still sends is read and dropped for a moment.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut client: S) {
    let _ = client.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async { while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(DRAIN, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn targets_and_replies() {
        let v4 = Target::Ip("127.0.0.1:1234".parse().unwrap());
        let v6 = Target::Ip("[::1]:1234".parse().unwrap());
        let name = Target::Domain("localhost".to_owned(), 1234);
        assert_eq!(v4.to_string(), "ipv4 127.0.0.1:1234");
        assert_eq!(v6.to_string(), "ipv6 [::1]:1234");
        assert_eq!(name.to_string(), "domain localhost:1234");
        assert_eq!(
            reply(rep::SUCCEEDED, Some("127.0.0.1:80".parse().unwrap())),
            [5, 0, 0, 1, 127, 0, 0, 1, 0, 80]
        );
        assert_eq!(
            reply(rep::COMMAND_NOT_SUPPORTED, None),
            [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]
        );
        let mut v6_reply = vec![5, 0, 0, 4];
        v6_reply.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6_reply.extend_from_slice(&[0x01, 0x00]);
        assert_eq!(
            reply(rep::SUCCEEDED, Some("[::1]:256".parse().unwrap())),
            v6_reply
        );
    }
}
