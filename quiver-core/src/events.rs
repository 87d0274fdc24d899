//! Request and connection events, one model for every surface: what happened, to which request
//! and connection, and when (a monotonic instant). Listeners are called on quiver's threads,
//! never with a quiver lock held; with none registered, nothing is built and nothing is called.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode};

use crate::config::Protocol;
use crate::error::{Error, ErrorKind};
use crate::origin::Origin;

/// What happened.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EventKind {
    /// The client accepted a request (before anything is sent); redirects followed by it and
    /// answers to authentication challenges are part of the same request.
    RequestStart {
        /// Its method.
        method: Method,
        /// Its URL, as given.
        url: String,
    },
    /// The request waits for a connection or stream slot (none was free at once).
    Queued,
    /// The request got a connection (or a stream slot on one).
    ConnectionAcquired {
        /// True when the connection had carried a request before (or carries others now).
        reused: bool,
    },
    /// The request head went to the connection.
    HeadersSent,
    /// The whole request body went to the connection.
    BodySent {
        /// Its length.
        bytes: u64,
    },
    /// The response head arrived.
    ResponseHeaders {
        /// Its status.
        status: StatusCode,
    },
    /// The response body was read to its end (trailers, when any, came with it).
    ResponseEnd {
        /// Body bytes, as received (before decoding).
        bytes: u64,
    },
    /// The request is sent again on another connection: the peer provably did not process it.
    Retried {
        /// Why (`goaway`, `refused_stream`, a stale keep-alive connection's error, ...).
        reason: ErrorKind,
    },
    /// A redirect was followed.
    Redirected {
        /// The redirect's status.
        status: StatusCode,
        /// Where it leads (absolute).
        location: String,
    },
    /// The request failed (the caller gets this error).
    RequestFailed {
        /// The error.
        error: Error,
    },
    /// A new connection's name resolution finished.
    DnsResolved {
        /// How many addresses came back.
        addresses: usize,
    },
    /// A new connection's transport is up (TCP connected; QUIC: the handshake finished).
    Connected {
        /// The peer address, when known (not through tunnels or Unix sockets).
        remote: Option<SocketAddr>,
    },
    /// A new connection's TLS handshake finished.
    TlsDone {
        /// The protocol ALPN chose (`h2`, `http/1.1`, `h3`), if any.
        alpn: Option<String>,
        /// True when the session was resumed (a ticket from an earlier connection).
        resumed: bool,
    },
    /// A connection is ready to carry requests.
    ConnectionOpened,
    /// Opening a connection failed.
    ConnectionFailed {
        /// Why.
        error: Error,
    },
    /// The peer sent GOAWAY: the connection finishes what it carries and takes nothing new.
    Goaway,
    /// The connection closed.
    ConnectionClosed {
        /// Why, in words (`idle`, `peer closed`, `shutdown`, an error's message, ...).
        reason: String,
    },
}

impl EventKind {
    /// The event's stable snake_case name (`request_start`, `tls_done`, ...), the same in every
    /// language.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::RequestStart { .. } => "request_start",
            EventKind::Queued => "queued",
            EventKind::ConnectionAcquired { .. } => "connection_acquired",
            EventKind::HeadersSent => "headers_sent",
            EventKind::BodySent { .. } => "body_sent",
            EventKind::ResponseHeaders { .. } => "response_headers",
            EventKind::ResponseEnd { .. } => "response_end",
            EventKind::Retried { .. } => "retried",
            EventKind::Redirected { .. } => "redirected",
            EventKind::RequestFailed { .. } => "request_failed",
            EventKind::DnsResolved { .. } => "dns_resolved",
            EventKind::Connected { .. } => "connected",
            EventKind::TlsDone { .. } => "tls_done",
            EventKind::ConnectionOpened => "connection_opened",
            EventKind::ConnectionFailed { .. } => "connection_failed",
            EventKind::Goaway => "goaway",
            EventKind::ConnectionClosed { .. } => "connection_closed",
        }
    }
}

/// One event: what happened, to which request and connection, and when.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When (monotonic).
    pub at: Instant,
    /// The request it concerns (an id unique in the process); `None` for connection events.
    pub request: Option<u64>,
    /// The origin of the request or connection.
    pub origin: Origin,
    /// The protocol, when known (`Auto` before ALPN decided).
    pub protocol: Option<Protocol>,
    /// The connection (an id unique in the process), once there is one.
    pub connection: Option<u64>,
    /// The stream on the connection (HTTP/2, HTTP/3), when there is one.
    pub stream: Option<u64>,
}

/// Receives events. Called on quiver's runtime threads, in the order events happen for one
/// request or connection; it must return quickly (queue the event and handle it elsewhere).
pub trait Listener: Send + Sync + 'static {
    /// One event.
    fn on_event(&self, event: &Event);

    /// Whether the listener wants events now. Asked as each request starts (its request events
    /// are built only if some listener wants them) and before each connection event; a binding
    /// whose audience comes and goes (subscribers to a channel) answers from a flag.
    fn enabled(&self) -> bool {
        true
    }
}

impl<F: Fn(&Event) + Send + Sync + 'static> Listener for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// The listeners of one client.
#[derive(Clone, Default)]
pub(crate) struct Events {
    listeners: Arc<Vec<Arc<dyn Listener>>>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Events({} listeners)", self.listeners.len())
    }
}

impl Events {
    /// The emitter for `listeners`, or `None` when there are none (nothing is then built).
    pub(crate) fn new(listeners: Vec<Arc<dyn Listener>>) -> Option<Events> {
        (!listeners.is_empty()).then(|| Events {
            listeners: Arc::new(listeners),
        })
    }

    /// Whether any listener wants events now.
    pub(crate) fn enabled(&self) -> bool {
        self.listeners.iter().any(|l| l.enabled())
    }

    /// Delivers an event to every listener that wants it; a listener that panics does not stop
    /// the others nor reach the caller.
    pub(crate) fn emit(&self, event: Event) {
        for l in self.listeners.iter().filter(|l| l.enabled()) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.on_event(&event)));
        }
    }

    /// A connection event.
    pub(crate) fn connection(
        &self,
        origin: &Origin,
        protocol: Option<Protocol>,
        connection: Option<u64>,
        kind: EventKind,
    ) {
        if !self.enabled() {
            return;
        }
        self.emit(Event {
            kind,
            at: Instant::now(),
            request: None,
            origin: origin.clone(),
            protocol,
            connection,
            stream: None,
        });
    }
}

/// Turns events into `tracing` events (target `quiver`, level DEBUG; failures at WARN).
#[cfg(feature = "tracing")]
pub(crate) struct TracingListener;

#[cfg(feature = "tracing")]
impl Listener for TracingListener {
    /// Off (no event built) while the subscriber filters target `quiver` out at every level
    /// this listener uses.
    fn enabled(&self) -> bool {
        tracing::enabled!(target: "quiver", tracing::Level::WARN)
    }

    fn on_event(&self, e: &Event) {
        match &e.kind {
            EventKind::RequestFailed { error } | EventKind::ConnectionFailed { error } => {
                tracing::warn!(
                    target: "quiver",
                    event = e.kind.name(),
                    request = e.request,
                    connection = e.connection,
                    origin = %e.origin,
                    kind = error.kind().as_str(),
                    "{error}"
                )
            }
            kind => tracing::debug!(
                target: "quiver",
                event = kind.name(),
                request = e.request,
                connection = e.connection,
                stream = e.stream,
                origin = %e.origin,
                protocol = e.protocol.map(|p| p.as_str()),
                "{kind:?}"
            ),
        }
    }
}

/// A process-wide id for a new request or connection.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A request's link to its client's listeners: events about it carry its id.
#[derive(Clone, Debug)]
pub(crate) struct Trace {
    pub id: u64,
    events: Events,
}

impl Trace {
    pub(crate) fn new(events: &Events) -> Trace {
        Trace {
            id: next_id(),
            events: events.clone(),
        }
    }

    /// An event about this request.
    pub(crate) fn emit(
        &self,
        origin: &Origin,
        protocol: Option<Protocol>,
        connection: Option<u64>,
        stream: Option<u64>,
        kind: EventKind,
    ) {
        self.events.emit(Event {
            kind,
            at: Instant::now(),
            request: Some(self.id),
            origin: origin.clone(),
            protocol,
            connection,
            stream,
        });
    }
}
