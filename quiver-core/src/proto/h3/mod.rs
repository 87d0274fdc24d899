//! HTTP/3 over QUIC (quinn + h3): connecting over a [`QuicPath`] (each candidate address in
//! turn), the asynchronous handshake (0-RTT when allowed), the connection's worker (GOAWAY,
//! the 0-RTT verdict, datagrams routed to channels by stream id, closing when asked), request
//! streams and their bodies, and extended CONNECT streams for datagram channels.

pub(crate) mod body;
pub(crate) mod channel;
pub(crate) mod errors;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use h3::error::Code;
use h3::ConnectionState;
use tokio::runtime::Handle;
use tokio::sync::watch;

use self::errors::{connect_error, connect_timeout, map_connection_error};
use super::endpoint::DatagramSink;
use super::head::announced_header_limit;
use super::{CloseReason, WorkerLink};
use crate::config::PoolOptions;
use crate::conn::udp::QuicPath;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Host, Origin};

pub(crate) type H3Send = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type H3Driver = h3::client::Connection<h3_quinn::Connection, Bytes>;
pub(crate) type H3RecvStream = h3::client::RequestStream<h3_quinn::RecvStream, Bytes>;
pub(crate) type H3SendHalf = h3::client::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
pub(crate) type H3Stream = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// Where a 0-RTT connection's handshake stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Resumed with 0-RTT: early data may be sent, the handshake is not done.
    Early,
    /// Handshake complete (1-RTT).
    Confirmed,
}

/// One HTTP/3 connection as requests see it.
pub(crate) struct H3Conn {
    pub(crate) quic: quinn::Connection,
    /// Replaced when a rejected 0-RTT flight forces a fresh HTTP/3 session.
    send: Mutex<H3Send>,
    handshake: watch::Receiver<Handshake>,
    pub(crate) close_reason: CloseReason,
    /// Datagram channels on this connection, by request stream id.
    channels: Mutex<HashMap<u64, DatagramSink>>,
    pub(crate) origin: Origin,
    /// `max_response_headers`: checked on each decoded response head.
    pub(crate) max_response_headers: usize,
    /// The field section size announced to the server, as h3 reports it when a response
    /// breaks it.
    pub(crate) announced_headers: u64,
    /// The client's listeners and this connection's id, when anyone listens.
    watch: std::sync::OnceLock<(crate::events::Events, u64)>,
}

impl H3Conn {
    /// Reports this connection's life (GOAWAY, close) to `events` from now on.
    fn watch(&self, events: crate::events::Events, id: u64) {
        let _ = self.watch.set((events, id));
    }

    fn emit(&self, kind: crate::events::EventKind) {
        if let Some((events, id)) = self.watch.get() {
            events.connection(
                &self.origin,
                Some(crate::config::Protocol::Http3),
                Some(*id),
                kind,
            );
        }
    }

    pub(crate) fn sender(&self) -> H3Send {
        self.send.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where the handshake stands now.
    pub(crate) fn handshake(&self) -> Handshake {
        *self.handshake.borrow()
    }

    /// Whether the peer advertised SETTINGS_H3_DATAGRAM: `None` until its SETTINGS frame has
    /// been read (h3 hands out defaults, as an owned value, before that).
    pub(crate) fn peer_datagrams(&self) -> Option<bool> {
        let send = self.send.lock().unwrap_or_else(|p| p.into_inner());
        match send.settings() {
            std::borrow::Cow::Borrowed(s) => Some(s.enable_datagram()),
            std::borrow::Cow::Owned(_) => None,
        }
    }

    /// Waits (polling; a cold path) until the peer's SETTINGS arrived, or `limit` passed.
    pub(crate) async fn peer_datagrams_within(&self, limit: std::time::Duration) -> Option<bool> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(known) = self.peer_datagrams() {
                return Some(known);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Resolves once the handshake is complete.
    pub(crate) async fn confirmed(&self) {
        let mut rx = self.handshake.clone();
        let _ = rx.wait_for(|h| *h == Handshake::Confirmed).await;
    }

    /// Routes datagrams for request stream `id` to `sink` until [`H3Conn::unregister`].
    pub(crate) fn register(&self, id: u64, sink: DatagramSink) {
        self.lock_channels().insert(id, sink);
    }

    /// Stops routing datagrams to stream `id`.
    pub(crate) fn unregister(&self, id: u64) {
        self.lock_channels().remove(&id);
    }

    fn lock_channels(&self) -> std::sync::MutexGuard<'_, HashMap<u64, DatagramSink>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a caller needs to open a stream on one HTTP/3 connection.
#[derive(Clone)]
pub(crate) struct H3Handle {
    pub(crate) conn: Arc<H3Conn>,
    /// How the connection was made (its id, timings).
    pub(crate) record: Arc<crate::conn::ConnRecord>,
}

/// The quinn client configuration of a pool: its TLS config (ALPN h3) and transport settings
/// from its options, adjusted for the path its connections take.
pub(crate) fn client_config(
    tls: Arc<rustls::ClientConfig>,
    options: &PoolOptions,
    path: &dyn QuicPath,
) -> Result<quinn::ClientConfig> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| Error::invalid_config(format!("TLS config unusable for QUIC: {e}")))?;
    let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
    let mut t = quinn::TransportConfig::default();
    path.tune(&mut t);
    let idle = quinn::IdleTimeout::try_from(options.quic_idle_timeout)
        .map_err(|_| Error::invalid_config("option `quic_idle_timeout` is too large for QUIC"))?;
    t.max_idle_timeout(Some(idle));
    // Keep-alive must come well within the idle timeout to keep a connection open.
    t.keep_alive_interval(
        options
            .ping_interval
            .map(|p| p.min(options.quic_idle_timeout / 3)),
    );
    t.stream_receive_window(quinn::VarInt::from_u32(options.stream_window));
    t.receive_window(quinn::VarInt::from_u32(options.connection_window));
    // The server opens no request streams towards a client.
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    t.datagram_receive_buffer_size(Some(1 << 20));
    quic.transport_config(Arc::new(t));
    Ok(quic)
}

/// Connects (each candidate of `path` in turn, `connect_timeout` each), sets up HTTP/3 and
/// spawns the connection's worker. With `early_data` and a session ticket, returns before the
/// handshake completes (0-RTT); the worker tells requests when it is confirmed.
pub(crate) async fn connect<L: WorkerLink>(
    link: L,
    origin: Origin,
    options: Arc<PoolOptions>,
    quic: quinn::ClientConfig,
    path: Arc<dyn QuicPath>,
    events: Option<crate::events::Events>,
) -> Result<(H3Handle, usize)> {
    let id = crate::events::next_id();
    let started = std::time::Instant::now();
    let connected = connect_quic(link, origin.clone(), options, quic, path, id, started).await;
    match (&connected, &events) {
        (Ok((handle, _)), Some(events)) => {
            if events.enabled() {
                crate::conn::emit_dial(
                    events,
                    &origin,
                    started,
                    handle.record.addresses,
                    &handle.record.info,
                );
            }
            events.connection(
                &origin,
                Some(crate::config::Protocol::Http3),
                Some(id),
                crate::events::EventKind::ConnectionOpened,
            );
            handle.conn.watch(events.clone(), id);
        }
        (Err(e), Some(events)) => events.connection(
            &origin,
            Some(crate::config::Protocol::Http3),
            Some(id),
            crate::events::EventKind::ConnectionFailed { error: e.clone() },
        ),
        _ => {}
    }
    connected
}

async fn connect_quic<L: WorkerLink>(
    link: L,
    origin: Origin,
    options: Arc<PoolOptions>,
    quic: quinn::ClientConfig,
    path: Arc<dyn QuicPath>,
    id: u64,
    started: std::time::Instant,
) -> Result<(H3Handle, usize)> {
    let candidates = path.candidates(&origin).await?;
    let resolved = started.elapsed();
    let addresses = candidates.len();
    let server_name = match origin.host() {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    // Happy Eyeballs over the path's candidates; each attempt bounded by `connect_timeout`.
    let attempt = |(endpoint, addr): (quinn::Endpoint, SocketAddr)| {
        let (quic, options, origin, server_name) = (
            quic.clone(),
            options.clone(),
            origin.clone(),
            server_name.clone(),
        );
        let fut: crate::conn::BoxFuture<'static, Result<(quinn::Connection, Option<_>)>> =
            Box::pin(async move {
                let connecting = endpoint
                    .connect_with(quic, addr, &server_name)
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::ConnectFailed,
                            format!("cannot connect to {origin} ({addr}): {e}"),
                        )
                    })?;
                // With early data and a session ticket, 0-RTT: the connection is usable at once.
                let attempt = if options.early_data {
                    connecting.into_0rtt()
                } else {
                    Err(connecting)
                };
                match attempt {
                    Ok((conn, accepted)) => Ok((conn, Some(accepted))),
                    Err(connecting) => {
                        match tokio::time::timeout(options.connect_timeout, connecting).await {
                            Ok(Ok(conn)) => Ok((conn, None)),
                            Ok(Err(e)) => Err(connect_error(&e, &origin, addr)),
                            Err(_) => Err(connect_timeout(&origin, addr, &options)),
                        }
                    }
                }
            });
        fut
    };
    let (quic_conn, accepted) =
        crate::conn::happy::connect(&origin, candidates, options.happy_eyeballs_delay, attempt)
            .await?;
    let record = crate::conn::ConnRecord::resolved(
        crate::conn::ConnectionInfo {
            id,
            dns: Some(resolved),
            connect: Some(started.elapsed().saturating_sub(resolved)),
            tls: None,
            alpn: Some("h3".to_owned()),
            resumed: accepted.is_some(),
            remote: Some(quic_conn.remote_address()),
        },
        Some(addresses),
    );
    let (driver, send) = h3_session(&quic_conn, &origin, &options).await?;
    let early = accepted.is_some();
    let (handshake_tx, handshake_rx) = watch::channel(if early {
        Handshake::Early
    } else {
        Handshake::Confirmed
    });
    let conn = Arc::new(H3Conn {
        quic: quic_conn,
        send: Mutex::new(send),
        handshake: handshake_rx,
        close_reason: CloseReason::default(),
        channels: Mutex::new(HashMap::new()),
        origin: origin.clone(),
        max_response_headers: options.max_response_headers,
        announced_headers: announced_header_limit(options.max_response_headers),
        watch: std::sync::OnceLock::new(),
    });
    Handle::current().spawn(worker(
        driver,
        conn.clone(),
        link,
        accepted,
        handshake_tx,
        options.clone(),
    ));
    Ok((H3Handle { conn, record }, options.initial_max_streams))
}

async fn h3_session(
    quic: &quinn::Connection,
    origin: &Origin,
    options: &PoolOptions,
) -> Result<(H3Driver, H3Send)> {
    h3::client::builder()
        .enable_extended_connect(true)
        .enable_datagram(true)
        .max_field_section_size(announced_header_limit(options.max_response_headers))
        .build(h3_quinn::Connection::new(quic.clone()))
        .await
        .map_err(|e| map_connection_error(&e, origin))
}

/// Drives one connection: the h3 control stream (GOAWAY → draining), the 0-RTT verdict (a
/// rejected early flight gets a fresh HTTP/3 session on the now 1-RTT connection), incoming
/// datagrams (routed to channels), and closing when asked.
async fn worker<L: WorkerLink>(
    mut driver: H3Driver,
    conn: Arc<H3Conn>,
    link: L,
    accepted: Option<quinn::ZeroRttAccepted>,
    handshake: watch::Sender<Handshake>,
    options: Arc<PoolOptions>,
) {
    let connect_timeout = options.connect_timeout;
    let origin = conn.origin.clone();
    let mut accepted = accepted;
    // A 0-RTT handshake must complete within the connect timeout too.
    let handshake_due = tokio::time::Instant::now() + connect_timeout;
    let mut draining = false;
    let mut datagrams_open = true;
    loop {
        tokio::select! {
            err = std::future::poll_fn(|cx| driver.poll_close(cx)) => {
                if !err.is_h3_no_error() {
                    let mapped = map_connection_error(&err, &origin);
                    conn.close_reason.set(mapped.kind(), mapped.message());
                }
                break;
            }
            ok = async { accepted.as_mut().expect("guarded").await }, if accepted.is_some() => {
                accepted = None;
                if !ok {
                    // The server refused the early flight: what was sent in it is lost. Start
                    // the HTTP/3 session again; requests replay on it.
                    match h3_session(&conn.quic, &origin, &options).await {
                        Ok((new_driver, send)) => {
                            driver = new_driver;
                            *conn.send.lock().unwrap_or_else(|p| p.into_inner()) = send;
                        }
                        Err(e) => {
                            conn.close_reason.set(e.kind(), e.message());
                            break;
                        }
                    }
                }
                let _ = handshake.send(Handshake::Confirmed);
            }
            _ = tokio::time::sleep_until(handshake_due), if accepted.is_some() => {
                conn.close_reason.set(
                    ErrorKind::ConnectTimeout,
                    format!("the 0-RTT handshake with {origin} did not complete within {} ms", connect_timeout.as_millis()),
                );
                conn.quic.close(quinn::VarInt::from_u32(Code::H3_NO_ERROR.value() as u32), b"");
                break;
            }
            dg = conn.quic.read_datagram(), if datagrams_open => match dg {
                Ok(bytes) => route_datagram(&conn, bytes),
                Err(_) => datagrams_open = false,
            },
            _ = link.control().closed() => {
                conn.close_reason.set(ErrorKind::Shutdown, "the connection was closed by the pool");
                conn.quic.close(quinn::VarInt::from_u32(Code::H3_NO_ERROR.value() as u32), b"");
                break;
            }
        }
        if !draining && conn.sender().is_closing() {
            draining = true;
            link.draining();
            conn.emit(crate::events::EventKind::Goaway);
        }
    }
    let _ = handshake.send(Handshake::Confirmed);
    let (kind, message) = conn.close_reason.or((
        ErrorKind::ConnectionClosed,
        format!("the HTTP/3 connection to {origin} closed"),
    ));
    let sinks: Vec<DatagramSink> = conn.lock_channels().drain().map(|(_, s)| s).collect();
    for sink in sinks {
        sink.outcome.fail(Error::new(kind, message.clone()));
    }
    link.closed();
    conn.emit(crate::events::EventKind::ConnectionClosed { reason: message });
}

fn route_datagram(conn: &H3Conn, bytes: Bytes) {
    let Ok(datagram) = h3_datagram::datagram::Datagram::decode(bytes) else {
        return;
    };
    let id = datagram.stream_id().into_inner();
    if let Some(sink) = conn.lock_channels().get(&id) {
        sink.deliver(datagram.into_payload());
    }
}
