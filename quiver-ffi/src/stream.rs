//! `quiver_stream`: a streamed response delivered through callbacks (head, then each chunk,
//! then the end), with pause / resume as backpressure and cancellation.

use std::ffi::c_void;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use futures_util::FutureExt;
use quiver_core::Error;
use tokio::sync::Notify;

use crate::cancel::Signal;
use crate::client::{cancelled_error, panic_error, quiver_client, ClientShared};
use crate::error::{error_ptr, quiver_error, quiver_result};
use crate::ffi::{
    arc_castable, borrowed_ptr, free_arc, set_optional_out, to_arc_const_ptr, try_box_from_ptr,
    try_callback, try_clone_arc, try_out, try_ref_from_ptr, Castable, OwnershipArc, UserData,
};
use crate::panic::ffi_panic_boundary;
use crate::queue::Runner;
use crate::request::{quiver_request, RequestParts};
use crate::response::{quiver_response, Response};

/// A response being streamed to callbacks, and the control over it.
///
/// Thread-safe: pause, resume and cancel from any thread, callbacks included. The caller owns
/// the handle `quiver_client_stream` gives it (if it asked for one) and frees it once with
/// `quiver_stream_free`; callbacks receive the same pointer, borrowed.
pub struct quiver_stream {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_stream`, shared by the handle and the stream's task.
pub(crate) struct StreamShared {
    pause: Pause,
    cancel: Signal,
    head: OnceLock<Response>,
}

arc_castable!(quiver_stream => StreamShared);

/// Pause and resume of a stream or a channel: while paused, its task reads nothing more from
/// the connection.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    paused: AtomicBool,
    resumed: Notify,
}

impl Pause {
    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    pub(crate) fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        self.resumed.notify_waiters();
    }

    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Completes once not paused.
    async fn resumed(&self) {
        loop {
            let notified = self.resumed.notified();
            if !self.is_paused() {
                return;
            }
            notified.await;
        }
    }

    /// Returns once not paused, or with the error of an interruption.
    pub(crate) async fn wait(
        &self,
        interrupted: impl Future<Output = Error> + Unpin,
    ) -> Result<(), Error> {
        if self.is_paused() {
            tokio::select! {
                biased;
                e = interrupted => return Err(e),
                () = self.resumed() => {}
            }
        }
        Ok(())
    }
}

/// Called once with the response head (status, version, headers), before any data.
/// `head` belongs to the stream (never free it); it stays valid as long as the stream handle
/// (or, without a handle, until `on_end` returns).
pub type quiver_stream_head_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        stream: *const quiver_stream,
        head: *const quiver_response,
    ),
>;

/// Called for each chunk of the body, in order. `data` is borrowed: valid only until the
/// callback returns (copy what you keep). `len` is never 0.
pub type quiver_stream_data_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        stream: *const quiver_stream,
        data: *const u8,
        len: usize,
    ),
>;

/// Called exactly once, last: `error` is NULL when the body ended cleanly (trailers are then
/// on the head), else the error that ended the stream, owned by the callback (free it with
/// `quiver_error_free`).
pub type quiver_stream_end_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        stream: *const quiver_stream,
        error: *mut quiver_error,
    ),
>;

/// The C side of one stream: its callbacks and their userdata.
#[derive(Clone, Copy)]
struct Callbacks {
    on_head: quiver_stream_head_cb,
    on_data: quiver_stream_data_cb,
    userdata: UserData,
}

/// An `on_end` callback of a stream or channel (handle type `C`).
pub(crate) type EndFn<C> = unsafe extern "C" fn(*mut c_void, *const C, *mut quiver_error);

/// Calls the `on_end` of a stream or channel exactly once: by [`End::finish`], or, if the task
/// is dropped before that (a runtime shutting down), with an `internal` error.
pub(crate) struct End<C: Castable<Ownership = OwnershipArc> + 'static>
where
    C::RustType: Send + Sync + 'static,
{
    pub(crate) on_end: Option<EndFn<C>>,
    pub(crate) userdata: UserData,
    /// What the callback's handle pointer points at.
    pub(crate) handle: Arc<C::RustType>,
    pub(crate) runner: Runner,
}

impl<C: Castable<Ownership = OwnershipArc> + 'static> End<C>
where
    C::RustType: Send + Sync + 'static,
{
    pub(crate) fn finish(mut self, outcome: Result<(), Error>) {
        self.call(outcome);
    }

    fn call(&mut self, outcome: Result<(), Error>) {
        if let Some(on_end) = self.on_end.take() {
            let (userdata, handle) = (self.userdata, self.handle.clone());
            self.runner.last(move || {
                let error = match outcome {
                    Ok(()) => null_mut(),
                    Err(e) => error_ptr(e),
                };
                // SAFETY: a non-NULL C function pointer of this type (checked by the call that
                // started the stream or channel), called once with ownership of `error`.
                unsafe { on_end(userdata.get(), borrowed_ptr::<C>(&handle), error) }
            });
        }
    }
}

impl<C: Castable<Ownership = OwnershipArc> + 'static> Drop for End<C>
where
    C::RustType: Send + Sync + 'static,
{
    fn drop(&mut self) {
        self.call(Err(Error::new(
            quiver_core::ErrorKind::Internal,
            "the task ended without an outcome",
        )));
    }
}

/// Receives the response: head, then each chunk (waiting while paused), until the end, an
/// error, cancellation or the client being freed.
async fn drive(
    client: &ClientShared,
    request: RequestParts,
    stream: &Arc<StreamShared>,
    callbacks: Callbacks,
    ended: &Arc<Signal>,
) -> Result<(), Error> {
    let (request, token) = request.build(ended);
    let request = request?;
    let token = token.as_deref();
    // Fires when the stream's own cancel, the request's token or the client's end fires.
    let interrupted = async {
        tokio::select! {
            biased;
            _ = stream.cancel.fired() => cancelled_error(),
            e = client.interrupted(token) => e,
        }
    };
    let mut interrupted = std::pin::pin!(interrupted);
    // The same, checked without waiting (no callback may start once it has fired).
    let check = || -> Result<(), Error> {
        if stream.cancel.is_fired() || token.is_some_and(Signal::is_fired) {
            return Err(cancelled_error());
        }
        client.closing_error().map_or(Ok(()), Err)
    };

    let mut response = tokio::select! {
        biased;
        e = &mut interrupted => return Err(e),
        r = client.core().stream(request) => r?,
    };
    let head = stream.head.get_or_init(|| Response::from_head(&response));
    check()?;
    let runner = client.runner();
    if let Some(on_head) = callbacks.on_head {
        let (stream, userdata) = (stream.clone(), callbacks.userdata);
        let job = move || {
            if let Some(head) = stream.head.get() {
                // SAFETY: a C function pointer of this type; `head` lives as long as `stream`.
                unsafe { on_head(userdata.get(), borrowed_ptr(&*stream), borrowed_ptr(head)) }
            }
        };
        runner.next(job, interrupted.as_mut()).await?;
    }
    loop {
        // While paused nothing is pulled from core, so no flow-control credit goes back to the
        // peer: the server is slowed down, not buffered.
        stream.pause.wait(interrupted.as_mut()).await?;
        let chunk = tokio::select! {
            biased;
            e = &mut interrupted => return Err(e),
            c = response.chunk() => c?,
        };
        let Some(data) = chunk else {
            head.set_trailers(response.trailers());
            return Ok(());
        };
        // A pause that came while the chunk was on its way holds it back until resumed.
        stream.pause.wait(interrupted.as_mut()).await?;
        check()?;
        if let Some(on_data) = callbacks.on_data {
            let (stream, userdata) = (stream.clone(), callbacks.userdata);
            let job = move || {
                // SAFETY: a C function pointer of this type; `data` outlives the call.
                unsafe {
                    on_data(
                        userdata.get(),
                        borrowed_ptr(&*stream),
                        data.as_ptr(),
                        data.len(),
                    )
                }
            };
            runner.next(job, interrupted.as_mut()).await?;
        }
    }
}

/// Sends a request and streams the response to callbacks: `on_head` (may be NULL) once with
/// the head, `on_data` (may be NULL) for each chunk, then `on_end` (required) exactly once.
///
/// Consumes `request` in every case. Returns `QUIVER_RESULT_OK` when the stream was started;
/// then `on_end` runs exactly once (also on errors, cancellation and when the client is freed),
/// and `*stream_out` (if `stream_out` is not NULL) receives a handle for
/// `quiver_stream_pause` / `_resume` / `_cancel`, to free with `quiver_stream_free`. Any other
/// result means no callback will run. Callbacks run one at a time, in order, on quiver threads
/// (with a completion queue: on the thread that dispatches it), never while a quiver lock is
/// held; they must not block for long and may call any quiver function except the blocking
/// ones. `userdata` must stay usable until `on_end` has run.
#[no_mangle]
pub extern "C" fn quiver_client_stream(
    client: *const quiver_client,
    request: *mut quiver_request,
    on_head: quiver_stream_head_cb,
    on_data: quiver_stream_data_cb,
    on_end: quiver_stream_end_cb,
    userdata: *mut c_void,
    stream_out: *mut *const quiver_stream,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(stream_out, std::ptr::null());
        let request = try_box_from_ptr!(request);
        let client = try_clone_arc!(client);
        let on_end = try_callback!(on_end);
        let runtime = match client.call_runtime() {
            Ok(r) => r,
            Err(code) => return code,
        };
        let stream = Arc::new(StreamShared {
            pause: Pause::default(),
            cancel: Signal::default(),
            head: OnceLock::new(),
        });
        let callbacks = Callbacks { on_head, on_data, userdata: UserData(userdata) };
        let end = End::<quiver_stream> {
            on_end: Some(on_end),
            userdata: UserData(userdata),
            handle: stream.clone(),
            runner: client.runner().clone(),
        };
        if let Some(out) = try_out(stream_out) {
            *out = to_arc_const_ptr::<quiver_stream>(stream.clone());
        }
        client.spawn_call(&runtime, move |guard| async move {
            let ended = Arc::new(Signal::default());
            let outcome =
                AssertUnwindSafe(drive(guard.client(), *request, &stream, callbacks, &ended))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(panic_error()));
            ended.fire();
            end.finish(outcome);
            drop(guard);
        });
        quiver_result::Ok
    }
}

/// Pauses delivery: nothing more is read from the connection, so flow control holds the server
/// back, and no `on_data` runs until `quiver_stream_resume`. Called from the stream's own
/// callback it takes effect before the next one; from another thread, one `on_data` already on
/// its way may still run. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_stream_pause(stream: *const quiver_stream) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stream).pause.pause();
        quiver_result::Ok
    }
}

/// Resumes delivery after `quiver_stream_pause`. Idempotent; any thread, callbacks included.
#[no_mangle]
pub extern "C" fn quiver_stream_resume(stream: *const quiver_stream) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stream).pause.resume();
        quiver_result::Ok
    }
}

/// Cancels the stream: `on_end` runs soon with a `cancelled` error (unless the stream had
/// already ended) and the connection is closed or the HTTP/2 stream reset. Called from the
/// stream's own callback, no `on_head` / `on_data` follows; from another thread, one already on
/// its way may still run. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_stream_cancel(stream: *const quiver_stream) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stream).cancel.fire();
        quiver_result::Ok
    }
}

/// The stream's response head (status, version, headers; trailers once ended), or NULL before
/// it arrived. Belongs to the stream: valid until the stream handle is freed; never free it.
#[no_mangle]
pub extern "C" fn quiver_stream_response(stream: *const quiver_stream) -> *const quiver_response {
    ffi_panic_boundary! {
        match try_ref_from_ptr!(stream).head.get() {
            Some(head) => borrowed_ptr(head),
            None => std::ptr::null(),
        }
    }
}

/// Frees the caller's stream handle. A stream that has not ended is cancelled first (`on_end`
/// still runs, once). NULL is a no-op. Any thread, callbacks included (the pointer callbacks
/// receive stays valid while they run).
#[no_mangle]
pub extern "C" fn quiver_stream_free(stream: *const quiver_stream) {
    ffi_panic_boundary! {
        if let Some(s) = crate::ffi::try_from(stream) {
            s.cancel.fire();
        }
        free_arc(stream)
    }
}
