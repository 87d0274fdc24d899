//! The proxy over HTTP/3 (`proxy_h3`): MASQUE CONNECT-UDP (RFC 9298) with HTTP/3 datagrams
//! (RFC 9297), on quinn + `h3` (extended CONNECT and datagrams enabled).
//!
//! One task per QUIC connection accepts the request streams (spawning a task for each) and one
//! more reads the QUIC datagrams: it decodes each one's quarter stream id and, when that stream
//! is an open tunnel and the context id is 0, sends the UDP payload on the tunnel's socket
//! (dropped otherwise, as RFC 9297 allows). A tunnel's task answers 200, then sends every UDP
//! datagram its socket receives back as an HTTP/3 datagram of its stream (encoded here: see
//! [`crate::http3::datagram::encode`]), and reads and discards the stream's data, until the
//! client ends the stream or resets it: then the socket is closed and the proxy ends its side.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use h3::error::Code;
use h3::server::{RequestResolver, RequestStream};
use http::Method;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::capsule;
use super::{udp_tunnel_head, ProxyCtx, Refusal};
use crate::http3::datagram;
use crate::http3::AbortOnDrop;

/// How long the TLS handshake plus the HTTP/3 set-up may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// QUIC `initial_max_streams_bidi`: tunnels a client may have open at once on one connection.
pub(crate) const MAX_STREAMS: u32 = 1024;

/// The QUIC datagram receive buffer.
const DATAGRAM_BUFFER: usize = 4 << 20;

/// quinn's server configuration for `proxy_h3`: TLS (ALPN `h3`), many streams, datagrams.
pub(crate) fn server_config(tls: Arc<rustls::ServerConfig>) -> io::Result<quinn::ServerConfig> {
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(io::Error::other)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_STREAMS))
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_BUFFER);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

type Quic = h3_quinn::Connection;

/// The open tunnels of one connection, by stream id.
#[derive(Debug, Default)]
struct Tunnels {
    sockets: Mutex<HashMap<u64, Arc<UdpSocket>>>,
}

impl Tunnels {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<UdpSocket>>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a tunnel's socket registered; unregisters it when dropped.
struct Registration {
    tunnels: Arc<Tunnels>,
    stream_id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tunnels.lock().remove(&self.stream_id);
    }
}

/// Serves the proxy on one QUIC connection until it ends.
pub(crate) async fn serve(incoming: quinn::Incoming, ctx: Arc<ProxyCtx>) {
    let Ok(connecting) = incoming.accept() else {
        return;
    };
    let Ok(Ok(quic)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await else {
        return;
    };
    let mut builder = h3::server::builder();
    builder.enable_extended_connect(true).enable_datagram(true);
    let build = builder.build::<_, Bytes>(h3_quinn::Connection::new(quic.clone()));
    let Ok(Ok(mut connection)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, build).await else {
        return;
    };
    let tunnels = Arc::new(Tunnels::default());
    let _datagrams = AbortOnDrop(tokio::spawn(read_datagrams(
        quic.clone(),
        Arc::clone(&tunnels),
    )));
    // Dropping the set (when the connection ends or the server shuts down) ends the tunnels.
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            accepted = connection.accept() => {
                let Ok(Some(resolver)) = accepted else {
                    break;
                };
                streams.spawn(serve_stream(
                    resolver,
                    quic.clone(),
                    Arc::clone(&tunnels),
                    Arc::clone(&ctx),
                ));
            }
        }
    }
}

/// Hands the UDP payload of each datagram to its tunnel's socket. A datagram whose quarter
/// stream id cannot be decoded closes the connection with `H3_DATAGRAM_ERROR`.
async fn read_datagrams(quic: quinn::Connection, tunnels: Arc<Tunnels>) {
    while let Ok(bytes) = quic.read_datagram().await {
        let Some((stream_id, payload)) = datagram::decode(bytes) else {
            let code = quinn::VarInt::from_u64(Code::H3_DATAGRAM_ERROR.value())
                .unwrap_or(quinn::VarInt::from_u32(0x33));
            quic.close(code, b"malformed HTTP/3 datagram");
            return;
        };
        let Some(udp) = capsule::udp_payload(&payload) else {
            continue;
        };
        let socket = tunnels.lock().get(&stream_id).cloned();
        if let Some(socket) = socket {
            // A UDP send on loopback hardly ever waits; a failure loses the datagram, as UDP may.
            let _ = socket.send(udp).await;
        }
    }
}

type Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// Answers a refusal: its head and its text.
async fn refuse(stream: &mut Stream, refusal: &Refusal) {
    if stream.send_response(refusal.head()).await.is_ok()
        && stream.send_data(refusal.body()).await.is_ok()
    {
        let _ = stream.finish().await;
    }
}

async fn serve_stream(
    resolver: RequestResolver<Quic, Bytes>,
    quic: quinn::Connection,
    tunnels: Arc<Tunnels>,
    ctx: Arc<ProxyCtx>,
) {
    let Ok((request, mut stream)) = resolver.resolve_request().await else {
        return;
    };
    if let Err(refusal) = ctx.check_auth(request.headers()) {
        return refuse(&mut stream, &refusal).await;
    }
    let connect_udp = request.method() == Method::CONNECT
        && request.extensions().get::<h3::ext::Protocol>() == Some(&h3::ext::Protocol::CONNECT_UDP);
    if !connect_udp {
        let refusal = Refusal::bad_request(format!(
            "{} {} is not a CONNECT-UDP request (extended CONNECT, :protocol connect-udp)",
            request.method(),
            request.uri()
        ));
        return refuse(&mut stream, &refusal).await;
    }
    let socket = match ctx.open_udp(request.uri().path()).await {
        Ok(socket) => Arc::new(socket),
        Err(refusal) => return refuse(&mut stream, &refusal).await,
    };
    // The send side's id: reading the receive side's id panics while a read is in flight.
    let stream_id = stream.send_id().into_inner();
    tunnels.lock().insert(stream_id, Arc::clone(&socket));
    let registration = Registration { tunnels, stream_id };
    if stream
        .send_response(udp_tunnel_head(socket.local_addr().ok()))
        .await
        .is_err()
    {
        return;
    }
    let client_done = async {
        // The stream's data (capsules, if the client sends any) is read and discarded.
        while let Ok(Some(_)) = stream.recv_data().await {}
    };
    tokio::select! {
        () = client_done => {}
        () = relay_back(&socket, &quic, stream_id) => {}
    }
    drop(registration);
    drop(socket);
    let _ = stream.finish().await;
}

/// Sends what the tunnel's socket receives back as HTTP/3 datagrams of `stream_id`, until the
/// connection is gone.
async fn relay_back(socket: &UdpSocket, quic: &quinn::Connection, stream_id: u64) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                let payload = capsule::http_datagram(&buf[..n]);
                match quic.send_datagram(datagram::encode(stream_id, &payload)) {
                    Ok(()) => {}
                    Err(quinn::SendDatagramError::ConnectionLost(_)) => return,
                    // Too large for the path, or datagrams off: lost, as UDP may be.
                    Err(_) => {}
                }
            }
            // An ICMP error from an earlier send (nobody listens on the target port).
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(_) => return,
        }
    }
}
