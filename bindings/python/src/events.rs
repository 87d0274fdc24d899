//! Core events for Python: a core listener ([`Tap`]) that copies each event into a bounded
//! queue and never blocks quiver's threads, the queue's Python face ([`NativeEvents`]) that a
//! Python thread drains, and the `quiver.Event` objects ([`PyEvent`]) it hands to listeners.
//!
//! Every native client registers one tap; it answers `enabled()` from an atomic mode that the
//! Python layer sets (listeners present, the `quiver` logger's level), so a client nobody
//! listens to makes core build no events at all.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use pyo3::IntoPyObjectExt;
use quiver_core::{Event, EventKind, Listener};

use crate::errors;

/// Mode bit: Python listeners are registered (every event is queued).
pub(crate) const LISTENERS: u8 = 1;
/// Mode bit: the `quiver` logger takes DEBUG records (every event is queued).
pub(crate) const LOG_DEBUG: u8 = 2;
/// Mode bit: the `quiver` logger takes WARNING records (failures are queued).
pub(crate) const LOG_WARNING: u8 = 4;
/// The bits the logger owns.
const LOG_BITS: u8 = LOG_DEBUG | LOG_WARNING;

/// How many events may wait for the listener thread; past that, events are dropped (counted).
const DEFAULT_CAPACITY: usize = 8192;

/// How long the listener thread keeps waiting for late events (connections closing) after the
/// client was closed, once the queue is empty.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The longest single wait of [`NativeEvents::take`].
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The queue between the tap (quiver's threads) and the listener thread.
struct Queue {
    events: VecDeque<Event>,
    capacity: usize,
    /// Events queued since the client was made.
    received: u64,
    /// Events not queued because the queue was full.
    dropped: u64,
    /// When the client was closed, if it was.
    closed: Option<Instant>,
    /// The last event queued.
    last: Instant,
    /// Core let the tap go: no event can come any more.
    producers_gone: bool,
    /// The process is exiting: the listener thread stops once the queue is empty.
    stopped: bool,
}

/// One client's events on their way to Python.
pub(crate) struct Hub {
    mode: AtomicU8,
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Hub {
    /// A hub with nobody listening (mode 0).
    pub(crate) fn new() -> Arc<Hub> {
        Arc::new(Hub {
            mode: AtomicU8::new(0),
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                capacity: DEFAULT_CAPACITY,
                received: 0,
                dropped: 0,
                closed: None,
                last: Instant::now(),
                producers_gone: false,
                stopped: false,
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the client closed: the listener thread finishes once late events have come.
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        if q.closed.is_none() {
            q.closed = Some(Instant::now());
        }
        drop(q);
        self.ready.notify_all();
    }
}

/// The core listener of a native client: queues events for Python, never blocking.
pub(crate) struct Tap(pub(crate) Arc<Hub>);

fn is_failure(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::RequestFailed { .. } | EventKind::ConnectionFailed { .. }
    )
}

impl Listener for Tap {
    fn on_event(&self, event: &Event) {
        let mode = self.0.mode.load(Ordering::Relaxed);
        if mode & (LISTENERS | LOG_DEBUG) == 0 && !is_failure(&event.kind) {
            return;
        }
        let mut q = self.0.lock();
        if q.events.len() >= q.capacity {
            q.dropped += 1;
            return;
        }
        q.events.push_back(event.clone());
        q.received += 1;
        q.last = event.at;
        drop(q);
        self.0.ready.notify_one();
    }

    fn enabled(&self) -> bool {
        self.0.mode.load(Ordering::Relaxed) != 0
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.0.lock().producers_gone = true;
        self.0.ready.notify_all();
    }
}

/// The event queue of one client, as the `quiver` package drives it: sets what is wanted
/// (listeners, logging) and takes the queued events on its listener thread.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeEvents {
    hub: Arc<Hub>,
}

impl NativeEvents {
    pub(crate) fn new(hub: Arc<Hub>) -> NativeEvents {
        NativeEvents { hub }
    }
}

#[pymethods]
impl NativeEvents {
    /// Whether Python listeners are registered (every event is queued).
    fn set_listening(&self, on: bool) {
        if on {
            self.hub.mode.fetch_or(LISTENERS, Ordering::Relaxed);
        } else {
            self.hub.mode.fetch_and(!LISTENERS, Ordering::Relaxed);
        }
    }

    /// What the `quiver` logger takes: `LOG_DEBUG` and/or `LOG_WARNING` bits, 0 for nothing.
    fn set_logging(&self, bits: u8) {
        let bits = bits & LOG_BITS;
        // An atomic read-modify-write, so a concurrent `set_listening` is never undone.
        let _ = self
            .hub
            .mode
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                Some((m & !LOG_BITS) | bits)
            });
    }

    /// The mode bits now (0: core builds no events for this client).
    #[getter]
    fn mode(&self) -> u8 {
        self.hub.mode.load(Ordering::Relaxed)
    }

    /// True when core builds events for this client (someone listens).
    #[getter]
    fn enabled(&self) -> bool {
        self.mode() != 0
    }

    /// How many events may wait for the listener thread (at least 1); for tests.
    fn set_capacity(&self, capacity: usize) {
        self.hub.lock().capacity = capacity.max(1);
    }

    /// `{"received": n, "dropped": n, "queued": n}`: events queued since the client was made,
    /// events dropped because the queue was full, and events waiting for the listener thread.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (received, dropped, queued) = {
            let q = self.hub.lock();
            (q.received, q.dropped, q.events.len())
        };
        let d = PyDict::new(py);
        d.set_item("received", received)?;
        d.set_item("dropped", dropped)?;
        d.set_item("queued", queued)?;
        Ok(d)
    }

    /// Waits up to `timeout` seconds (GIL released) for events and returns those queued, in
    /// order (an empty list when none came). `None` once no more can come: the queue is empty
    /// and core let the client go, or the client was closed a while ago.
    fn take(&self, py: Python<'_>, timeout: f64) -> Option<Vec<PyEvent>> {
        let wait = Duration::try_from_secs_f64(timeout)
            .unwrap_or(Duration::ZERO)
            .min(MAX_WAIT);
        let taken = py.detach(|| {
            let deadline = Instant::now() + wait;
            let mut q = self.hub.lock();
            loop {
                if !q.events.is_empty() {
                    return Some(std::mem::take(&mut q.events));
                }
                let now = Instant::now();
                let finished = q.producers_gone
                    || q.stopped
                    || q.closed
                        .is_some_and(|at| now.duration_since(at.max(q.last)) >= CLOSE_GRACE);
                if finished {
                    return None;
                }
                if now >= deadline {
                    return Some(VecDeque::new());
                }
                let mut until = deadline - now;
                if let Some(at) = q.closed {
                    // Wake when the grace period ends.
                    let ends = at.max(q.last) + CLOSE_GRACE;
                    until = until.min(ends.saturating_duration_since(now));
                }
                q = self
                    .hub
                    .ready
                    .wait_timeout(q, until)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        })?;
        Some(taken.into_iter().map(PyEvent::new).collect())
    }

    /// Marks the client closed (see `take`).
    fn close(&self) {
        self.hub.close();
    }

    /// Ends the listener thread once the queue is empty, without waiting for late events (the
    /// interpreter is exiting).
    fn stop(&self) {
        self.hub.lock().stopped = true;
        self.hub.ready.notify_all();
    }
}

/// An address as Python's sockets give it: `(host, port)`.
pub(crate) fn address<'py>(
    py: Python<'py>,
    addr: Option<SocketAddr>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    addr.map(|a| (a.ip().to_string(), a.port()).into_pyobject(py))
        .transpose()
}

/// One event of a client's requests or connections (`quiver.Event`): what happened (`name`),
/// to which request, connection and stream, when (`time`, on `time.monotonic()`'s clock), and
/// the fields of its kind. Fields that do not belong to the kind are None.
#[pyclass(frozen, name = "Event", module = "quiver")]
pub struct PyEvent {
    event: Event,
    error: PyOnceLock<Py<PyAny>>,
}

impl PyEvent {
    fn new(event: Event) -> PyEvent {
        PyEvent {
            event,
            error: PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl PyEvent {
    /// The event's stable name: `request_start`, `queued`, `connection_acquired`,
    /// `headers_sent`, `body_sent`, `response_headers`, `response_end`, `retried`,
    /// `redirected`, `request_failed`, `dns_resolved`, `connected`, `tls_done`,
    /// `connection_opened`, `connection_failed`, `goaway` or `connection_closed`.
    #[getter]
    fn name(&self) -> &'static str {
        self.event.kind.name()
    }

    /// When it happened, in seconds on `time.monotonic()`'s clock.
    #[getter]
    fn time(&self) -> f64 {
        quiver_core::embed::monotonic(self.event.at).as_secs_f64()
    }

    /// The request's id (unique in the process); None for connection events.
    #[getter]
    fn request(&self) -> Option<u64> {
        self.event.request
    }

    /// The connection's id (unique in the process), once there is one.
    #[getter]
    fn connection(&self) -> Option<u64> {
        self.event.connection
    }

    /// The HTTP/2 or HTTP/3 stream id, when there is one.
    #[getter]
    fn stream(&self) -> Option<u64> {
        self.event.stream
    }

    /// The origin, `scheme://host:port`.
    #[getter]
    fn origin(&self) -> String {
        self.event.origin.to_string()
    }

    /// `http1`, `http2`, `http3` (`auto` before ALPN decided), when known.
    #[getter]
    fn protocol(&self) -> Option<&'static str> {
        self.event.protocol.map(|p| p.as_str())
    }

    /// `request_start`: the method.
    #[getter]
    fn method(&self) -> Option<String> {
        match &self.event.kind {
            EventKind::RequestStart { method, .. } => Some(method.to_string()),
            _ => None,
        }
    }

    /// `request_start`: the URL, as given.
    #[getter]
    fn url(&self) -> Option<&str> {
        match &self.event.kind {
            EventKind::RequestStart { url, .. } => Some(url),
            _ => None,
        }
    }

    /// `connection_acquired`: whether the connection had carried requests before.
    #[getter]
    fn reused(&self) -> Option<bool> {
        match self.event.kind {
            EventKind::ConnectionAcquired { reused } => Some(reused),
            _ => None,
        }
    }

    /// `body_sent`: the request body's length; `response_end`: the response body's bytes as
    /// received (before decoding).
    #[getter]
    fn bytes(&self) -> Option<u64> {
        match self.event.kind {
            EventKind::BodySent { bytes } | EventKind::ResponseEnd { bytes } => Some(bytes),
            _ => None,
        }
    }

    /// `response_headers`, `redirected`: the status code.
    #[getter]
    fn status(&self) -> Option<u16> {
        match &self.event.kind {
            EventKind::ResponseHeaders { status } | EventKind::Redirected { status, .. } => {
                Some(status.as_u16())
            }
            _ => None,
        }
    }

    /// `retried`: the error kind that made it safe to send again (`refused_stream`, `goaway`,
    /// ...); `connection_closed`: why, in words.
    #[getter]
    fn reason(&self) -> Option<String> {
        match &self.event.kind {
            EventKind::Retried { reason } => Some(reason.as_str().to_owned()),
            EventKind::ConnectionClosed { reason } => Some(reason.clone()),
            _ => None,
        }
    }

    /// `redirected`: where the redirect leads (absolute).
    #[getter]
    fn location(&self) -> Option<&str> {
        match &self.event.kind {
            EventKind::Redirected { location, .. } => Some(location),
            _ => None,
        }
    }

    /// `request_failed`, `connection_failed`: the error, as the `quiver` exception the caller
    /// gets (`kind`, `error_class`, `message`).
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let error = match &self.event.kind {
            EventKind::RequestFailed { error } | EventKind::ConnectionFailed { error } => error,
            _ => return None,
        };
        Some(
            self.error
                .get_or_init(py, || errors::to_py(py, error).into_value(py).into_any())
                .clone_ref(py),
        )
    }

    /// `dns_resolved`: how many addresses came back.
    #[getter]
    fn addresses(&self) -> Option<usize> {
        match self.event.kind {
            EventKind::DnsResolved { addresses } => Some(addresses),
            _ => None,
        }
    }

    /// `connected`: the peer's `(host, port)`, when known (not through tunnels or Unix sockets).
    #[getter]
    fn remote<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        match self.event.kind {
            EventKind::Connected { remote } => address(py, remote),
            _ => Ok(None),
        }
    }

    /// `tls_done`: the protocol ALPN chose (`h2`, `http/1.1`), if any.
    #[getter]
    fn alpn(&self) -> Option<&str> {
        match &self.event.kind {
            EventKind::TlsDone { alpn, .. } => alpn.as_deref(),
            _ => None,
        }
    }

    /// `tls_done`: whether the TLS session was resumed.
    #[getter]
    fn resumed(&self) -> Option<bool> {
        match self.event.kind {
            EventKind::TlsDone { resumed, .. } => Some(resumed),
            _ => None,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut out = format!("<Event {}", self.name());
        let ids = [
            ("request", self.event.request),
            ("connection", self.event.connection),
            ("stream", self.event.stream),
        ];
        for (label, id) in ids {
            if let Some(id) = id {
                out.push_str(&format!(" {label}={id}"));
            }
        }
        for (label, value) in self.fields(py)? {
            out.push_str(&format!(" {label}={}", value.repr()?));
        }
        out.push('>');
        Ok(out)
    }
}

impl PyEvent {
    /// The fields of the event's kind, by name.
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
        let any = |v: Option<Py<PyAny>>| v.map(|v| v.into_bound(py));
        Ok(match &self.event.kind {
            EventKind::RequestStart { method, url } => vec![
                ("method", method.as_str().into_bound_py_any(py)?),
                ("url", url.into_bound_py_any(py)?),
            ],
            EventKind::ConnectionAcquired { reused } => {
                vec![("reused", reused.into_bound_py_any(py)?)]
            }
            EventKind::BodySent { bytes } | EventKind::ResponseEnd { bytes } => {
                vec![("bytes", bytes.into_bound_py_any(py)?)]
            }
            EventKind::ResponseHeaders { status } => {
                vec![("status", status.as_u16().into_bound_py_any(py)?)]
            }
            EventKind::Retried { reason } => {
                vec![("reason", reason.as_str().into_bound_py_any(py)?)]
            }
            EventKind::Redirected { status, location } => vec![
                ("status", status.as_u16().into_bound_py_any(py)?),
                ("location", location.into_bound_py_any(py)?),
            ],
            EventKind::RequestFailed { .. } | EventKind::ConnectionFailed { .. } => {
                any(self.error(py))
                    .map(|e| ("error", e))
                    .into_iter()
                    .collect()
            }
            EventKind::DnsResolved { addresses } => {
                vec![("addresses", addresses.into_bound_py_any(py)?)]
            }
            EventKind::Connected { remote } => match address(py, *remote)? {
                Some(a) => vec![("remote", a.into_any())],
                None => Vec::new(),
            },
            EventKind::TlsDone { alpn, resumed } => vec![
                ("alpn", alpn.as_deref().into_bound_py_any(py)?),
                ("resumed", resumed.into_bound_py_any(py)?),
            ],
            EventKind::ConnectionClosed { reason } => {
                vec![("reason", reason.into_bound_py_any(py)?)]
            }
            _ => Vec::new(),
        })
    }
}
