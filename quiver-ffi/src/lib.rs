//! C ABI for Quiver: `libquiver.so`, `libquiver.a` and `include/quiver.h` (generated from this
//! crate by cbindgen at build time).
//!
//! One module per C handle family, as the header's sections: [`config`] (`quiver_config`),
//! [`client`] (`quiver_client`, one-shot sends), [`cookies`] (a client's cookie jar),
//! [`request`] (`quiver_request` and request bodies), [`mime`] (`quiver_mime`, multipart forms),
//! [`response`] (`quiver_response`, `quiver_timings`), [`stream`] (`quiver_stream`), [`channel`]
//! (`quiver_channel`, HTTP/3 datagrams), [`tunnel`] (`quiver_udp_tunnel`, MASQUE
//! CONNECT-UDP through a proxy), [`queue`] (`quiver_queue`, the completion queue),
//! [`cancel`] (`quiver_cancel_token`), [`stats`] (`quiver_stats`), [`events`]
//! (`quiver_event`, the event callback), [`progress`] (`quiver_progress`) and [`error`]
//! (`quiver_result`, `quiver_error`). `ffi` holds every pointer cast, `panic` the boundary every export runs in.
//! Ownership and threading rules per handle: `quiver-ffi/README.md`.
#![deny(missing_docs)]
// The C names are the ABI.
#![allow(non_camel_case_types)]

pub mod cancel;
pub mod channel;
pub mod client;
pub mod config;
pub mod cookies;
mod endpoint;
pub mod error;
pub mod events;
mod ffi;
pub mod mime;
mod panic;
pub mod progress;
pub mod queue;
pub mod request;
pub mod response;
pub mod stats;
pub mod stream;
pub mod tunnel;

use std::ffi::c_char;

use crate::ffi::free_c_string;
use crate::panic::ffi_panic_boundary;

/// `CARGO_PKG_VERSION_*` as a number, at compile time.
const fn parse_u32(s: &str) -> u32 {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < bytes.len() {
        n = n * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    n
}

const VERSION_NUM: u32 = (parse_u32(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
    | (parse_u32(env!("CARGO_PKG_VERSION_MINOR")) << 8)
    | parse_u32(env!("CARGO_PKG_VERSION_PATCH"));

/// The library version as a static NUL-terminated string, such as `"0.1.0"`.
#[no_mangle]
pub extern "C" fn quiver_version() -> *const c_char {
    ffi_panic_boundary! {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    }
}

/// The library version as a number: `major << 16 | minor << 8 | patch` (0.1.0 is 0x000100).
#[no_mangle]
pub extern "C" fn quiver_version_num() -> u32 {
    ffi_panic_boundary! {
        VERSION_NUM
    }
}

/// Frees a string quiver allocated for the caller (`quiver_client_cookies_export`,
/// `quiver_client_cookies_header`). NULL is a no-op. Any thread. Never pass it anything else,
/// nor a string whose bytes were changed.
#[no_mangle]
pub extern "C" fn quiver_string_free(text: *mut c_char) {
    ffi_panic_boundary! {
        free_c_string(text)
    }
}
