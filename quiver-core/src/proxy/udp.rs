//! MASQUE CONNECT-UDP (RFC 9298) tunnels: UDP payloads to a target through a proxy, over a
//! pooled HTTP/3 connection (HTTP datagrams) or a pooled HTTP/2 connection (DATAGRAM capsules,
//! RFC 9297 §3). Also the UDP "socket" that lets quinn run QUIC to an origin through a tunnel.

use std::fmt;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{header, HeaderValue, Method, Request};
use tokio::sync::mpsc;

use super::tunnel::TunnelOpener;
use crate::config::Protocol;
use crate::datagram::{DatagramChannel, DatagramOptions, DatagramSender};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::pool::h2::{self as h2pool, H2Handle};
use crate::pool::mux::StreamLease;
use crate::response::ResponseHead;

/// The largest UDP payload (IPv4, no options).
const MAX_UDP_PAYLOAD: usize = 65_527;

/// How to reach the proxy for a UDP tunnel.
#[derive(Clone, Debug)]
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

/// RFC 9298 default URI template: `/.well-known/masque/udp/{target_host}/{target_port}/`.
fn masque_path(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let encoded: String = host
        .chars()
        .map(|c| {
            if c == ':' {
                "%3A".to_owned()
            } else {
                c.to_string()
            }
        })
        .collect();
    format!("/.well-known/masque/udp/{encoded}/{port}/")
}

fn put_varint(buf: &mut BytesMut, v: u64) {
    match v {
        0..=63 => buf.put_u8(v as u8),
        64..=16_383 => buf.put_u16(0x4000 | v as u16),
        16_384..=1_073_741_823 => buf.put_u32(0x8000_0000 | v as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | v),
    }
}

/// Reads a QUIC varint from the front of `buf`; `None` if incomplete.
fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    if buf.len() < len {
        return None;
    }
    let mut v = u64::from(first & 0x3f);
    for b in &buf[1..len] {
        v = (v << 8) | u64::from(*b);
    }
    Some((v, len))
}

/// Sends UDP payloads into a tunnel; shareable, never blocks (a full path drops, as UDP does).
pub(crate) enum TunnelSender {
    Http3(DatagramSender),
    Http2(Mutex<h2::SendStream<Bytes>>),
}

impl TunnelSender {
    pub(crate) fn send(&self, payload: &[u8]) -> Result<()> {
        if payload.len() > MAX_UDP_PAYLOAD {
            return Err(Error::new(
                ErrorKind::DatagramTooLarge,
                format!(
                    "a {}-byte UDP payload is larger than UDP allows",
                    payload.len()
                ),
            ));
        }
        match self {
            TunnelSender::Http3(channel) => {
                // Context id 0: the payload is a UDP payload.
                let mut d = BytesMut::with_capacity(1 + payload.len());
                d.put_u8(0);
                d.extend_from_slice(payload);
                channel.send(d.freeze())
            }
            TunnelSender::Http2(stream) => {
                let mut c = BytesMut::with_capacity(16 + payload.len());
                put_varint(&mut c, 0x00); // DATAGRAM capsule
                put_varint(&mut c, 1 + payload.len() as u64);
                c.put_u8(0); // context id 0
                c.extend_from_slice(payload);
                stream
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .send_data(c.freeze(), false)
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::DatagramError,
                            format!("the tunnel stream failed: {e}"),
                        )
                    })
            }
        }
    }

    fn max_payload(&self) -> usize {
        match self {
            TunnelSender::Http3(channel) => channel
                .max_datagram_size()
                .map_or(0, |n| n.saturating_sub(1)),
            TunnelSender::Http2(_) => MAX_UDP_PAYLOAD,
        }
    }
}

enum Receiver {
    Http3(Box<DatagramChannel>),
    Http2 {
        recv: h2::RecvStream,
        buf: BytesMut,
        ended: bool,
    },
}

/// A UDP tunnel to one target through a MASQUE proxy.
pub struct UdpTunnel {
    head: ResponseHead,
    target: String,
    sender: Arc<TunnelSender>,
    receiver: Receiver,
    _lease: Option<StreamLease<H2Handle>>,
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
    /// Opens a tunnel to `target_host:target_port` through the proxy of `opener`.
    pub(crate) async fn open(
        opener: &TunnelOpener,
        target_host: &str,
        target_port: u16,
        options: &UdpTunnelOptions,
    ) -> Result<UdpTunnel> {
        let proxy = &opener.proxy;
        let path = masque_path(target_host, target_port);
        let url = format!("{}{}", proxy.origin.to_url_base(), path);
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
                let pool = opener
                    .upstreams
                    .http3(proxy, &opener.tls, &opener.options)?;
                let mut builder = crate::request::Request::builder("CONNECT", &url);
                for (k, v) in &headers {
                    builder = builder.header(k, v);
                }
                let req = builder.build()?;
                let channel = crate::pool::h3::open_channel(&pool, req, DatagramOptions::default())
                    .await
                    .map_err(|e| proxy_failure(e, &proxy.origin, &target))?;
                Ok(UdpTunnel {
                    head: channel.head().clone(),
                    target,
                    sender: Arc::new(TunnelSender::Http3(channel.sender())),
                    receiver: Receiver::Http3(Box::new(channel)),
                    _lease: None,
                })
            }
            Protocol::Http2 => {
                let pool = opener.upstreams.http2(proxy, &opener.tls, &opener.options);
                let uri = http::Uri::builder()
                    .scheme(proxy.origin.scheme().as_str())
                    .authority(proxy.origin.authority().as_str())
                    .path_and_query(path.as_str())
                    .build()
                    .map_err(|e| {
                        Error::new(ErrorKind::InvalidUrl, format!("bad MASQUE target: {e}"))
                    })?;
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
                let limit = opener.options.connect_timeout + opener.options.checkout_timeout;
                let (lease, parts, send, recv) =
                    h2pool::open_tunnel_stream(&pool, head, limit).await?;
                if !parts.status.is_success() {
                    return Err(Error::new(
                        ErrorKind::ProxyConnectFailed,
                        format!(
                            "proxy {} answered CONNECT-UDP {target} with {}",
                            proxy.origin, parts.status
                        ),
                    ));
                }
                Ok(UdpTunnel {
                    head: parts.into(),
                    target,
                    sender: Arc::new(TunnelSender::Http2(Mutex::new(send))),
                    receiver: Receiver::Http2 {
                        recv,
                        buf: BytesMut::new(),
                        ended: false,
                    },
                    _lease: Some(lease),
                })
            }
            Protocol::Http1 => Err(super::upstream::Upstreams::check_transport(
                super::upstream::Transport::Http1,
            )
            .err()
            .unwrap_or_else(|| Error::internal("HTTP/1.1 tunnels are not pooled"))),
        }
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
        self.sender.max_payload()
    }

    /// Sends one UDP payload to the target (unreliable, like UDP).
    pub fn send(&self, payload: &[u8]) -> Result<()> {
        self.sender.send(payload)
    }

    /// A handle that sends on this tunnel from elsewhere (cheap to clone), so that sending
    /// need not wait for a receive in progress.
    pub fn sender(&self) -> UdpTunnelSender {
        UdpTunnelSender(self.sender.clone())
    }

    /// The next UDP payload from the target; `None` when the tunnel has ended.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        match &mut self.receiver {
            Receiver::Http3(channel) => loop {
                match channel.recv().await? {
                    // Context id 0 carries UDP payloads; other contexts are extensions.
                    Some(d) if d.first() == Some(&0) => return Ok(Some(d.slice(1..))),
                    Some(_) => continue,
                    None => return Ok(None),
                }
            },
            Receiver::Http2 { recv, buf, ended } => loop {
                if let Some(payload) = take_capsule_payload(buf) {
                    return Ok(Some(payload));
                }
                if *ended {
                    return Ok(None);
                }
                match recv.data().await {
                    Some(Ok(data)) => {
                        let _ = recv.flow_control().release_capacity(data.len());
                        buf.extend_from_slice(&data);
                    }
                    Some(Err(e)) => {
                        return Err(match &self._lease {
                            Some(lease) => h2pool::tunnel_error(lease, &e),
                            None => Error::new(
                                ErrorKind::DatagramError,
                                format!("the tunnel stream failed: {e}"),
                            ),
                        })
                    }
                    None => *ended = true,
                }
            },
        }
    }

    /// Ends the tunnel (our side; what the target still sends can be received until the end).
    pub async fn close(&mut self) -> Result<()> {
        match (&mut self.receiver, &*self.sender) {
            (Receiver::Http3(channel), _) => channel.close().await,
            (_, TunnelSender::Http2(stream)) => {
                let _ = stream
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .send_data(Bytes::new(), true);
                Ok(())
            }
            (Receiver::Http2 { .. }, TunnelSender::Http3(_)) => Ok(()),
        }
    }
}

/// Sends UDP payloads on a tunnel; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct UdpTunnelSender(Arc<TunnelSender>);

impl fmt::Debug for UdpTunnelSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpTunnelSender").finish_non_exhaustive()
    }
}

impl UdpTunnelSender {
    /// Sends one UDP payload to the target (unreliable, like UDP).
    pub fn send(&self, payload: &[u8]) -> Result<()> {
        self.0.send(payload)
    }

    /// The largest UDP payload the tunnel carries now.
    pub fn max_payload(&self) -> usize {
        self.0.max_payload()
    }
}

/// Takes the next DATAGRAM capsule (context id 0) payload out of `buf`, skipping other
/// capsules; `None` when no complete one is buffered.
fn take_capsule_payload(buf: &mut BytesMut) -> Option<Bytes> {
    loop {
        let (kind, a) = get_varint(buf)?;
        let (len, b) = get_varint(&buf[a..])?;
        let len = usize::try_from(len).ok()?;
        if buf.len() < a + b + len {
            return None;
        }
        buf.advance(a + b);
        let mut capsule = buf.split_to(len).freeze();
        if kind != 0x00 {
            continue;
        }
        let (context, c) = get_varint(&capsule)?;
        if context != 0 {
            continue;
        }
        capsule.advance(c);
        return Some(capsule);
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

/// A quinn UDP socket whose datagrams travel through a UDP tunnel to one target.
pub(crate) struct TunnelSocket {
    peer: SocketAddr,
    sender: Arc<TunnelSender>,
    incoming: Mutex<mpsc::Receiver<Bytes>>,
}

impl fmt::Debug for TunnelSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelSocket")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl TunnelSocket {
    /// Wraps `tunnel`; `peer` is the address quinn will believe the target has. Spawns the task
    /// that moves received payloads to quinn.
    pub(crate) fn new(
        mut tunnel: UdpTunnel,
        peer: SocketAddr,
        runtime: &tokio::runtime::Handle,
        alive: Arc<std::sync::atomic::AtomicBool>,
    ) -> Arc<TunnelSocket> {
        let (tx, rx) = mpsc::channel(1024);
        let sender = tunnel.sender.clone();
        runtime.spawn(async move {
            while let Ok(Some(payload)) = tunnel.recv().await {
                if tx.send(payload).await.is_err() {
                    break;
                }
            }
            alive.store(false, std::sync::atomic::Ordering::Release);
            let _ = tunnel.close().await;
        });
        Arc::new(TunnelSocket {
            peer,
            sender,
            incoming: Mutex::new(rx),
        })
    }
}

#[derive(Debug)]
struct AlwaysWritable;

impl quinn::UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl quinn::AsyncUdpSocket for TunnelSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &quinn::udp::Transmit<'_>) -> std::io::Result<()> {
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for datagram in transmit.contents.chunks(segment) {
            // A datagram the path cannot carry is lost, as on a real network.
            let _ = self.sender.send(datagram);
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        let mut incoming = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
        match incoming.poll_recv(cx) {
            Poll::Ready(Some(payload)) => {
                let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
                    return Poll::Ready(Ok(0));
                };
                let n = payload.len().min(buf.len());
                buf[..n].copy_from_slice(&payload[..n]);
                *m = quinn::udp::RecvMeta {
                    addr: self.peer,
                    len: n,
                    stride: n,
                    ecn: None,
                    dst_ip: None,
                };
                Poll::Ready(Ok(1))
            }
            Poll::Ready(None) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the UDP tunnel ended",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capsules_parse_across_splits_and_skip_other_types() {
        let mut wire = BytesMut::new();
        for (kind, payload) in [
            (0x00u64, &b"\x00one"[..]),
            (0x29, b"ignored"),
            (0x00, b"\x00two"),
        ] {
            put_varint(&mut wire, kind);
            put_varint(&mut wire, payload.len() as u64);
            wire.extend_from_slice(payload);
        }
        let wire = wire.freeze();
        for split in [1, 2, 3, wire.len()] {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(split) {
                buf.extend_from_slice(piece);
                while let Some(p) = take_capsule_payload(&mut buf) {
                    out.push(p);
                }
            }
            assert_eq!(
                out,
                vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")],
                "split {split}"
            );
        }
    }

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
    }
}
