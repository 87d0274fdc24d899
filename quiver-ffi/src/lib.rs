//! C ABI for Quiver (`libquiver.so`, `libquiver.a`, `include/quiver.h`).
//!
//! The ABI itself lands with its own issue; this crate is the shell it grows in.
#![deny(missing_docs)]

/// Returns the library version as a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn quiver_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
