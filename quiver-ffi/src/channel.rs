//! `quiver_channel`: an HTTP/3 datagram channel (RFC 9297: an extended CONNECT whose request
//! stream carries HTTP/3 datagrams) delivered through callbacks - the response head, then
//! datagrams and stream data as they arrive, then the end - with `quiver_channel_send` for
//! datagrams, close, pause / resume and cancellation.

use std::ffi::{c_char, c_void};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::FutureExt;
use quiver_core::{ConnectProtocol, DatagramOptions, Error, ErrorKind};

use crate::client::{cancelled_error, panic_error, quiver_client, ClientShared};
use crate::endpoint::{deliver, Delivery, Endpoint};
use crate::error::{quiver_error, quiver_result, set_error_out};
use crate::ffi::{
    arc_castable, borrowed_ptr, free_arc, set_optional_out, to_arc_const_ptr, try_box_from_ptr,
    try_callback, try_clone_arc, try_cstr, try_out, try_ref_from_ptr, try_slice, UserData,
};
use crate::panic::ffi_panic_boundary;
use crate::request::{quiver_request, RequestParts};
use crate::response::quiver_response;
use crate::stream::End;

/// An HTTP/3 datagram channel: datagrams both ways on one extended CONNECT request stream.
///
/// Thread-safe: send, close, pause, resume and cancel from any thread, callbacks included. The
/// caller owns the handle `quiver_client_open_channel` gives it (if it asked for one) and frees
/// it once with `quiver_channel_free`; callbacks receive the same pointer, borrowed.
pub struct quiver_channel {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_channel`.
pub(crate) struct ChannelShared(Endpoint);

arc_castable!(quiver_channel => ChannelShared);

impl ChannelShared {
    fn send(&self, payload: &[u8]) -> Result<(), Error> {
        self.0
            .open_sender("the datagram channel", "quiver_channel_close")?
            .send(payload)
    }

    fn max_datagram_size(&self) -> usize {
        self.0
            .max_payload("the datagram channel", "quiver_channel_close")
    }
}

/// Called once, when the channel is open (the peer answered the extended CONNECT with 2xx):
/// datagrams may be sent from here on. `head` belongs to the channel (never free it); it stays
/// valid as long as the channel handle (or, without a handle, until `on_end` returns).
pub type quiver_channel_open_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        channel: *const quiver_channel,
        head: *const quiver_response,
    ),
>;

/// Called for each datagram received, whole. `data` is borrowed: valid only until the
/// callback returns. `len` may be 0 (an empty datagram).
pub type quiver_channel_datagram_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        channel: *const quiver_channel,
        data: *const u8,
        len: usize,
    ),
>;

/// Called for each piece of the request stream's data the peer sends (capsules, for protocols
/// that use them), in order. `data` is borrowed: valid only until the callback returns. `len`
/// is never 0.
pub type quiver_channel_data_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        channel: *const quiver_channel,
        data: *const u8,
        len: usize,
    ),
>;

/// Called exactly once, last: `error` is NULL when the peer ended its side of the stream
/// cleanly (its trailers are then on the head), else the error that ended the channel (it
/// could not open, was cancelled, the client was freed, the connection failed), owned by the
/// callback (free it with `quiver_error_free`).
pub type quiver_channel_end_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        channel: *const quiver_channel,
        error: *mut quiver_error,
    ),
>;

/// The C side of one channel: its callbacks (but `on_end`) and their userdata.
#[derive(Clone, Copy)]
struct Callbacks {
    on_open: quiver_channel_open_cb,
    on_datagram: quiver_channel_datagram_cb,
    on_data: quiver_channel_data_cb,
    userdata: UserData,
}

/// Opens the channel and delivers its events until it ends, fails, is cancelled or the client
/// is freed.
async fn drive(
    client: &ClientShared,
    request: RequestParts,
    protocol: Result<ConnectProtocol, Error>,
    shared: &Arc<ChannelShared>,
    callbacks: Callbacks,
) -> Result<(), Error> {
    let (request, token) = request.into_connect("a datagram channel");
    let token = token.as_deref();
    let interrupted = async {
        tokio::select! {
            biased;
            _ = shared.0.cancel.fired() => cancelled_error(),
            e = client.interrupted(token) => e,
        }
    };
    let mut interrupted = pin!(interrupted);
    let request = request?;

    let options = DatagramOptions::default().protocol(protocol?);
    let open = client
        .core()
        .open_datagram_channel(&request.url, request.headers, options);
    let open = async {
        match request.timeout {
            None => open.await,
            Some(limit) => tokio::time::timeout(limit, open).await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::RequestTimeout,
                    format!("the datagram channel did not open within {limit:?}"),
                ))
            }),
        }
    };
    let channel = tokio::select! {
        biased;
        e = &mut interrupted => return Err(e),
        r = open => r?,
    };
    let (head, sender, receiver) = channel.split();
    // Published before `on_open` runs: sending works from there on.
    let head = shared.0.opened(&head, sender);
    if let Some(e) = interrupted.as_mut().now_or_never() {
        return Err(e);
    }

    let runner = client.runner();
    let userdata = callbacks.userdata;
    if let Some(on_open) = callbacks.on_open {
        let handle = shared.clone();
        let job = move || {
            if let Some(head) = handle.0.head.get() {
                // SAFETY: a C function pointer of this type; `head` lives as long as `handle`.
                unsafe { on_open(userdata.get(), borrowed_ptr(&*handle), borrowed_ptr(head)) }
            }
        };
        runner.next(job, interrupted.as_mut()).await?;
    }
    let trailers = deliver(
        &shared.0,
        &receiver,
        true,
        runner,
        interrupted,
        |delivery| {
            let (callback, bytes) = match delivery {
                Delivery::Datagram(d) => (callbacks.on_datagram?, d),
                Delivery::Data(d) => (callbacks.on_data?, d),
            };
            let handle = shared.clone();
            Some(move || {
                // SAFETY: a C function pointer of this type; `bytes` outlives the call.
                unsafe {
                    callback(
                        userdata.get(),
                        borrowed_ptr(&*handle),
                        bytes.as_ptr(),
                        bytes.len(),
                    )
                }
            })
        },
    )
    .await?;
    head.set_trailers(trailers.as_ref());
    Ok(())
}

/// Opens an HTTP/3 datagram channel (RFC 9297) and delivers its events to callbacks:
/// `on_open` (may be NULL) once with the response head, `on_datagram` (may be NULL) for each
/// datagram received, `on_data` (may be NULL) for the stream's data, then `on_end` (required)
/// exactly once.
///
/// `request` is made with `quiver_request_new("CONNECT", url)`: an https URL whose origin's
/// pool uses protocol `http3` (`quiver_config_set_str(config, pattern, "protocol", "http3")`),
/// such as a MASQUE proxy's `/.well-known/masque/udp/{host}/{port}/`. Its headers and cancel
/// token apply; its timeout limits the opening; it has no body. `protocol` is the extended
/// CONNECT `:protocol` (NULL: `connect-udp`; also `webtransport`). Consumes `request` in every
/// case.
///
/// Returns `QUIVER_RESULT_OK` when the opening was started; then `on_end` runs exactly once,
/// and `*channel_out` (if `channel_out` is not NULL) receives a handle for
/// `quiver_channel_send` / `_close` / `_pause` / `_resume` / `_cancel`, to free with
/// `quiver_channel_free`. Failures to open come to `on_end`: `pool_unsupported_for_transport`
/// (the origin is not on HTTP/3), `datagrams_disabled` (the server did not enable HTTP/3
/// datagrams), `datagram_error` (it refused the CONNECT), `invalid_method` (not a CONNECT),
/// connect and TLS errors. Any other result means no callback will run. Callbacks run one at a
/// time, in order, on quiver threads (or, with a completion queue, on the dispatching thread),
/// never while a quiver lock is held; they may call any quiver function but the blocking ones.
/// `userdata` must stay usable until `on_end` has run.
#[allow(clippy::too_many_arguments)] // one per callback, as C callers expect
#[no_mangle]
pub extern "C" fn quiver_client_open_channel(
    client: *const quiver_client,
    request: *mut quiver_request,
    protocol: *const c_char,
    on_open: quiver_channel_open_cb,
    on_datagram: quiver_channel_datagram_cb,
    on_data: quiver_channel_data_cb,
    on_end: quiver_channel_end_cb,
    userdata: *mut c_void,
    channel_out: *mut *const quiver_channel,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(channel_out, std::ptr::null());
        let request = try_box_from_ptr!(request);
        let client = try_clone_arc!(client);
        let on_end = try_callback!(on_end);
        // An unknown protocol comes to `on_end`, as core reports it.
        let protocol = match try_cstr(protocol).map(|p| p.to_str()) {
            None => Ok(ConnectProtocol::default()),
            Some(Ok(p)) => p.parse::<ConnectProtocol>(),
            Some(Err(_)) => return quiver_result::InvalidArgument,
        };
        let runtime = match client.call_runtime() {
            Ok(r) => r,
            Err(code) => return code,
        };
        let shared = Arc::new(ChannelShared(Endpoint::default()));
        let callbacks = Callbacks { on_open, on_datagram, on_data, userdata: UserData(userdata) };
        let end = End::<quiver_channel> {
            on_end: Some(on_end),
            userdata: UserData(userdata),
            handle: shared.clone(),
            runner: client.runner().clone(),
        };
        if let Some(out) = try_out(channel_out) {
            *out = to_arc_const_ptr::<quiver_channel>(shared.clone());
        }
        client.spawn_call(&runtime, move |guard| async move {
            let outcome =
                AssertUnwindSafe(drive(guard.client(), *request, protocol, &shared, callbacks))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(panic_error()));
            // Sends fail from here on (the task dropped the channel, which resets its stream
            // if it was still open).
            shared.0.ended.store(true, Ordering::SeqCst);
            end.finish(outcome);
            drop(guard);
        });
        quiver_result::Ok
    }
}

/// Sends one datagram of `len` bytes at `data` (copied; `data` may be NULL when `len` is 0).
/// Unreliable: it may be lost, and nothing tells.
///
/// Fails with `QUIVER_RESULT_DATAGRAM_TOO_LARGE` (class invalid) when it does not fit the path
/// (see `quiver_channel_max_datagram_size`), `QUIVER_RESULT_DATAGRAMS_DISABLED` when the peer
/// takes no datagrams, `QUIVER_RESULT_DATAGRAM_ERROR` before `on_open`, after
/// `quiver_channel_close`, once the channel ended or its connection is gone; `*error_out`
/// (when `error_out` is not NULL) then receives the error (free it with `quiver_error_free`).
/// Never blocks; any thread, callbacks included.
#[no_mangle]
pub extern "C" fn quiver_channel_send(
    channel: *const quiver_channel,
    data: *const u8,
    len: usize,
    error_out: *mut *mut quiver_error,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(error_out, std::ptr::null_mut());
        let channel = try_ref_from_ptr!(channel);
        let data = try_slice!(data, len);
        match channel.send(data) {
            Ok(()) => quiver_result::Ok,
            Err(e) => set_error_out(error_out, e),
        }
    }
}

/// The largest datagram payload the path takes now, in bytes; 0 before `on_open`, after
/// `quiver_channel_close`, once the channel ended, or when the peer takes no datagrams. It may
/// change (path MTU). NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_channel_max_datagram_size(channel: *const quiver_channel) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(channel).max_datagram_size()
    }
}

/// Ends our side of the channel: no more datagrams can be sent (`quiver_channel_send` fails
/// with `datagram_error`) and the request stream is finished, which tells the peer. What the
/// peer still sends is delivered until it ends its side; `on_end` follows then. Idempotent;
/// before `on_open` it takes effect once the channel is open. Any thread.
#[no_mangle]
pub extern "C" fn quiver_channel_close(channel: *const quiver_channel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(channel).0.close();
        quiver_result::Ok
    }
}

/// Pauses delivery: nothing more is read, so no `on_datagram` / `on_data` runs until
/// `quiver_channel_resume`; datagrams beyond the channel's queue (1024) are dropped meanwhile,
/// stream data is held back by flow control. Sending is not affected. Like
/// `quiver_stream_pause`: from the channel's own callback it takes effect before the next one;
/// from another thread one already on its way may still run. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_channel_pause(channel: *const quiver_channel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(channel).0.pause.pause();
        quiver_result::Ok
    }
}

/// Resumes delivery after `quiver_channel_pause`. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_channel_resume(channel: *const quiver_channel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(channel).0.pause.resume();
        quiver_result::Ok
    }
}

/// Cancels the channel: its stream is reset and `on_end` runs soon with a `cancelled` error
/// (unless it had already ended). From the channel's own callback no other callback follows;
/// from another thread one already on its way may still run. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_channel_cancel(channel: *const quiver_channel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(channel).0.cancel.fire();
        quiver_result::Ok
    }
}

/// The channel's response head (status, version, headers; trailers once it ended), or NULL
/// before it opened. Belongs to the channel: valid until the handle is freed; never free it.
#[no_mangle]
pub extern "C" fn quiver_channel_response(
    channel: *const quiver_channel,
) -> *const quiver_response {
    ffi_panic_boundary! {
        match try_ref_from_ptr!(channel).0.head.get() {
            Some(head) => borrowed_ptr(head),
            None => std::ptr::null(),
        }
    }
}

/// Frees the caller's channel handle. A channel that has not ended is cancelled first
/// (`on_end` still runs, once); to end it gracefully, `quiver_channel_close` it and free it
/// after `on_end`. NULL is a no-op. Any thread, callbacks included (the pointer callbacks
/// receive stays valid while they run).
#[no_mangle]
pub extern "C" fn quiver_channel_free(channel: *const quiver_channel) {
    ffi_panic_boundary! {
        if let Some(c) = crate::ffi::try_from(channel) {
            c.0.cancel.fire();
        }
        free_arc(channel)
    }
}
