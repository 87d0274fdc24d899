//! MASQUE CONNECT-UDP (RFC 9298) tunnels: UDP payloads to a target through a proxy, over a
//! pooled HTTP/3 connection (HTTP datagrams, context id 0) or a pooled HTTP/2 connection
//! (DATAGRAM capsules, RFC 9297 §3). A tunnel has the same two halves as a datagram channel.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Method, Request};

use super::connect::ProxyRoute;
use crate::config::Protocol;
use crate::datagram::{DatagramOptions, DatagramReceiver, DatagramSender, Path};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::pool::h2::open_tunnel_stream;
use crate::pool::h3::{open_channel, ChannelKind};
use crate::proto::codec::{take_capsule, udp_payload, Capsule, DATAGRAM_CAPSULE};
use crate::proto::endpoint::{queues, Producers};
use crate::response::ResponseHead;

/// The largest UDP payload (IPv4, no options).
const MAX_UDP_PAYLOAD: usize = 65_527;

/// The largest capsule accepted from a proxy: a DATAGRAM capsule holds at most a UDP payload
/// and its context id; anything much larger is a peer trying to make us buffer.
pub(crate) const MAX_CAPSULE: usize = MAX_UDP_PAYLOAD + 16;

/// Payloads an HTTP/2 tunnel keeps for its receiver; more wait at the proxy (the stream's
/// window holds it back).
const TUNNEL_QUEUE: usize = 64;

/// Sends UDP payloads on a tunnel; cheap to clone, usable from any thread.
pub type UdpTunnelSender = DatagramSender;

/// How to reach the proxy for a UDP tunnel.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UdpTunnelOptions {
    /// `http3` (HTTP datagrams; the default) or `http2` (capsules). `http1` is not pooled:
    /// `pool_unsupported_for_transport`.
    pub protocol: Protocol,
    /// Proxy-Authorization (or any header) for the CONNECT-UDP request.
    pub headers: Vec<(String, String)>,
}

impl Default for UdpTunnelOptions {
    fn default() -> Self {
        UdpTunnelOptions {
            protocol: Protocol::Http3,
            headers: Vec::new(),
        }
    }
}

impl UdpTunnelOptions {
    /// Sets the protocol spoken to the proxy.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Adds a header to the CONNECT-UDP request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// RFC 9298 default URI template: `/.well-known/masque/udp/{target_host}/{target_port}/`, the
/// host percent-encoded so that it stays one path segment.
fn masque_path(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut encoded = String::with_capacity(host.len());
    for b in host.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/.well-known/masque/udp/{encoded}/{port}/")
}

/// A UDP tunnel to one target through a MASQUE proxy.
pub struct UdpTunnel {
    head: ResponseHead,
    target: String,
    sender: DatagramSender,
    receiver: DatagramReceiver,
}

impl fmt::Debug for UdpTunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpTunnel")
            .field("target", &self.target)
            .field("status", &self.head.status)
            .finish_non_exhaustive()
    }
}

impl UdpTunnel {
    /// Opens a tunnel to `target_host:target_port` through the proxy of `route`.
    pub(crate) async fn open(
        route: &ProxyRoute,
        target_host: &str,
        target_port: u16,
        options: &UdpTunnelOptions,
    ) -> Result<UdpTunnel> {
        let proxy = &route.proxy;
        let path = masque_path(target_host, target_port);
        let mut headers: Vec<(String, String)> = options.headers.clone();
        if let Some(auth) = &proxy.authorization {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("proxy-authorization"))
            {
                headers.push((
                    "proxy-authorization".into(),
                    auth.to_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        let target = format!("{target_host}:{target_port}");
        match options.protocol {
            Protocol::Http3 | Protocol::Auto => {
                let pool = route
                    .upstreams
                    .http3(proxy, &route.tls, &route.proxy_options)?;
                let url = format!("{}{}", proxy.origin.to_url_base(), path);
                let mut builder = crate::request::Request::builder("CONNECT", &url);
                for (k, v) in &headers {
                    builder = builder.header(k, v);
                }
                let req = builder.build()?;
                let kind = ChannelKind {
                    prefix: b"\0",
                    max_payload: MAX_UDP_PAYLOAD,
                    keep_stream_data: false,
                };
                let channel = open_channel(&pool, req, &DatagramOptions::default(), kind)
                    .await
                    .map_err(|e| proxy_failure(e, &proxy.origin, &target))?;
                let (head, sender, receiver) = channel.split();
                Ok(UdpTunnel {
                    head,
                    target,
                    sender,
                    receiver,
                })
            }
            Protocol::Http2 => Self::open_http2(route, &path, headers, target).await,
            Protocol::Http1 => Err(super::upstream::Upstreams::check_transport(
                super::upstream::Transport::Http1,
            )
            .err()
            .unwrap_or_else(|| Error::internal("HTTP/1.1 tunnels are not pooled"))),
        }
    }

    async fn open_http2(
        route: &ProxyRoute,
        path: &str,
        headers: Vec<(String, String)>,
        target: String,
    ) -> Result<UdpTunnel> {
        let proxy = &route.proxy;
        let pool = route
            .upstreams
            .http2(proxy, &route.tls, &route.proxy_options);
        let uri = http::Uri::builder()
            .scheme(proxy.origin.scheme().as_str())
            .authority(proxy.origin.authority().as_str())
            .path_and_query(path)
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, format!("bad MASQUE target: {e}")))?;
        let mut head = Request::builder()
            .method(Method::CONNECT)
            .uri(uri)
            .version(http::Version::HTTP_2)
            .extension(h2::ext::Protocol::from_static("connect-udp"))
            .header("capsule-protocol", "?1")
            .body(())
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("bad CONNECT-UDP request: {e}"),
                )
            })?;
        for (k, v) in &headers {
            let name = header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("invalid header name `{k}`"),
                )
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("invalid value for header `{k}`"),
                )
            })?;
            head.headers_mut().append(name, value);
        }
        let limit = route.options.connect_timeout + route.options.checkout_timeout;
        let (lease, parts, send, recv) = open_tunnel_stream(&pool, head, limit).await?;
        if !parts.status.is_success() {
            return Err(Error::new(
                ErrorKind::ProxyConnectFailed,
                format!(
                    "proxy {} answered CONNECT-UDP {target} with {}",
                    proxy.origin, parts.status
                ),
            ));
        }
        let shared = lease.handle().shared.clone();
        let hold: Arc<crate::proto::Hold> = Arc::new(Box::new(lease));
        let (producers, queues) = queues(TUNNEL_QUEUE);
        let sender = DatagramSender::new(
            Path::Capsules(Mutex::new(send)),
            producers.outcome.clone(),
            MAX_UDP_PAYLOAD,
            hold.clone(),
        );
        let reader = tokio::spawn(read_capsules(recv, producers, shared)).abort_handle();
        Ok(UdpTunnel {
            head: parts.into(),
            target,
            sender,
            receiver: DatagramReceiver::new(queues, Some(reader), false, hold),
        })
    }

    /// The proxy's answer to the CONNECT-UDP.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// `host:port` of the target.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The largest UDP payload the tunnel carries now.
    pub fn max_payload(&self) -> usize {
        self.sender.max_payload().unwrap_or(0)
    }

    /// Sends one UDP payload to the target (unreliable, like UDP).
    pub fn send(&self, payload: &[u8]) -> Result<()> {
        self.sender.send(payload)
    }

    /// A handle that sends on this tunnel from elsewhere (cheap to clone).
    pub fn sender(&self) -> UdpTunnelSender {
        self.sender.clone()
    }

    /// The next UDP payload from the target; `None` when the tunnel has ended.
    pub async fn recv(&self) -> Result<Option<Bytes>> {
        self.receiver.recv().await
    }

    /// Up to `max` UDP payloads (waits for the first); empty when the tunnel has ended.
    pub async fn recv_batch(&self, max: usize) -> Result<Vec<Bytes>> {
        self.receiver.recv_batch(max).await
    }

    /// Ends the tunnel (our side; what the target still sends can be received until the end).
    pub async fn close(&self) -> Result<()> {
        self.sender.close().await
    }

    /// Splits into the head, the send half and the receive half.
    pub fn split(self) -> (ResponseHead, DatagramSender, DatagramReceiver) {
        (self.head, self.sender, self.receiver)
    }
}

/// Reads DATAGRAM capsules off an HTTP/2 tunnel stream into the receiver's queue. Credit goes
/// back to the proxy only for bytes parsed and queued, and a capsule longer than
/// [`MAX_CAPSULE`] ends the tunnel before its payload is buffered.
async fn read_capsules(
    mut recv: h2::RecvStream,
    producers: Producers,
    shared: Arc<crate::proto::h2::H2Shared>,
) {
    let mut buf = BytesMut::new();
    let ended: Result<()> = async {
        loop {
            loop {
                match take_capsule(&mut buf, MAX_CAPSULE) {
                    Capsule::Whole(DATAGRAM_CAPSULE, capsule) => {
                        if let Some(payload) = udp_payload(capsule) {
                            // A full queue makes this wait: the stream's window then holds
                            // the proxy back.
                            if producers.datagrams.send(payload).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Capsule::Whole(..) => {}
                    Capsule::Incomplete => break,
                    Capsule::TooLarge(len) => {
                        return Err(Error::new(
                            ErrorKind::CapsuleTooLarge,
                            format!(
                                "the proxy sent a {len}-byte capsule (at most {MAX_CAPSULE} accepted); tunnel closed"
                            ),
                        ))
                    }
                }
            }
            match recv.data().await {
                Some(Ok(data)) => {
                    let _ = recv.flow_control().release_capacity(data.len());
                    buf.extend_from_slice(&data);
                }
                Some(Err(e)) => return Err(shared.error(&e)),
                None => return Ok(()),
            }
        }
    }
    .await;
    match ended {
        Ok(()) => producers.outcome.end(),
        Err(e) => producers.outcome.fail(e),
    }
}

fn proxy_failure(e: Error, proxy: &Origin, target: &str) -> Error {
    if e.kind() == ErrorKind::DatagramError && e.message().contains("answered") {
        return Error::new(
            ErrorKind::ProxyConnectFailed,
            format!("proxy {proxy}: CONNECT-UDP {target}: {}", e.message()),
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masque_paths() {
        assert_eq!(
            masque_path("127.0.0.1", 443),
            "/.well-known/masque/udp/127.0.0.1/443/"
        );
        assert_eq!(
            masque_path("[::1]", 53),
            "/.well-known/masque/udp/%3A%3A1/53/"
        );
        assert_eq!(
            masque_path("a/b?c#d", 1),
            "/.well-known/masque/udp/a%2Fb%3Fc%23d/1/"
        );
    }
}
