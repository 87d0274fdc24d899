//! The panic boundary: every exported function body runs inside [`ffi_panic_boundary!`], so a
//! Rust panic becomes `QUIVER_RESULT_PANIC` (or NULL / 0 / false) instead of unwinding into C.

use std::ptr::{null, null_mut};

use crate::error::{quiver_class, quiver_result};
use crate::response::quiver_http_version;

/// What an exported function returns when it fails before doing its work (a panic, a NULL or
/// otherwise unusable argument): functions returning [`quiver_result`] return the failure's
/// code; the others return NULL, 0 or false, as their documentation says.
pub(crate) trait FailureValue {
    fn failure(result: quiver_result) -> Self;
}

impl FailureValue for quiver_result {
    fn failure(result: quiver_result) -> Self {
        result
    }
}

impl<T> FailureValue for *mut T {
    fn failure(_: quiver_result) -> Self {
        null_mut()
    }
}

impl<T> FailureValue for *const T {
    fn failure(_: quiver_result) -> Self {
        null()
    }
}

/// File descriptors (`c_int`): -1, never a valid descriptor.
impl FailureValue for std::ffi::c_int {
    fn failure(_: quiver_result) -> Self {
        -1
    }
}

macro_rules! failure_is_default {
    ($($t:ty),*) => {
        $(impl FailureValue for $t {
            fn failure(_: quiver_result) -> Self {
                <$t>::default()
            }
        })*
    };
}
failure_is_default!(
    (),
    bool,
    u16,
    u32,
    u64,
    usize,
    quiver_class,
    quiver_http_version
);

/// Runs an exported function's body, turning a panic into the return type's failure value.
///
/// The body is a closure: `return` inside it returns from the exported function.
macro_rules! ffi_panic_boundary {
    ( $($tt:tt)* ) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($tt)* })) {
            Ok(ret) => ret,
            Err(_) => $crate::panic::FailureValue::failure($crate::error::quiver_result::Panic),
        }
    };
}

pub(crate) use ffi_panic_boundary;

#[cfg(test)]
mod tests {
    use super::*;

    fn result_fn(fail: bool) -> quiver_result {
        ffi_panic_boundary! {
            if fail {
                panic!("a bug");
            }
            quiver_result::Ok
        }
    }

    fn pointer_fn(fail: bool) -> *const u8 {
        ffi_panic_boundary! {
            if fail {
                panic!("a bug");
            }
            b"x".as_ptr()
        }
    }

    #[test]
    fn a_panic_becomes_the_panic_code_or_null() {
        assert_eq!(result_fn(false), quiver_result::Ok);
        assert_eq!(result_fn(std::hint::black_box(true)), quiver_result::Panic);
        assert!(!pointer_fn(false).is_null());
        assert!(pointer_fn(std::hint::black_box(true)).is_null());
    }
}
