//! Every cast between a C pointer and a Rust value, in one place.
//!
//! Each C handle type is an opaque struct that implements [`Castable`], which names the Rust
//! type behind it and whether C holds it as a `Box` (one owner) or an `Arc` (shared, freed by
//! dropping one reference). The `try_*!` macros turn a NULL argument into
//! `QUIVER_RESULT_NULL_PARAMETER` (or NULL / 0 for functions that do not return a result) and
//! unusable text into `QUIVER_RESULT_INVALID_ARGUMENT`; no other module dereferences a raw
//! pointer.
//!
//! Like rustls-ffi, the exported functions are safe `extern "C" fn`s: the C caller promises
//! that every non-NULL pointer is what its type says, as the header documents.

use std::ffi::{c_char, CStr};
use std::sync::Arc;

/// C holds a `Box` of the Rust type: one owner, freed once.
pub(crate) struct OwnershipBox;

/// C holds one reference of an `Arc` of the Rust type: freeing drops that reference.
pub(crate) struct OwnershipArc;

/// Marks the two ownership kinds.
pub(crate) trait OwnershipMarker {}
impl OwnershipMarker for OwnershipBox {}
impl OwnershipMarker for OwnershipArc {}

/// Links an opaque C handle type to the Rust type behind it.
pub(crate) trait Castable {
    /// [`OwnershipBox`] or [`OwnershipArc`].
    type Ownership: OwnershipMarker;
    /// The Rust value the handle points at.
    type RustType;
}

/// Declares that C holds `$c` as a `Box<$rust>`.
macro_rules! box_castable {
    ($c:ty => $rust:ty) => {
        impl $crate::ffi::Castable for $c {
            type Ownership = $crate::ffi::OwnershipBox;
            type RustType = $rust;
        }
    };
}
pub(crate) use box_castable;

/// Declares that C holds `$c` as one reference of an `Arc<$rust>`.
macro_rules! arc_castable {
    ($c:ty => $rust:ty) => {
        impl $crate::ffi::Castable for $c {
            type Ownership = $crate::ffi::OwnershipArc;
            type RustType = $rust;
        }
    };
}
pub(crate) use arc_castable;

fn cast_const_ptr<C: Castable>(ptr: *const C) -> *const C::RustType {
    ptr.cast()
}

fn cast_mut_ptr<C: Castable<Ownership = OwnershipBox>>(ptr: *mut C) -> *mut C::RustType {
    ptr.cast()
}

/// Gives C ownership of a new boxed value.
pub(crate) fn to_boxed_mut_ptr<C: Castable<Ownership = OwnershipBox>>(
    value: C::RustType,
) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Gives C one reference of `value`.
pub(crate) fn to_arc_const_ptr<C: Castable<Ownership = OwnershipArc>>(
    value: Arc<C::RustType>,
) -> *const C {
    Arc::into_raw(value).cast()
}

/// A pointer C may borrow (never free) to a value that Rust keeps alive.
pub(crate) fn borrowed_ptr<C: Castable>(value: &C::RustType) -> *const C {
    (value as *const C::RustType).cast()
}

/// The value behind a handle, or `None` for NULL.
pub(crate) fn try_from<'a, C: Castable>(ptr: *const C) -> Option<&'a C::RustType> {
    // SAFETY: the C caller passes NULL or a live handle of this type (header contract).
    unsafe { cast_const_ptr(ptr).as_ref() }
}

/// The boxed value behind a handle, mutably, or `None` for NULL.
pub(crate) fn try_from_mut<'a, C: Castable<Ownership = OwnershipBox>>(
    ptr: *mut C,
) -> Option<&'a mut C::RustType> {
    // SAFETY: as `try_from`; boxed handles are used by one thread at a time (header contract).
    unsafe { cast_mut_ptr(ptr).as_mut() }
}

/// Takes ownership of a boxed handle back from C, or `None` for NULL.
pub(crate) fn try_box_from<C: Castable<Ownership = OwnershipBox>>(
    ptr: *mut C,
) -> Option<Box<C::RustType>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL boxed handles come from `to_boxed_mut_ptr` and are freed once.
    Some(unsafe { Box::from_raw(cast_mut_ptr(ptr)) })
}

/// A new reference to the `Arc` behind a handle (C keeps its own), or `None` for NULL.
pub(crate) fn clone_arc<C: Castable<Ownership = OwnershipArc>>(
    ptr: *const C,
) -> Option<Arc<C::RustType>> {
    if ptr.is_null() {
        return None;
    }
    let raw = cast_const_ptr(ptr);
    // SAFETY: non-NULL Arc handles come from `to_arc_const_ptr` and C still holds its
    // reference, so the count is at least one while we add ours.
    unsafe {
        Arc::increment_strong_count(raw);
        Some(Arc::from_raw(raw))
    }
}

/// Takes C's reference of an `Arc` handle back, or `None` for NULL.
pub(crate) fn try_arc_from<C: Castable<Ownership = OwnershipArc>>(
    ptr: *const C,
) -> Option<Arc<C::RustType>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: C gives back the reference it got from `to_arc_const_ptr`, once.
    Some(unsafe { Arc::from_raw(cast_const_ptr(ptr)) })
}

/// Drops C's reference of an `Arc` handle; NULL is a no-op.
pub(crate) fn free_arc<C: Castable<Ownership = OwnershipArc>>(ptr: *const C) {
    drop(try_arc_from(ptr));
}

/// Frees a boxed handle; NULL is a no-op.
pub(crate) fn free_box<C: Castable<Ownership = OwnershipBox>>(ptr: *mut C) {
    drop(try_box_from(ptr));
}

/// Gives C a string it frees with `quiver_string_free`.
pub(crate) fn to_c_string_ptr(text: std::ffi::CString) -> *mut c_char {
    text.into_raw()
}

/// Frees a string from [`to_c_string_ptr`]; NULL is a no-op.
pub(crate) fn free_c_string(ptr: *mut c_char) {
    if !ptr.is_null() {
        // SAFETY: non-NULL strings given here come from `to_c_string_ptr`, are freed once and
        // were not changed (header contract).
        drop(unsafe { std::ffi::CString::from_raw(ptr) });
    }
}

/// An out-parameter, or `None` for NULL.
pub(crate) fn try_out<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: out-parameters point at writable storage of their type (header contract).
    unsafe { ptr.as_mut() }
}

/// Writes `value` to an optional out-parameter (NULL: nothing is written). Only for values
/// that own nothing (lengths, borrowed pointers): an owning pointer would leak.
pub(crate) fn set_optional_out<T: Copy>(ptr: *mut T, value: T) {
    if let Some(out) = try_out(ptr) {
        *out = value;
    }
}

/// A NUL-terminated C string, or `None` for NULL.
pub(crate) fn try_cstr<'a>(ptr: *const c_char) -> Option<&'a CStr> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL strings are NUL-terminated and live for the call (header contract).
    Some(unsafe { CStr::from_ptr(ptr) })
}

/// `len` bytes at `ptr`; NULL is allowed (and means empty) only when `len` is 0.
pub(crate) fn try_bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` points at `len` readable bytes for the call (header contract).
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `&T` for a const handle argument; NULL returns the function's NULL-parameter value.
macro_rules! try_ref_from_ptr {
    ($var:expr) => {
        match $crate::ffi::try_from($var) {
            Some(v) => v,
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_ref_from_ptr;

/// A `&mut T` for a boxed handle argument; NULL returns the function's NULL-parameter value.
macro_rules! try_mut_from_ptr {
    ($var:expr) => {
        match $crate::ffi::try_from_mut($var) {
            Some(v) => v,
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_mut_from_ptr;

/// Takes a boxed handle argument back from C; NULL returns the NULL-parameter value.
macro_rules! try_box_from_ptr {
    ($var:expr) => {
        match $crate::ffi::try_box_from($var) {
            Some(v) => v,
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_box_from_ptr;

/// A new `Arc` reference for an Arc handle argument; NULL returns the NULL-parameter value.
macro_rules! try_clone_arc {
    ($var:expr) => {
        match $crate::ffi::clone_arc($var) {
            Some(v) => v,
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_clone_arc;

/// A required out-parameter as `&mut`; NULL returns the NULL-parameter value.
macro_rules! try_out_ptr {
    ($var:expr) => {
        match $crate::ffi::try_out($var) {
            Some(v) => v,
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_out_ptr;

/// A required callback; NULL returns the NULL-parameter value.
macro_rules! try_callback {
    ($var:expr) => {
        match $var {
            Some(f) => f,
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_callback;

/// A NUL-terminated UTF-8 string argument as `&str`: NULL returns the NULL-parameter value,
/// invalid UTF-8 the invalid-argument value.
macro_rules! try_str {
    ($var:expr) => {
        match $crate::ffi::try_cstr($var).map(|s| s.to_str()) {
            Some(Ok(s)) => s,
            Some(Err(_)) => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::InvalidArgument,
                )
            }
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_str;

/// A NUL-terminated string argument as bytes (any encoding); NULL returns the NULL-parameter
/// value.
macro_rules! try_cstr_bytes {
    ($var:expr) => {
        match $crate::ffi::try_cstr($var) {
            Some(s) => s.to_bytes(),
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_cstr_bytes;

/// A `(pointer, length)` byte argument as a slice; a NULL pointer with a non-zero length
/// returns the NULL-parameter value.
macro_rules! try_slice {
    ($ptr:expr, $len:expr) => {
        match $crate::ffi::try_bytes($ptr, $len) {
            Some(s) => s,
            None => {
                return $crate::panic::FailureValue::failure(
                    $crate::error::quiver_result::NullParameter,
                )
            }
        }
    };
}
pub(crate) use try_slice;

/// A raw `void *userdata` that C promises may be used from any thread (header contract).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserData(pub(crate) *mut std::ffi::c_void);

impl UserData {
    /// The pointer, to hand back to C. (A method, so closures capture the `Send` wrapper.)
    pub(crate) fn get(self) -> *mut std::ffi::c_void {
        self.0
    }
}

// SAFETY: the header documents that callbacks run on quiver's threads with this pointer; the C
// caller is responsible for what it points at being usable there.
unsafe impl Send for UserData {}
// SAFETY: as above; quiver never dereferences it, it only hands it back to C.
unsafe impl Sync for UserData {}
