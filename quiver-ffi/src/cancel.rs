//! Cancellation: the one-shot [`Signal`] that stops in-flight work, and the
//! `quiver_cancel_token` handle that lets C fire one for any number of requests.

use std::sync::Arc;

use crate::error::quiver_result;
use crate::ffi::{arc_castable, free_arc, to_arc_const_ptr, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;

pub(crate) use quiver_core::embed::Signal;

/// Completes once `signal` fires; never, when there is no signal.
pub(crate) async fn fired(signal: Option<&Signal>) {
    match signal {
        Some(s) => s.fired().await,
        None => std::future::pending().await,
    }
}

/// Cancels the requests it is attached to (`quiver_request_set_cancel_token`), now or later.
///
/// Thread-safe: any thread may cancel it, any number of requests may share it, and each
/// request keeps its own reference, so the token may be freed while they are in flight.
pub struct quiver_cancel_token {
    _private: [u8; 0],
}

arc_castable!(quiver_cancel_token => Signal);

/// Makes a cancel token (free it with `quiver_cancel_token_free`). NULL only on a panic.
#[no_mangle]
pub extern "C" fn quiver_cancel_token_new() -> *const quiver_cancel_token {
    ffi_panic_boundary! {
        to_arc_const_ptr::<quiver_cancel_token>(Arc::new(Signal::new()))
    }
}

/// Cancels every request the token is attached to: their callbacks (or `on_end`) run soon, on
/// a quiver thread, with a `cancelled` error, unless they had already completed; requests sent
/// with the token afterwards fail the same way. Idempotent; any thread, callbacks included;
/// never runs a callback itself.
#[no_mangle]
pub extern "C" fn quiver_cancel_token_cancel(token: *const quiver_cancel_token) -> quiver_result {
    ffi_panic_boundary! {
        try_ref_from_ptr!(token).fire();
        quiver_result::Ok
    }
}

/// Whether the token has been cancelled. NULL: false.
#[no_mangle]
pub extern "C" fn quiver_cancel_token_is_cancelled(token: *const quiver_cancel_token) -> bool {
    ffi_panic_boundary! {
        try_ref_from_ptr!(token).is_fired()
    }
}

/// Drops the caller's reference to the token (requests it is attached to keep theirs). NULL is
/// a no-op. Any thread.
#[no_mangle]
pub extern "C" fn quiver_cancel_token_free(token: *const quiver_cancel_token) {
    ffi_panic_boundary! {
        free_arc(token)
    }
}
