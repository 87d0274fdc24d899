//! One request from send to the end of its response body.
//!
//! A single task on quiver's runtime sends the request, settles the head's Promise, then
//! becomes the body's pump: it pulls chunks from core into a small buffer and stops pulling
//! when [`HIGH_WATER`] bytes wait there, so a slow JavaScript consumer slows core (and, through
//! flow control, the server) instead of growing memory. JavaScript takes everything buffered in
//! one call ([`NativeResponse::try_read`]), so chunks cross in batches, not per frame. Because
//! only the pump polls core, core's `read_timeout` counts exactly the time the pump waits with
//! room in its buffer.
//!
//! Cancelling (an `AbortSignal`, `body.dump()`, breaking out of `for await`, or the response
//! being garbage-collected) aborts the task, which drops core's future or body: core cancels
//! the request (HTTP/1.1 closes the connection, HTTP/2 and HTTP/3 reset the stream).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::{Client, Error, HeaderMap, Request, ResponseBody, ResponseHead};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::errors;
use crate::headers;
use crate::pending::Pending;

/// Bytes the pump buffers before it stops pulling from core.
const HIGH_WATER: usize = 256 * 1024;

/// How the body ended.
enum End {
    Done,
    Failed(Error),
}

#[derive(Default)]
struct State {
    /// The Promise of the response head, until the head arrives (or the request fails).
    head: Option<Pending<NativeResponse>>,
    chunks: VecDeque<Bytes>,
    buffered: usize,
    end: Option<End>,
    trailers: Option<HeaderMap>,
    /// A `wait()` in progress: settled when data, the end or an error arrives.
    waiter: Option<Pending<()>>,
    /// A `readAll()` in progress: the body is gathered here without a limit.
    collector: Option<(Pending<Buffer>, Vec<u8>)>,
    task: Option<AbortHandle>,
    cancelled: bool,
}

impl State {
    fn wake(&mut self) {
        if let Some(w) = self.waiter.take() {
            w.resolve(());
        }
    }

    /// Moves what is buffered into the collector; at the end, settles it.
    fn feed_collector(&mut self) {
        let Some((_, all)) = &mut self.collector else {
            return;
        };
        for c in self.chunks.drain(..) {
            all.extend_from_slice(&c);
        }
        self.buffered = 0;
        match &self.end {
            None => {}
            Some(End::Done) => {
                if let Some((p, all)) = self.collector.take() {
                    p.resolve(Buffer::from(all));
                }
            }
            Some(End::Failed(e)) => {
                if let Some((p, _)) = self.collector.take() {
                    p.reject(e);
                }
            }
        }
    }

    /// Takes every buffered chunk as one contiguous buffer.
    fn take_buffered(&mut self) -> Option<Vec<u8>> {
        if self.buffered == 0 {
            return None;
        }
        let out = if self.chunks.len() == 1 {
            self.chunks.pop_front().map(Vec::from).unwrap_or_default()
        } else {
            let mut out = Vec::with_capacity(self.buffered);
            for c in self.chunks.drain(..) {
                out.extend_from_slice(&c);
            }
            out
        };
        self.buffered = 0;
        Some(out)
    }

    /// Cancels the request: aborts the task and rejects whatever waits.
    fn cancel(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        let e = errors::cancelled();
        if let Some(h) = self.head.take() {
            h.reject(&e);
        }
        if let Some(w) = self.waiter.take() {
            w.reject(&e);
        }
        if let Some((c, _)) = self.collector.take() {
            c.reject(&e);
        }
        self.chunks.clear();
        self.buffered = 0;
        if self.end.is_none() {
            self.end = Some(End::Failed(e));
        }
    }
}

/// What the request task, the JavaScript response object and an abort share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when JavaScript takes data (room in the buffer) or starts collecting.
    room: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Settles whatever still waits if the task ends without doing so (a panic, or the runtime
/// dropping it): a Promise left pending would keep the event loop alive.
struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        if st.cancelled {
            return;
        }
        let e = errors::lost();
        if let Some(h) = st.head.take() {
            h.reject(&e);
        }
        if st.end.is_none() {
            st.end = Some(End::Failed(e));
            st.wake();
            st.feed_collector();
        }
    }
}

/// Sends `req` on `client` and returns the Promise of its [`NativeResponse`].
pub(crate) fn send<'env>(
    env: &'env Env,
    client: Client,
    req: Request,
    call: Option<&RequestCall>,
) -> napi::Result<Object<'env>> {
    let handle = client.runtime().clone();
    let (head, promise) = Pending::<NativeResponse>::new(env)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            head: Some(head),
            ..State::default()
        }),
        room: Notify::new(),
    });
    let task = handle.spawn(run(client, req, shared.clone()));
    shared.lock().task = Some(task.abort_handle());
    if let Some(call) = call {
        let mut slot = call.shared.lock().unwrap_or_else(|p| p.into_inner());
        if call.cancelled() {
            drop(slot);
            shared.lock().cancel();
        } else {
            *slot = Some(shared);
        }
    }
    Ok(promise)
}

async fn run(client: Client, req: Request, shared: Arc<Shared>) {
    let guard = TaskGuard(shared.clone());
    let response = client.stream(req).await;
    drop(client);
    let body = {
        let mut st = shared.lock();
        if st.cancelled {
            return;
        }
        let Some(head_promise) = st.head.take() else {
            return;
        };
        match response {
            Err(e) => {
                st.end = Some(End::Failed(errors::duplicate(&e)));
                head_promise.reject(&e);
                return;
            }
            Ok(response) => {
                let (head, body) = response.into_parts();
                head_promise.resolve(NativeResponse {
                    head,
                    shared: shared.clone(),
                });
                body
            }
        }
    };
    pump(body, &shared).await;
    drop(guard);
}

async fn pump(mut body: ResponseBody, shared: &Shared) {
    loop {
        loop {
            {
                let st = shared.lock();
                if st.cancelled {
                    return;
                }
                if st.buffered < HIGH_WATER || st.collector.is_some() {
                    break;
                }
            }
            shared.room.notified().await;
        }
        let next = body.chunk().await;
        let mut st = shared.lock();
        if st.cancelled {
            return;
        }
        match next {
            Ok(Some(chunk)) => {
                st.buffered += chunk.len();
                st.chunks.push_back(chunk);
            }
            Ok(None) => {
                st.trailers = body.trailers().cloned();
                st.end = Some(End::Done);
            }
            Err(e) => st.end = Some(End::Failed(e)),
        }
        st.feed_collector();
        st.wake();
        if st.end.is_some() {
            return;
        }
    }
}

/// A response whose head has arrived; its body is read through this object.
#[napi(namespace = "native")]
pub struct NativeResponse {
    head: ResponseHead,
    shared: Arc<Shared>,
}

#[napi(namespace = "native")]
impl NativeResponse {
    /// The status code.
    #[napi(getter)]
    pub fn status(&self) -> u32 {
        u32::from(self.head.status.as_u16())
    }

    /// The HTTP version: `1.1`, `2.0` or `3.0`.
    #[napi(getter)]
    pub fn version(&self) -> &'static str {
        headers::version(self.head.version)
    }

    /// The headers as a flat `[name, value, ...]` list (names lower-case).
    #[napi]
    pub fn headers(&self) -> Vec<String> {
        headers::flatten(&self.head.headers)
    }

    /// Takes every buffered byte of the body as one Buffer; `null` when nothing is buffered
    /// (then see `ended`, or `wait()`). Throws the body's error once the data before it is taken.
    #[napi]
    pub fn try_read(&self) -> napi::Result<Option<Buffer>> {
        let mut st = self.shared.lock();
        if let Some(data) = st.take_buffered() {
            drop(st);
            self.shared.room.notify_one();
            return Ok(Some(Buffer::from(data)));
        }
        match &st.end {
            Some(End::Failed(e)) => Err(errors::to_js(e)),
            _ => Ok(None),
        }
    }

    /// True once the body ended cleanly and every byte was taken.
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        let st = self.shared.lock();
        st.buffered == 0 && matches!(st.end, Some(End::Done))
    }

    /// Resolves when `tryRead()` has something to return (data, the end or an error).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn wait<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (pending, promise) = Pending::<()>::new(env)?;
        let mut st = self.shared.lock();
        if st.buffered > 0 || st.end.is_some() {
            pending.resolve(());
        } else {
            // One reader at a time; a replaced waiter just wakes up and looks again.
            if let Some(old) = st.waiter.replace(pending) {
                old.resolve(());
            }
        }
        Ok(promise)
    }

    /// The whole body (the rest of it) as one Buffer, without the pump's limit; `null` when
    /// it is already complete and was taken.
    #[napi]
    pub fn take_all(&self) -> napi::Result<Option<Buffer>> {
        let mut st = self.shared.lock();
        match &st.end {
            Some(End::Done) => Ok(Some(Buffer::from(st.take_buffered().unwrap_or_default()))),
            Some(End::Failed(e)) => Err(errors::to_js(e)),
            None => Ok(None),
        }
    }

    /// Reads the rest of the body into one Buffer.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn read_all<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (pending, promise) = Pending::<Buffer>::new(env)?;
        let mut st = self.shared.lock();
        if let Some((old, _)) = st.collector.take() {
            old.reject(&Error::new(
                quiver_core::ErrorKind::Internal,
                "the body is already being read",
            ));
        }
        let hint = self
            .head
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(64 << 20);
        st.collector = Some((pending, Vec::with_capacity(hint.max(st.buffered))));
        st.feed_collector();
        drop(st);
        self.shared.room.notify_one();
        Ok(promise)
    }

    /// The trailers as a flat list, once the body has ended; `null` when there were none.
    #[napi]
    pub fn trailers(&self) -> Option<Vec<String>> {
        self.shared.lock().trailers.as_ref().map(headers::flatten)
    }

    /// Stops the body: the connection is closed (HTTP/1.1) or the stream reset; pending reads
    /// reject with `cancelled`.
    #[napi]
    pub fn cancel(&self) {
        self.shared.lock().cancel();
    }
}

impl Drop for NativeResponse {
    fn drop(&mut self) {
        // Garbage-collected: nobody reads this body any more.
        let mut st = self.shared.lock();
        if st.end.is_none() {
            st.cancel();
        }
    }
}

/// Cancels one request from JavaScript (an `AbortSignal`), before or after its head arrived.
#[napi(namespace = "native")]
pub struct RequestCall {
    shared: Mutex<Option<Arc<Shared>>>,
    cancelled: std::sync::atomic::AtomicBool,
}

#[napi(namespace = "native")]
impl RequestCall {
    /// A call not yet attached to a request.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> RequestCall {
        RequestCall {
            shared: Mutex::new(None),
            cancelled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Cancels the request: its Promise (or the body's pending read) rejects with `cancelled`.
    #[napi]
    pub fn cancel(&self) {
        self.cancelled
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(shared) = shared {
            shared.lock().cancel();
        }
    }
}
