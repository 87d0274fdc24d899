//! `quiver_response`: status, HTTP version, headers, body and trailers of a response, and
//! where it came from (its final URL and the redirects followed to reach it).

use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

use bytes::Bytes;
use quiver_core::{HeaderMap, HeaderName, HeaderValue, Redirect, ResponseHead, Version};

use crate::error::{c_string, quiver_result};
use crate::ffi::{box_castable, free_box, set_optional_out, try_cstr_bytes, try_ref_from_ptr};
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
}

box_castable!(quiver_response => Response);

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
        }
    }

    /// The head of a streamed response (trailers come later, with [`Response::set_trailers`]).
    pub(crate) fn from_head(r: &quiver_core::StreamResponse) -> Response {
        Response {
            from: Provenance::new(r.url(), r.history(), r.unfollowed_redirect()),
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

/// Frees a response the caller owns. NULL is a no-op. Any thread. Never pass a stream's
/// response here.
#[no_mangle]
pub extern "C" fn quiver_response_free(response: *mut quiver_response) {
    ffi_panic_boundary! {
        free_box(response)
    }
}
