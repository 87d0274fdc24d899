//! `quiver_request`: the request builder (method, URL, headers, body, timeout, cancel token,
//! 0-RTT, progress record, and the client layer's per-request settings: redirects, decoding, credentials,
//! protocol, cookies) and the request bodies C can supply: copied bytes, borrowed bytes with a
//! release callback, a body source pulled chunk by chunk, and a `quiver_mime` form.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use quiver_core::{Auth, Body, Error, ErrorKind, Progress, Protocol, RedirectMode, Request};

use crate::cancel::{quiver_cancel_token, Signal};
use crate::error::quiver_result;
use crate::ffi::{
    box_castable, clone_arc, free_box, to_boxed_mut_ptr, try_box_from, try_bytes, try_callback,
    try_cstr, try_cstr_bytes, try_mut_from_ptr, try_slice, try_str, UserData,
};
use crate::mime::{quiver_mime, Form};
use crate::panic::ffi_panic_boundary;
use crate::progress::quiver_progress;

/// Bytes the body source callback may write per call.
const SOURCE_CHUNK: usize = 64 * 1024;

/// A request being built: method, URL, headers, body, timeout and cancel token.
///
/// One thread at a time (it may move between threads). Consumed by `quiver_client_send`,
/// `quiver_client_send_blocking`, `quiver_client_stream`, `quiver_client_open_channel` and
/// `quiver_client_open_udp_tunnel` (in every case, even when they fail);
/// free it with `quiver_request_free` only if it is never sent. Nothing is validated before it
/// is sent: a bad method, URL, header, cookie or credential is reported as that call's error
/// (only enum values and protocol names are checked by their setters).
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
    progress: Option<Arc<Progress>>,
    layer: LayerParts,
}

box_castable!(quiver_request => RequestParts);

/// The client layer's per-request settings; unset ones come from the origin's rule.
#[derive(Default)]
struct LayerParts {
    redirect: Option<RedirectMode>,
    max_redirects: Option<usize>,
    decompress: Option<bool>,
    auth: Option<Auth>,
    protocol: Option<Protocol>,
    cookies: Vec<(String, String)>,
    read_timeout: Option<Duration>,
    checkout_timeout: Option<Duration>,
}

/// What to do with a redirect response (`quiver_request_set_redirect_mode`). Values are never
/// renumbered.
/// cbindgen:prefix-with-name=false
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum quiver_redirect_mode {
    /// Follow it, up to `max_redirects` hops (fetch's `redirect: 'follow'`).
    QuiverRedirectFollow = 0,
    /// Return it as the response (fetch's `'manual'`).
    QuiverRedirectManual = 1,
    /// Fail with `QUIVER_RESULT_REDIRECT_REFUSED` (fetch's `'error'`).
    QuiverRedirectError = 2,
}

/// Which credentials a request carries (`quiver_request_set_auth`). Values are never
/// renumbered.
/// cbindgen:prefix-with-name=false
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum quiver_auth_kind {
    /// No credentials, even where the client or the origin's rule sets some.
    QuiverAuthNone = 0,
    /// `Authorization: Basic base64(user:secret)` (RFC 7617).
    QuiverAuthBasic = 1,
    /// `Authorization: Bearer <secret>` (RFC 6750); no user.
    QuiverAuthBearer = 2,
    /// HTTP Digest (RFC 7616): the request goes without credentials and a Digest challenge
    /// (401) is answered once.
    QuiverAuthDigest = 3,
}

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
    Mime(Form),
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
            BodySpec::Mime(form) => builder.multipart(form.into_multipart(ended)),
        };
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(early) = self.early_data {
            builder = builder.early_data(early);
        }
        if let Some(progress) = self.progress {
            builder = builder.progress(progress);
        }
        let layer = self.layer;
        if let Some(mode) = layer.redirect {
            builder = builder.redirect(mode);
        }
        if let Some(max) = layer.max_redirects {
            builder = builder.max_redirects(max);
        }
        if let Some(decompress) = layer.decompress {
            builder = builder.decompress(decompress);
        }
        if let Some(auth) = layer.auth {
            builder = builder.auth(auth);
        }
        if let Some(protocol) = layer.protocol {
            builder = builder.protocol(protocol);
        }
        for (name, value) in &layer.cookies {
            builder = builder.cookie(name, value);
        }
        if let Some(t) = layer.read_timeout {
            builder = builder.read_timeout(t);
        }
        if let Some(t) = layer.checkout_timeout {
            builder = builder.checkout_timeout(t);
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

/// A body pulled from C chunk by chunk (a request body or a form part); released when dropped.
pub(crate) struct BodySource {
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
    /// A source from C's callbacks (`release` runs once when the source is dropped).
    pub(crate) fn new(
        read: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> isize,
        release: quiver_release_cb,
        userdata: *mut c_void,
    ) -> BodySource {
        BodySource {
            read,
            release,
            userdata: UserData(userdata),
        }
    }

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
    pub(crate) fn into_stream(
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
            progress: None,
            layer: LayerParts::default(),
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
        request.body = BodySpec::Source(BodySource::new(read, release, userdata));
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

/// Longest this request may go without a byte moving on its connection, overriding the
/// pool's `read_timeout`; it then fails with `QUIVER_RESULT_READ_TIMEOUT`. 0 is refused when
/// the request is sent (`QUIVER_RESULT_INVALID_CONFIG`).
#[no_mangle]
pub extern "C" fn quiver_request_set_read_timeout_ms(
    request: *mut quiver_request,
    milliseconds: u64,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.layer.read_timeout = Some(Duration::from_millis(milliseconds));
        quiver_result::Ok
    }
}

/// Longest this request waits for a connection or stream slot, overriding the pool's
/// `checkout_timeout`; it then fails with `QUIVER_RESULT_CHECKOUT_TIMEOUT`. 0 is refused when
/// the request is sent (`QUIVER_RESULT_INVALID_CONFIG`).
#[no_mangle]
pub extern "C" fn quiver_request_set_checkout_timeout_ms(
    request: *mut quiver_request,
    milliseconds: u64,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.layer.checkout_timeout = Some(Duration::from_millis(milliseconds));
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

/// Keeps this request's upload and download progress in `progress` (see `quiver_progress_get`;
/// the request keeps its own reference; NULL detaches). Read it from any thread while the
/// request runs: a one-shot request's upload and download, or a stream's, as `on_data` takes
/// the chunks.
#[no_mangle]
pub extern "C" fn quiver_request_set_progress(
    request: *mut quiver_request,
    progress: *const quiver_progress,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.progress = clone_arc(progress);
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

/// Sets the body to a `multipart/form-data` form (see `quiver_mime_new`), replacing any body set
/// before. The request gets `content-type: multipart/form-data; boundary=...` (replacing one
/// set with `quiver_request_add_header`) and a `content-length` when every part's length is
/// known, else it is sent chunked.
///
/// Consumes `mime` in every case, even when this fails (a NULL request): never use or free it
/// afterwards; its parts' sources are released with the request (or the form, on failure).
/// A form held entirely in memory (text and data parts) can be sent again, so a 307/308
/// redirect or a Digest challenge replays it; one with a file or source part cannot (the
/// redirect is then returned, see `quiver_response_unfollowed_redirect`).
#[no_mangle]
pub extern "C" fn quiver_request_set_mime(
    request: *mut quiver_request,
    mime: *mut quiver_mime,
) -> quiver_result {
    ffi_panic_boundary! {
        let form = try_box_from(mime);
        let request = try_mut_from_ptr!(request);
        let Some(form) = form else {
            return quiver_result::NullParameter;
        };
        request.body = BodySpec::Mime(*form);
        quiver_result::Ok
    }
}

/// Whether to follow redirects, overriding the origin's `follow_redirects` option: true is
/// `QUIVER_REDIRECT_FOLLOW`, false `QUIVER_REDIRECT_MANUAL` (a redirect is the response).
#[no_mangle]
pub extern "C" fn quiver_request_set_follow_redirects(
    request: *mut quiver_request,
    follow: bool,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.layer.redirect =
            Some(if follow { RedirectMode::Follow } else { RedirectMode::Manual });
        quiver_result::Ok
    }
}

/// What to do with a redirect response (a `quiver_redirect_mode` value), overriding the
/// origin's `follow_redirects` option: follow it, return it, or fail with
/// `QUIVER_RESULT_REDIRECT_REFUSED`. An unknown value is `QUIVER_RESULT_INVALID_ARGUMENT` (the
/// request is unchanged).
#[no_mangle]
pub extern "C" fn quiver_request_set_redirect_mode(
    request: *mut quiver_request,
    mode: u32,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        let mode = match mode {
            m if m == quiver_redirect_mode::QuiverRedirectFollow as u32 => RedirectMode::Follow,
            m if m == quiver_redirect_mode::QuiverRedirectManual as u32 => RedirectMode::Manual,
            m if m == quiver_redirect_mode::QuiverRedirectError as u32 => RedirectMode::Error,
            _ => return quiver_result::InvalidArgument,
        };
        request.layer.redirect = Some(mode);
        quiver_result::Ok
    }
}

/// The most redirects followed for this request, overriding the origin's `max_redirects`
/// option; one more fails with `QUIVER_RESULT_TOO_MANY_REDIRECTS`. 0: the first redirect is
/// the response.
#[no_mangle]
pub extern "C" fn quiver_request_set_max_redirects(
    request: *mut quiver_request,
    max: u32,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.layer.max_redirects = Some(usize::try_from(max).unwrap_or(usize::MAX));
        quiver_result::Ok
    }
}

/// Whether to ask for a compressed response and decode it, overriding the origin's
/// `decompress` option. false: no `accept-encoding` is added and the body comes as the server
/// sent it (the response's `content-encoding` says how it is encoded).
#[no_mangle]
pub extern "C" fn quiver_request_set_decompress(
    request: *mut quiver_request,
    decompress: bool,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        request.layer.decompress = Some(decompress);
        quiver_result::Ok
    }
}

/// Credentials for this request's origin (a `quiver_auth_kind` value), overriding the client's
/// and the origin's rule's (`basic_auth`, `bearer_token`, `digest_auth` options); like those,
/// they are never sent to another origin a redirect leads to. An `authorization` header added
/// with `quiver_request_add_header` wins over all of them.
///
/// - `QUIVER_AUTH_BASIC`, `QUIVER_AUTH_DIGEST`: `user` and the password `secret`, both required.
/// - `QUIVER_AUTH_BEARER`: the token `secret`, required; `user` is ignored (pass NULL).
/// - `QUIVER_AUTH_NONE`: no credentials at all; both are ignored.
///
/// NUL-terminated UTF-8, copied (NULL where required: `QUIVER_RESULT_NULL_PARAMETER`; not
/// UTF-8 or an unknown kind: `QUIVER_RESULT_INVALID_ARGUMENT`; the request is then unchanged).
/// A control character, or a `:` in a Basic user name, fails the request when it is sent
/// (`invalid_header`).
#[no_mangle]
pub extern "C" fn quiver_request_set_auth(
    request: *mut quiver_request,
    kind: u32,
    user: *const c_char,
    secret: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        let auth = match kind {
            k if k == quiver_auth_kind::QuiverAuthNone as u32 => Auth::None,
            k if k == quiver_auth_kind::QuiverAuthBasic as u32 => {
                Auth::basic(try_str!(user), try_str!(secret))
            }
            k if k == quiver_auth_kind::QuiverAuthBearer as u32 => Auth::bearer(try_str!(secret)),
            k if k == quiver_auth_kind::QuiverAuthDigest as u32 => {
                Auth::digest(try_str!(user), try_str!(secret))
            }
            _ => return quiver_result::InvalidArgument,
        };
        request.layer.auth = Some(auth);
        quiver_result::Ok
    }
}

/// Sends this request over another protocol than its origin's rule says (`"http1"`,
/// `"http2"`, `"http3"` or `"auto"`; also `"h1"`, `"h2"`, `"h3"`, `"http/1.1"`, any case),
/// through a pool of its own for the origin; NULL goes back to the rule's. Redirects keep it.
/// An unknown name is `QUIVER_RESULT_INVALID_ARGUMENT` (the request is unchanged).
#[no_mangle]
pub extern "C" fn quiver_request_set_protocol(
    request: *mut quiver_request,
    name: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        let protocol = match try_cstr(name).map(|n| n.to_str()) {
            None => None,
            Some(Ok(n)) => match n.parse::<Protocol>() {
                Ok(p) => Some(p),
                Err(_) => return quiver_result::InvalidArgument,
            },
            Some(Err(_)) => return quiver_result::InvalidArgument,
        };
        request.layer.protocol = protocol;
        quiver_result::Ok
    }
}

/// Adds a cookie sent with this request only (NUL-terminated UTF-8 name and value, copied).
/// The request's cookies go in one `cookie` header, `name=value` pairs joined with `; `, in
/// order; the client's cookie jar adds nothing to a request that has a `cookie` header. A
/// character a header cannot carry fails the request when it is sent (`invalid_header`).
#[no_mangle]
pub extern "C" fn quiver_request_add_cookie(
    request: *mut quiver_request,
    name: *const c_char,
    value: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let request = try_mut_from_ptr!(request);
        let name = try_str!(name);
        let value = try_str!(value);
        request.layer.cookies.push((name.to_owned(), value.to_owned()));
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
