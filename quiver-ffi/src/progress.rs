//! `quiver_progress`: how far one request's upload and download are (core's `Progress`),
//! readable from any thread while the request runs.

use std::sync::Arc;

use quiver_core::Progress;

use crate::error::quiver_result;
use crate::ffi::{arc_castable, free_arc, set_optional_out, to_arc_const_ptr, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;

/// A request's progress record: request body bytes handed to the connection so far and their
/// total (when known), response body bytes the caller took so far and the total the response
/// announced (when it did). Attach it with `quiver_request_set_progress`.
///
/// Thread-safe: any thread may read it, at any time (relaxed atomic counters: each value is
/// current, the four are not one snapshot). Reference-counted: the request keeps its own
/// reference, so the caller may free its one with `quiver_progress_free` whenever it likes.
pub struct quiver_progress {
    _private: [u8; 0],
}

arc_castable!(quiver_progress => Progress);

/// Makes a progress record (nothing moved, no totals known); free it with
/// `quiver_progress_free`. NULL only on a panic.
#[no_mangle]
pub extern "C" fn quiver_progress_new() -> *const quiver_progress {
    ffi_panic_boundary! {
        to_arc_const_ptr::<quiver_progress>(Arc::new(Progress::new()))
    }
}

/// Reads the record; each out-parameter may be NULL (not written).
///
/// - `uploaded`: request body bytes handed to the connection so far (a body held in memory
///   counts once it is handed over whole; flow control paces a streamed one).
/// - `upload_total`: the request body's length, -1 when not known (a body source without a
///   `content-length`).
/// - `downloaded`: response body bytes the caller took so far (decoded, when the body is; for
///   a redirect followed, the last response's).
/// - `download_total`: the length the response announced (`content-length`), -1 when it did
///   not or the body is decoded (the header counts compressed bytes).
///
/// Any thread, at any time, callbacks included. NULL `progress`:
/// `QUIVER_RESULT_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn quiver_progress_get(
    progress: *const quiver_progress,
    uploaded: *mut u64,
    upload_total: *mut i64,
    downloaded: *mut u64,
    download_total: *mut i64,
) -> quiver_result {
    ffi_panic_boundary! {
        let progress = try_ref_from_ptr!(progress);
        let known = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        set_optional_out(uploaded, progress.uploaded());
        set_optional_out(upload_total, known(progress.upload_total()));
        set_optional_out(downloaded, progress.downloaded());
        set_optional_out(download_total, known(progress.download_total()));
        quiver_result::Ok
    }
}

/// Drops the caller's reference (requests it is attached to keep theirs). NULL is a no-op.
/// Any thread.
#[no_mangle]
pub extern "C" fn quiver_progress_free(progress: *const quiver_progress) {
    ffi_panic_boundary! {
        free_arc(progress)
    }
}
