//! The proxy over HTTP/2 (`proxy_tls` connections that negotiated `h2`), served by the `h2`
//! crate with extended CONNECT (RFC 8441) enabled.
//!
//! One task polls the connection and spawns a task per stream:
//!
//! - `CONNECT` (`:authority` only, RFC 9113, 8.5): a TCP connection to the target, then the
//!   stream's DATA relayed to it and its bytes relayed back as DATA. Flow control holds both
//!   ways: the window of received DATA is released once the bytes are written to the target,
//!   and DATA is sent only within the capacity h2 grants.
//! - extended CONNECT with `:protocol: connect-udp` on the RFC 9298 path: a UDP socket connected
//!   to the target, then DATAGRAM capsules (RFC 9297, 3.5) relayed both ways.
//! - a request with `:scheme: http`: forwarded like an HTTP/1.1 absolute-form request.
//! - anything else: 400.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::server::{Builder, SendResponse};
use h2::{Reason, RecvStream, SendStream};
use http::{Method, Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::capsule::{self, DATAGRAM};
use super::{tunnel_head, udp_tunnel_head, ProxyCtx, Refusal};
use crate::body::BoxBody;
use crate::http2::strip_connection_headers;

/// How long the client may take to send its connection preface.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// SETTINGS_MAX_CONCURRENT_STREAMS: tunnels (and forwarded requests) open at once.
pub(crate) const MAX_STREAMS: u32 = 256;

/// The stream receive window (what a client may send ahead into one tunnel).
const STREAM_WINDOW: u32 = 1 << 20;

/// The connection receive window.
const CONNECTION_WINDOW: u32 = 16 << 20;

/// How much is read from a tunnel's target at once.
const READ_CHUNK: usize = 16 * 1024;

/// Serves the proxy over HTTP/2 on `io` until the connection ends.
pub(crate) async fn serve<I>(io: I, ctx: Arc<ProxyCtx>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new();
    builder
        .enable_connect_protocol()
        .max_concurrent_streams(MAX_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    let handshake = builder.handshake::<_, Bytes>(io);
    let Ok(Ok(mut connection)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await else {
        return;
    };
    // Dropping the set (when the connection ends or the server shuts down) ends the tunnels.
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            next = connection.accept() => {
                let Some(Ok((request, respond))) = next else {
                    break;
                };
                streams.spawn(serve_stream(request, respond, Arc::clone(&ctx)));
            }
        }
    }
}

/// Answers a refusal: its head and its text.
fn refuse(respond: &mut SendResponse<Bytes>, refusal: &Refusal) {
    if let Ok(mut stream) = respond.send_response(refusal.head(), false) {
        // A few bytes, well within the initial window: h2 buffers them until they can go.
        let _ = stream.send_data(refusal.body(), true);
    }
}

async fn serve_stream(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    ctx: Arc<ProxyCtx>,
) {
    if let Err(refusal) = ctx.check_auth(request.headers()) {
        refuse(&mut respond, &refusal);
        return;
    }
    if request.method() == Method::CONNECT {
        let protocol = request
            .extensions()
            .get::<h2::ext::Protocol>()
            .map(|p| p.as_str().to_owned());
        match protocol.as_deref() {
            None => tcp_tunnel(request, respond, &ctx).await,
            Some("connect-udp") => udp_tunnel(request, respond, &ctx).await,
            Some(other) => refuse(
                &mut respond,
                &Refusal::bad_request(format!("unsupported :protocol {other}")),
            ),
        }
        return;
    }
    if request.uri().scheme_str() == Some("http") {
        let (parts, body) = request.into_parts();
        let response = ctx
            .forward(Request::from_parts(parts, RecvBody::new(body)))
            .await;
        send_response(&mut respond, response).await;
        return;
    }
    let refusal = Refusal::bad_request(format!(
        "{} {} is not a proxy request: use CONNECT, extended CONNECT (connect-udp) or :scheme http",
        request.method(),
        request.uri()
    ));
    refuse(&mut respond, &refusal);
}

/// A plain CONNECT: dial, answer 200, relay.
async fn tcp_tunnel(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    ctx: &ProxyCtx,
) {
    let target = match ctx.open_tcp(request.uri().authority()).await {
        Ok(target) => target,
        Err(refusal) => return refuse(&mut respond, &refusal),
    };
    let Ok(send) = respond.send_response(tunnel_head(target.local_addr().ok()), false) else {
        return;
    };
    relay_tcp(request.into_body(), send, target).await;
}

/// Relays a CONNECT stream and a TCP connection both ways until both directions have ended;
/// a failure on either side resets the stream with `CONNECT_ERROR` (RFC 9113, 8.5).
async fn relay_tcp(mut recv: RecvStream, mut send: SendStream<Bytes>, target: TcpStream) {
    let (mut from_target, mut to_target) = target.into_split();
    let upstream = async {
        while let Some(data) = recv.data().await {
            let data = data.map_err(io::Error::other)?;
            to_target.write_all(&data).await?;
            let _ = recv.flow_control().release_capacity(data.len());
        }
        // The client ended its side: so does the proxy, towards the target.
        to_target.shutdown().await
    };
    let downstream = async {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = from_target.read(&mut buf).await?;
            if n == 0 {
                return send.send_data(Bytes::new(), true).map_err(io::Error::other);
            }
            send_all(&mut send, Bytes::copy_from_slice(&buf[..n])).await?;
        }
    };
    if tokio::try_join!(upstream, downstream).is_err() {
        send.send_reset(Reason::CONNECT_ERROR);
    }
}

/// Sends `data` as flow control allows: reserves room for it, waits for capacity, sends what
/// was granted, until all is out.
async fn send_all(send: &mut SendStream<Bytes>, mut data: Bytes) -> io::Result<()> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let mut granted = send.capacity();
        while granted == 0 {
            match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(_)) => granted = send.capacity(),
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Err(io::ErrorKind::BrokenPipe.into()),
            }
        }
        let piece = data.split_to(granted.min(data.len()));
        send.send_data(piece, false).map_err(io::Error::other)?;
    }
    Ok(())
}

/// The target port that makes the proxy hostile: it answers a CONNECT-UDP to port 1 with 200,
/// then a DATAGRAM capsule announcing 2^40 bytes, followed by junk (for clients' capsule limit).
pub const HOSTILE_CAPSULE_PORT: u16 = 1;

/// An extended CONNECT `connect-udp`: a UDP socket to the target, answer 200, relay capsules.
async fn udp_tunnel(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    ctx: &ProxyCtx,
) {
    if request
        .uri()
        .path()
        .ends_with(&format!("/{HOSTILE_CAPSULE_PORT}/"))
    {
        let head = udp_tunnel_head(None);
        let Ok(mut send) = respond.send_response(head, false) else {
            return;
        };
        // Type 0 (DATAGRAM), length 2^40 (an 8-byte varint), then 4 MiB of junk.
        let mut announce = vec![0x00];
        announce.extend_from_slice(&(0xc000_0000_0000_0000u64 | (1 << 40)).to_be_bytes());
        if send_all(&mut send, Bytes::from(announce)).await.is_ok() {
            let junk = Bytes::from(vec![b'x'; 64 * 1024]);
            for _ in 0..64 {
                if send_all(&mut send, junk.clone()).await.is_err() {
                    break;
                }
            }
        }
        let _ = request.into_body().data().await;
        return;
    }
    let socket = match ctx.open_udp(request.uri().path()).await {
        Ok(socket) => socket,
        Err(refusal) => return refuse(&mut respond, &refusal),
    };
    let head = udp_tunnel_head(socket.local_addr().ok());
    let Ok(send) = respond.send_response(head, false) else {
        return;
    };
    relay_udp(request.into_body(), send, socket).await;
}

/// Relays DATAGRAM capsules (context id 0) between the stream and the UDP socket until the
/// client ends the stream (then the proxy ends its side too) or it fails. Unknown capsule
/// types and other context ids are dropped; a capsule over [`capsule::MAX_CAPSULE`] resets the
/// stream with `PROTOCOL_ERROR`.
async fn relay_udp(mut recv: RecvStream, mut send: SendStream<Bytes>, socket: UdpSocket) {
    let upstream = async {
        let mut buf = BytesMut::new();
        while let Some(data) = recv.data().await {
            let Ok(data) = data else {
                return None;
            };
            let _ = recv.flow_control().release_capacity(data.len());
            buf.extend_from_slice(&data);
            loop {
                match capsule::next_capsule(&mut buf) {
                    Ok(Some((DATAGRAM, payload))) => {
                        if let Some(udp) = capsule::udp_payload(&payload) {
                            // UDP may lose datagrams: a failed send is one more such loss.
                            let _ = socket.send(udp).await;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(capsule::TooLarge) => return Some(Reason::PROTOCOL_ERROR),
                }
            }
        }
        None
    };
    let downstream = async {
        let mut buf = vec![0u8; 65_536];
        loop {
            match socket.recv(&mut buf).await {
                Ok(n) => {
                    if send_all(&mut send, capsule::datagram_capsule(&buf[..n]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                // An ICMP error from an earlier send (nobody listens on the target port).
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(_) => return,
            }
        }
    };
    tokio::select! {
        reset = upstream => match reset {
            Some(reason) => send.send_reset(reason),
            None => {
                let _ = send.send_data(Bytes::new(), true);
            }
        },
        () = downstream => {}
    }
}

/// Sends a forwarded response: the head without the headers HTTP/2 forbids, then the body as
/// flow control allows, then trailers if any. A body failure resets the stream.
async fn send_response(respond: &mut SendResponse<Bytes>, response: Response<BoxBody>) {
    let (mut parts, body) = response.into_parts();
    strip_connection_headers(&mut parts.headers);
    let end = body.is_end_stream();
    let Ok(mut send) = respond.send_response(Response::from_parts(parts, ()), end) else {
        return;
    };
    if end {
        return;
    }
    let mut body = std::pin::pin!(body);
    loop {
        match body.frame().await {
            None => {
                let _ = send.send_data(Bytes::new(), true);
                return;
            }
            Some(Err(_)) => {
                send.send_reset(Reason::INTERNAL_ERROR);
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if send_all(&mut send, data).await.is_err() {
                        return;
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = send.send_trailers(trailers);
                        return;
                    }
                }
            },
        }
    }
}

/// The body of a forwarded HTTP/2 request: the window of each DATA frame is released as soon
/// as the frame is handed on.
struct RecvBody {
    inner: RecvStream,
    data_done: bool,
    done: bool,
}

impl RecvBody {
    fn new(inner: RecvStream) -> Self {
        RecvBody {
            inner,
            data_done: false,
            done: false,
        }
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        if !this.data_done {
            if let Some(data) = ready!(this.inner.poll_data(cx)) {
                return Poll::Ready(Some(data.map(|data| {
                    let _ = this.inner.flow_control().release_capacity(data.len());
                    Frame::data(data)
                })));
            }
            this.data_done = true;
        }
        if this.done {
            return Poll::Ready(None);
        }
        let trailers = ready!(this.inner.poll_trailers(cx));
        this.done = true;
        match trailers {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}
