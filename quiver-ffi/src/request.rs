//! `quiver_request`: the request builder (method, URL, headers, body, timeout, cancel token,
//! 0-RTT) and the request bodies C can supply: copied bytes, borrowed bytes with a release callback,
//! and a body source pulled chunk by chunk.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use quiver_core::{Body, Error, ErrorKind, Request};

use crate::cancel::{quiver_cancel_token, Signal};
use crate::error::quiver_result;
use crate::ffi::{
    box_castable, clone_arc, free_box, to_boxed_mut_ptr, try_bytes, try_callback, try_cstr_bytes,
    try_mut_from_ptr, try_slice, try_str, UserData,
};
use crate::panic::ffi_panic_boundary;

/// Bytes the body source callback may write per call.
const SOURCE_CHUNK: usize = 64 * 1024;

/// A request being built: method, URL, headers, body, timeout and cancel token.
///
/// One thread at a time (it may move between threads). Consumed by `quiver_client_send`,
/// `quiver_client_send_blocking`, `quiver_client_stream`, `quiver_client_open_channel` and
/// `quiver_client_open_udp_tunnel` (in every case, even when they fail);
/// free it with `quiver_request_free` only if it is never sent. Nothing is validated before it
/// is sent: a bad method, URL or header is reported as that call's error.
pub struct quiver_request {
    _private: [u8; 0],
}

/// Called exactly once when quiver no longer needs the data it was lent
/// (`quiver_request_set_body_borrowed`, `quiver_request_set_body_source`), possibly on a quiver
/// thread, possibly after the request's callback has run. Never called while a quiver lock is
/// held. Not called if the call that lent the data failed.
pub type quiver_release_cb = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// Supplies the next piece of a request body: writes at most `capacity` bytes to `buf` and
/// returns how many it wrote; returns 0 at the end of the body, or a negative value to fail the
/// request (kind `body_stream`).
///
/// Called only when the connection can send more (backpressure), one call at a time, on a
/// quiver thread meant for blocking work: it may block until data is available (a cancelled
/// request does not wait for it, but the release callback does).
pub type quiver_body_read_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *mut u8, capacity: usize) -> isize>;

/// The Rust value behind a `quiver_request`.
pub(crate) struct RequestParts {
    method: String,
    url: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: BodySpec,
    timeout: Option<Duration>,
    cancel: Option<Arc<Signal>>,
    early_data: Option<bool>,
}

box_castable!(quiver_request => RequestParts);

/// What opening a datagram channel or a UDP tunnel takes from a request.
pub(crate) struct ChannelRequest {
    pub(crate) url: String,
    pub(crate) headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Limits the opening (until the response head).
    pub(crate) timeout: Option<Duration>,
}

enum BodySpec {
    Empty,
    Bytes(Bytes),
    Source(BodySource),
}

impl RequestParts {
    /// The core request (or why it is invalid), and the cancel token attached to it. `ended`
    /// fires when the call is over for the caller (answered, cancelled, client freed): a body
    /// source then stops being read even if core still holds the body.
    pub(crate) fn build(
        self,
        ended: &Arc<Signal>,
    ) -> (Result<Request, Error>, Option<Arc<Signal>>) {
        let mut builder = Request::builder(&self.method, &self.url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder = match self.body {
            BodySpec::Empty => builder,
            BodySpec::Bytes(b) => builder.body(Body::Bytes(b)),
            BodySpec::Source(source) => {
                builder.body(Body::from_stream(source.into_stream(ended.clone())))
            }
        };
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(early) = self.early_data {
            builder = builder.early_data(early);
        }
        (builder.build(), self.cancel)
    }

    /// What `what` (a datagram channel, a UDP tunnel) is opened with (or why this request
    /// cannot open one: it must be a CONNECT without a body), and the cancel token attached to
    /// it.
    pub(crate) fn into_connect(
        self,
        what: &str,
    ) -> (Result<ChannelRequest, Error>, Option<Arc<Signal>>) {
        let channel = if self.method != "CONNECT" {
            Err(Error::new(
                ErrorKind::InvalidMethod,
                format!(
                    "{what} is opened with CONNECT, not `{}`",
                    self.method.escape_debug()
                ),
            ))
        } else if !matches!(self.body, BodySpec::Empty) {
            Err(Error::new(
                ErrorKind::InvalidBody,
                format!("the request that opens {what} has no body"),
            ))
        } else {
            Ok(ChannelRequest {
                url: self.url,
                headers: self.headers,
                timeout: self.timeout,
            })
        };
        (channel, self.cancel)
    }
}

/// A C release callback, called exactly once: when run, or else when dropped (a task a
/// shutting-down runtime never runs is dropped, and the callback still runs then).
struct ReleaseOnce {
    callback: Option<unsafe extern "C" fn(*mut c_void)>,
    userdata: UserData,
}

impl ReleaseOnce {
    fn run(mut self) {
        if let Some(callback) = self.callback.take() {
            // SAFETY: a non-NULL C function pointer of this type, called once with its userdata.
            unsafe { callback(self.userdata.get()) }
        }
    }
}

impl Drop for ReleaseOnce {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.take() {
            // SAFETY: as in `run`; `take` makes it once.
            unsafe { callback(self.userdata.get()) }
        }
    }
}

/// Runs a C release callback where no lock can be held: directly on a caller's thread, as its
/// own task when dropped on a runtime thread (core or h2 may drop a body while holding a lock).
fn release(callback: unsafe extern "C" fn(*mut c_void), userdata: UserData) {
    let once = ReleaseOnce {
        callback: Some(callback),
        userdata,
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(async move { once.run() })),
        Err(_) => once.run(),
    }
}

/// Body bytes lent by C; released when the last reference is dropped.
struct LentBytes {
    data: *const u8,
    len: usize,
    release: Option<unsafe extern "C" fn(*mut c_void)>,
    userdata: UserData,
}

// SAFETY: C promises the lent bytes stay readable, unchanged, from any thread until released.
unsafe impl Send for LentBytes {}
// SAFETY: as above; they are only read.
unsafe impl Sync for LentBytes {}

impl AsRef<[u8]> for LentBytes {
    fn as_ref(&self) -> &[u8] {
        try_bytes(self.data, self.len).unwrap_or_default()
    }
}

impl Drop for LentBytes {
    fn drop(&mut self) {
        if let Some(callback) = self.release {
            release(callback, self.userdata);
        }
    }
}

/// A body pulled from C chunk by chunk; released when dropped.
struct BodySource {
    read: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> isize,
    release: Option<unsafe extern "C" fn(*mut c_void)>,
    userdata: UserData,
}

enum Read {
    Chunk(Bytes),
    End,
    Failed(isize),
}

impl BodySource {
    fn read(&mut self) -> Read {
        let mut buf = vec![0u8; SOURCE_CHUNK];
        // SAFETY: a non-NULL C function pointer of this type; `buf` is writable for its length.
        let n = unsafe { (self.read)(self.userdata.get(), buf.as_mut_ptr(), buf.len()) };
        match usize::try_from(n) {
            Ok(0) => Read::End,
            Ok(n) if n <= buf.len() => {
                if n < SOURCE_CHUNK / 4 {
                    Read::Chunk(Bytes::copy_from_slice(&buf[..n]))
                } else {
                    buf.truncate(n);
                    Read::Chunk(Bytes::from(buf))
                }
            }
            _ => Read::Failed(n),
        }
    }

    /// The body as a stream: each item is one read, run on the blocking pool when core asks
    /// for the next chunk (so only as fast as the connection sends). Once `ended` fires the
    /// stream fails instead: core's HTTP/2 upload task outlives a dropped request and would
    /// otherwise keep reading (and sending) the body.
    fn into_stream(
        self,
        ended: Arc<Signal>,
    ) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
        let stopped = || {
            Error::new(
                ErrorKind::Cancelled,
                "the request is over; its body is no longer read",
            )
        };
        stream::unfold(Some(self), move |source| {
            let ended = ended.clone();
            async move {
                let mut source = source?;
                if ended.is_fired() {
                    return Some((Err(stopped()), None));
                }
                let read = tokio::task::spawn_blocking(move || {
                    let read = source.read();
                    (source, read)
                });
                // If the call ends during a read, the read finishes on its own and the source
                // is released after it.
                let joined = tokio::select! {
                    biased;
                    joined = read => joined,
                    () = ended.fired() => return Some((Err(stopped()), None)),
                };
                match joined {
                    Ok((source, Read::Chunk(bytes))) => Some((Ok(bytes), Some(source))),
                    Ok((_, Read::End)) => None,
                    Ok((_, Read::Failed(n))) => Some((
                        Err(Error::new(
                            ErrorKind::BodyStream,
                            format!("the body source callback returned {n}"),
                        )),
                        None,
                    )),
                    Err(_) => Some((
                        Err(Error::new(
                            ErrorKind::BodyStream,
                            "the body source could not be read (its thread was stopped)",
                        )),
                        None,
                    )),
                }
            }
        })
    }
}

impl Drop for BodySource {
    fn drop(&mut self) {
        if let Some(callback) = self.release {
            release(callback, self.userdata);
        }
    }
}

/// Starts a request: `method` (`"GET"`, `"POST"`, any token) and absolute `url`, both
/// NUL-terminated UTF-8, copied. NULL when either is NULL or not UTF-8 (or on a panic). Free it
/// with `quiver_request_free` unless it is sent.
#[no_mangle]
pub extern "C" fn quiver_request_new(
    method: *const c_char,
    url: *const c_char,
) -> *mut quiver_request {
    ffi_panic_boundary! {
        let method = try_str!(method);
        let url = try_str!(url);
        to_boxed_mut_ptr::<quiver_request>(RequestParts {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: BodySpec::Empty,
            timeout: None,
            cancel: None,
            early_data: None,
        })
    }
}

/// Frees a request that was not sent. NULL is a no-op. A lent body is released.
#[no_mangle]
pub extern "C" fn quiver_request_free(request: *mut quiver_request) {
    ffi_panic_boundary! {
        free_box(request)
    }
}

/// Appends a header (NUL-terminated name and value, copied; duplicates are kept in order).
/// Names and values are checked when the request is sent (`invalid_header`).
#[no_mangle]
pub extern "C" fn quiver_request_add_header(
    request: *mut quiver_request,
    name: *const c_char,
    value: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        let name = try_cstr_bytes!(name);
        let value = try_cstr_bytes!(value);
        request.headers.push((name.to_vec(), value.to_vec()));
        quiver_result::Ok
    }
}

/// Sets the body to a copy of `len` bytes at `data` (`data` may be NULL when `len` is 0),
/// replacing any body set before.
#[no_mangle]
pub extern "C" fn quiver_request_set_body_copy(
    request: *mut quiver_request,
    data: *const u8,
    len: usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        let data = try_slice!(data, len);
        request.body = BodySpec::Bytes(Bytes::copy_from_slice(data));
        quiver_result::Ok
    }
}

/// Sets the body to `len` bytes at `data` without copying them, replacing any body set before.
///
/// The bytes must stay readable and unchanged, from any thread, until quiver calls
/// `release(userdata)` (exactly once; `release` may be NULL for static data). On failure
/// (NULL request) nothing is lent and `release` is not called.
#[no_mangle]
pub extern "C" fn quiver_request_set_body_borrowed(
    request: *mut quiver_request,
    data: *const u8,
    len: usize,
    release: quiver_release_cb,
    userdata: *mut c_void,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        try_slice!(data, len);
        request.body = BodySpec::Bytes(Bytes::from_owner(LentBytes {
            data,
            len,
            release,
            userdata: UserData(userdata),
        }));
        quiver_result::Ok
    }
}

/// Sets the body to one supplied on demand by `read` (see `quiver_body_read_cb`), sent chunked
/// (unless a `content-length` header is set), replacing any body set before.
///
/// quiver calls `read` only as the connection can send, then `release(userdata)` exactly once
/// when it needs the source no more (`release` may be NULL). A request with such a body cannot
/// be retried transparently. On failure (NULL request or `read`) `release` is not called.
#[no_mangle]
pub extern "C" fn quiver_request_set_body_source(
    request: *mut quiver_request,
    read: quiver_body_read_cb,
    release: quiver_release_cb,
    userdata: *mut c_void,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        let read = try_callback!(read);
        request.body = BodySpec::Source(BodySource {
            read,
            release,
            userdata: UserData(userdata),
        });
        quiver_result::Ok
    }
}

/// Limits the whole request (body included) to `milliseconds`, overriding the pool's
/// `request_timeout`; it then fails with `request_timeout`.
#[no_mangle]
pub extern "C" fn quiver_request_set_timeout_ms(
    request: *mut quiver_request,
    milliseconds: u64,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.timeout = Some(Duration::from_millis(milliseconds));
        quiver_result::Ok
    }
}

/// Attaches a cancel token (the request keeps its own reference; NULL detaches). Cancelling
/// the token ends the request with a `cancelled` error, whenever that happens.
#[no_mangle]
pub extern "C" fn quiver_request_set_cancel_token(
    request: *mut quiver_request,
    token: *const quiver_cancel_token,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.cancel = clone_arc(token);
        quiver_result::Ok
    }
}

/// HTTP/3 with the pool option `early_data`: whether this request may go in the 0-RTT flight
/// of a resumed connection (true) or must wait for the handshake (false). Without this call,
/// only idempotent, safe methods (GET, HEAD, OPTIONS, TRACE) may. Other protocols ignore it.
#[no_mangle]
pub extern "C" fn quiver_request_set_early_data(
    request: *mut quiver_request,
    allowed: bool,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.early_data = Some(allowed);
        quiver_result::Ok
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static RELEASED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(_: *mut c_void) {
        RELEASED.fetch_add(1, Ordering::SeqCst);
    }

    /// Finding: a borrowed body's release callback could be lost when the runtime that was
    /// to run it shut down first.
    #[test]
    fn a_release_callback_runs_once_even_if_its_runtime_shuts_down() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // On a runtime thread the callback becomes a task; the runtime ends before it runs.
        runtime.block_on(async { release(count, UserData(std::ptr::null_mut())) });
        drop(runtime);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1);
        // Off any runtime it runs at once.
        release(count, UserData(std::ptr::null_mut()));
        assert_eq!(RELEASED.load(Ordering::SeqCst), 2);
    }
}
