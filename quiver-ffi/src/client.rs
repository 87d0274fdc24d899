//! `quiver_client`: a thread-safe client (core's `Client` plus the bookkeeping that makes every
//! callback fire exactly once, and where its callbacks run), and the one-shot calls
//! `quiver_client_send` and `quiver_client_send_blocking`.

use std::ffi::c_void;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::ptr::null_mut;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use futures_util::FutureExt;
use quiver_core::embed::on_first_poll;
use quiver_core::{Error, ErrorKind};
use tokio::runtime::Handle;

use crate::cancel::{fired, Signal};
use crate::config::quiver_config;
use crate::error::{error_ptr, quiver_error, quiver_result, set_error_out};
use crate::events::{in_event_callback, EventSink};
use crate::ffi::{
    arc_castable, set_optional_out, to_arc_const_ptr, to_boxed_mut_ptr, try_box_from_ptr,
    try_callback, try_clone_arc, try_from, try_out_ptr, try_ref_from_ptr, UserData,
};
use crate::panic::ffi_panic_boundary;
use crate::queue::{in_dispatched_callback, Runner};
use crate::request::{quiver_request, RequestParts};
use crate::response::{quiver_response, Response};

/// An HTTP client with a connection pool per origin.
///
/// Thread-safe: any thread may use it at the same time, callbacks included. Freed once with
/// `quiver_client_free`.
pub struct quiver_client {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_client`.
pub(crate) struct ClientShared {
    core: quiver_core::Client,
    /// Core's close signal (fired by `quiver_client_close` and `quiver_client_free`): a call
    /// waiting on this side (for its turn on the completion queue) ends with `shutdown` too.
    closing: Arc<Signal>,
    /// Calls whose callback has not returned yet.
    in_flight: Mutex<usize>,
    /// Signalled when `in_flight` drops to zero.
    idle: Condvar,
    /// Where callbacks run: on the runtime, or queued (`quiver_config_set_queue`).
    runner: Runner,
    /// The event callback's delivery (`quiver_config_set_event_callback`), if any.
    events: Option<Arc<EventSink>>,
}

arc_castable!(quiver_client => ClientShared);

impl ClientShared {
    /// The engine client.
    pub(crate) fn core(&self) -> &quiver_core::Client {
        &self.core
    }

    /// Where this client's callbacks run.
    pub(crate) fn runner(&self) -> &Runner {
        &self.runner
    }

    /// True in a child process forked after the client was built. Core refuses such a client
    /// with `forked`; this side must also keep away from the parent's runtime (its threads do
    /// not exist here) and from locks a vanished thread may hold.
    pub(crate) fn forked(&self) -> bool {
        self.core.is_forked()
    }

    fn lock_in_flight(&self) -> MutexGuard<'_, usize> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The runtime a new call runs on: the client's, or in a forked child the child's own
    /// (started fresh by core), where the call then fails with core's `forked` error on a
    /// runtime thread like any other completion.
    pub(crate) fn call_runtime(&self) -> Result<Handle, quiver_result> {
        if self.forked() {
            quiver_core::embed::background().map_err(|_| quiver_result::Internal)
        } else {
            Ok(self.core.runtime().clone())
        }
    }

    /// Runs one call's task on `runtime` (from [`ClientShared::call_runtime`]). The task gets a
    /// [`CallGuard`] that keeps the call counted (and the client alive) until the task drops it,
    /// after its last callback returned. The task's future is built by the worker that first
    /// polls it (`on_first_poll`): what is made on the caller's thread is only `task`.
    pub(crate) fn spawn_call<F>(
        self: &Arc<Self>,
        runtime: &Handle,
        task: impl FnOnce(CallGuard) -> F + Send + 'static,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        let counted = !self.forked();
        if counted {
            *self.lock_in_flight() += 1;
        }
        let guard = CallGuard {
            client: self.clone(),
            counted,
        };
        runtime.spawn(on_first_poll(move || task(guard)));
    }

    /// The error that ends a call because the client is being freed, if it is.
    pub(crate) fn closing_error(&self) -> Option<Error> {
        self.closing.is_fired().then(shutdown_error)
    }

    /// Completes with the error that interrupts a call: the client being freed, or `cancel`.
    pub(crate) async fn interrupted(&self, cancel: Option<&Signal>) -> Error {
        tokio::select! {
            biased;
            _ = self.closing.fired() => shutdown_error(),
            _ = fired(cancel) => cancelled_error(),
        }
    }
}

/// Keeps one call counted in its client's `in_flight` until dropped.
pub(crate) struct CallGuard {
    client: Arc<ClientShared>,
    counted: bool,
}

impl CallGuard {
    /// The call's client.
    pub(crate) fn client(&self) -> &Arc<ClientShared> {
        &self.client
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.counted {
            let mut n = self.client.lock_in_flight();
            *n -= 1;
            if *n == 0 {
                self.client.idle.notify_all();
            }
        }
    }
}

/// `shutdown`: the client was closed or freed while the call was in flight.
pub(crate) fn shutdown_error() -> Error {
    Error::new(
        ErrorKind::Shutdown,
        "the client was closed or freed (quiver_client_close, quiver_client_free)",
    )
}

/// `cancelled`: the caller cancelled the call.
pub(crate) fn cancelled_error() -> Error {
    Error::new(ErrorKind::Cancelled, "the request was cancelled")
}

/// `internal`: a panic inside quiver was caught while the call ran.
pub(crate) fn panic_error() -> Error {
    Error::new(
        ErrorKind::Internal,
        "quiver caught a panic while running the request (a bug in quiver; please report it)",
    )
}

/// Receives the outcome of a one-shot call.
///
/// Called exactly once, on a quiver runtime thread (or, for a client with a completion queue,
/// on the thread that dispatches it), with either a response (`error` NULL) or an error
/// (`response` NULL). The callback owns both: free them with `quiver_response_free` /
/// `quiver_error_free`, from any thread, whenever it likes. It must not block for long (it runs
/// on a runtime worker) and may call any quiver function except the blocking ones
/// (`quiver_client_send_blocking` returns `QUIVER_RESULT_WOULD_DEADLOCK` there).
pub type quiver_response_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        response: *mut quiver_response,
        error: *mut quiver_error,
    ),
>;

type Outcome = Result<quiver_core::Response, Error>;

/// Where a one-shot call's outcome goes.
enum Sink {
    Callback(
        unsafe extern "C" fn(*mut c_void, *mut quiver_response, *mut quiver_error),
        UserData,
    ),
    Channel(std::sync::mpsc::SyncSender<Outcome>),
}

/// Delivers a one-shot call's outcome exactly once: by [`Completion::complete`], or, if the
/// task is dropped before that (a runtime shutting down), with an `internal` error.
struct Completion {
    sink: Option<Sink>,
    runner: Runner,
}

impl Completion {
    fn complete(mut self, outcome: Outcome) {
        if let Some(sink) = self.sink.take() {
            deliver(sink, &self.runner, outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            deliver(
                sink,
                &self.runner,
                Err(Error::new(
                    ErrorKind::Internal,
                    "the request's task ended without an outcome",
                )),
            );
        }
    }
}

fn deliver(sink: Sink, runner: &Runner, outcome: Outcome) {
    match sink {
        Sink::Callback(callback, userdata) => runner.last(move || {
            // Converted when the callback runs: a queued outcome that never runs is freed
            // with the queue.
            let (response, error) = match outcome {
                Ok(r) => (
                    to_boxed_mut_ptr::<quiver_response>(Response::from_full(&r)),
                    null_mut(),
                ),
                Err(e) => (null_mut(), error_ptr(e)),
            };
            // SAFETY: a non-NULL C function pointer of this type (checked by
            // `quiver_client_send`), called once with ownership of what it is given.
            unsafe { callback(userdata.get(), response, error) }
        }),
        Sink::Channel(tx) => {
            // The blocking caller waits on the other end; it cannot have gone away.
            let _ = tx.send(outcome);
        }
    }
}

/// Spawns a one-shot call whose outcome goes to `sink`; on `Err` the sink is never used.
fn start_call(
    client: &Arc<ClientShared>,
    request: RequestParts,
    sink: Sink,
) -> Result<(), quiver_result> {
    let runtime = client.call_runtime()?;
    let completion = Completion {
        sink: Some(sink),
        runner: client.runner.clone(),
    };
    client.spawn_call(&runtime, move |guard| async move {
        let client = guard.client();
        let ended = Arc::new(Signal::default());
        let outcome = AssertUnwindSafe(async {
            let (request, cancel) = request.build(&ended);
            let request = request?;
            tokio::select! {
                biased;
                e = client.interrupted(cancel.as_deref()) => Err(e),
                r = client.core().request(request) => r,
            }
        })
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(panic_error()));
        ended.fire();
        completion.complete(outcome);
        drop(guard);
    });
    Ok(())
}

/// Builds a client from `config` (NULL: every option at its default).
///
/// On success `*client_out` receives the client and `QUIVER_RESULT_OK` is returned. A bad
/// option fails with `QUIVER_RESULT_INVALID_CONFIG` and, when `error_out` is not NULL,
/// `*error_out` receives the `invalid_config` error naming the rule and the option (free it
/// with `quiver_error_free`). `config` is only read; it can build more clients.
#[no_mangle]
pub extern "C" fn quiver_client_new(
    config: *const quiver_config,
    client_out: *mut *const quiver_client,
    error_out: *mut *mut quiver_error,
) -> quiver_result {
    ffi_panic_boundary! {
        let client_out = try_out_ptr!(client_out);
        *client_out = std::ptr::null();
        set_optional_out(error_out, null_mut());
        let (mut builder, queue, events) = match try_from(config) {
            Some(config) => (config.builder(), config.queue(), config.event_sink()),
            None => (quiver_core::Client::builder(), None, None),
        };
        if let Some(sink) = &events {
            builder = builder.listener(sink.listener());
        }
        match builder.build() {
            Ok(core) => {
                *client_out = to_arc_const_ptr::<quiver_client>(Arc::new(ClientShared {
                    closing: core.closed_signal(),
                    core,
                    in_flight: Mutex::new(0),
                    idle: Condvar::new(),
                    runner: Runner::new(queue),
                    events,
                }));
                quiver_result::Ok
            }
            Err(e) => set_error_out(error_out, e),
        }
    }
}

/// Frees a client. NULL is a no-op.
///
/// Requests, streams, channels and tunnels still in flight end: each callback (or `on_end`)
/// that has not run yet runs exactly once with a `shutdown` error (or with its real outcome if
/// that won the race). Called outside quiver's threads, this waits until every such callback has returned,
/// so when it returns no callback of this client runs any more. Called from inside a callback (a quiver
/// thread), it cannot wait: the remaining callbacks run after it returns, and until then they
/// may still use `client` (it stays valid for them; new requests fail with `shutdown`).
///
/// With a completion queue (`quiver_config_set_queue`), it waits only until every such
/// callback is queued, never for the queue to be dispatched: they run when the queue is next
/// dispatched. Called from a dispatched callback (of any client), it does not wait, as from
/// inside any callback: the remaining completions are queued shortly after.
///
/// The event callback (`quiver_config_set_event_callback`) hears the events up to this point
/// (connections closing included, as far as they closed meanwhile), then nothing more: called
/// outside quiver's threads, this also waits for an event callback running on another thread
/// to return. Events already in an event queue still run when it is dispatched.
///
/// In a child process forked after the client was built, this only forgets the client (its
/// connections belong to the parent).
#[no_mangle]
pub extern "C" fn quiver_client_free(client: *const quiver_client) {
    ffi_panic_boundary! {
        let Some(shared) = crate::ffi::try_arc_from(client) else {
            return;
        };
        if shared.forked() {
            std::mem::forget(shared);
            return;
        }
        shared.core.close();
        if !quiver_core::embed::is_runtime_thread()
            && !in_dispatched_callback()
            && !in_event_callback()
        {
            let mut n = shared.lock_in_flight();
            while *n > 0 {
                n = shared.idle.wait(n).unwrap_or_else(|p| p.into_inner());
            }
        }
        if let Some(events) = &shared.events {
            events.close();
        }
    }
}

/// Closes the client without freeing it: every pool closes (idle connections, pooled proxy
/// connections), and every request, stream, channel and tunnel still in flight ends with
/// `shutdown` (each callback or `on_end` once, unless its real outcome won the race). Later
/// calls (`quiver_client_send`, `_stream`, `_open_channel`, `_open_udp_tunnel`) are accepted and
/// complete with `shutdown`; `quiver_client_send_blocking` returns `QUIVER_RESULT_SHUTDOWN`.
/// Stats still work.
///
/// Never waits for callbacks (free the client for that: `quiver_client_free` waits as usual).
/// Idempotent; any thread, callbacks included. In a child process forked after the client was
/// built it does nothing (calls fail there with `forked` anyway). NULL:
/// `QUIVER_RESULT_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn quiver_client_close(client: *const quiver_client) -> quiver_result {
    ffi_panic_boundary! {
        let shared = try_ref_from_ptr!(client);
        if !shared.forked() {
            shared.core.close();
        }
        quiver_result::Ok
    }
}

/// Tears down every pooled connection to proxies (HTTP/2 and HTTP/3 connections that carry
/// UDP tunnels and CONNECT streams): UDP tunnels opened before this call end with `shutdown`
/// (each `on_end` once, also while paused or still opening), and requests in flight through a
/// pooled proxy connection fail with `shutdown`. The client stays usable: later tunnels and
/// requests dial the proxy afresh. Never waits; any thread, callbacks included. In a child
/// process forked after the client was built it does nothing. NULL:
/// `QUIVER_RESULT_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn quiver_client_close_all_tunnels(client: *const quiver_client) -> quiver_result {
    ffi_panic_boundary! {
        let shared = try_ref_from_ptr!(client);
        if !shared.forked() {
            shared.core.close_all_tunnels();
        }
        quiver_result::Ok
    }
}

/// Whether this is a child process forked after the client was built: the client refuses to
/// work there (every call completes with `forked`); build a new one. NULL: false.
#[no_mangle]
pub extern "C" fn quiver_client_is_forked(client: *const quiver_client) -> bool {
    ffi_panic_boundary! {
        let shared = try_ref_from_ptr!(client);
        shared.forked()
    }
}

/// Sends a request; `callback` receives the whole response (or the error) later.
///
/// Consumes `request` in every case. Returns `QUIVER_RESULT_OK` when the request was started:
/// then `callback(userdata, response, error)` runs exactly once, on a quiver thread (with a
/// completion queue: on the thread that dispatches it) - also when the request is invalid,
/// cancelled (`quiver_request_set_cancel_token`), times out, or the client is freed while it is
/// in flight. Any other result (a NULL argument) means the callback
/// will never run. `userdata` must stay usable until the callback has run. Any thread,
/// callbacks included.
#[no_mangle]
pub extern "C" fn quiver_client_send(
    client: *const quiver_client,
    request: *mut quiver_request,
    callback: quiver_response_cb,
    userdata: *mut c_void,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_box_from_ptr!(request);
        let client = try_clone_arc!(client);
        let callback = try_callback!(callback);
        match start_call(&client, *request, Sink::Callback(callback, UserData(userdata))) {
            Ok(()) => quiver_result::Ok,
            Err(code) => code,
        }
    }
}

/// Sends a request and waits for the whole response: for simple, single-threaded programs.
///
/// Consumes `request` in every case. On success `*response_out` receives the response (free it
/// with `quiver_response_free`) and `QUIVER_RESULT_OK` is returned. On failure the error's
/// code is returned and, when `error_out` is not NULL, `*error_out` receives the error (free
/// it with `quiver_error_free`). Called on a quiver thread (inside a callback), where waiting
/// could deadlock, it returns `QUIVER_RESULT_WOULD_DEADLOCK` without sending anything.
#[no_mangle]
pub extern "C" fn quiver_client_send_blocking(
    client: *const quiver_client,
    request: *mut quiver_request,
    response_out: *mut *mut quiver_response,
    error_out: *mut *mut quiver_error,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_box_from_ptr!(request);
        let client = try_clone_arc!(client);
        let response_out = try_out_ptr!(response_out);
        *response_out = null_mut();
        set_optional_out(error_out, null_mut());
        if quiver_core::embed::is_runtime_thread() || in_event_callback() {
            return quiver_result::WouldDeadlock;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if let Err(code) = start_call(&client, *request, Sink::Channel(tx)) {
            return code;
        }
        let outcome = rx.recv().unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Internal, "the request's task ended without an outcome"))
        });
        match outcome {
            Ok(r) => {
                *response_out = to_boxed_mut_ptr::<quiver_response>(Response::from_full(&r));
                quiver_result::Ok
            }
            Err(e) => set_error_out(error_out, e),
        }
    }
}
