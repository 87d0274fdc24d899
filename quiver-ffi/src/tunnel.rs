//! `quiver_udp_tunnel`: a MASQUE CONNECT-UDP tunnel (RFC 9298) to one UDP target through a
//! proxy, over a pooled HTTP/3 connection (HTTP datagrams) or a pooled HTTP/2 connection
//! (DATAGRAM capsules), delivered through callbacks - the proxy's answer, then each UDP payload
//! from the target, then the end - with `quiver_udp_tunnel_send`, close, pause / resume and
//! cancellation, in the shape of `quiver_channel`.

use std::ffi::{c_char, c_void, CString};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::FutureExt;
use quiver_core::{Error, ErrorKind, Protocol, UdpTunnelOptions};

use crate::client::{cancelled_error, panic_error, quiver_client, ClientShared};
use crate::endpoint::{deliver, Delivery, Endpoint};
use crate::error::{c_string, quiver_error, quiver_result, set_error_out};
use crate::ffi::{
    arc_castable, borrowed_ptr, free_arc, set_optional_out, to_arc_const_ptr, try_box_from_ptr,
    try_callback, try_clone_arc, try_cstr, try_out, try_ref_from_ptr, try_slice, try_str, UserData,
};
use crate::panic::ffi_panic_boundary;
use crate::request::{quiver_request, RequestParts};
use crate::response::quiver_response;
use crate::stream::End;

/// A UDP tunnel through a proxy (MASQUE CONNECT-UDP): UDP payloads both ways between this
/// program and one target.
///
/// Thread-safe: send, close, pause, resume and cancel from any thread, callbacks included. The
/// caller owns the handle `quiver_client_open_udp_tunnel` gives it (if it asked for one) and
/// frees it once with `quiver_udp_tunnel_free`; callbacks receive the same pointer, borrowed.
pub struct quiver_udp_tunnel {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_udp_tunnel`.
pub(crate) struct TunnelShared {
    endpoint: Endpoint,
    /// `host:port` of the target.
    target: CString,
}

arc_castable!(quiver_udp_tunnel => TunnelShared);

impl TunnelShared {
    fn send(&self, payload: &[u8]) -> Result<(), Error> {
        self.endpoint
            .open_sender("the UDP tunnel", "quiver_udp_tunnel_close")?
            .send(payload)
    }

    fn max_payload(&self) -> usize {
        self.endpoint
            .max_payload("the UDP tunnel", "quiver_udp_tunnel_close")
    }
}

/// Called once, when the tunnel is open (the proxy answered the CONNECT-UDP with 2xx): payloads
/// may be sent from here on. `head` is the proxy's answer; it belongs to the tunnel (never free
/// it) and stays valid as long as the tunnel handle (or, without a handle, until `on_end`
/// returns).
pub type quiver_udp_tunnel_open_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        tunnel: *const quiver_udp_tunnel,
        head: *const quiver_response,
    ),
>;

/// Called for each UDP payload the target sent, whole. `data` is borrowed: valid only until
/// the callback returns. `len` may be 0 (an empty UDP datagram).
pub type quiver_udp_tunnel_datagram_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        tunnel: *const quiver_udp_tunnel,
        data: *const u8,
        len: usize,
    ),
>;

/// Called exactly once, last: `error` is NULL when the proxy ended the tunnel cleanly (after
/// `quiver_udp_tunnel_close`, or on its own), else the error that ended it (it could not open,
/// was cancelled, its proxy connection was closed by `quiver_client_close_all_tunnels` or
/// failed, the client was closed or freed), owned by the callback (free it with
/// `quiver_error_free`).
pub type quiver_udp_tunnel_end_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        tunnel: *const quiver_udp_tunnel,
        error: *mut quiver_error,
    ),
>;

/// The C side of one tunnel: its callbacks (but `on_end`) and their userdata.
#[derive(Clone, Copy)]
struct Callbacks {
    on_open: quiver_udp_tunnel_open_cb,
    on_datagram: quiver_udp_tunnel_datagram_cb,
    userdata: UserData,
}

/// What opening a tunnel needs besides the request.
struct Target {
    host: String,
    port: u16,
    protocol: Protocol,
}

/// Opens the tunnel and delivers its payloads until it ends, fails, is cancelled, its proxy
/// connections are closed or the client is closed or freed.
async fn drive(
    client: &ClientShared,
    request: RequestParts,
    target: Target,
    shared: &Arc<TunnelShared>,
    callbacks: Callbacks,
) -> Result<(), Error> {
    let (request, token) = request.into_connect("a UDP tunnel");
    let token = token.as_deref();
    let interrupted = async {
        tokio::select! {
            biased;
            _ = shared.endpoint.cancel.fired() => cancelled_error(),
            e = client.interrupted(token) => e,
        }
    };
    let mut interrupted = pin!(interrupted);
    let request = request?;
    let mut headers = Vec::with_capacity(request.headers.len());
    for (name, value) in request.headers {
        match (String::from_utf8(name), String::from_utf8(value)) {
            (Ok(name), Ok(value)) => headers.push((name, value)),
            (name, _) => {
                return Err(Error::new(
                    ErrorKind::InvalidHeader,
                    format!(
                        "the header {} of a UDP tunnel's request is not UTF-8",
                        name.map_or_else(|_| "name".to_owned(), |n| format!("`{n}`"))
                    ),
                ))
            }
        }
    }
    let mut options = UdpTunnelOptions::default().protocol(target.protocol);
    options.headers = headers;
    let open = client
        .core()
        .open_udp_tunnel(&request.url, &target.host, target.port, options);
    let open = async {
        match request.timeout {
            None => open.await,
            Some(limit) => tokio::time::timeout(limit, open).await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::RequestTimeout,
                    format!("the UDP tunnel did not open within {limit:?}"),
                ))
            }),
        }
    };
    let tunnel = tokio::select! {
        biased;
        e = &mut interrupted => return Err(e),
        r = open => r?,
    };
    let (head, sender, receiver) = tunnel.split();
    // Published before `on_open` runs: sending works from there on.
    shared.endpoint.opened(&head, sender);
    if let Some(e) = interrupted.as_mut().now_or_never() {
        return Err(e);
    }

    let runner = client.runner();
    let userdata = callbacks.userdata;
    if let Some(on_open) = callbacks.on_open {
        let handle = shared.clone();
        let job = move || {
            if let Some(head) = handle.endpoint.head.get() {
                // SAFETY: a C function pointer of this type; `head` lives as long as `handle`.
                unsafe { on_open(userdata.get(), borrowed_ptr(&*handle), borrowed_ptr(head)) }
            }
        };
        runner.next(job, interrupted.as_mut()).await?;
    }
    deliver(
        &shared.endpoint,
        &receiver,
        false,
        runner,
        interrupted,
        |delivery| {
            let Delivery::Datagram(payload) = delivery else {
                return None;
            };
            let on_datagram = callbacks.on_datagram?;
            let handle = shared.clone();
            Some(move || {
                // SAFETY: a C function pointer of this type; `payload` outlives the call.
                unsafe {
                    on_datagram(
                        userdata.get(),
                        borrowed_ptr(&*handle),
                        payload.as_ptr(),
                        payload.len(),
                    )
                }
            })
        },
    )
    .await?;
    Ok(())
}

/// Opens a UDP tunnel (MASQUE CONNECT-UDP, RFC 9298) to `target_host:target_port` through a
/// proxy, and delivers its events to callbacks: `on_open` (may be NULL) once with the proxy's
/// answer, `on_datagram` (may be NULL) for each UDP payload from the target, then `on_end`
/// (required) exactly once.
///
/// `request` is made with `quiver_request_new("CONNECT", proxy_url)`: the proxy as
/// `https://[user:password@]host:port` (credentials become a Basic `proxy-authorization`,
/// sent to the proxy only). Its headers go to the proxy (`proxy-authorization` among them
/// overrides the URL's credentials) and its cancel token applies; its timeout limits the
/// opening; it has no body. Trust settings for the proxy (`ca_file`, ...) come from the client's
/// rule for the proxy's origin. `proxy_protocol` says how to reach the proxy: NULL or `http3`
/// (HTTP/3 datagrams on a pooled QUIC connection), `http2` (DATAGRAM capsules on a stream of a
/// pooled HTTP/2 connection), `auto` (as `http3`); `http1` is accepted, but a tunnel over
/// HTTP/1.1 is not pooled, so it ends with `pool_unsupported_for_transport`. Tunnels to one
/// proxy with the same trust settings share its connections. Consumes `request` in every case.
///
/// Returns `QUIVER_RESULT_OK` when the opening was started; then `on_end` runs exactly once,
/// and `*tunnel_out` (if `tunnel_out` is not NULL) receives a handle for
/// `quiver_udp_tunnel_send` / `_close` / `_pause` / `_resume` / `_cancel`, to free with
/// `quiver_udp_tunnel_free`. Failures to open come to `on_end`: `proxy_connect_failed`
/// (transient: the proxy refused the CONNECT-UDP, e.g. 407 or 403), connect, TLS and timeout
/// errors, `pool_unsupported_for_transport`, `invalid_config` (an unusable proxy URL),
/// `invalid_method` (not a CONNECT). `QUIVER_RESULT_INVALID_ARGUMENT` when `target_host` or
/// `proxy_protocol` is not UTF-8 or `proxy_protocol` is not one of the names above; then, as for
/// any result but `QUIVER_RESULT_OK`, no callback will run. Callbacks run one at a time, in
/// order, on quiver threads (or, with a completion queue, on the dispatching thread), never
/// while a quiver lock is held; they may call any quiver function but the blocking ones.
/// `userdata` must stay usable until `on_end` has run.
#[allow(clippy::too_many_arguments)] // one per callback, as C callers expect
#[no_mangle]
pub extern "C" fn quiver_client_open_udp_tunnel(
    client: *const quiver_client,
    request: *mut quiver_request,
    target_host: *const c_char,
    target_port: u16,
    proxy_protocol: *const c_char,
    on_open: quiver_udp_tunnel_open_cb,
    on_datagram: quiver_udp_tunnel_datagram_cb,
    on_end: quiver_udp_tunnel_end_cb,
    userdata: *mut c_void,
    tunnel_out: *mut *const quiver_udp_tunnel,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(tunnel_out, std::ptr::null());
        let request = try_box_from_ptr!(request);
        let client = try_clone_arc!(client);
        let on_end = try_callback!(on_end);
        let host = try_str!(target_host).to_owned();
        let protocol = match try_cstr(proxy_protocol).map(|p| p.to_str()) {
            None => Protocol::Http3,
            Some(Ok(p)) => match p.parse::<Protocol>() {
                Ok(p) => p,
                Err(_) => return quiver_result::InvalidArgument,
            },
            Some(Err(_)) => return quiver_result::InvalidArgument,
        };
        let runtime = match client.call_runtime() {
            Ok(r) => r,
            Err(code) => return code,
        };
        let shared = Arc::new(TunnelShared {
            endpoint: Endpoint::default(),
            target: c_string(&format!("{host}:{target_port}")),
        });
        let target = Target { host, port: target_port, protocol };
        let callbacks = Callbacks { on_open, on_datagram, userdata: UserData(userdata) };
        let end = End::<quiver_udp_tunnel> {
            on_end: Some(on_end),
            userdata: UserData(userdata),
            handle: shared.clone(),
            runner: client.runner().clone(),
        };
        if let Some(out) = try_out(tunnel_out) {
            *out = to_arc_const_ptr::<quiver_udp_tunnel>(shared.clone());
        }
        client.spawn_call(&runtime, move |guard| async move {
            let outcome =
                AssertUnwindSafe(drive(
                guard.client(),
                *request,
                target,
                &shared,
                callbacks,
            ))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(panic_error()));
            // Sends fail from here on (the task dropped the tunnel, which resets its stream if
            // it was still open).
            shared.endpoint.ended.store(true, Ordering::SeqCst);
            end.finish(outcome);
            drop(guard);
        });
        quiver_result::Ok
    }
}

/// Sends one UDP payload of `len` bytes at `data` to the target (copied; `data` may be NULL
/// when `len` is 0). Unreliable, like UDP: it may be lost, and nothing tells.
///
/// Fails with `QUIVER_RESULT_DATAGRAM_TOO_LARGE` (class invalid) beyond
/// `quiver_udp_tunnel_max_payload`, `QUIVER_RESULT_DATAGRAMS_DISABLED` when the proxy takes no
/// HTTP/3 datagrams, `QUIVER_RESULT_DATAGRAM_ERROR` before `on_open`, after
/// `quiver_udp_tunnel_close`, once the tunnel ended or its connection is gone; `*error_out`
/// (when `error_out` is not NULL) then receives the error (free it with `quiver_error_free`).
/// Never blocks; any thread, callbacks included.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_send(
    tunnel: *const quiver_udp_tunnel,
    data: *const u8,
    len: usize,
    error_out: *mut *mut quiver_error,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(error_out, std::ptr::null_mut());
        let tunnel = try_ref_from_ptr!(tunnel);
        let data = try_slice!(data, len);
        match tunnel.send(data) {
            Ok(()) => quiver_result::Ok,
            Err(e) => set_error_out(error_out, e),
        }
    }
}

/// The largest UDP payload the tunnel carries now, in bytes: over HTTP/3 what fits an HTTP/3
/// datagram on the path (it may grow with path MTU discovery), over HTTP/2 the largest UDP
/// payload. 0 before `on_open`, after `quiver_udp_tunnel_close`, once the tunnel ended, or when
/// the proxy takes no datagrams. NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_max_payload(tunnel: *const quiver_udp_tunnel) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(tunnel).max_payload()
    }
}

/// The target as `host:port`, NUL-terminated, valid as long as the tunnel handle (never free
/// it). NULL: NULL.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_target(tunnel: *const quiver_udp_tunnel) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(tunnel).target.as_ptr()
    }
}

/// Ends our side of the tunnel: no more payloads can be sent (`quiver_udp_tunnel_send` fails
/// with `datagram_error`) and the CONNECT-UDP stream is finished, which tells the proxy. What
/// the target still sends is delivered until the proxy ends its side; `on_end(NULL)` follows
/// then. Idempotent; before `on_open` it takes effect once the tunnel is open. Any thread.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_close(tunnel: *const quiver_udp_tunnel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(tunnel).endpoint.close();
        quiver_result::Ok
    }
}

/// Pauses delivery: nothing more is read, so no `on_datagram` runs until
/// `quiver_udp_tunnel_resume`; over HTTP/3 payloads beyond the tunnel's queue (1024) are
/// dropped meanwhile, over HTTP/2 flow control holds the proxy back. Sending is not affected.
/// Like `quiver_channel_pause`: from the tunnel's own callback it takes effect before the next
/// one; from another thread one already on its way may still run. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_pause(tunnel: *const quiver_udp_tunnel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(tunnel).endpoint.pause.pause();
        quiver_result::Ok
    }
}

/// Resumes delivery after `quiver_udp_tunnel_pause`. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_resume(tunnel: *const quiver_udp_tunnel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(tunnel).endpoint.pause.resume();
        quiver_result::Ok
    }
}

/// Cancels the tunnel: its stream is reset and `on_end` runs soon with a `cancelled` error
/// (unless it had already ended). From the tunnel's own callback no other callback follows;
/// from another thread one already on its way may still run. Idempotent; any thread.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_cancel(tunnel: *const quiver_udp_tunnel) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(tunnel).endpoint.cancel.fire();
        quiver_result::Ok
    }
}

/// The proxy's answer to the CONNECT-UDP (status, version, headers), or NULL before the tunnel
/// opened. Belongs to the tunnel: valid until the handle is freed; never free it.
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_response(
    tunnel: *const quiver_udp_tunnel,
) -> *const quiver_response {
    ffi_panic_boundary! {
        match try_ref_from_ptr!(tunnel).endpoint.head.get() {
            Some(head) => borrowed_ptr(head),
            None => std::ptr::null(),
        }
    }
}

/// Frees the caller's tunnel handle. A tunnel that has not ended is cancelled first (`on_end`
/// still runs, once); to end it gracefully, `quiver_udp_tunnel_close` it and free it after
/// `on_end`. NULL is a no-op. Any thread, callbacks included (the pointer callbacks receive
/// stays valid while they run).
#[no_mangle]
pub extern "C" fn quiver_udp_tunnel_free(tunnel: *const quiver_udp_tunnel) {
    ffi_panic_boundary! {
        if let Some(t) = crate::ffi::try_from(tunnel) {
            t.endpoint.cancel.fire();
        }
        free_arc(tunnel)
    }
}
