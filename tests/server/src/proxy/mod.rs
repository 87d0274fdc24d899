//! The forward proxy: `proxy` (HTTP/1.1), `proxy_tls` (HTTP/1.1 or HTTP/2 over TLS, by ALPN) and
//! `proxy_h3` (HTTP/3), plus the `udp_echo` target.
//!
//! What every transport shares lives here: the proxy-authorization check, the target rules
//! (loopback only), the dial (with `dial_delay`), and the forwarding of absolute-form requests
//! over a fresh HTTP/1.1 connection to the target. The transports ([`h1`], [`h2`], [`h3`]) parse
//! their requests, call these, and relay the tunnels.

pub(crate) mod capsule;
pub(crate) mod h1;
pub(crate) mod h2;
pub(crate) mod h3;
pub(crate) mod udp;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UdpSocket};

use crate::body::{self, BoxBody, BoxError};
use crate::stats::Counters;

/// The only `proxy-authorization` value the proxy accepts (`quiver:secret`).
pub const PROXY_AUTHORIZATION: &str = "Basic cXVpdmVyOnNlY3JldA==";

/// The path prefix of the RFC 9298 default URI template
/// `/.well-known/masque/udp/{target_host}/{target_port}/`.
const MASQUE_PREFIX: &str = "/.well-known/masque/udp/";

/// The header carrying the local address of the proxy's socket towards the target.
pub(crate) const RELAY_ADDR: &str = "x-proxy-relay-addr";

/// What every proxy connection shares.
#[derive(Debug)]
pub(crate) struct ProxyCtx {
    pub(crate) counters: Arc<Counters>,
    /// How long to wait before answering each CONNECT.
    pub(crate) dial_delay: Duration,
}

/// A request the proxy turns down, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }

    /// The response head: `text/plain`, `content-length`, and `proxy-authenticate` on a 407.
    pub(crate) fn head(&self) -> Response<()> {
        let mut head = Response::new(());
        *head.status_mut() = self.status;
        let headers = head.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::CONTENT_LENGTH, self.message.len().into());
        if self.status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            headers.insert(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"quiver\""),
            );
        }
        head
    }

    /// The body.
    pub(crate) fn body(&self) -> Bytes {
        Bytes::from(self.message.clone())
    }

    /// The whole response, for hyper.
    pub(crate) fn response(&self) -> Response<BoxBody> {
        let (parts, ()) = self.head().into_parts();
        Response::from_parts(parts, body::full(self.body()))
    }
}

/// A target host the proxy may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    /// `localhost`: `127.0.0.1`, then `::1`.
    Localhost,
    /// A loopback IP address.
    Ip(IpAddr),
}

/// Where a tunnel or a forwarded request goes: a loopback host and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    host: Host,
    port: u16,
}

impl Target {
    /// Checks a host (`localhost`, an IP, or an IPv6 address in brackets): loopback ones are
    /// fine, anything else is a 403 (names are never resolved).
    fn host(host: &str) -> Result<Host, Refusal> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if bare.eq_ignore_ascii_case("localhost") {
            return Ok(Host::Localhost);
        }
        match bare.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => Ok(Host::Ip(ip)),
            _ => Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("target {host} is not a loopback address"),
            )),
        }
    }

    /// The target of an authority (`host:port`); `default_port` when it has none (`None`: a
    /// port is required, as in CONNECT).
    pub(crate) fn from_authority(
        authority: Option<&Authority>,
        default_port: Option<u16>,
    ) -> Result<Target, Refusal> {
        let authority = authority.ok_or_else(|| Refusal::bad_request("no target authority"))?;
        let port = authority
            .port_u16()
            .or(default_port)
            .filter(|port| *port != 0)
            .ok_or_else(|| Refusal::bad_request(format!("target {authority} has no valid port")))?;
        Ok(Target {
            host: Target::host(authority.host())?,
            port,
        })
    }

    /// The target of a CONNECT-UDP path: the RFC 9298 default template
    /// `/.well-known/masque/udp/{target_host}/{target_port}/` (the trailing slash may be
    /// missing; the host may be percent-encoded). Another path is a 404, a bad port a 400.
    pub(crate) fn from_masque_path(path: &str) -> Result<Target, Refusal> {
        let not_found = || {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("{path} is not {MASQUE_PREFIX}{{target_host}}/{{target_port}}/"),
            )
        };
        let rest = path.strip_prefix(MASQUE_PREFIX).ok_or_else(not_found)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = rest.split_once('/').ok_or_else(not_found)?;
        let host = percent_decode(host).ok_or_else(not_found)?;
        if host.is_empty() {
            return Err(not_found());
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| Refusal::bad_request(format!("bad target port {port:?}")))?;
        Ok(Target {
            host: Target::host(&host)?,
            port,
        })
    }

    /// The addresses to try, in order.
    fn addrs(&self) -> Vec<SocketAddr> {
        let ips = match self.host {
            Host::Localhost => vec![IpAddr::V4(Ipv4Addr::LOCALHOST), Ipv6Addr::LOCALHOST.into()],
            Host::Ip(ip) => vec![ip],
        };
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, self.port))
            .collect()
    }

    /// A TCP connection to the target (the first address that accepts).
    async fn connect(&self) -> std::io::Result<TcpStream> {
        let mut last = None;
        for addr in self.addrs() {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
    }

    /// A UDP socket bound on the loopback address of the target's family and connected to it
    /// (`localhost`: `127.0.0.1`).
    async fn udp(&self) -> std::io::Result<UdpSocket> {
        let target = self.addrs()[0];
        let local: SocketAddr = if target.is_ipv6() {
            (Ipv6Addr::LOCALHOST, 0).into()
        } else {
            (Ipv4Addr::LOCALHOST, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(target).await?;
        Ok(socket)
    }
}

/// Decodes `%XX` escapes; `None` when an escape is broken or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Headers that concern one connection only, never forwarded (RFC 9110, 7.6.1), plus
/// `proxy-authorization` (meant for this proxy).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// Removes the hop-by-hop headers (and those the `connection` header names); `te: trailers`
/// stays (so that an origin sends its trailers to a client that wants them).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    let te_trailers = headers
        .get(header::TE)
        .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

impl ProxyCtx {
    /// Counts a `proxy-authorization` header and checks it: absent or right is fine, anything
    /// else a 407.
    pub(crate) fn check_auth(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(value) = headers.get(header::PROXY_AUTHORIZATION) else {
            return Ok(());
        };
        self.counters.on_proxy_auth_seen();
        let right = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("basic")
                    && Some(token.trim()) == PROXY_AUTHORIZATION.split_once(' ').map(|(_, t)| t)
            });
        if right {
            Ok(())
        } else {
            Err(Refusal::new(
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "wrong proxy-authorization",
            ))
        }
    }

    /// Opens the TCP side of a CONNECT tunnel to `authority` (which needs a port): 400 or 403
    /// for a bad target, then `dial_delay`, then 502 when the target refuses. Counts the
    /// tunnel.
    pub(crate) async fn open_tcp(
        &self,
        authority: Option<&Authority>,
    ) -> Result<TcpStream, Refusal> {
        let target = Target::from_authority(authority, None)?;
        tokio::time::sleep(self.dial_delay).await;
        let tcp = target.connect().await.map_err(|e| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!("cannot connect to the target: {e}"),
            )
        })?;
        self.counters.on_proxy_tunnel();
        Ok(tcp)
    }

    /// Opens the UDP side of a CONNECT-UDP tunnel for the request path `path`: 404, 400 or 403
    /// for a bad target, then `dial_delay`, then a socket connected to the target (502 if that
    /// fails). Counts the tunnel.
    pub(crate) async fn open_udp(&self, path: &str) -> Result<UdpSocket, Refusal> {
        let target = Target::from_masque_path(path)?;
        tokio::time::sleep(self.dial_delay).await;
        let socket = target.udp().await.map_err(|e| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!("cannot reach the target: {e}"),
            )
        })?;
        self.counters.on_proxy_tunnel();
        Ok(socket)
    }

    /// Forwards an absolute-form request (`http://host:port/path`) over a fresh HTTP/1.1
    /// connection to its target, without the hop-by-hop headers and `proxy-authorization`,
    /// and returns the origin's response (its body streamed), minus its hop-by-hop headers.
    /// 400 for a scheme other than `http`, 400/403 for a bad target, 502 when the target
    /// refuses or fails.
    pub(crate) async fn forward<B>(&self, req: Request<B>) -> Response<BoxBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        match self.try_forward(req).await {
            Ok(response) => response,
            Err(refusal) => refusal.response(),
        }
    }

    async fn try_forward<B>(&self, req: Request<B>) -> Result<Response<BoxBody>, Refusal>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        if parts.uri.scheme_str() != Some("http") {
            return Err(Refusal::bad_request(format!(
                "cannot forward {}: only http:// is forwarded (use CONNECT for https)",
                parts.uri
            )));
        }
        let authority = parts.uri.authority().cloned();
        let target = Target::from_authority(authority.as_ref(), Some(80))?;
        let bad_gateway = |what: &str, e: &dyn std::fmt::Display| {
            Refusal::new(StatusCode::BAD_GATEWAY, format!("{what}: {e}"))
        };
        let tcp = target
            .connect()
            .await
            .map_err(|e| bad_gateway("cannot connect to the target", &e))?;
        self.counters.on_proxy_forwarded();

        strip_hop_by_hop(&mut parts.headers);
        if !parts.headers.contains_key(header::HOST) {
            if let Some(authority) = &authority {
                if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                    parts.headers.insert(header::HOST, host);
                }
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
        parts.version = Version::HTTP_11;
        let request = Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());

        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, BoxBody>(TokioIo::new(tcp))
                .await
                .map_err(|e| bad_gateway("HTTP/1.1 handshake with the target", &e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| bad_gateway("the target failed", &e))?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::TE);
        Ok(Response::from_parts(
            parts,
            body.map_err(Into::into).boxed_unsync(),
        ))
    }
}

/// The `200` answering a CONNECT-UDP: `capsule-protocol: ?1` and the relay socket's address.
pub(crate) fn udp_tunnel_head(relay: Option<SocketAddr>) -> Response<()> {
    let mut head = tunnel_head(relay);
    head.headers_mut()
        .insert("capsule-protocol", HeaderValue::from_static("?1"));
    head
}

/// The `200` answering a CONNECT: `x-proxy-relay-addr`, the local address of the proxy's
/// connection to the target.
pub(crate) fn tunnel_head(relay: Option<SocketAddr>) -> Response<()> {
    let mut head = Response::new(());
    if let Some(value) = relay.and_then(|addr| HeaderValue::from_str(&addr.to_string()).ok()) {
        head.headers_mut().insert(RELAY_ADDR, value);
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(text: &str) -> Authority {
        text.parse().unwrap()
    }

    #[test]
    fn targets() {
        let t = Target::from_authority(Some(&authority("127.0.0.1:8080")), None).unwrap();
        assert_eq!(t.addrs(), vec!["127.0.0.1:8080".parse().unwrap()]);
        let t = Target::from_authority(Some(&authority("[::1]:9")), None).unwrap();
        assert_eq!(t.addrs(), vec!["[::1]:9".parse().unwrap()]);
        let t = Target::from_authority(Some(&authority("LocalHost:1")), None).unwrap();
        assert_eq!(t.addrs().len(), 2);
        let t = Target::from_authority(Some(&authority("127.0.0.1")), Some(80)).unwrap();
        assert_eq!(t.port, 80);
        let status = |r: Result<Target, Refusal>| r.unwrap_err().status;
        assert_eq!(
            status(Target::from_authority(Some(&authority("127.0.0.1")), None)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(Target::from_authority(
                Some(&authority("example.com:443")),
                None
            )),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(Target::from_authority(
                Some(&authority("10.1.2.3:80")),
                None
            )),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(Target::from_authority(None, None)),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn masque_paths() {
        let ok = |p: &str| Target::from_masque_path(p).unwrap().addrs()[0];
        assert_eq!(
            ok("/.well-known/masque/udp/127.0.0.1/443/"),
            "127.0.0.1:443".parse().unwrap()
        );
        assert_eq!(
            ok("/.well-known/masque/udp/%3A%3A1/53/"),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            ok("/.well-known/masque/udp/[::1]/53"),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            ok("/.well-known/masque/udp/localhost/7/"),
            "127.0.0.1:7".parse().unwrap()
        );
        let status = |p: &str| Target::from_masque_path(p).unwrap_err().status;
        assert_eq!(
            status("/.well-known/masque/udp/127.0.0.1/x/"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("/.well-known/masque/udp/127.0.0.1/70000/"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("/.well-known/masque/udp/127.0.0.1/0/"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("/.well-known/masque/udp/example.com/53/"),
            StatusCode::FORBIDDEN
        );
        assert_eq!(status("/other"), StatusCode::NOT_FOUND);
        assert_eq!(status("/.well-known/masque/udp/"), StatusCode::NOT_FOUND);
    }

    #[test]
    fn hop_by_hop() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("x-kept", "yes"),
            ("host", "h"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["host", "te", "x-kept"]);
    }

    #[test]
    fn auth() {
        let ctx = ProxyCtx {
            counters: Arc::new(Counters::default()),
            dial_delay: Duration::ZERO,
        };
        let mut headers = HeaderMap::new();
        assert!(ctx.check_auth(&headers).is_ok());
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static(PROXY_AUTHORIZATION),
        );
        assert!(ctx.check_auth(&headers).is_ok());
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("basic cXVpdmVyOnNlY3JldA=="),
        );
        assert!(ctx.check_auth(&headers).is_ok());
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic d3Jvbmc6d3Jvbmc="),
        );
        assert_eq!(
            ctx.check_auth(&headers).unwrap_err().status,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED
        );
        assert_eq!(ctx.counters.snapshot().proxy_auth_seen, 3);
    }
}
