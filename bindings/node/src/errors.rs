//! Quiver errors as they cross into JavaScript: a plain `Error` whose message carries the
//! kind and class in a fixed prefix, which `index.js` turns into a `QuiverError`.

use quiver_core::{Error, ErrorKind};

/// A JavaScript error for a quiver error.
pub(crate) fn to_js(e: &Error) -> napi::Error {
    encode(e.kind(), e.message())
}

/// A JavaScript error for a quiver error of `kind` with `message`.
pub(crate) fn encode(kind: ErrorKind, message: &str) -> napi::Error {
    napi::Error::from_reason(format!(
        "[quiver:{}:{}] {}",
        kind.as_str(),
        kind.class().as_str(),
        message
    ))
}

/// The error a cancelled operation settles with.
pub(crate) fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "the request was aborted")
}

/// The error for an operation whose task ended without settling (a bug, or a panic).
pub(crate) fn lost() -> Error {
    Error::new(
        ErrorKind::Internal,
        "the operation's task ended without a result",
    )
}
