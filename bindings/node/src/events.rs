//! Core's request and connection events on their way to JavaScript (`diagnostics_channel`,
//! `quiver.Agent`'s `connect`/`disconnect`).
//!
//! Each client registers one core [`Listener`] whose `enabled()` is a flag JavaScript sets from
//! whether anything listens (channel subscribers, an Agent's `connect` listeners): with nobody
//! listening, core builds no event at all. On quiver's runtime threads the listener only pushes
//! the event onto a bounded queue and, when the queue was empty, wakes JavaScript through a weak
//! threadsafe function (non-blocking: a runtime thread never waits for JavaScript). JavaScript
//! takes the whole queue in one call ([`EventQueue::take`]), on the wake-up and, synchronously,
//! right before it publishes what it sees of a request itself (its head, its end, its failure),
//! so that the channels of one request are published in the order things happened.
//!
//! A request's events carry core's request id, which JavaScript has no way to know; the
//! request's own task runs inside a [`REQUEST_TAG`] scope, and `request_start` (emitted in
//! that task, as the request starts) carries the tag JavaScript gave the request, so
//! JavaScript can match the id to its request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use quiver_core::{Event, EventKind, Listener};

tokio::task_local! {
    /// The JavaScript tag of the request whose task is running (see the module's docs).
    pub(crate) static REQUEST_TAG: u32;
}

/// Most events held for JavaScript; beyond it (a JavaScript thread stuck for long) new events
/// are dropped rather than growing memory.
const QUEUE_LIMIT: usize = 65_536;

/// JavaScript's wake-up (`() => client.drain()`): weak, so it never keeps the event loop alive.
type WakeFn = ThreadsafeFunction<u32, (), u32, Status, false, true, 0>;

#[derive(Default)]
struct Queue {
    events: Vec<(Event, Option<u32>)>,
    /// A wake-up was sent and the queue not taken since.
    woken: bool,
    /// Events dropped because the queue was full.
    dropped: u64,
}

struct Shared {
    wanted: AtomicBool,
    queue: Mutex<Queue>,
    wake: WakeFn,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The JavaScript end of a client's events: the flag and the queue.
#[derive(Clone)]
pub(crate) struct EventQueue(Arc<Shared>);

/// The core end: the listener registered on the client.
struct QueueListener(Arc<Shared>);

impl Listener for QueueListener {
    fn on_event(&self, event: &Event) {
        let tag = match event.kind {
            EventKind::RequestStart { .. } => REQUEST_TAG.try_with(|t| *t).ok(),
            _ => None,
        };
        let wake = {
            let mut q = self.0.lock();
            if q.events.len() >= QUEUE_LIMIT {
                q.dropped += 1;
                return;
            }
            q.events.push((event.clone(), tag));
            !std::mem::replace(&mut q.woken, true)
        };
        if wake {
            // Non-blocking: a closing environment just loses the wake-up.
            let _ = self.0.wake.call(1, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    fn enabled(&self) -> bool {
        self.0.wanted.load(Ordering::Relaxed)
    }
}

impl EventQueue {
    /// The queue (off until JavaScript says somebody listens) and the listener to register on
    /// the client; `wake` is called (on the JavaScript thread) when events wait.
    pub(crate) fn new(wake: Function<u32, ()>) -> napi::Result<(EventQueue, impl Listener)> {
        let wake = wake
            .build_threadsafe_function::<u32>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        let shared = Arc::new(Shared {
            wanted: AtomicBool::new(false),
            queue: Mutex::default(),
            wake,
        });
        Ok((EventQueue(shared.clone()), QueueListener(shared)))
    }

    /// Whether core should build events for this client.
    pub(crate) fn set_wanted(&self, wanted: bool) {
        self.0.wanted.store(wanted, Ordering::Relaxed);
    }

    /// Every waiting event, oldest first, and how many were dropped since the last call.
    pub(crate) fn take(&self) -> (Vec<EventRecord>, u64) {
        let (events, dropped) = {
            let mut q = self.0.lock();
            q.woken = false;
            (
                std::mem::take(&mut q.events),
                std::mem::take(&mut q.dropped),
            )
        };
        let records = events
            .into_iter()
            .map(|(e, tag)| EventRecord::new(&e, tag))
            .collect();
        (records, dropped)
    }
}

/// A duration in milliseconds (JavaScript's unit for time).
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An id as a JavaScript number (ids stay far below 2^53).
#[allow(clippy::cast_precision_loss)]
fn id(n: u64) -> f64 {
    n as f64
}

/// One core event as JavaScript gets it: the common fields, then those of its kind (the others
/// absent). `index.js` turns it into the `quiver:event` message and the channels' messages.
#[napi(object, namespace = "native")]
#[derive(Default)]
pub struct EventRecord {
    /// The event's name (`request_start`, `connection_opened`, ...).
    pub name: String,
    /// When, in milliseconds on the clock of `process.hrtime` (CLOCK_MONOTONIC).
    pub time: f64,
    /// The request id (request events).
    pub request: Option<f64>,
    /// `request_start` in a request JavaScript tagged: its tag.
    pub tag: Option<u32>,
    /// The connection id, once there is one.
    pub connection: Option<f64>,
    /// The HTTP/2 or HTTP/3 stream id.
    pub stream: Option<f64>,
    /// The origin, as `URL.origin` spells it (`https://example.com`, `http://127.0.0.1:8080`).
    pub origin: String,
    /// `http1`, `http2`, `http3` (`auto` before ALPN decided), when known.
    pub protocol: Option<String>,
    /// `request_start`: the method.
    pub method: Option<String>,
    /// `request_start`: the URL.
    pub url: Option<String>,
    /// `connection_acquired`: whether the connection had carried requests before.
    pub reused: Option<bool>,
    /// `body_sent`, `response_end`: bytes.
    pub bytes: Option<f64>,
    /// `response_headers`, `redirected`: the status.
    pub status: Option<u32>,
    /// `redirected`: where to.
    pub location: Option<String>,
    /// `retried`: the error kind that made it safe to retry; `connection_closed`: why, in words.
    pub reason: Option<String>,
    /// `request_failed`, `connection_failed`: the error kind.
    pub error_code: Option<String>,
    /// The error's class.
    pub error_class: Option<String>,
    /// The error's message.
    pub error_message: Option<String>,
    /// `dns_resolved`: how many addresses.
    pub addresses: Option<u32>,
    /// `connected`: the peer's IP address, when connected directly.
    pub remote_address: Option<String>,
    /// `connected`: the peer's port.
    pub remote_port: Option<u32>,
    /// `tls_done`: the protocol ALPN chose.
    pub alpn: Option<String>,
    /// `tls_done`: whether the TLS session was resumed.
    pub resumed: Option<bool>,
}

impl EventRecord {
    fn new(e: &Event, tag: Option<u32>) -> EventRecord {
        let mut r = EventRecord {
            name: e.kind.name().to_owned(),
            time: ms(quiver_core::embed::monotonic(e.at)),
            request: e.request.map(id),
            tag,
            connection: e.connection.map(id),
            stream: e.stream.map(id),
            origin: e.origin.to_url_base(),
            protocol: e.protocol.map(|p| p.as_str().to_owned()),
            ..EventRecord::default()
        };
        match &e.kind {
            EventKind::RequestStart { method, url } => {
                r.method = Some(method.as_str().to_owned());
                r.url = Some(url.clone());
            }
            EventKind::ConnectionAcquired { reused } => r.reused = Some(*reused),
            EventKind::BodySent { bytes } | EventKind::ResponseEnd { bytes } => {
                r.bytes = Some(id(*bytes));
            }
            EventKind::ResponseHeaders { status } => r.status = Some(status.as_u16().into()),
            EventKind::Retried { reason } => r.reason = Some(reason.as_str().to_owned()),
            EventKind::Redirected { status, location } => {
                r.status = Some(status.as_u16().into());
                r.location = Some(location.clone());
            }
            EventKind::RequestFailed { error } | EventKind::ConnectionFailed { error } => {
                r.error_code = Some(error.kind().as_str().to_owned());
                r.error_class = Some(error.kind().class().as_str().to_owned());
                r.error_message = Some(error.message().to_owned());
            }
            EventKind::DnsResolved { addresses } => {
                r.addresses = Some(u32::try_from(*addresses).unwrap_or(u32::MAX));
            }
            EventKind::Connected { remote } => {
                r.remote_address = remote.map(|a| a.ip().to_string());
                r.remote_port = remote.map(|a| a.port().into());
            }
            EventKind::TlsDone { alpn, resumed } => {
                r.alpn = alpn.clone();
                r.resumed = Some(*resumed);
            }
            EventKind::ConnectionClosed { reason } => r.reason = Some(reason.clone()),
            // Queued, HeadersSent, ConnectionOpened, Goaway, and kinds added later: the
            // common fields say it all.
            _ => {}
        }
        r
    }
}

/// What `takeEvents()` returns: the events, oldest first, and how many were dropped (the queue
/// was full) since the last call.
#[napi(object, namespace = "native")]
pub struct EventBatch {
    /// The events.
    pub events: Vec<EventRecord>,
    /// Events lost to a full queue.
    pub dropped: f64,
}

/// `(events, dropped)` as the batch JavaScript gets.
pub(crate) fn batch((events, dropped): (Vec<EventRecord>, u64)) -> EventBatch {
    EventBatch {
        events,
        dropped: id(dropped),
    }
}

/// How far one request's upload and download are (core's `Progress`), for `quiver.Progress`.
#[napi(namespace = "native")]
pub struct NativeProgress {
    pub(crate) inner: Arc<quiver_core::Progress>,
}

#[napi(namespace = "native")]
impl NativeProgress {
    /// A fresh record: nothing moved, no totals.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> NativeProgress {
        NativeProgress {
            inner: Arc::new(quiver_core::Progress::new()),
        }
    }

    /// Request body bytes handed to the connection so far.
    #[napi(getter)]
    pub fn uploaded(&self) -> f64 {
        id(self.inner.uploaded())
    }

    /// The request body's length, when known.
    #[napi(getter)]
    pub fn upload_total(&self) -> Option<f64> {
        self.inner.upload_total().map(id)
    }

    /// Response body bytes taken so far (decoded, when the body is).
    #[napi(getter)]
    pub fn downloaded(&self) -> f64 {
        id(self.inner.downloaded())
    }

    /// The response body's announced length, when known (none for a decoded body).
    #[napi(getter)]
    pub fn download_total(&self) -> Option<f64> {
        self.inner.download_total().map(id)
    }
}

/// How long each step of a request took and which connection carried it (core's `Timings`);
/// durations in milliseconds. Holds the timings only (not the response), so keeping it keeps
/// no connection.
#[napi(namespace = "native")]
pub struct NativeTimings {
    pub(crate) inner: quiver_core::Timings,
}

/// A snapshot of [`NativeTimings`] (everything but `total`, which comes later).
#[napi(object, namespace = "native")]
pub struct TimingsRecord {
    /// Waiting for a connection or stream slot, ms.
    pub queued: f64,
    /// Name resolution, ms, when the request opened its connection.
    pub dns: Option<f64>,
    /// The transport's connect (TCP; HTTP/3: the QUIC handshake), ms, when the request opened
    /// its connection.
    pub connect: Option<f64>,
    /// The TLS handshake, ms, when the request opened its connection (TCP to https).
    pub tls: Option<f64>,
    /// From the start of the request (redirects included) to the response head, ms.
    pub ttfb: f64,
    /// Spent on redirects before the last hop, ms.
    pub redirects: f64,
    /// The connection's id (as in events).
    pub connection_id: f64,
    /// Whether that connection had carried requests before.
    pub reused: bool,
    /// `http1`, `http2` or `http3`.
    pub protocol: String,
    /// The HTTP/2 or HTTP/3 stream id.
    pub stream: Option<f64>,
    /// The protocol ALPN chose.
    pub alpn: Option<String>,
    /// Whether TLS resumed an earlier session.
    pub resumed: bool,
    /// The peer's IP address, when connected directly.
    pub remote_address: Option<String>,
    /// The peer's port.
    pub remote_port: Option<u32>,
}

#[napi(namespace = "native")]
impl NativeTimings {
    /// Everything but `total`.
    #[napi]
    pub fn snapshot(&self) -> TimingsRecord {
        let t = &self.inner;
        let c = &t.connection;
        TimingsRecord {
            queued: ms(t.queued),
            dns: t.dns.map(ms),
            connect: t.connect.map(ms),
            tls: t.tls.map(ms),
            ttfb: ms(t.ttfb),
            redirects: ms(t.redirects),
            connection_id: id(c.id),
            reused: t.reused,
            protocol: t.protocol.as_str().to_owned(),
            stream: t.stream.map(id),
            alpn: c.alpn.clone(),
            resumed: c.resumed,
            remote_address: c.remote.map(|a| a.ip().to_string()),
            remote_port: c.remote.map(|a| a.port().into()),
        }
    }

    /// From the start of the request to the end of its body, ms; `null` until the body ended.
    #[napi(getter)]
    pub fn total(&self) -> Option<f64> {
        self.inner.total().map(ms)
    }
}
