//! HTTP/2 over the `h2` crate: connection setup and its worker (PING keep-alive, GOAWAY,
//! stream limits), request streams with flow-controlled uploads, response bodies whose receive
//! window is re-opened only as the caller takes bytes, and CONNECT streams used as byte streams.

pub(crate) mod body;
pub(crate) mod sniff;
pub(crate) mod tunnel;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use h2::Reason;
use tokio::runtime::Handle;

use self::sniff::{FrameSniffer, H2Signals};
use super::head::announced_header_limit;
use super::{CloseReason, WorkerLink};
use crate::config::PoolOptions;
use crate::conn::{io_error, Activity, BoxFuture, ConnRecord, ConnectionInfo, Stream, Tracked};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// What a caller needs to open a stream on one HTTP/2 connection.
#[derive(Clone)]
pub(crate) struct H2Handle {
    pub(crate) send: SendRequest<Bytes>,
    pub(crate) shared: Arc<H2Shared>,
    /// How the connection was made (its id, dial timings).
    pub(crate) record: Arc<ConnRecord>,
}

/// The client's listeners for one connection's life, with what its events carry.
pub(crate) struct Watch {
    events: crate::events::Events,
    origin: Origin,
    id: u64,
}

impl Watch {
    fn new(events: Option<crate::events::Events>, origin: &Origin, id: u64) -> Option<Watch> {
        events.map(|events| Watch {
            events,
            origin: origin.clone(),
            id,
        })
    }

    fn emit(&self, kind: crate::events::EventKind) {
        self.events.connection(
            &self.origin,
            Some(crate::config::Protocol::Http2),
            Some(self.id),
            kind,
        );
    }
}

/// State shared by a connection's worker and the requests on it.
pub(crate) struct H2Shared {
    pub(crate) signals: Arc<H2Signals>,
    pub(crate) close_reason: CloseReason,
    pub(crate) origin: Origin,
    /// Bytes a response body takes before its window is re-opened (`window_update_threshold`
    /// of `stream_window`).
    pub(crate) window_threshold: usize,
    /// `max_response_headers`.
    pub(crate) max_response_headers: usize,
}

impl H2Shared {
    /// Maps an `h2` error on a stream or on this connection to a quiver error.
    pub(crate) fn error(&self, e: &h2::Error) -> Error {
        map_h2_error(e, self)
    }

    /// True when the peer's GOAWAY left stream `id` out: it was never processed, whatever
    /// error its connection then gave (a broken pipe under a write, say).
    pub(crate) fn left_out_by_goaway(&self, id: u32) -> bool {
        self.signals.goaway.load(Ordering::Acquire)
            && id > self.signals.goaway_last_stream.load(Ordering::Acquire)
    }
}

/// Runs the HTTP/2 handshake on an established transport, spawns the connection's worker and
/// waits for the peer's SETTINGS (so the stream limit is known before callers are routed).
pub(crate) fn setup<L: WorkerLink>(
    link: L,
    stream: Stream,
    origin: Origin,
    options: Arc<PoolOptions>,
    info: ConnectionInfo,
    events: Option<crate::events::Events>,
) -> BoxFuture<'static, Result<(H2Handle, usize)>> {
    Box::pin(async move {
        let record = ConnRecord::new(info);
        let watch = Watch::new(events, &origin, record.info.id);
        let signals = Arc::new(H2Signals::new());
        let io = Tracked::observed(
            stream,
            Activity::new(),
            Box::new(FrameSniffer::new(signals.clone())),
        );
        let mut settings = signals.changed.subscribe();
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(options.stream_window)
            .initial_connection_window_size(options.connection_window)
            // The exact limit is checked on the decoded head (`check_response_headers`).
            .max_header_list_size(
                u32::try_from(announced_header_limit(options.max_response_headers))
                    .unwrap_or(u32::MAX),
            )
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::Protocol,
                    format!("HTTP/2 handshake with {origin}: {e}"),
                    e,
                )
            })?;
        let mut conn = conn;
        let ping = conn.ping_pong();
        let shared = Arc::new(H2Shared {
            signals: signals.clone(),
            close_reason: CloseReason::default(),
            origin: origin.clone(),
            window_threshold: ((options.stream_window as f64) * options.window_update_threshold)
                as usize,
            max_response_headers: options.max_response_headers,
        });
        let watch = watch.map(Arc::new);
        Handle::current().spawn(worker(
            conn,
            ping,
            link,
            shared.clone(),
            options.clone(),
            watch.clone(),
        ));
        let wait_settings = async {
            while !signals.settings_seen.load(Ordering::Acquire) {
                if settings.changed().await.is_err() {
                    break;
                }
            }
        };
        if tokio::time::timeout(options.connect_timeout, wait_settings)
            .await
            .is_err()
        {
            return Err(Error::new(
                ErrorKind::ConnectTimeout,
                format!(
                    "{origin} sent no HTTP/2 SETTINGS within {} ms",
                    options.connect_timeout.as_millis()
                ),
            ));
        }
        let max = signals.max_concurrent_streams.load(Ordering::Acquire) as usize;
        let max = if max == u32::MAX as usize {
            options.initial_max_streams
        } else {
            max
        };
        if let Some(w) = &watch {
            w.emit(crate::events::EventKind::ConnectionOpened);
        }
        Ok((
            H2Handle {
                send,
                shared,
                record,
            },
            max,
        ))
    })
}

/// Drives one connection: the `h2` connection future, keep-alive PINGs, GOAWAY and SETTINGS
/// changes reported through the link, and closing when asked.
async fn worker<L: WorkerLink>(
    conn: Connection<Tracked, Bytes>,
    mut ping: Option<h2::PingPong>,
    link: L,
    shared: Arc<H2Shared>,
    options: Arc<PoolOptions>,
    watch: Option<Arc<Watch>>,
) {
    let mut conn = std::pin::pin!(conn);
    let mut changes = shared.signals.changed.subscribe();
    let mut draining = false;
    let mut max_streams = shared
        .signals
        .max_concurrent_streams
        .load(Ordering::Acquire);
    let interval = options.ping_interval;
    let mut next_ping = interval.map(|i| tokio::time::Instant::now() + i);
    let mut pong_due: Option<tokio::time::Instant> = None;
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    loop {
        if !draining && shared.signals.goaway.load(Ordering::Acquire) {
            draining = true;
            link.draining();
            if let Some(w) = &watch {
                w.emit(crate::events::EventKind::Goaway);
            }
        }
        let now_max = shared
            .signals
            .max_concurrent_streams
            .load(Ordering::Acquire);
        if now_max != max_streams {
            max_streams = now_max;
            link.set_max_streams(now_max as usize);
        }
        let ping_at = if pong_due.is_none() {
            next_ping.unwrap_or(far)
        } else {
            far
        };
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    // A GOAWAY of our own (not an I/O failure) means the peer broke the protocol.
                    let kind = if e.is_go_away() && !e.is_remote() && !e.is_io() {
                        ErrorKind::Protocol
                    } else {
                        ErrorKind::ConnectionClosed
                    };
                    shared.close_reason.set(kind, format!("HTTP/2 connection failed: {e}"));
                }
                break;
            }
            _ = changes.changed() => {}
            _ = link.control().closed() => {
                shared.close_reason.set(ErrorKind::Shutdown, "the connection was closed by the pool");
                break;
            }
            _ = tokio::time::sleep_until(ping_at), if ping.is_some() && next_ping.is_some() && pong_due.is_none() => {
                if let Some(p) = ping.as_mut() {
                    if p.send_ping(h2::Ping::opaque()).is_ok() {
                        pong_due = Some(tokio::time::Instant::now() + options.ping_timeout);
                    }
                }
            }
            pong = std::future::poll_fn(|cx| match ping.as_mut() {
                Some(p) => p.poll_pong(cx),
                None => Poll::Pending,
            }), if pong_due.is_some() => {
                pong_due = None;
                if pong.is_err() {
                    break;
                }
                next_ping = interval.map(|i| tokio::time::Instant::now() + i);
            }
            _ = tokio::time::sleep_until(pong_due.unwrap_or(far)), if pong_due.is_some() => {
                shared.close_reason.set(
                    ErrorKind::PingTimeout,
                    format!("the peer did not answer a PING within {} ms; connection closed", options.ping_timeout.as_millis()),
                );
                break;
            }
        }
    }
    link.closed();
    if let Some(w) = &watch {
        // A GOAWAY that came with the connection's end (the peer closed right after it) was
        // not seen by the loop above.
        if !draining && shared.signals.goaway.load(Ordering::Acquire) {
            w.emit(crate::events::EventKind::Goaway);
        }
        let reason = shared
            .close_reason
            .error(&shared.origin)
            .map_or_else(|| "closed".to_owned(), |e| e.to_string());
        w.emit(crate::events::EventKind::ConnectionClosed { reason });
    }
    // Dropping the connection fails the streams still open on it.
}

/// Maps an `h2` error on a stream or connection to a quiver error (a known reason for closing
/// the connection wins).
fn map_h2_error(e: &h2::Error, shared: &H2Shared) -> Error {
    let origin = &shared.origin;
    if let Some(known) = shared.close_reason.error(origin) {
        return known;
    }
    if e.is_go_away() && e.is_remote() {
        return Error::new(
            ErrorKind::Goaway,
            format!(
                "{origin} sent GOAWAY ({}) and did not process the request",
                e.reason().unwrap_or(Reason::NO_ERROR)
            ),
        );
    }
    if e.is_reset() && !e.is_remote() && !e.is_io() {
        // We reset the stream: its response broke a rule of ours or of the protocol.
        return match e.reason() {
            Some(Reason::CANCEL) | None => Error::new(
                ErrorKind::Cancelled,
                format!("the HTTP/2 stream to {origin} was cancelled"),
            ),
            Some(reason) => Error::new(
                ErrorKind::Protocol,
                format!("{origin} sent a malformed HTTP/2 response ({reason})"),
            ),
        };
    }
    if e.is_go_away() && !e.is_remote() && !e.is_io() {
        return Error::new(
            ErrorKind::Protocol,
            format!(
                "{origin} broke the HTTP/2 protocol; connection closed ({})",
                e.reason().unwrap_or(Reason::PROTOCOL_ERROR)
            ),
        );
    }
    if e.is_reset() && e.is_remote() {
        let reason = e.reason().unwrap_or(Reason::INTERNAL_ERROR);
        if reason == Reason::REFUSED_STREAM {
            return Error::new(
                ErrorKind::RefusedStream,
                format!("{origin} refused the stream (REFUSED_STREAM)"),
            );
        }
        return Error::new(
            ErrorKind::StreamReset,
            format!("{origin} reset the stream ({reason})"),
        );
    }
    if let Some(io) = e.get_io() {
        return io_error(io, &format!("HTTP/2 connection to {origin}"));
    }
    if e.is_io() {
        return Error::new(
            ErrorKind::ConnectionClosed,
            format!("HTTP/2 connection to {origin} closed: {e}"),
        );
    }
    Error::new(
        ErrorKind::Protocol,
        format!("HTTP/2 error with {origin}: {e}"),
    )
}
