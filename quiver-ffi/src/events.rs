//! Events: `quiver_event` (one request or connection event of core's model, as a C struct),
//! the event callback a configuration carries (`quiver_config_set_event_callback`), and the
//! core listener that hands events to it, on quiver's threads or through a completion queue
//! (`quiver_config_set_event_queue`).

use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use quiver_core::{Event, EventKind, Listener, Protocol};

use crate::error::{c_string, quiver_class, quiver_result};
use crate::ffi::UserData;
use crate::panic::ffi_panic_boundary;
use crate::queue::{in_dispatched_callback, Queue};

/// What happened: one value per core event (docs/observability.md). Values are never
/// renumbered; new kinds are appended.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum quiver_event_kind {
    /// A kind newer than this build of libquiver; the event's `name` says which.
    Unknown = 0,
    /// The client accepted a request (redirects and answers to challenges are part of it):
    /// `method`, `url`.
    RequestStart = 1,
    /// The request waits for a connection or stream slot (none was free at once).
    Queued = 2,
    /// The request got its connection or stream slot: `reused`.
    ConnectionAcquired = 3,
    /// The request head went to the connection.
    HeadersSent = 4,
    /// The whole request body went to the connection: `bytes`.
    BodySent = 5,
    /// The response head arrived: `status`.
    ResponseHeaders = 6,
    /// The response body was read to its end: `bytes` (as the caller got them).
    ResponseEnd = 7,
    /// Sent again on another connection, the peer provably did not process it: `error_kind`
    /// (and `error_class`) say why.
    Retried = 8,
    /// A redirect was followed: `status`, `location`.
    Redirected = 9,
    /// The request (or its body) failed: `error_kind`, `error_class`, `error_message`.
    RequestFailed = 10,
    /// A new connection's name resolution finished: `addresses`.
    DnsResolved = 11,
    /// A new connection's transport is up (TCP; QUIC: handshake done): `remote`.
    Connected = 12,
    /// A new TCP connection's TLS handshake finished: `alpn`, `resumed`.
    TlsDone = 13,
    /// A connection is ready to carry requests.
    ConnectionOpened = 14,
    /// Opening a connection failed: `error_kind`, `error_class`, `error_message`.
    ConnectionFailed = 15,
    /// The peer sent GOAWAY: the connection drains.
    Goaway = 16,
    /// A connection closed: `reason`.
    ConnectionClosed = 17,
}

/// One request or connection event, handed to a `quiver_event_fn`.
///
/// Plain fields: read them directly. Pointers are valid only while the callback runs (copy what
/// you keep); text is UTF-8, given as pointer and length, and also NUL-terminated. A field the
/// kind does not carry is 0, false, NULL / 0 (text) or -1 (`stream_id`).
#[repr(C)]
pub struct quiver_event {
    /// What happened.
    pub kind: quiver_event_kind,
    /// The kind's stable snake_case name (`request_start`, `tls_done`, ...; the same in every
    /// language), static.
    pub name: *const c_char,
    /// The request it concerns (unique in the process, from 1); 0 for connection events.
    pub request_id: u64,
    /// The connection (unique in the process, from 1), once there is one; else 0.
    pub connection_id: u64,
    /// The HTTP/2 or HTTP/3 stream, when there is one; else -1 (HTTP/3's first stream is 0).
    pub stream_id: i64,
    /// When, in nanoseconds of `clock_gettime(CLOCK_MONOTONIC)`: comparable with the
    /// program's own readings of that clock.
    pub time_ns: u64,
    /// The origin of the request or connection (`https://example.com:443`).
    pub origin: *const c_char,
    /// Its length in bytes.
    pub origin_len: usize,
    /// The protocol, when known: `"http1"`, `"http2"`, `"http3"`, or `"auto"` before ALPN
    /// decided (static); NULL when unknown.
    pub protocol: *const c_char,
    /// `response_headers`, `redirected`: the status.
    pub status: u16,
    /// `body_sent`, `response_end`: the byte count.
    pub bytes: u64,
    /// `connection_acquired`: whether the connection had carried requests before.
    pub reused: bool,
    /// `dns_resolved`: how many addresses came back.
    pub addresses: usize,
    /// `tls_done`: whether TLS resumed an earlier session.
    pub resumed: bool,
    /// `tls_done`: the protocol ALPN chose (`h2`, `http/1.1`), or NULL.
    pub alpn: *const c_char,
    /// Its length.
    pub alpn_len: usize,
    /// `request_start`: the method.
    pub method: *const c_char,
    /// Its length.
    pub method_len: usize,
    /// `request_start`: the URL, as given.
    pub url: *const c_char,
    /// Its length.
    pub url_len: usize,
    /// `redirected`: where the redirect leads (absolute).
    pub location: *const c_char,
    /// Its length.
    pub location_len: usize,
    /// `connected`: the peer address as text (`127.0.0.1:443`, `[::1]:443`), or NULL when not
    /// known (tunnels, Unix sockets).
    pub remote: *const c_char,
    /// Its length.
    pub remote_len: usize,
    /// `request_failed`, `connection_failed`: the error's code (one per kind, as
    /// `quiver_error_code`); `retried`: the code of the reason. Else `QUIVER_RESULT_OK`.
    pub error_kind: quiver_result,
    /// The class of that error kind (`QUIVER_CLASS_NONE` without one).
    pub error_class: quiver_class,
    /// `request_failed`, `connection_failed`: the error's message, else NULL.
    pub error_message: *const c_char,
    /// Its length.
    pub error_message_len: usize,
    /// `connection_closed`: why, in words (`idle`, `closed`, `shutdown`, an error's message).
    pub reason: *const c_char,
    /// Its length.
    pub reason_len: usize,
}

/// Receives a client's events (`quiver_config_set_event_callback`).
///
/// Runs on quiver's runtime threads, while the request or connection goes on: it must return
/// quickly (copy what it needs and hand it elsewhere) and must not call blocking quiver
/// functions (`quiver_client_send_blocking` returns `QUIVER_RESULT_WOULD_DEADLOCK` there).
/// Events of one request or connection come in order, one at a time; events of different
/// requests and connections may come on several threads at once. With
/// `quiver_config_set_event_queue`, it runs instead on the thread that calls
/// `quiver_queue_dispatch`. `event` and what it points at are valid only during the call.
pub type quiver_event_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const quiver_event)>;

/// A kind's stable name (static).
fn kind_name(kind: quiver_event_kind) -> &'static CStr {
    use quiver_event_kind::*;
    match kind {
        Unknown => c"unknown",
        RequestStart => c"request_start",
        Queued => c"queued",
        ConnectionAcquired => c"connection_acquired",
        HeadersSent => c"headers_sent",
        BodySent => c"body_sent",
        ResponseHeaders => c"response_headers",
        ResponseEnd => c"response_end",
        Retried => c"retried",
        Redirected => c"redirected",
        RequestFailed => c"request_failed",
        DnsResolved => c"dns_resolved",
        Connected => c"connected",
        TlsDone => c"tls_done",
        ConnectionOpened => c"connection_opened",
        ConnectionFailed => c"connection_failed",
        Goaway => c"goaway",
        ConnectionClosed => c"connection_closed",
    }
}

/// Every kind, in value order.
const KINDS: [quiver_event_kind; 18] = {
    use quiver_event_kind::*;
    [
        Unknown,
        RequestStart,
        Queued,
        ConnectionAcquired,
        HeadersSent,
        BodySent,
        ResponseHeaders,
        ResponseEnd,
        Retried,
        Redirected,
        RequestFailed,
        DnsResolved,
        Connected,
        TlsDone,
        ConnectionOpened,
        ConnectionFailed,
        Goaway,
        ConnectionClosed,
    ]
};

/// A protocol's option name (static), as `quiver_stats_origin_protocol` gives it.
pub(crate) fn protocol_name(protocol: Protocol) -> &'static CStr {
    match protocol {
        Protocol::Auto => c"auto",
        Protocol::Http1 => c"http1",
        Protocol::Http2 => c"http2",
        Protocol::Http3 => c"http3",
    }
}

/// A duration in nanoseconds, saturated to `i64::MAX`.
pub(crate) fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// An event copied out of core's: it owns its text, so it outlives the listener call (a
/// queued event is dispatched later); [`EventCopy::view`] lends it to C.
struct EventCopy {
    kind: quiver_event_kind,
    name: Cow<'static, CStr>,
    request_id: u64,
    connection_id: u64,
    stream_id: i64,
    time_ns: u64,
    origin: CString,
    protocol: Option<&'static CStr>,
    status: u16,
    bytes: u64,
    reused: bool,
    addresses: usize,
    resumed: bool,
    alpn: Option<CString>,
    method: Option<CString>,
    url: Option<CString>,
    location: Option<CString>,
    remote: Option<CString>,
    error_kind: quiver_result,
    error_class: quiver_class,
    error_message: Option<CString>,
    reason: Option<CString>,
}

impl EventCopy {
    fn new(e: &Event) -> EventCopy {
        EventCopy {
            request_id: e.request.unwrap_or(0),
            connection_id: e.connection.unwrap_or(0),
            stream_id: e.stream.and_then(|s| i64::try_from(s).ok()).unwrap_or(-1),
            time_ns: u64::try_from(quiver_core::embed::monotonic(e.at).as_nanos())
                .unwrap_or(u64::MAX),
            origin: c_string(&e.origin.to_string()),
            protocol: e.protocol.map(protocol_name),
            ..EventCopy::of_kind(&e.kind)
        }
    }

    /// The kind and its fields; the rest empty.
    fn of_kind(kind: &EventKind) -> EventCopy {
        let mut copy = EventCopy {
            kind: quiver_event_kind::Unknown,
            name: Cow::Owned(c_string(kind.name())),
            request_id: 0,
            connection_id: 0,
            stream_id: -1,
            time_ns: 0,
            origin: CString::default(),
            protocol: None,
            status: 0,
            bytes: 0,
            reused: false,
            addresses: 0,
            resumed: false,
            alpn: None,
            method: None,
            url: None,
            location: None,
            remote: None,
            error_kind: quiver_result::Ok,
            error_class: quiver_class::None,
            error_message: None,
            reason: None,
        };
        use quiver_event_kind as K;
        copy.kind = match kind {
            EventKind::RequestStart { method, url } => {
                copy.method = Some(c_string(method.as_str()));
                copy.url = Some(c_string(url));
                K::RequestStart
            }
            EventKind::Queued => K::Queued,
            EventKind::ConnectionAcquired { reused } => {
                copy.reused = *reused;
                K::ConnectionAcquired
            }
            EventKind::HeadersSent => K::HeadersSent,
            EventKind::BodySent { bytes } => {
                copy.bytes = *bytes;
                K::BodySent
            }
            EventKind::ResponseHeaders { status } => {
                copy.status = status.as_u16();
                K::ResponseHeaders
            }
            EventKind::ResponseEnd { bytes } => {
                copy.bytes = *bytes;
                K::ResponseEnd
            }
            EventKind::Retried { reason } => {
                copy.error_kind = quiver_result::from_kind(*reason);
                copy.error_class = reason.class().into();
                K::Retried
            }
            EventKind::Redirected { status, location } => {
                copy.status = status.as_u16();
                copy.location = Some(c_string(location));
                K::Redirected
            }
            EventKind::RequestFailed { error } => {
                copy.set_error(error);
                K::RequestFailed
            }
            EventKind::DnsResolved { addresses } => {
                copy.addresses = *addresses;
                K::DnsResolved
            }
            EventKind::Connected { remote } => {
                copy.remote = remote.map(|a| c_string(&a.to_string()));
                K::Connected
            }
            EventKind::TlsDone { alpn, resumed } => {
                copy.alpn = alpn.as_deref().map(c_string);
                copy.resumed = *resumed;
                K::TlsDone
            }
            EventKind::ConnectionOpened => K::ConnectionOpened,
            EventKind::ConnectionFailed { error } => {
                copy.set_error(error);
                K::ConnectionFailed
            }
            EventKind::Goaway => K::Goaway,
            EventKind::ConnectionClosed { reason } => {
                copy.reason = Some(c_string(reason));
                K::ConnectionClosed
            }
            // A kind newer than this build: `name` (core's) says which.
            _ => K::Unknown,
        };
        if copy.kind != K::Unknown {
            copy.name = Cow::Borrowed(kind_name(copy.kind));
        }
        copy
    }

    fn set_error(&mut self, error: &quiver_core::Error) {
        self.error_kind = quiver_result::from_kind(error.kind());
        self.error_class = error.class().into();
        self.error_message = Some(c_string(error.message()));
    }

    /// The C view, borrowing from `self`.
    fn view(&self) -> quiver_event {
        fn text(t: &Option<CString>) -> (*const c_char, usize) {
            t.as_deref()
                .map_or((null(), 0), |t| (t.as_ptr(), t.to_bytes().len()))
        }
        let (alpn, alpn_len) = text(&self.alpn);
        let (method, method_len) = text(&self.method);
        let (url, url_len) = text(&self.url);
        let (location, location_len) = text(&self.location);
        let (remote, remote_len) = text(&self.remote);
        let (error_message, error_message_len) = text(&self.error_message);
        let (reason, reason_len) = text(&self.reason);
        quiver_event {
            kind: self.kind,
            name: self.name.as_ptr(),
            request_id: self.request_id,
            connection_id: self.connection_id,
            stream_id: self.stream_id,
            time_ns: self.time_ns,
            origin: self.origin.as_ptr(),
            origin_len: self.origin.to_bytes().len(),
            protocol: self.protocol.map_or(null(), CStr::as_ptr),
            status: self.status,
            bytes: self.bytes,
            reused: self.reused,
            addresses: self.addresses,
            resumed: self.resumed,
            alpn,
            alpn_len,
            method,
            method_len,
            url,
            url_len,
            location,
            location_len,
            remote,
            remote_len,
            error_kind: self.error_kind,
            error_class: self.error_class,
            error_message,
            error_message_len,
            reason,
            reason_len,
        }
    }
}

thread_local! {
    /// How deep this thread is in event callbacks (one may dispatch a queue that runs another).
    static IN_EVENT_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

/// True inside an event callback: nothing there may wait for quiver.
pub(crate) fn in_event_callback() -> bool {
    IN_EVENT_CALLBACK.get() > 0
}

/// Counts this thread as inside an event callback while it lives (also if it unwinds).
struct InEventCallback;

impl InEventCallback {
    fn enter() -> InEventCallback {
        IN_EVENT_CALLBACK.set(IN_EVENT_CALLBACK.get() + 1);
        InEventCallback
    }
}

impl Drop for InEventCallback {
    fn drop(&mut self) {
        IN_EVENT_CALLBACK.set(IN_EVENT_CALLBACK.get() - 1);
    }
}

/// A configuration's event callback: what `quiver_client_new` turns into a listener.
#[derive(Clone, Debug)]
pub(crate) struct EventSpec {
    pub(crate) callback: unsafe extern "C" fn(*mut c_void, *const quiver_event),
    pub(crate) userdata: UserData,
}

impl EventSpec {
    /// Runs the C callback with `copy`.
    fn call(&self, copy: &EventCopy) {
        let view = copy.view();
        let _inside = InEventCallback::enter();
        // SAFETY: a non-NULL C function pointer of this type (checked by
        // `quiver_config_set_event_callback`); `view` and what it points at outlive the call.
        unsafe { (self.callback)(self.userdata.get(), &view) }
    }
}

/// One client's event delivery: the C callback, where it runs, and whether the client still
/// wants events (cleared by `quiver_client_free`).
pub(crate) struct EventSink {
    spec: EventSpec,
    queue: Option<Arc<Queue>>,
    /// Set once the client is freed: no event is built or delivered any more.
    closed: AtomicBool,
    /// Callbacks running now on quiver's threads (inline delivery); with a queue, held while
    /// an event is queued.
    running: Mutex<usize>,
    /// Signalled when `running` drops to zero.
    idle: Condvar,
}

impl EventSink {
    /// The sink for one client, delivering inline or through `queue`.
    pub(crate) fn new(spec: EventSpec, queue: Option<Arc<Queue>>) -> Arc<EventSink> {
        Arc::new(EventSink {
            spec,
            queue,
            closed: AtomicBool::new(false),
            running: Mutex::new(0),
            idle: Condvar::new(),
        })
    }

    /// The core listener that feeds this sink.
    pub(crate) fn listener(self: &Arc<Self>) -> impl Listener {
        SinkListener(self.clone())
    }

    fn lock_running(&self) -> MutexGuard<'_, usize> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the callback now (on the runtime thread that emitted the event), unless the client
    /// was freed; counted, so that `close` can wait for it.
    fn deliver_inline(&self, copy: &EventCopy) {
        {
            let mut running = self.lock_running();
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            *running += 1;
        }
        // No lock is held while C runs.
        let _done = Done(self);
        self.spec.call(copy);
    }

    /// Stops delivery: no event is built any more; inline, waits until callbacks running on
    /// other threads returned (not from inside a callback, where that could deadlock). Queued
    /// events already waiting still run when dispatched.
    pub(crate) fn close(&self) {
        let mut running = self.lock_running();
        self.closed.store(true, Ordering::SeqCst);
        if self.queue.is_some()
            || quiver_core::embed::is_runtime_thread()
            || in_dispatched_callback()
            || in_event_callback()
        {
            return;
        }
        while *running > 0 {
            running = self.idle.wait(running).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Uncounts an inline callback when it returns (also if it unwinds).
struct Done<'a>(&'a EventSink);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let mut running = self.0.lock_running();
        *running -= 1;
        if *running == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// The core listener of a client with an event callback.
struct SinkListener(Arc<EventSink>);

impl Listener for SinkListener {
    fn on_event(&self, event: &Event) {
        let sink = &self.0;
        if sink.closed.load(Ordering::SeqCst) {
            return;
        }
        let copy = EventCopy::new(event);
        match &sink.queue {
            Some(queue) => {
                // Checked and queued under the lock `close` takes: once the client is freed,
                // nothing more is queued (the caller may drain the queue and free `userdata`).
                let _closing = sink.lock_running();
                if sink.closed.load(Ordering::SeqCst) {
                    return;
                }
                // The job holds only the callback: holding the sink (which holds the queue)
                // would keep an undrained queue alive forever.
                let spec = sink.spec.clone();
                queue.push(Box::new(move || spec.call(&copy)));
            }
            None => sink.deliver_inline(&copy),
        }
    }

    fn enabled(&self) -> bool {
        !self.0.closed.load(Ordering::Relaxed)
    }
}

/// A kind's stable snake_case name (`"request_start"`, `"tls_done"`, ...; static), the same as
/// the event's `name`; `"unknown"` for a value this build does not know.
#[no_mangle]
pub extern "C" fn quiver_event_kind_str(kind: u32) -> *const c_char {
    ffi_panic_boundary! {
        KINDS
            .iter()
            .find(|k| **k as u32 == kind)
            .map_or(c"unknown", |k| kind_name(*k))
            .as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_numbered_in_order_and_named_as_core_names_them() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
        // Every core kind maps to its own value and core's name.
        let err = quiver_core::Error::new(quiver_core::ErrorKind::ConnectRefused, "refused");
        let kinds = [
            EventKind::RequestStart {
                method: quiver_core::Method::GET,
                url: "https://example.com/".into(),
            },
            EventKind::Queued,
            EventKind::ConnectionAcquired { reused: true },
            EventKind::HeadersSent,
            EventKind::BodySent { bytes: 5 },
            EventKind::ResponseHeaders {
                status: quiver_core::StatusCode::OK,
            },
            EventKind::ResponseEnd { bytes: 7 },
            EventKind::Retried {
                reason: quiver_core::ErrorKind::RefusedStream,
            },
            EventKind::Redirected {
                status: quiver_core::StatusCode::FOUND,
                location: "https://example.com/x".into(),
            },
            EventKind::RequestFailed { error: err.clone() },
            EventKind::DnsResolved { addresses: 2 },
            EventKind::Connected {
                remote: Some("127.0.0.1:443".parse().unwrap()),
            },
            EventKind::TlsDone {
                alpn: Some("h2".into()),
                resumed: false,
            },
            EventKind::ConnectionOpened,
            EventKind::ConnectionFailed { error: err },
            EventKind::Goaway,
            EventKind::ConnectionClosed {
                reason: "idle".into(),
            },
        ];
        assert_eq!(kinds.len(), KINDS.len() - 1);
        for (i, kind) in kinds.into_iter().enumerate() {
            let copy = EventCopy::of_kind(&kind);
            assert_eq!(copy.kind as usize, i + 1, "{}", kind.name());
            assert_eq!(copy.name.to_str().unwrap(), kind.name());
            assert!(matches!(copy.name, Cow::Borrowed(_)));
            let view = copy.view();
            assert_eq!(view.stream_id, -1);
            assert_eq!(view.name, kind_name(copy.kind).as_ptr());
        }
    }
}
