//! The one error type: a class (what the caller can do about it), a stable kind
//! (what happened, machine-readable) and a human message.

use std::fmt;
use std::sync::Arc;

/// Boxed error used as an [`Error`]'s underlying cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results whose error is a quiver [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a caller can do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Retrying may work: timeouts, refused or reset connections, GOAWAY.
    Transient,
    /// The caller's input is wrong: bad URL, scheme, header or configuration.
    Invalid,
    /// Escalate: TLS verification failed, the peer violated the protocol.
    Unrecoverable,
}

impl ErrorClass {
    /// The class's stable lower-case name (`transient`, `invalid`, `unrecoverable`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Invalid => "invalid",
            ErrorClass::Unrecoverable => "unrecoverable",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $class:ident; )*) => {
        /// What went wrong, as a stable machine-readable name. Each kind has one class.
        ///
        /// The names (see [`ErrorKind::as_str`]) never change meaning; new kinds may be added.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorKind {
            /// Every kind, in declaration order (for documentation and bindings).
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),*];

            /// The kind's stable snake_case name, such as `checkout_timeout`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorKind::$variant => $name, )* }
            }

            /// The class every error of this kind has.
            pub fn class(self) -> ErrorClass {
                match self { $( ErrorKind::$variant => ErrorClass::$class, )* }
            }

            /// Looks a kind up by its stable name.
            pub fn from_name(name: &str) -> Option<ErrorKind> {
                match name { $( $name => Some(ErrorKind::$variant), )* _ => None }
            }
        }
    };
}

kinds! {
    /// No pooled connection or stream slot became free within `checkout_timeout`.
    CheckoutTimeout = "checkout_timeout", Transient;
    /// The TCP (or QUIC) connection did not complete within `connect_timeout`.
    ConnectTimeout = "connect_timeout", Transient;
    /// The peer refused the connection.
    ConnectRefused = "connect_refused", Transient;
    /// Connecting failed for another network reason (unreachable, reset during connect).
    ConnectFailed = "connect_failed", Transient;
    /// The host name could not be resolved.
    Dns = "dns", Transient;
    /// The whole request took longer than `request_timeout`.
    RequestTimeout = "request_timeout", Transient;
    /// No byte moved on the connection for `read_timeout`.
    ReadTimeout = "read_timeout", Transient;
    /// The connection closed before the response was complete.
    ConnectionClosed = "connection_closed", Transient;
    /// The connection was reset by the peer.
    ConnectionReset = "connection_reset", Transient;
    /// The peer sent GOAWAY and did not process the request.
    Goaway = "goaway", Transient;
    /// The peer refused the stream before processing it (REFUSED_STREAM).
    RefusedStream = "refused_stream", Transient;
    /// The peer reset the stream.
    StreamReset = "stream_reset", Transient;
    /// The peer stopped answering keep-alive PINGs.
    PingTimeout = "ping_timeout", Transient;
    /// The proxy answered CONNECT with a non-2xx status.
    ProxyConnectFailed = "proxy_connect_failed", Transient;
    /// The request was cancelled by the caller.
    Cancelled = "cancelled", Transient;
    /// The client (or pool) was shut down while the request was in flight.
    Shutdown = "shutdown", Transient;
    /// The caller-supplied request body stream failed.
    BodyStream = "body_stream", Transient;
    /// The peer did not enable HTTP/3 datagrams (SETTINGS_H3_DATAGRAM).
    DatagramsDisabled = "datagrams_disabled", Transient;
    /// A datagram channel failed or was used after close.
    DatagramError = "datagram_error", Transient;
    /// A proxy sent a capsule longer than quiver accepts; the tunnel was closed.
    CapsuleTooLarge = "capsule_too_large", Unrecoverable;
    /// The response's header section is larger than `max_response_headers`.
    ResponseHeadersTooLarge = "response_headers_too_large", Unrecoverable;
    /// The response body is larger than `max_response_body`.
    ResponseBodyTooLarge = "response_body_too_large", Unrecoverable;
    /// The peer sent an HTTP/3 frame longer than quiver buffers; the connection was closed.
    FrameTooLarge = "frame_too_large", Unrecoverable;
    /// More redirects than `max_redirects` (a redirect loop ends here too).
    TooManyRedirects = "too_many_redirects", Unrecoverable;
    /// A redirect quiver will not follow: https to http without `allow_insecure_redirects`, a
    /// `location` that is not an http(s) URL, or redirect mode `error`.
    RedirectRefused = "redirect_refused", Unrecoverable;
    /// The response body could not be decoded (corrupt gzip, deflate, br or zstd data).
    Decoding = "decoding", Unrecoverable;
    /// A compressed response body inflated past `max_decompression_ratio` (a decompression
    /// bomb).
    DecompressionBomb = "decompression_bomb", Unrecoverable;
    /// The URL could not be parsed or lacks a host.
    InvalidUrl = "invalid_url", Invalid;
    /// The URL's scheme is not `http` or `https`.
    InvalidScheme = "invalid_scheme", Invalid;
    /// A header name or value is not allowed (CR, LF, NUL, bad characters).
    InvalidHeader = "invalid_header", Invalid;
    /// The method is not a valid HTTP token.
    InvalidMethod = "invalid_method", Invalid;
    /// The body or its declared length is inconsistent (absurd or mismatched content-length).
    InvalidBody = "invalid_body", Invalid;
    /// A configuration value is wrong; the message names the rule and the option.
    InvalidConfig = "invalid_config", Invalid;
    /// The request's header list exceeds the peer's SETTINGS_MAX_HEADER_LIST_SIZE.
    HeaderListTooLarge = "header_list_too_large", Invalid;
    /// A datagram is larger than the path allows.
    DatagramTooLarge = "datagram_too_large", Invalid;
    /// The operation is not available for this pool's transport.
    PoolUnsupportedForTransport = "pool_unsupported_for_transport", Invalid;
    /// A client inherited across `fork()` was used in the child; make a new client there.
    Forked = "forked", Invalid;
    /// TLS failed: certificate verification, handshake or alert.
    Tls = "tls", Unrecoverable;
    /// The peer violated the protocol (malformed response, bad frame).
    Protocol = "protocol", Unrecoverable;
    /// QUIC transport error reported by the peer or the stack.
    QuicTransport = "quic_transport", Unrecoverable;
    /// A bug in quiver (a caught panic, a broken invariant).
    Internal = "internal", Unrecoverable;
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quiver error: [`class`](Error::class), [`kind`](Error::kind) and a message. Cheap to
/// clone (one failure can be delivered to several waiting callers), its cause included.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// Makes an error of `kind` with a human message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
            }),
        }
    }

    /// Makes an error of `kind` with a message and an underlying cause.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Error {
        let mut e = Error::new(kind, message);
        e.inner.source = Some(Arc::from(source.into()));
        e
    }

    /// The error's class: transient, invalid or unrecoverable.
    pub fn class(&self) -> ErrorClass {
        self.inner.kind.class()
    }

    /// The error's stable kind.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The human message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// True for the timeout kinds (connect, checkout, request, read, ping).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::ConnectTimeout
                | ErrorKind::CheckoutTimeout
                | ErrorKind::RequestTimeout
                | ErrorKind::ReadTimeout
                | ErrorKind::PingTimeout
        )
    }

    pub(crate) fn invalid_config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidConfig, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind, self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("class", &self.class())
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_classes_are_fixed() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(ErrorKind::CheckoutTimeout.class(), ErrorClass::Transient);
        assert_eq!(ErrorKind::InvalidUrl.class(), ErrorClass::Invalid);
        assert_eq!(ErrorKind::Tls.class(), ErrorClass::Unrecoverable);
        let e = Error::new(ErrorKind::Dns, "no such host");
        assert_eq!(e.to_string(), "dns: no such host");
        assert!(!e.is_timeout());
    }
}
