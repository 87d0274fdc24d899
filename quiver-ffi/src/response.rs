//! `quiver_response`: status, HTTP version, headers, body and trailers of a response, where it
//! came from (its final URL and the redirects followed to reach it), and how long each step
//! took (`quiver_timings`).

use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

use bytes::Bytes;
use quiver_core::{HeaderMap, HeaderName, HeaderValue, Redirect, ResponseHead, Timings, Version};

use crate::error::{c_string, quiver_result};
use crate::events::{nanos, protocol_name};
use crate::ffi::{
    box_castable, free_box, set_optional_out, try_cstr_bytes, try_out_ptr, try_ref_from_ptr,
};
use crate::panic::ffi_panic_boundary;

/// The HTTP version a response came over. Values are never renumbered.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum quiver_http_version {
    /// Not known (or a NULL argument).
    #[default]
    Unknown = 0,
    /// HTTP/0.9.
    Http0_9 = 9,
    /// HTTP/1.0.
    Http1_0 = 10,
    /// HTTP/1.1.
    Http1_1 = 11,
    /// HTTP/2.
    Http2 = 20,
    /// HTTP/3.
    Http3 = 30,
}

impl From<Version> for quiver_http_version {
    fn from(v: Version) -> Self {
        match v {
            Version::HTTP_09 => quiver_http_version::Http0_9,
            Version::HTTP_10 => quiver_http_version::Http1_0,
            Version::HTTP_11 => quiver_http_version::Http1_1,
            Version::HTTP_2 => quiver_http_version::Http2,
            Version::HTTP_3 => quiver_http_version::Http3,
            _ => quiver_http_version::Unknown,
        }
    }
}

/// A response: status, version, headers, body and trailers, and where it came from (final URL,
/// redirects followed). Immutable.
///
/// A response given to a `quiver_response_cb` or by `quiver_client_send_blocking` is owned by
/// the caller: any thread may read it (concurrently too) and free it once with
/// `quiver_response_free`; pointers it hands out stay valid until then. A stream's response
/// (`on_head`, `quiver_stream_response`) belongs to the stream: never free it; it lives as long
/// as the stream handle, its body is empty (the body goes to `on_data`) and its trailers appear
/// once the stream has ended. A datagram channel's response (`on_open`,
/// `quiver_channel_response`) belongs to the channel in the same way.
pub struct quiver_response {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_response`.
pub(crate) struct Response {
    status: u16,
    version: quiver_http_version,
    headers: Fields,
    body: Bytes,
    trailers: OnceLock<Fields>,
    from: Provenance,
    /// `None` for a datagram channel's or UDP tunnel's head.
    timings: Option<TimingsCopy>,
}

box_castable!(quiver_response => Response);

/// A response's timings (sharing core's cell for `total`, so a streamed head sees it once the
/// body ended) and NUL-terminated copies of the connection's text (ALPN, peer address), made
/// when C first asks for the timings.
struct TimingsCopy {
    core: Timings,
    text: OnceLock<(Option<CString>, Option<CString>)>,
}

impl TimingsCopy {
    fn new(t: &Timings) -> TimingsCopy {
        TimingsCopy {
            core: t.clone(),
            text: OnceLock::new(),
        }
    }

    /// The ALPN and the peer address, as C strings.
    fn text(&self) -> &(Option<CString>, Option<CString>) {
        self.text.get_or_init(|| {
            let conn = &self.core.connection;
            (
                conn.alpn.as_deref().map(c_string),
                conn.remote.map(|a| c_string(&a.to_string())),
            )
        })
    }
}

/// Where a response came from, as C reads it (NUL-terminated, for convenience).
#[derive(Default)]
struct Provenance {
    url: CString,
    history: Vec<(u16, CString)>,
    unfollowed: Option<CString>,
}

impl Provenance {
    fn new(url: &str, history: &[Redirect], unfollowed: Option<&str>) -> Provenance {
        Provenance {
            url: c_string(url),
            history: history
                .iter()
                .map(|h| (h.status.as_u16(), c_string(&h.url)))
                .collect(),
            unfollowed: unfollowed.map(c_string),
        }
    }
}

impl Response {
    /// A response read to its end.
    pub(crate) fn from_full(r: &quiver_core::Response) -> Response {
        let trailers = OnceLock::new();
        if let Some(t) = r.trailers() {
            let _ = trailers.set(Fields::from_map(t));
        }
        Response {
            status: r.status().as_u16(),
            version: r.version().into(),
            headers: Fields::from_map(r.headers()),
            body: r.body().clone(),
            trailers,
            from: Provenance::new(r.url(), r.history(), r.unfollowed_redirect()),
            timings: Some(TimingsCopy::new(r.timings())),
        }
    }

    /// The head of a streamed response (trailers come later, with [`Response::set_trailers`]).
    pub(crate) fn from_head(r: &quiver_core::StreamResponse) -> Response {
        Response {
            from: Provenance::new(r.url(), r.history(), r.unfollowed_redirect()),
            timings: Some(TimingsCopy::new(r.timings())),
            ..Response::from_response_head(r.head())
        }
    }

    /// A response head without a body (a stream's or a datagram channel's).
    pub(crate) fn from_response_head(head: &ResponseHead) -> Response {
        Response {
            status: head.status.as_u16(),
            version: head.version.into(),
            headers: Fields::from_map(&head.headers),
            body: Bytes::new(),
            trailers: OnceLock::new(),
            from: Provenance::default(),
            timings: None,
        }
    }

    /// Records a streamed response's trailers (once, when its body has ended).
    pub(crate) fn set_trailers(&self, trailers: Option<&HeaderMap>) {
        if let Some(t) = trailers {
            let _ = self.trailers.set(Fields::from_map(t));
        }
    }
}

/// Header (or trailer) fields in a flat list: index access is O(1).
#[derive(Default)]
struct Fields(Vec<(HeaderName, HeaderValue)>);

impl Fields {
    fn from_map(map: &HeaderMap) -> Fields {
        Fields(map.iter().map(|(n, v)| (n.clone(), v.clone())).collect())
    }

    fn at(&self, index: usize) -> Option<&(HeaderName, HeaderValue)> {
        self.0.get(index)
    }

    /// The `nth` value (0-based) of the fields named `name` (ASCII case-insensitive).
    fn get(&self, name: &[u8], nth: usize) -> Option<&HeaderValue> {
        self.0
            .iter()
            .filter(|(n, _)| n.as_str().as_bytes().eq_ignore_ascii_case(name))
            .nth(nth)
            .map(|(_, v)| v)
    }
}

static NO_FIELDS: Fields = Fields(Vec::new());

/// Writes a field's name and value to the optional out-parameters.
fn field_out(
    field: Option<&(HeaderName, HeaderValue)>,
    name: *mut *const c_char,
    name_len: *mut usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> quiver_result {
    let Some((n, v)) = field else {
        return quiver_result::NotFound;
    };
    set_optional_out(name, n.as_str().as_ptr().cast());
    set_optional_out(name_len, n.as_str().len());
    set_optional_out(value, v.as_bytes().as_ptr().cast());
    set_optional_out(value_len, v.as_bytes().len());
    quiver_result::Ok
}

/// Writes a value to the optional out-parameters.
fn value_out(
    found: Option<&HeaderValue>,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> quiver_result {
    let Some(v) = found else {
        return quiver_result::NotFound;
    };
    set_optional_out(value, v.as_bytes().as_ptr().cast());
    set_optional_out(value_len, v.as_bytes().len());
    quiver_result::Ok
}

/// The status code (200, 404, ...). NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_response_status(response: *const quiver_response) -> u16 {
    ffi_panic_boundary! {
        try_ref_from_ptr!(response).status
    }
}

/// The HTTP version the response came over. NULL: `QUIVER_HTTP_VERSION_UNKNOWN`.
#[no_mangle]
pub extern "C" fn quiver_response_version(response: *const quiver_response) -> quiver_http_version {
    ffi_panic_boundary! {
        try_ref_from_ptr!(response).version
    }
}

/// A version's display name (`"HTTP/1.1"`, `"HTTP/2"`, ...; static; `"unknown"` for others).
#[no_mangle]
pub extern "C" fn quiver_http_version_str(version: u32) -> *const c_char {
    ffi_panic_boundary! {
        let name: &'static CStr = match version {
            9 => c"HTTP/0.9",
            10 => c"HTTP/1.0",
            11 => c"HTTP/1.1",
            20 => c"HTTP/2",
            30 => c"HTTP/3",
            _ => c"unknown",
        };
        name.as_ptr()
    }
}

/// How many header fields the response has (a name with two values counts twice). NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_response_header_count(response: *const quiver_response) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(response).headers.0.len()
    }
}

/// The header field at `index` (0-based, values of one name adjacent and in order). Names are
/// lower-case. Writes pointers and lengths (not NUL-terminated, valid until the response is
/// freed) to the out-parameters that are not NULL. `QUIVER_RESULT_NOT_FOUND` when `index` is
/// out of range.
#[no_mangle]
pub extern "C" fn quiver_response_header_at(
    response: *const quiver_response,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        field_out(response.headers.at(index), name, name_len, value, value_len)
    }
}

/// The `nth` value (0 for the first) of the header named `name` (NUL-terminated, any case).
/// Writes a pointer and length (not NUL-terminated, valid until the response is freed) to the
/// out-parameters that are not NULL. `QUIVER_RESULT_NOT_FOUND` when there is no such value.
#[no_mangle]
pub extern "C" fn quiver_response_header_get(
    response: *const quiver_response,
    name: *const c_char,
    nth: usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        let name = try_cstr_bytes!(name);
        value_out(response.headers.get(name, nth), value, value_len)
    }
}

/// The body: a pointer and length valid until the response is freed (the pointer is never
/// NULL, even for an empty body). Out-parameters may be NULL.
#[no_mangle]
pub extern "C" fn quiver_response_body(
    response: *const quiver_response,
    data: *mut *const u8,
    len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        set_optional_out(data, response.body.as_ptr());
        set_optional_out(len, response.body.len());
        quiver_result::Ok
    }
}

/// How many trailer fields the response has (0 when it had none, or, for a stream, before it
/// ended). NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_response_trailer_count(response: *const quiver_response) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(response).trailers.get().unwrap_or(&NO_FIELDS).0.len()
    }
}

/// The trailer field at `index`; like `quiver_response_header_at`.
#[no_mangle]
pub extern "C" fn quiver_response_trailer_at(
    response: *const quiver_response,
    index: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        let trailers = response.trailers.get().unwrap_or(&NO_FIELDS);
        field_out(trailers.at(index), name, name_len, value, value_len)
    }
}

/// The `nth` value of the trailer named `name`; like `quiver_response_header_get`.
#[no_mangle]
pub extern "C" fn quiver_response_trailer_get(
    response: *const quiver_response,
    name: *const c_char,
    nth: usize,
    value: *mut *const c_char,
    value_len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        let name = try_cstr_bytes!(name);
        let trailers = response.trailers.get().unwrap_or(&NO_FIELDS);
        value_out(trailers.get(name, nth), value, value_len)
    }
}

/// Writes a C string's pointer and length (without the NUL) to the optional out-parameters.
fn text_out(text: &CStr, ptr: *mut *const c_char, len: *mut usize) {
    set_optional_out(ptr, text.as_ptr());
    set_optional_out(len, text.to_bytes().len());
}

/// The URL that answered: after redirects, the last one (the request's own URL when none was
/// followed). Writes a pointer and length to the out-parameters that are not NULL; the text
/// is also NUL-terminated, and valid as long as the response. Empty for a datagram channel's
/// or a UDP tunnel's head.
#[no_mangle]
pub extern "C" fn quiver_response_url(
    response: *const quiver_response,
    url: *mut *const c_char,
    len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        text_out(&response.from.url, url, len);
        quiver_result::Ok
    }
}

/// How many redirects were followed to reach this response (0 when none). NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_response_history_len(response: *const quiver_response) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(response).from.history.len()
    }
}

/// The status (301, 302, 303, 307, 308) of the redirect at `index` in the history (0 is the
/// first, answered by the request's own URL). 0 when `index` is out of range (or NULL).
#[no_mangle]
pub extern "C" fn quiver_response_history_status(
    response: *const quiver_response,
    index: usize,
) -> u16 {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        response.from.history.get(index).map_or(0, |h| h.0)
    }
}

/// The URL that answered with the redirect at `index` in the history (0 is the request's own
/// URL). Writes a pointer and length (also NUL-terminated, valid as long as the response) to the
/// out-parameters that are not NULL. `QUIVER_RESULT_NOT_FOUND` when `index` is out of range.
#[no_mangle]
pub extern "C" fn quiver_response_history_url(
    response: *const quiver_response,
    index: usize,
    url: *mut *const c_char,
    len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        match response.from.history.get(index) {
            Some((_, u)) => {
                text_out(u, url, len);
                quiver_result::Ok
            }
            None => quiver_result::NotFound,
        }
    }
}

/// Why this response is a redirect that was not followed although redirects are on: a 307 or
/// 308 whose streamed body (a body source, a form with a file or source part) cannot be sent
/// again. Writes a pointer and length (also NUL-terminated, valid as long as the response) to
/// the out-parameters that are not NULL; when there is no such reason, writes NULL and 0 and
/// returns `QUIVER_RESULT_NOT_FOUND`.
#[no_mangle]
pub extern "C" fn quiver_response_unfollowed_redirect(
    response: *const quiver_response,
    why: *mut *const c_char,
    len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        match &response.from.unfollowed {
            Some(text) => {
                text_out(text, why, len);
                quiver_result::Ok
            }
            None => {
                set_optional_out(why, std::ptr::null());
                set_optional_out(len, 0);
                quiver_result::NotFound
            }
        }
    }
}

/// How long each step of a request took and which connection carried it
/// (`quiver_response_timings`; docs/observability.md), like curl's `CURLINFO_*_TIME` but as
/// durations of phases, in nanoseconds. A duration that does not apply is -1: `dns_ns`,
/// `connect_ns` and `tls_ns` exist only when the request opened its connection (a reused one
/// has none; `tls_ns` also needs TLS over TCP), and `total_ns` only once the body ended.
#[repr(C)]
pub struct quiver_timings {
    /// Waiting for a connection or stream slot (of the last hop).
    pub queued_ns: i64,
    /// Name resolution, or -1.
    pub dns_ns: i64,
    /// The transport's connect (TCP; HTTP/3: the QUIC handshake), or -1.
    pub connect_ns: i64,
    /// The TLS handshake over TCP, or -1.
    pub tls_ns: i64,
    /// From the start of the request (redirects included) to the response head.
    pub ttfb_ns: i64,
    /// Spent on redirects before the last hop started (0 without redirects).
    pub redirects_ns: i64,
    /// From the start of the request to the end of its body; -1 until the body ended (a
    /// stream's: ask again after `on_end`).
    pub total_ns: i64,
    /// The connection that carried the last hop (the id events carry).
    pub connection_id: u64,
    /// Whether that connection had carried requests before.
    pub reused: bool,
    /// The protocol the response came over: `"http1"`, `"http2"` or `"http3"` (static).
    pub protocol: *const c_char,
    /// The HTTP/2 or HTTP/3 stream id, or -1 (HTTP/3's first stream is 0).
    pub stream_id: i64,
    /// Whether the connection's TLS resumed an earlier session.
    pub resumed: bool,
    /// The protocol ALPN chose for the connection (`h2`, `http/1.1`, `h3`), or NULL; also
    /// NUL-terminated, valid as long as the response.
    pub alpn: *const c_char,
    /// Its length.
    pub alpn_len: usize,
    /// The peer address as text (`127.0.0.1:443`), or NULL when not connected directly
    /// (tunnels, Unix sockets); also NUL-terminated, valid as long as the response.
    pub remote: *const c_char,
    /// Its length.
    pub remote_len: usize,
}

/// Fills `*out` with the response's timings (see `quiver_timings`). For a one-shot response
/// everything is final. For a stream's head (`on_head`, `quiver_stream_response`) everything
/// but `total_ns` is final from `on_head` on; `total_ns` is set once the body ended (ask again
/// after `on_end`). A datagram channel's or UDP tunnel's head has none:
/// `QUIVER_RESULT_NOT_FOUND` (and `*out` zeroed, durations -1). Any thread.
#[no_mangle]
pub extern "C" fn quiver_response_timings(
    response: *const quiver_response,
    out: *mut quiver_timings,
) -> quiver_result {
    ffi_panic_boundary! {
        let response = try_ref_from_ptr!(response);
        let out = try_out_ptr!(out);
        let opt = |d: Option<std::time::Duration>| d.map_or(-1, nanos);
        let text = |t: &Option<CString>| {
            t.as_deref()
                .map_or((std::ptr::null(), 0), |t| (t.as_ptr(), t.to_bytes().len()))
        };
        let Some(copy) = &response.timings else {
            *out = quiver_timings {
                queued_ns: -1,
                dns_ns: -1,
                connect_ns: -1,
                tls_ns: -1,
                ttfb_ns: -1,
                redirects_ns: -1,
                total_ns: -1,
                connection_id: 0,
                reused: false,
                protocol: std::ptr::null(),
                stream_id: -1,
                resumed: false,
                alpn: std::ptr::null(),
                alpn_len: 0,
                remote: std::ptr::null(),
                remote_len: 0,
            };
            return quiver_result::NotFound;
        };
        let t = &copy.core;
        let (alpn, remote) = copy.text();
        let (alpn, alpn_len) = text(alpn);
        let (remote, remote_len) = text(remote);
        *out = quiver_timings {
            queued_ns: nanos(t.queued),
            dns_ns: opt(t.dns),
            connect_ns: opt(t.connect),
            tls_ns: opt(t.tls),
            ttfb_ns: nanos(t.ttfb),
            redirects_ns: nanos(t.redirects),
            total_ns: opt(t.total()),
            connection_id: t.connection.id,
            reused: t.reused,
            protocol: protocol_name(t.protocol).as_ptr(),
            stream_id: t.stream.and_then(|s| i64::try_from(s).ok()).unwrap_or(-1),
            resumed: t.connection.resumed,
            alpn,
            alpn_len,
            remote,
            remote_len,
        };
        quiver_result::Ok
    }
}

/// Frees a response the caller owns. NULL is a no-op. Any thread. Never pass a stream's
/// response here.
#[no_mangle]
pub extern "C" fn quiver_response_free(response: *mut quiver_response) {
    ffi_panic_boundary! {
        free_box(response)
    }
}
