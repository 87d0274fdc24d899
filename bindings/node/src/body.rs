//! One request from send to the end of its response body.
//!
//! A single task on quiver's runtime sends the request, settles the head's Promise, then reads
//! the body ahead through core's [`Prefetch`] (bounded: a slow JavaScript consumer slows core
//! and, through flow control, the server, instead of growing memory). JavaScript takes
//! everything read ahead in one call ([`NativeResponse::try_read`]), so chunks cross in
//! batches, not per frame.
//!
//! Cancelling (an `AbortSignal`, `body.dump()`, breaking out of `for await`, or the response
//! being garbage-collected) drops core's future or body: core cancels the request (HTTP/1.1
//! closes the connection, HTTP/2 and HTTP/3 reset the stream), and what waits rejects with
//! `cancelled`.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, BufferSlice, Either, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::embed::{on_first_poll, Prefetch, Signal, Taken};
use quiver_core::{Client, Request, ResponseHead, Timings};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::errors;
use crate::events::{NativeTimings, REQUEST_TAG};
use crate::headers;
use crate::layer::RedirectEntry;
use crate::pending::{spawn_promise, Pending};

#[derive(Default)]
struct State {
    /// The Promise of the response head, until the head arrives (or the request fails).
    head: Option<Pending<NativeResponse>>,
    task: Option<AbortHandle>,
    /// The body, once the head arrived.
    body: Option<Arc<Prefetch>>,
}

/// What the request task, the JavaScript response object and an abort share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Fired by a cancel: what waits rejects with `cancelled`.
    cancelled: Signal,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels the request: stops it in core and rejects whatever waits.
    fn cancel(&self) {
        if !self.cancelled.fire() {
            return;
        }
        let (head, task, body) = {
            let mut st = self.lock();
            (st.head.take(), st.task.take(), st.body.take())
        };
        if let Some(task) = task {
            task.abort();
        }
        if let Some(body) = body {
            body.cancel();
        }
        if let Some(h) = head {
            h.reject(&errors::cancelled());
        }
    }

    fn check(&self) -> napi::Result<()> {
        if self.cancelled.is_fired() {
            return Err(errors::to_js(&errors::cancelled()));
        }
        Ok(())
    }
}

/// Rejects the head's Promise if the task ends without settling it (a panic, or the runtime
/// dropping it): a Promise left pending would keep the event loop alive.
struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let head = self.0.lock().head.take();
        if let Some(h) = head {
            h.reject(&errors::lost());
        }
    }
}

/// Sends `req` on `client` and returns the Promise of its [`NativeResponse`]; with `tag`, the
/// request's task runs in that [`REQUEST_TAG`] scope (its `request_start` event carries it).
pub(crate) fn send<'env>(
    env: &'env Env,
    client: Client,
    req: Request,
    call: Option<&RequestCall>,
    tag: Option<u32>,
) -> napi::Result<Object<'env>> {
    let handle = client.runtime().clone();
    let (head, promise) = Pending::<NativeResponse>::new(env)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            head: Some(head),
            ..State::default()
        }),
        cancelled: Signal::new(),
    });
    // Built on the worker that first polls it: the task made on this thread stays small.
    let work = {
        let shared = shared.clone();
        on_first_poll(move || run(client, req, shared))
    };
    let task = match tag {
        Some(tag) => handle.spawn(REQUEST_TAG.scope(tag, work)),
        None => handle.spawn(work),
    };
    shared.lock().task = Some(task.abort_handle());
    if let Some(call) = call {
        let mut slot = call.shared.lock().unwrap_or_else(|p| p.into_inner());
        if call.cancelled() {
            drop(slot);
            shared.cancel();
        } else {
            *slot = Some(shared);
        }
    }
    Ok(promise)
}

async fn run(client: Client, req: Request, shared: Arc<Shared>) {
    let guard = TaskGuard(shared.clone());
    let handle = client.runtime().clone();
    let response = client.stream(req).await;
    drop(client);
    let head_promise = shared.lock().head.take();
    let Some(head_promise) = head_promise else {
        return;
    };
    let pump = match response {
        Err(e) => {
            head_promise.reject(&e);
            return;
        }
        Ok(response) => {
            // Read before splitting: `into_parts` drops them. The timings' clone shares the
            // cell where the body's end records the total.
            let timings = response.timings().clone();
            let url = response.url().to_owned();
            let history = response.history().iter().map(RedirectEntry::from).collect();
            let unfollowed = response.unfollowed_redirect().map(str::to_owned);
            let (mut head, body) = response.into_parts();
            // JavaScript frees the response object at its next collection: it must not pin the
            // connection's read buffer meanwhile.
            head.unshare();
            let (prefetch, pump) = Prefetch::new(body, Prefetch::DEFAULT_HIGH_WATER);
            let prefetch = Arc::new(prefetch);
            shared.lock().body = Some(prefetch.clone());
            head_promise.resolve(NativeResponse {
                head,
                url,
                history,
                unfollowed,
                timings,
                body: prefetch,
                shared: shared.clone(),
                handle,
            });
            pump
        }
    };
    // This task reads the body ahead: core's `read_timeout` counts the time it waits with
    // room in the buffer.
    pump.await;
    drop(guard);
}

/// Bodies up to this size cross as a Buffer JavaScript owns (one copy), larger ones as an
/// external Buffer over Rust's memory: an external Buffer costs a finalizer the garbage
/// collector must run, which for small bodies is dearer than the copy.
const COPY_LIMIT: usize = 64 * 1024;

/// `chunks` as one Buffer: copied into JavaScript's memory when small, else joined (one copy
/// at most) into an external Buffer.
fn to_js_buffer<'env>(
    env: &'env Env,
    chunks: Vec<Bytes>,
) -> napi::Result<Either<BufferSlice<'env>, Buffer>> {
    let len: usize = chunks.iter().map(Bytes::len).sum();
    if len > COPY_LIMIT {
        return Ok(Either::B(to_buffer(chunks)));
    }
    match <[Bytes; 1]>::try_from(chunks) {
        Ok([one]) => BufferSlice::copy_from(env, &one).map(Either::A),
        Err(chunks) => {
            let mut out = Vec::with_capacity(len);
            for c in &chunks {
                out.extend_from_slice(c);
            }
            BufferSlice::copy_from(env, &out).map(Either::A)
        }
    }
}

/// Joins chunks into one Buffer (one copy at most).
fn to_buffer(chunks: Vec<Bytes>) -> Buffer {
    match <[Bytes; 1]>::try_from(chunks) {
        Ok([one]) => Buffer::from(Vec::from(one)),
        Err(chunks) => {
            let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in &chunks {
                out.extend_from_slice(c);
            }
            Buffer::from(out)
        }
    }
}

/// A response whose head has arrived; its body is read through this object.
#[napi(namespace = "native")]
pub struct NativeResponse {
    head: ResponseHead,
    url: String,
    history: Vec<RedirectEntry>,
    unfollowed: Option<String>,
    timings: Timings,
    body: Arc<Prefetch>,
    shared: Arc<Shared>,
    handle: Handle,
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

    /// The URL that answered (after redirects: the last one).
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The redirects followed to get here, oldest first (empty when none).
    #[napi]
    pub fn history(&self) -> Vec<RedirectEntry> {
        self.history.clone()
    }

    /// Why this response is a redirect that was not followed although redirects are on (a
    /// 307/308 whose streamed body cannot be sent again); `null` otherwise.
    #[napi(getter)]
    pub fn unfollowed_redirect(&self) -> Option<String> {
        self.unfollowed.clone()
    }

    /// How long each step took and which connection carried the request (`total` once the
    /// body ended). The object holds the timings only, not this response.
    #[napi]
    pub fn timings(&self) -> NativeTimings {
        NativeTimings {
            inner: self.timings.clone(),
        }
    }

    /// Takes every buffered byte of the body as one Buffer; `null` when nothing is buffered
    /// (then see `ended`, or `wait()`). Throws the body's error once the data before it is taken.
    #[napi(ts_return_type = "Buffer | null")]
    pub fn try_read<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Option<Either<BufferSlice<'env>, Buffer>>> {
        self.shared.check()?;
        match self.body.try_take() {
            Taken::Data(chunks) => Ok(Some(to_js_buffer(env, chunks)?)),
            Taken::Empty | Taken::End(_) => Ok(None),
            Taken::Failed(e) => Err(errors::to_js(&e)),
        }
    }

    /// True once the body ended cleanly and every byte was taken.
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        self.body.is_complete()
    }

    /// Resolves when `tryRead()` has something to return (data, the end or an error).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn wait<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (body, shared) = (self.body.clone(), self.shared.clone());
        spawn_promise(env, &self.handle, async move {
            tokio::select! {
                biased;
                () = shared.cancelled.fired() => Err(errors::cancelled()),
                () = body.ready() => Ok(()),
            }
        })
    }

    /// The whole body (the rest of it) as one Buffer when it has already ended; `null` while
    /// it goes on (then `readAll()`).
    #[napi(ts_return_type = "Buffer | null")]
    pub fn take_all<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Option<Either<BufferSlice<'env>, Buffer>>> {
        self.shared.check()?;
        if !self.body.has_ended() {
            return Ok(None);
        }
        let mut all = Vec::new();
        loop {
            match self.body.try_take() {
                Taken::Data(chunks) => all.extend(chunks),
                Taken::End(_) | Taken::Empty => return Ok(Some(to_js_buffer(env, all)?)),
                Taken::Failed(e) => return Err(errors::to_js(&e)),
            }
        }
    }

    /// Reads the rest of the body into one Buffer, without the read-ahead bound. The reading
    /// task settles the Promise as the body ends (no task of its own); a cancel rejects it.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn read_all<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.shared.check()?;
        let (pending, promise) = Pending::<Buffer>::new(env)?;
        self.body.collect(move |all| match all {
            Ok((all, _)) => pending.resolve(Buffer::from(Vec::from(all))),
            Err(e) if e.kind() == quiver_core::ErrorKind::Cancelled => {
                pending.reject(&errors::cancelled())
            }
            Err(e) => pending.reject(&e),
        });
        Ok(promise)
    }

    /// The trailers as a flat list, once the body has ended; `null` when there were none.
    #[napi]
    pub fn trailers(&self) -> Option<Vec<String>> {
        self.body.trailers().as_ref().map(headers::flatten)
    }

    /// Stops the body: the connection is closed (HTTP/1.1) or the stream reset; pending reads
    /// reject with `cancelled`.
    #[napi]
    pub fn cancel(&self) {
        self.shared.cancel();
    }
}

impl Drop for NativeResponse {
    fn drop(&mut self) {
        // Garbage-collected: nobody reads this body any more.
        if !self.body.is_complete() {
            self.shared.cancel();
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
            shared.cancel();
        }
    }
}
