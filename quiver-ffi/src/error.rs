//! Results and errors: the `quiver_result` code every call returns, its text and class, and the
//! `quiver_error` handle (code, class, kind, message) for failures that come from the engine.

use std::borrow::Cow;
use std::ffi::{c_char, CStr, CString};

use quiver_core::{ErrorClass, ErrorKind};

use crate::ffi::{box_castable, free_box, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;

/// The result of every call, and the code of every error. Values are never renumbered.
///
/// `QUIVER_RESULT_OK` is 0. Codes 1 to 999 report a misuse of the API (or, for
/// `QUIVER_RESULT_SYSTEM`, a refusal of the operating system) and come without a
/// `quiver_error`. Codes from 1000 name an error kind (see `quiver_error_kind`): 1000-1999 are
/// transient, 2000-2999 invalid, 3000-3999 unrecoverable; new kinds get the next free number in
/// their class's range.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum quiver_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// An argument is unusable: text that is not UTF-8, an unknown enum value.
    InvalidArgument = 2,
    /// The index or name asked for does not exist.
    NotFound = 3,
    /// A blocking call was made on one of quiver's own threads (inside a callback), where
    /// waiting could deadlock.
    WouldDeadlock = 4,
    /// quiver caught a panic (a bug in quiver); the call did nothing.
    Panic = 5,
    /// An error of a kind this build has no code for; `quiver_error_kind` names it.
    UnknownKind = 6,
    /// The operating system refused a resource (a file descriptor, memory); `errno` says why.
    /// Nothing was created.
    System = 7,
    /// Transient: no pooled connection or stream slot became free within `checkout_timeout`.
    CheckoutTimeout = 1000,
    /// Transient: connecting (TCP + TLS, or QUIC) took longer than `connect_timeout`.
    ConnectTimeout = 1001,
    /// Transient: the peer refused the connection.
    ConnectRefused = 1002,
    /// Transient: connecting failed for another network reason.
    ConnectFailed = 1003,
    /// Transient: the host name could not be resolved.
    Dns = 1004,
    /// Transient: the whole request took longer than its `request_timeout`.
    RequestTimeout = 1005,
    /// Transient: no byte moved on the connection for `read_timeout`.
    ReadTimeout = 1006,
    /// Transient: the connection closed before the response was complete.
    ConnectionClosed = 1007,
    /// Transient: the peer reset the connection.
    ConnectionReset = 1008,
    /// Transient: the peer sent GOAWAY and did not process the request.
    Goaway = 1009,
    /// Transient: the peer refused the stream (REFUSED_STREAM).
    RefusedStream = 1010,
    /// Transient: the peer reset the stream.
    StreamReset = 1011,
    /// Transient: the peer stopped answering keep-alive PINGs.
    PingTimeout = 1012,
    /// Transient: the proxy answered CONNECT with a non-2xx status.
    ProxyConnectFailed = 1013,
    /// Transient: the request was cancelled by the caller.
    Cancelled = 1014,
    /// Transient: the client was freed (or its pool shut down) while the request was in flight.
    Shutdown = 1015,
    /// Transient: the request body source failed.
    BodyStream = 1016,
    /// Transient: the peer did not enable HTTP/3 datagrams.
    DatagramsDisabled = 1017,
    /// Transient: a datagram channel failed or was used after close.
    DatagramError = 1018,
    /// Invalid: the URL cannot be parsed, has no host, a bad port or credentials.
    InvalidUrl = 2000,
    /// Invalid: the scheme is not `http` or `https`.
    InvalidScheme = 2001,
    /// Invalid: a header name or value is not allowed.
    InvalidHeader = 2002,
    /// Invalid: the method is not a valid HTTP token.
    InvalidMethod = 2003,
    /// Invalid: the body framing is inconsistent (content-length, transfer-encoding).
    InvalidBody = 2004,
    /// Invalid: a configuration value is wrong; the message names the rule and the option.
    InvalidConfig = 2005,
    /// Invalid: the request's headers exceed the peer's SETTINGS_MAX_HEADER_LIST_SIZE.
    HeaderListTooLarge = 2006,
    /// Invalid: a datagram is larger than the path allows.
    DatagramTooLarge = 2007,
    /// Invalid: the operation is not available on this pool's transport.
    PoolUnsupportedForTransport = 2008,
    /// Invalid: a client created before `fork()` was used in the child.
    Forked = 2009,
    /// Unrecoverable: TLS failed (certificate verification, handshake, alert).
    Tls = 3000,
    /// Unrecoverable: the peer violated the protocol.
    Protocol = 3001,
    /// Unrecoverable: a QUIC transport error.
    QuicTransport = 3002,
    /// Unrecoverable: a bug in quiver (a caught panic, a broken invariant).
    Internal = 3003,
    /// Unrecoverable: a proxy sent a capsule longer than quiver accepts.
    CapsuleTooLarge = 3004,
    /// Unrecoverable: the response's header section is larger than `max_response_headers`.
    ResponseHeadersTooLarge = 3005,
    /// Unrecoverable: the response body is larger than `max_response_body`.
    ResponseBodyTooLarge = 3006,
    /// Unrecoverable: the peer sent an HTTP/3 frame longer than quiver buffers.
    FrameTooLarge = 3007,
    /// Unrecoverable: more redirects than `max_redirects` (loops end here too).
    TooManyRedirects = 3008,
    /// Unrecoverable: a redirect quiver will not follow (https to http, not an http(s) URL,
    /// redirect mode error).
    RedirectRefused = 3009,
    /// Unrecoverable: the response body could not be decoded (corrupt compressed data).
    Decoding = 3010,
    /// Unrecoverable: a compressed body inflated past `max_decompression_ratio`.
    DecompressionBomb = 3011,
}

/// One row per result code: the code, the kind it stands for (codes from 1000) and its text.
type Row = (quiver_result, Option<&'static CStr>, &'static CStr);

/// Every result code. The kind names are core's `ErrorKind::as_str()` (checked by a test).
const RESULTS: &[Row] = {
    use quiver_result::*;
    &[
        (Ok, None, c"success"),
        (NullParameter, None, c"a required pointer argument was NULL"),
        (InvalidArgument, None, c"an argument is unusable (not UTF-8, or an unknown enum value)"),
        (NotFound, None, c"no such index or name"),
        (WouldDeadlock, None, c"a blocking call was made on a quiver thread (inside a callback), where it could deadlock"),
        (Panic, None, c"quiver caught a panic (a bug in quiver); the call did nothing"),
        (UnknownKind, None, c"an error of a kind this build of libquiver has no code for (see quiver_error_kind)"),
        (System, None, c"the operating system refused a resource (see errno)"),
        (CheckoutTimeout, Some(c"checkout_timeout"), c"no pooled connection or stream slot became free within checkout_timeout"),
        (ConnectTimeout, Some(c"connect_timeout"), c"connecting took longer than connect_timeout"),
        (ConnectRefused, Some(c"connect_refused"), c"the peer refused the connection"),
        (ConnectFailed, Some(c"connect_failed"), c"connecting failed for another network reason"),
        (Dns, Some(c"dns"), c"the host name could not be resolved"),
        (RequestTimeout, Some(c"request_timeout"), c"the whole request took longer than its request_timeout"),
        (ReadTimeout, Some(c"read_timeout"), c"no byte moved on the connection for read_timeout"),
        (ConnectionClosed, Some(c"connection_closed"), c"the connection closed before the response was complete"),
        (ConnectionReset, Some(c"connection_reset"), c"the peer reset the connection"),
        (Goaway, Some(c"goaway"), c"the peer sent GOAWAY and did not process the request"),
        (RefusedStream, Some(c"refused_stream"), c"the peer refused the stream"),
        (StreamReset, Some(c"stream_reset"), c"the peer reset the stream"),
        (PingTimeout, Some(c"ping_timeout"), c"the peer stopped answering keep-alive PINGs"),
        (ProxyConnectFailed, Some(c"proxy_connect_failed"), c"the proxy answered CONNECT with a non-2xx status"),
        (Cancelled, Some(c"cancelled"), c"the request was cancelled"),
        (Shutdown, Some(c"shutdown"), c"the client was freed or shut down while the request was in flight"),
        (BodyStream, Some(c"body_stream"), c"the request body source failed"),
        (DatagramsDisabled, Some(c"datagrams_disabled"), c"the peer did not enable HTTP/3 datagrams"),
        (DatagramError, Some(c"datagram_error"), c"a datagram channel failed or was used after close"),
        (InvalidUrl, Some(c"invalid_url"), c"the URL cannot be parsed, has no host, a bad port or credentials"),
        (InvalidScheme, Some(c"invalid_scheme"), c"the scheme is not http or https"),
        (InvalidHeader, Some(c"invalid_header"), c"a header name or value is not allowed"),
        (InvalidMethod, Some(c"invalid_method"), c"the method is not a valid HTTP token"),
        (InvalidBody, Some(c"invalid_body"), c"the body framing is inconsistent"),
        (InvalidConfig, Some(c"invalid_config"), c"a configuration value is wrong"),
        (HeaderListTooLarge, Some(c"header_list_too_large"), c"the request's headers exceed the peer's limit"),
        (DatagramTooLarge, Some(c"datagram_too_large"), c"a datagram is larger than the path allows"),
        (PoolUnsupportedForTransport, Some(c"pool_unsupported_for_transport"), c"the operation is not available on this pool's transport"),
        (Forked, Some(c"forked"), c"a client created before fork() was used in the child; create a new client there"),
        (Tls, Some(c"tls"), c"TLS failed: certificate verification, handshake or alert"),
        (Protocol, Some(c"protocol"), c"the peer violated the protocol"),
        (QuicTransport, Some(c"quic_transport"), c"a QUIC transport error"),
        (Internal, Some(c"internal"), c"a bug in quiver (a caught panic, a broken invariant)"),
        (CapsuleTooLarge, Some(c"capsule_too_large"), c"a proxy sent a capsule longer than quiver accepts; the tunnel was closed"),
        (ResponseHeadersTooLarge, Some(c"response_headers_too_large"), c"the response's header section is larger than max_response_headers"),
        (ResponseBodyTooLarge, Some(c"response_body_too_large"), c"the response body is larger than max_response_body"),
        (FrameTooLarge, Some(c"frame_too_large"), c"the peer sent an HTTP/3 frame longer than quiver buffers; the connection was closed"),
        (TooManyRedirects, Some(c"too_many_redirects"), c"more redirects than max_redirects (a redirect loop ends here too)"),
        (RedirectRefused, Some(c"redirect_refused"), c"a redirect quiver will not follow: https to http, a location that is not an http(s) URL, or redirect mode error"),
        (Decoding, Some(c"decoding"), c"the response body could not be decoded (corrupt gzip, deflate, br or zstd data)"),
        (DecompressionBomb, Some(c"decompression_bomb"), c"a compressed response body inflated past max_decompression_ratio"),
    ]
};

impl quiver_result {
    fn row(self) -> &'static Row {
        RESULTS
            .iter()
            .find(|row| row.0 == self)
            .unwrap_or(&RESULTS[quiver_result::UnknownKind as usize])
    }

    /// The code for a raw value from C, if it is one.
    pub(crate) fn from_raw(raw: u32) -> Option<quiver_result> {
        RESULTS.iter().map(|row| row.0).find(|r| *r as u32 == raw)
    }

    /// The code of an engine error kind (`UnknownKind` for a kind newer than this table).
    pub(crate) fn from_kind(kind: ErrorKind) -> quiver_result {
        RESULTS
            .iter()
            .find(|row| {
                row.1
                    .is_some_and(|name| name.to_bytes() == kind.as_str().as_bytes())
            })
            .map_or(quiver_result::UnknownKind, |row| row.0)
    }

    /// The class of errors with this code: none for `Ok` (and `UnknownKind`), invalid for API
    /// misuse, unrecoverable for a panic.
    pub(crate) fn class(self) -> quiver_class {
        match self as u32 {
            0 => quiver_class::None,
            1000..=1999 => quiver_class::Transient,
            2000..=2999 => quiver_class::Invalid,
            3000..=3999 => quiver_class::Unrecoverable,
            _ => match self {
                quiver_result::Panic => quiver_class::Unrecoverable,
                quiver_result::System => quiver_class::Transient,
                // Only the error itself knows the class of a kind newer than this table.
                quiver_result::UnknownKind => quiver_class::None,
                _ => quiver_class::Invalid,
            },
        }
    }
}

/// What the caller can do about an error. Values are never renumbered.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum quiver_class {
    /// Not an error (`QUIVER_RESULT_OK`), or a NULL argument.
    #[default]
    None = 0,
    /// Retrying may work: timeouts, refused or reset connections, GOAWAY, cancellation.
    Transient = 1,
    /// The caller's input is wrong: URL, scheme, header, body framing, configuration.
    Invalid = 2,
    /// Escalate: TLS verification failed, the peer violated the protocol, a quiver bug.
    Unrecoverable = 3,
}

impl From<ErrorClass> for quiver_class {
    fn from(class: ErrorClass) -> Self {
        match class {
            ErrorClass::Transient => quiver_class::Transient,
            ErrorClass::Invalid => quiver_class::Invalid,
            ErrorClass::Unrecoverable => quiver_class::Unrecoverable,
        }
    }
}

/// An error from the engine: code, class, kind and message. Immutable; any thread may read it
/// and free it (once, with `quiver_error_free`).
pub struct quiver_error {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_error`.
#[derive(Debug)]
pub(crate) struct ErrorDetail {
    code: quiver_result,
    class: quiver_class,
    kind: Cow<'static, CStr>,
    message: CString,
}

box_castable!(quiver_error => ErrorDetail);

impl From<quiver_core::Error> for ErrorDetail {
    fn from(e: quiver_core::Error) -> Self {
        let code = quiver_result::from_kind(e.kind());
        let kind = match code.row().1 {
            Some(name) if code != quiver_result::UnknownKind => Cow::Borrowed(name),
            _ => Cow::Owned(c_string(e.kind().as_str())),
        };
        ErrorDetail {
            code,
            class: e.class().into(),
            kind,
            message: c_string(e.message()),
        }
    }
}

/// `text` as a C string; interior NULs (never expected) become `\0` escapes.
pub(crate) fn c_string(text: &str) -> CString {
    CString::new(text)
        .unwrap_or_else(|_| CString::new(text.replace('\0', "\\0")).unwrap_or_default())
}

/// A boxed `quiver_error` for C, from an engine error.
pub(crate) fn error_ptr(e: quiver_core::Error) -> *mut quiver_error {
    crate::ffi::to_boxed_mut_ptr::<quiver_error>(e.into())
}

/// Hands `e` to C through an optional out-parameter (allocated only when there is one), and
/// returns its code.
pub(crate) fn set_error_out(out: *mut *mut quiver_error, e: quiver_core::Error) -> quiver_result {
    let code = quiver_result::from_kind(e.kind());
    if let Some(out) = crate::ffi::try_out(out) {
        *out = error_ptr(e);
    }
    code
}

/// Renders any result code as static text (never NULL; unknown codes get a generic text).
#[no_mangle]
pub extern "C" fn quiver_result_str(result: u32) -> *const c_char {
    ffi_panic_boundary! {
        match quiver_result::from_raw(result) {
            Some(r) => r.row().2.as_ptr(),
            None => c"unknown quiver_result code".as_ptr(),
        }
    }
}

/// The class of errors with this result code (`QUIVER_CLASS_NONE` for
/// `QUIVER_RESULT_OK` and unknown codes).
#[no_mangle]
pub extern "C" fn quiver_result_class(result: u32) -> quiver_class {
    ffi_panic_boundary! {
        quiver_result::from_raw(result).map_or(quiver_class::None, quiver_result::class)
    }
}

/// The class's stable lower-case name: `transient`, `invalid`, `unrecoverable` or `none`
/// (static; unknown values get `none`).
#[no_mangle]
pub extern "C" fn quiver_class_str(value: u32) -> *const c_char {
    ffi_panic_boundary! {
        let name: &'static CStr = match value {
            1 => c"transient",
            2 => c"invalid",
            3 => c"unrecoverable",
            _ => c"none",
        };
        name.as_ptr()
    }
}

/// The error's result code (one per kind; `QUIVER_RESULT_UNKNOWN_KIND` for a kind newer than
/// this build). NULL: `QUIVER_RESULT_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn quiver_error_code(error: *const quiver_error) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(error).code
    }
}

/// The error's class (exactly core's). NULL: `QUIVER_CLASS_NONE`.
#[no_mangle]
pub extern "C" fn quiver_error_class(error: *const quiver_error) -> quiver_class {
    ffi_panic_boundary! {
        try_ref_from_ptr!(error).class
    }
}

/// The error's kind as a stable snake_case name (`connect_refused`, `invalid_url`, ...; see
/// docs/errors.md), valid until the error is freed. NULL: NULL.
#[no_mangle]
pub extern "C" fn quiver_error_kind(error: *const quiver_error) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(error).kind.as_ptr()
    }
}

/// The human-readable message (UTF-8), valid until the error is freed. NULL: NULL.
#[no_mangle]
pub extern "C" fn quiver_error_message(error: *const quiver_error) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(error).message.as_ptr()
    }
}

/// Frees an error. NULL is a no-op. Any thread.
#[no_mangle]
pub extern "C" fn quiver_error_free(error: *mut quiver_error) {
    ffi_panic_boundary! {
        free_box(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_kind_has_a_code_with_its_name_and_class() {
        for kind in ErrorKind::ALL {
            let code = quiver_result::from_kind(*kind);
            assert_ne!(code, quiver_result::UnknownKind, "no code for `{kind}`");
            assert_eq!(code.row().1.unwrap().to_str().unwrap(), kind.as_str());
            assert_eq!(code.class(), kind.class().into(), "{kind}");
            let e = ErrorDetail::from(quiver_core::Error::new(*kind, "m"));
            assert_eq!(e.kind.to_str().unwrap(), kind.as_str());
            assert_eq!(e.class, kind.class().into());
        }
        let kind_rows = RESULTS.iter().filter(|r| r.1.is_some()).count();
        assert_eq!(
            kind_rows,
            ErrorKind::ALL.len(),
            "a code for a kind core lacks"
        );
    }

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for (i, row) in RESULTS.iter().enumerate() {
            assert_eq!(quiver_result::from_raw(row.0 as u32), Some(row.0));
            assert!(RESULTS[..i].iter().all(|r| r.0 != row.0));
            assert!(!row.2.to_bytes().is_empty());
        }
        assert_eq!(
            RESULTS[quiver_result::UnknownKind as usize].0,
            quiver_result::UnknownKind
        );
        assert_eq!(quiver_result::from_raw(999), None);
    }

    #[test]
    fn the_table_covers_every_code_in_the_header() {
        let header = std::fs::read_to_string(env!("QUIVER_GENERATED_HEADER")).unwrap();
        let in_header = header
            .lines()
            .filter(|l| l.trim_start().starts_with("QUIVER_RESULT_") && l.contains(" = "))
            .count();
        assert_eq!(in_header, RESULTS.len());
    }
}
