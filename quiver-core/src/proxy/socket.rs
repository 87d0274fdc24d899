//! QUIC to an origin through a CONNECT-UDP tunnel: a quinn UDP socket whose datagrams travel
//! in the tunnel, and the [`QuicPath`] that opens the tunnel (again, when it ended) for a pool.

use std::fmt;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::connect::ProxyRoute;
use super::masque::{UdpTunnel, UdpTunnelOptions};
use crate::config::Protocol;
use crate::conn::udp::QuicPath;
use crate::conn::BoxFuture;
use crate::datagram::DatagramSender;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// The address quinn is told a tunnelled origin has (TEST-NET-1: the proxy resolves the real one).
fn tunnel_peer(origin: &Origin) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], origin.port()))
}

/// QUIC for a pool's origin through CONNECT-UDP tunnels of one proxy: one endpoint over one
/// tunnel at a time, opened on first use and again once the tunnel has ended.
pub(crate) struct TunneledQuic {
    route: Arc<ProxyRoute>,
    current: tokio::sync::Mutex<Option<(quinn::Endpoint, Arc<AtomicBool>)>>,
}

impl TunneledQuic {
    pub(crate) fn new(route: Arc<ProxyRoute>) -> TunneledQuic {
        TunneledQuic {
            route,
            current: tokio::sync::Mutex::new(None),
        }
    }
}

impl QuicPath for TunneledQuic {
    fn candidates<'a>(
        &'a self,
        origin: &'a Origin,
    ) -> BoxFuture<'a, Result<Vec<(quinn::Endpoint, SocketAddr)>>> {
        Box::pin(async move {
            let mut current = self.current.lock().await;
            if let Some((endpoint, alive)) = current.as_ref() {
                if alive.load(Ordering::Acquire) {
                    return Ok(vec![(endpoint.clone(), tunnel_peer(origin))]);
                }
            }
            let options = UdpTunnelOptions::default().protocol(match self.route.proxy.protocol {
                Protocol::Http2 => Protocol::Http2,
                _ => Protocol::Http3,
            });
            let host = origin.host().to_authority_string();
            let tunnel = UdpTunnel::open(&self.route, &host, origin.port(), &options).await?;
            let alive = Arc::new(AtomicBool::new(true));
            let socket = TunnelSocket::new(tunnel, tunnel_peer(origin), alive.clone());
            let endpoint = quinn::Endpoint::new_with_abstract_socket(
                quinn::EndpointConfig::default(),
                None,
                socket,
                Arc::new(quinn::TokioRuntime),
            )
            .map_err(|e| {
                Error::new(
                    ErrorKind::ConnectFailed,
                    format!("cannot start QUIC over the tunnel: {e}"),
                )
            })?;
            *current = Some((endpoint.clone(), alive));
            Ok(vec![(endpoint, tunnel_peer(origin))])
        })
    }

    fn tune(&self, config: &mut quinn::TransportConfig) {
        // Probes beyond what the tunnel carries would only be lost.
        config.mtu_discovery_config(None);
    }
}

/// A quinn UDP socket whose datagrams travel through a UDP tunnel to one target.
struct TunnelSocket {
    peer: SocketAddr,
    sender: DatagramSender,
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
    /// that moves received payloads to quinn; `alive` is cleared when the tunnel ends.
    fn new(tunnel: UdpTunnel, peer: SocketAddr, alive: Arc<AtomicBool>) -> Arc<TunnelSocket> {
        let (tx, rx) = mpsc::channel(1024);
        let (_, sender, receiver) = tunnel.split();
        let closer = sender.clone();
        tokio::spawn(async move {
            'recv: while let Ok(batch) = receiver.recv_batch(64).await {
                if batch.is_empty() {
                    break;
                }
                for payload in batch {
                    if tx.send(payload).await.is_err() {
                        break 'recv;
                    }
                }
            }
            alive.store(false, Ordering::Release);
            let _ = closer.close().await;
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
