//! HTTP/3 transport: QUIC with quinn, HTTP/3 with the `h3` crate (through `h3-quinn`),
//! datagrams with `h3-datagram`; every request stream goes to [`crate::endpoints::handle`].
//!
//! One task per QUIC connection builds the h3 connection and loops accepting request streams
//! (which also reads the client's control stream), applying `goaway_after`, and obeying the
//! endpoints' [`ConnControl`] requests (`/freeze`: it stops accepting and reading for a while;
//! `/close`: GOAWAY). Each request stream gets its own task: it reads the request head, calls the
//! endpoint, then writes the response as QUIC flow control allows (h3's `send_data` waits until
//! quinn took the whole piece, which it does only within the client's windows). When datagrams
//! are on, one more task per connection echoes the datagrams of `/datagram-echo` streams.
//!
//! quinn's endpoint driver (one per socket) does the QUIC work on its own: it ACKs, answers
//! PINGs and updates flow control whatever these tasks do.

pub(crate) mod body;
pub(crate) mod datagram;
pub(crate) mod latency;
mod quic;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use h3::error::Code;
use h3::server::{Connection, RequestResolver, RequestStream};
use http::{header, Method, Request, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::body::BoxBody;
use crate::endpoints::{self, ConnControl, ConnCtx, H3RequestInfo};
use crate::http2::strip_connection_headers;
use crate::stats::Counters;
use crate::H3Options;

use self::body::RecvBody;
use self::datagram::{EchoRegistry, EchoSlot};
use self::quic::{AcceptState, QuicConn};

/// How long the TLS handshake plus the HTTP/3 set-up (sending SETTINGS) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After a server GOAWAY, how long the connection stays open once its last accepted stream is
/// finished (so that the last responses reach the client and the streams it opened meanwhile
/// get their `H3_REQUEST_REJECTED`) before the server closes it, unless the client closes it
/// first.
pub(crate) const GOAWAY_LINGER: Duration = Duration::from_secs(1);

/// The largest piece of a response body handed to h3 at once (one DATA frame each).
const MAX_PIECE: usize = 64 * 1024;

/// The QUIC datagram receive buffer when datagrams are on.
const DATAGRAM_BUFFER: usize = 1 << 20;

/// The largest value a QUIC variable-length integer holds.
const VARINT_MAX: u64 = (1 << 62) - 1;

fn varint(value: u64) -> quinn::VarInt {
    quinn::VarInt::from_u64(value.min(VARINT_MAX)).unwrap_or(quinn::VarInt::MAX)
}

/// quinn's server configuration for one HTTP/3 listener: the TLS configuration (ALPN `h3`) and
/// the transport limits of `options`.
pub(crate) fn server_config(
    tls: Arc<rustls::ServerConfig>,
    options: &H3Options,
) -> std::io::Result<quinn::ServerConfig> {
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(std::io::Error::other)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(options.max_concurrent_streams))
        .stream_receive_window(varint(options.stream_window))
        .receive_window(varint(options.connection_window))
        .datagram_receive_buffer_size(options.datagrams.then_some(DATAGRAM_BUFFER));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Until when a connection is frozen (`/freeze`), shared by its tasks.
#[derive(Debug, Default)]
pub(crate) struct Freeze {
    until: Mutex<Option<Instant>>,
}

impl Freeze {
    /// Freezes until `until` (or later, if already frozen longer).
    fn extend(&self, until: Instant) {
        let mut current = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        *current = Some(current.map_or(until, |c| c.max(until)));
    }

    /// The end of the freeze, if the connection is frozen now.
    pub(crate) fn frozen_until(&self) -> Option<Instant> {
        let until = *self.until.lock().unwrap_or_else(PoisonError::into_inner);
        until.filter(|until| *until > Instant::now())
    }

    /// Waits while the connection is frozen.
    pub(crate) async fn wait(&self) {
        while let Some(until) = self.frozen_until() {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every stream task of a connection shares.
struct StreamEnv {
    conn: Arc<ConnCtx>,
    counters: Arc<Counters>,
    freeze: Arc<Freeze>,
    /// `Some` when datagrams are on.
    echo: Option<Arc<EchoRegistry>>,
}

/// Serves one QUIC connection on an HTTP/3 listener until it ends.
pub(crate) async fn serve(
    incoming: quinn::Incoming,
    conn_id: u64,
    counters: Arc<Counters>,
    options: H3Options,
) {
    let Ok(connecting) = incoming.accept() else {
        return;
    };
    // On a server `into_0rtt` always succeeds: the connection is usable at once (0.5-RTT), and
    // the returned future resolves when the handshake completes.
    let (quic, handshake) = match connecting.into_0rtt() {
        Ok((quic, handshake)) => (quic, Some(handshake)),
        Err(connecting) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
            Ok(Ok(quic)) => (quic, None),
            _ => return,
        },
    };
    let state = Arc::new(AcceptState::default());
    let wrapped = QuicConn::new(
        quic.clone(),
        handshake,
        Arc::clone(&state),
        Arc::clone(&counters),
    );
    let mut builder = h3::server::builder();
    builder
        .enable_datagram(options.datagrams)
        .enable_extended_connect(options.datagrams);
    let Ok(Ok(connection)) =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, builder.build::<_, Bytes>(wrapped)).await
    else {
        return;
    };
    counters.on_h3_connection();

    let (control, requests) = mpsc::unbounded_channel();
    let freeze = Arc::new(Freeze::default());
    let echo = options.datagrams.then(|| Arc::new(EchoRegistry::default()));
    let _datagrams = echo.as_ref().map(|registry| {
        AbortOnDrop(tokio::spawn(datagram::echo(
            quic.clone(),
            Arc::clone(registry),
            Arc::clone(&counters),
            Arc::clone(&freeze),
        )))
    });
    let env = Arc::new(StreamEnv {
        conn: Arc::new(
            ConnCtx::with_control(conn_id, Some(quic.remote_address()), control).with_secure(true),
        ),
        counters,
        freeze,
        echo,
    });
    let task = ConnTask {
        connection,
        state,
        env,
        options,
        accepted: 0,
        open: Arc::new(AtomicU64::new(0)),
        going_away: false,
    };
    task.run(requests).await;
}

/// State of one connection's task.
struct ConnTask {
    connection: Connection<QuicConn, Bytes>,
    state: Arc<AcceptState>,
    env: Arc<StreamEnv>,
    options: H3Options,
    /// Request streams accepted so far.
    accepted: u64,
    /// Request streams open now (accepted, response not finished).
    open: Arc<AtomicU64>,
    going_away: bool,
}

impl ConnTask {
    /// Sends GOAWAY (once) naming the stream after the last accepted one: every request stream
    /// from that id on is rejected with `H3_REQUEST_REJECTED` from now on.
    async fn go_away(&mut self) {
        if self.going_away {
            return;
        }
        self.going_away = true;
        self.env.counters.on_goaway();
        self.state.reject_from(self.state.goaway_id());
        // h3 names `last accepted + 1` (4 more in stream ids), or 0 when none was accepted:
        // the same id as `goaway_id`.
        let _ = self.connection.shutdown(1).await;
    }

    async fn run(mut self, mut control: UnboundedReceiver<ConnControl>) {
        if self.options.goaway_after == Some(0) {
            self.go_away().await;
        }
        // Dropping the set (when the connection ends or the server shuts down) aborts the
        // streams.
        let mut streams = JoinSet::new();
        let mut frozen_until: Option<Instant> = None;
        let mut linger: Option<Pin<Box<Sleep>>> = None;
        loop {
            if let Some(until) = frozen_until.take() {
                // Not polling the h3 connection: no stream is accepted, the control stream
                // is not read. The stream tasks and the datagram task wait on `Freeze`.
                tokio::time::sleep_until(until).await;
            }
            if self.going_away && streams.is_empty() && linger.is_none() {
                linger = Some(Box::pin(tokio::time::sleep(GOAWAY_LINGER)));
            }
            tokio::select! {
                biased;
                Some(request) = control.recv() => match request {
                    ConnControl::Freeze(until) => {
                        self.env.freeze.extend(until);
                        frozen_until = Some(frozen_until.map_or(until, |f| f.max(until)));
                    }
                    ConnControl::GoAway => self.go_away().await,
                    ConnControl::Kill => break,
                },
                Some(_) = streams.join_next(), if !streams.is_empty() => {}
                () = async { linger.as_mut().expect("guarded").await }, if linger.is_some() => break,
                accepted = self.connection.accept() => {
                    let Ok(Some(resolver)) = accepted else {
                        // The client closed the connection, or its GOAWAY ended it.
                        break;
                    };
                    let Some(stream) = self.state.claim() else {
                        continue;
                    };
                    self.accepted += 1;
                    let slot = StreamSlot::new(&self.open, &self.env.counters);
                    streams.spawn(serve_stream(
                        resolver,
                        stream.id,
                        stream.early,
                        Arc::clone(&self.env),
                        slot,
                    ));
                    if self.options.goaway_after == Some(self.accepted) {
                        self.go_away().await;
                    }
                }
            }
        }
    }
}

/// Keeps one request stream counted as open on its connection.
struct StreamSlot {
    open: Arc<AtomicU64>,
}

impl StreamSlot {
    fn new(open: &Arc<AtomicU64>, counters: &Counters) -> Self {
        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
        counters.on_h3_streams_open(now);
        StreamSlot {
            open: Arc::clone(open),
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

type SendHalf = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// Serves one request stream: reads the head, calls the endpoint, writes the answer.
async fn serve_stream(
    resolver: RequestResolver<QuicConn, Bytes>,
    stream_id: u64,
    early: bool,
    env: Arc<StreamEnv>,
    slot: StreamSlot,
) {
    let Ok((head, stream)) = resolver.resolve_request().await else {
        return;
    };
    env.freeze.wait().await;
    let (mut send, recv) = stream.split();
    let (mut parts, ()) = head.into_parts();
    let connect_udp = parts.method == Method::CONNECT
        && parts.extensions.get::<h3::ext::Protocol>() == Some(&h3::ext::Protocol::CONNECT_UDP);
    let echo = env
        .echo
        .as_ref()
        .filter(|_| connect_udp)
        .map(|registry| EchoSlot::new(Arc::clone(registry), stream_id));
    parts.extensions.insert(H3RequestInfo { early, echo });
    if early {
        env.counters.on_h3_early_request();
    }
    let (body, mut parked) = RecvBody::new(
        recv,
        &parts.headers,
        Arc::clone(&env.counters),
        Arc::clone(&env.freeze),
    );
    let request = Request::from_parts(parts, body);
    let Ok(response) = endpoints::handle(request, &env.conn, &env.counters).await else {
        // `/drop-next`: the HTTP/3 form of closing without an answer.
        send.stop_stream(Code::H3_INTERNAL_ERROR);
        return;
    };
    let (mut parts, body) = response.into_parts();
    let close = strip_connection_headers(&mut parts.headers);
    let forbids_body = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if !forbids_body && !parts.headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(len) = body.size_hint().exact() {
            parts.headers.insert(header::CONTENT_LENGTH, len.into());
        }
    }
    let end_stream = forbids_body || body.is_end_stream();
    env.freeze.wait().await;
    if send
        .send_response(http::Response::from_parts(parts, ()))
        .await
        .is_ok()
    {
        if end_stream {
            // Before looking for a parked request body below.
            drop(body);
            let _ = send.finish().await;
        } else {
            send_body(body, &mut send, &env).await;
        }
    }
    drop(slot);
    if close {
        // `connection: close` (`/close`) means GOAWAY once the answer is out.
        env.conn.control(ConnControl::GoAway);
    }
    // The endpoint dropped the request body before its end: read the rest now that the
    // response is out (see `RecvBody`).
    if let Ok(recv) = parked.try_recv() {
        body::drain(recv).await;
    }
}

/// Writes `body` on `send`: data in pieces of at most [`MAX_PIECE`] bytes, each awaited until
/// quinn has taken it (which flow control paces), trailers if the body has them, then the end
/// of the stream. A body error resets the stream with `H3_INTERNAL_ERROR` (`/close-mid-body`).
async fn send_body(body: BoxBody, send: &mut SendHalf, env: &StreamEnv) {
    let mut body = std::pin::pin!(body);
    loop {
        let frame = match body.frame().await {
            None => {
                let _ = send.finish().await;
                return;
            }
            Some(Err(_)) => {
                send.stop_stream(Code::H3_INTERNAL_ERROR);
                return;
            }
            Some(Ok(frame)) => frame,
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    env.freeze.wait().await;
                    if send.send_trailers(trailers).await.is_ok() {
                        let _ = send.finish().await;
                    }
                    return;
                }
                continue;
            }
        };
        while !data.is_empty() {
            env.freeze.wait().await;
            let piece = data.split_to(data.len().min(MAX_PIECE));
            let len = piece.len();
            if send.send_data(piece).await.is_err() {
                // The client stopped the stream, or the connection is gone.
                return;
            }
            env.counters.on_sent(len);
        }
    }
}
