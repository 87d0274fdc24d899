//! HTTP/3 and QUIC errors as quiver errors: stream errors, connection errors, QUIC transport
//! errors (TLS alerts included), connect failures.

use std::net::SocketAddr;

use h3::error::{Code, ConnectionError, LocalError, StreamError};
use h3::quic::ConnectionErrorIncoming;
use h3::ConnectionState;

use super::H3Conn;
use crate::config::PoolOptions;
use crate::error::{Error, ErrorKind};
use crate::origin::Origin;

pub(crate) fn connect_timeout(origin: &Origin, addr: SocketAddr, options: &PoolOptions) -> Error {
    Error::new(
        ErrorKind::ConnectTimeout,
        format!(
            "the QUIC handshake with {origin} ({addr}) took longer than {} ms",
            options.connect_timeout.as_millis()
        ),
    )
}

pub(crate) fn connect_error(
    e: &quinn::ConnectionError,
    origin: &Origin,
    addr: SocketAddr,
) -> Error {
    let mut err = map_quinn_error(e, origin);
    if err.kind() == ErrorKind::ConnectionClosed {
        err = Error::new(
            ErrorKind::ConnectFailed,
            format!("cannot connect to {origin} ({addr}): {e}"),
        );
    }
    err
}

/// True when the error shows the 0-RTT flight was rejected by the server.
pub(crate) fn zero_rtt_rejected(e: &StreamError) -> bool {
    let text = format!("{e:?}");
    text.contains("ZeroRttRejected")
}

/// Maps an h3 stream error to a quiver error (a known reason for closing the connection wins).
pub(crate) fn map_stream_error(e: &StreamError, conn: &H3Conn) -> Error {
    let origin = &conn.origin;
    if let Some(known) = conn.close_reason.error(origin) {
        return known;
    }
    match e {
        StreamError::RemoteClosing => Error::new(
            ErrorKind::Goaway,
            format!("{origin} sent GOAWAY and did not process the request"),
        ),
        StreamError::RemoteTerminate { code } if *code == Code::H3_REQUEST_REJECTED => {
            if conn.sender().is_closing() {
                Error::new(ErrorKind::Goaway, format!("{origin} sent GOAWAY and rejected the request unprocessed"))
            } else {
                Error::new(ErrorKind::RefusedStream, format!("{origin} rejected the request unprocessed (H3_REQUEST_REJECTED)"))
            }
        }
        StreamError::RemoteTerminate { code } => {
            Error::new(ErrorKind::StreamReset, format!("{origin} reset the stream ({code})"))
        }
        // Our own limit: the response's header section is too big for us.
        StreamError::HeaderTooBig { actual_size, max_size } if *max_size == conn.announced_headers => Error::new(
            ErrorKind::ResponseHeadersTooLarge,
            format!("{origin} sent a response header section of {actual_size} bytes; max_response_headers is {}", conn.max_response_headers),
        ),
        StreamError::HeaderTooBig { actual_size, max_size } => Error::new(
            ErrorKind::HeaderListTooLarge,
            format!("the request's header section is {actual_size} bytes; {origin} accepts at most {max_size} (SETTINGS_MAX_FIELD_SECTION_SIZE)"),
        ),
        StreamError::ConnectionError(c) => map_connection_error(c, origin),
        StreamError::StreamError { code, reason } => {
            Error::new(ErrorKind::Protocol, format!("HTTP/3 stream error with {origin}: {code} {reason}"))
        }
        other => Error::new(ErrorKind::ConnectionClosed, format!("HTTP/3 stream to {origin} failed: {other}")),
    }
}

pub(crate) fn map_connection_error(e: &ConnectionError, origin: &Origin) -> Error {
    match e {
        // We closed the connection: the peer broke a rule (a frame too large to buffer, or the
        // protocol).
        ConnectionError::Local {
            error: LocalError::Application { code, reason, .. },
            ..
        } => {
            let kind = if *code == Code::H3_EXCESSIVE_LOAD {
                ErrorKind::FrameTooLarge
            } else {
                ErrorKind::Protocol
            };
            Error::new(kind, format!("HTTP/3 connection to {origin} closed: {code} {reason}"))
        }
        ConnectionError::Remote(ConnectionErrorIncoming::ApplicationClose { error_code }) => {
            let code = Code::from(*error_code);
            if code == Code::H3_NO_ERROR {
                Error::new(ErrorKind::ConnectionClosed, format!("{origin} closed the HTTP/3 connection"))
            } else {
                Error::new(ErrorKind::Protocol, format!("{origin} closed the HTTP/3 connection: {code}"))
            }
        }
        ConnectionError::Remote(ConnectionErrorIncoming::Timeout) | ConnectionError::Timeout => Error::new(
            ErrorKind::ConnectionClosed,
            format!("the QUIC connection to {origin} timed out (no packets within quic_idle_timeout)"),
        ),
        ConnectionError::Remote(ConnectionErrorIncoming::Undefined(inner)) => {
            match inner.downcast_ref::<quinn::ConnectionError>() {
                Some(q) => map_quinn_error(q, origin),
                None => Error::new(ErrorKind::ConnectionClosed, format!("HTTP/3 connection to {origin} failed: {inner}")),
            }
        }
        other => Error::new(ErrorKind::ConnectionClosed, format!("HTTP/3 connection to {origin} failed: {other:?}")),
    }
}

/// Maps a QUIC connection error, TLS alerts (crypto errors) included.
fn map_quinn_error(e: &quinn::ConnectionError, origin: &Origin) -> Error {
    use quinn::ConnectionError as Q;
    match e {
        Q::TimedOut => Error::new(
            ErrorKind::ConnectionClosed,
            format!("the QUIC connection to {origin} timed out"),
        ),
        Q::Reset => Error::new(
            ErrorKind::ConnectionReset,
            format!("{origin} reset the QUIC connection"),
        ),
        Q::ApplicationClosed(_) => Error::new(
            ErrorKind::ConnectionClosed,
            format!("{origin} closed the connection"),
        ),
        Q::LocallyClosed => Error::new(ErrorKind::Shutdown, "the connection was closed locally"),
        Q::TransportError(t) => transport_error(u64::from(t.code), &t.reason, origin),
        Q::ConnectionClosed(c) => transport_error(
            u64::from(c.error_code),
            &String::from_utf8_lossy(&c.reason),
            origin,
        ),
        other => Error::new(
            ErrorKind::QuicTransport,
            format!("QUIC error with {origin}: {other}"),
        ),
    }
}

/// QUIC transport error codes: 0x100..=0x1ff carry a TLS alert (RFC 9001 §4.8).
fn transport_error(code: u64, reason: &str, origin: &Origin) -> Error {
    if (0x100..=0x1ff).contains(&code) {
        return Error::new(
            ErrorKind::Tls,
            format!(
                "TLS failed with {origin} (QUIC CRYPTO_ERROR 0x{code:x}, TLS alert {}): {reason}",
                code - 0x100
            ),
        );
    }
    Error::new(
        ErrorKind::QuicTransport,
        format!("QUIC transport error 0x{code:x} with {origin}: {reason}"),
    )
}
