//! `quiver_mime`: a `multipart/form-data` form built part by part, in the spirit of curl's
//! `curl_mime` (text fields, copied bytes, files streamed from disk, body sources), handed to a
//! request with `quiver_request_set_mime`. Core's `Multipart` does the encoding; this file only
//! keeps the parts until the request is sent.

use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use quiver_core::{BodyStream, Multipart, Part};

use crate::cancel::Signal;
use crate::error::quiver_result;
use crate::ffi::{
    box_castable, free_box, to_boxed_mut_ptr, try_callback, try_cstr, try_cstr_bytes,
    try_mut_from_ptr, try_slice, try_str,
};
use crate::panic::ffi_panic_boundary;
use crate::request::{quiver_body_read_cb, quiver_release_cb, BodySource};

/// A `multipart/form-data` form: parts in the order they were added.
///
/// One thread at a time (it may move between threads). Free it with `quiver_mime_free`, unless
/// it was given to `quiver_request_set_mime`, which consumes it (in every case, even when that
/// call fails). Nothing about a part is checked when it is added: a control character in a
/// name, file name or content type, or a file that cannot be read, fails the request it goes
/// with when that is sent (`invalid_body`).
pub struct quiver_mime {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_mime`.
#[derive(Default)]
pub(crate) struct Form {
    parts: Vec<PartSpec>,
}

box_castable!(quiver_mime => Form);

/// One part as C described it; made into core's `Part` when the request is sent.
struct PartSpec {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    content: Content,
}

enum Content {
    Bytes(Bytes),
    File(PathBuf),
    Source(BodySource, Option<u64>),
}

impl Form {
    /// Core's form. `ended` stops source parts from being read once the call is over.
    pub(crate) fn into_multipart(self, ended: &Arc<Signal>) -> Multipart {
        self.parts.into_iter().fold(Multipart::new(), |form, spec| {
            let mut part = match spec.content {
                Content::Bytes(b) => Part::bytes(&spec.name, b),
                Content::File(path) => Part::file(&spec.name, path),
                Content::Source(source, len) => {
                    let stream: BodyStream = Box::pin(source.into_stream(ended.clone()));
                    Part::stream(&spec.name, stream, len)
                }
            };
            if let Some(filename) = &spec.filename {
                part = part.filename(filename);
            }
            if let Some(content_type) = &spec.content_type {
                part = part.content_type(content_type);
            }
            form.part(part)
        })
    }
}

/// An optional NUL-terminated UTF-8 argument: `Ok(None)` for NULL, `Err` when not UTF-8.
fn optional_str(ptr: *const c_char) -> Result<Option<String>, quiver_result> {
    match try_cstr(ptr).map(|s| s.to_str()) {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s.to_owned())),
        Some(Err(_)) => Err(quiver_result::InvalidArgument),
    }
}

/// A file path from C: any bytes on Unix, UTF-8 elsewhere.
fn path_from(bytes: &[u8]) -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes).ok().map(PathBuf::from)
    }
}

/// Makes an empty form. NULL only on a panic. Free it with `quiver_mime_free`, or give it to
/// `quiver_request_set_mime`.
#[no_mangle]
pub extern "C" fn quiver_mime_new() -> *mut quiver_mime {
    ffi_panic_boundary! {
        to_boxed_mut_ptr::<quiver_mime>(Form::default())
    }
}

/// Frees a form that was not given to a request; its source parts are released. NULL is a
/// no-op.
#[no_mangle]
pub extern "C" fn quiver_mime_free(mime: *mut quiver_mime) {
    ffi_panic_boundary! {
        free_box(mime)
    }
}

/// Adds a text field: `name` and `value`, NUL-terminated UTF-8, copied. Not UTF-8:
/// `QUIVER_RESULT_INVALID_ARGUMENT` (nothing is added).
#[no_mangle]
pub extern "C" fn quiver_mime_add_text(
    mime: *mut quiver_mime,
    name: *const c_char,
    value: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let form = try_mut_from_ptr!(mime);
        let name = try_str!(name);
        let value = try_str!(value);
        form.parts.push(PartSpec {
            name: name.to_owned(),
            filename: None,
            content_type: None,
            content: Content::Bytes(Bytes::copy_from_slice(value.as_bytes())),
        });
        quiver_result::Ok
    }
}

/// Adds a part of `len` bytes at `data`, copied (`data` may be NULL when `len` is 0).
/// `filename` (may be NULL: none) makes it a file upload; `content_type` (may be NULL: none
/// sent) is its `content-type`. Strings are NUL-terminated UTF-8, copied.
#[no_mangle]
pub extern "C" fn quiver_mime_add_data(
    mime: *mut quiver_mime,
    name: *const c_char,
    data: *const u8,
    len: usize,
    filename: *const c_char,
    content_type: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let form = try_mut_from_ptr!(mime);
        let name = try_str!(name);
        let data = try_slice!(data, len);
        let (filename, content_type) = match (optional_str(filename), optional_str(content_type)) {
            (Ok(f), Ok(c)) => (f, c),
            (Err(code), _) | (_, Err(code)) => return code,
        };
        form.parts.push(PartSpec {
            name: name.to_owned(),
            filename,
            content_type,
            content: Content::Bytes(Bytes::copy_from_slice(data)),
        });
        quiver_result::Ok
    }
}

/// Adds the file at `path` (NUL-terminated, copied; any bytes on Unix), streamed from disk
/// chunk by chunk as the connection can send, never read whole. The file is opened and its
/// size read when the request is sent (a missing file fails it with `invalid_body`; one that
/// cannot be read then fails it with `body_stream`), so the form's `content-length` is known.
/// `filename` (NULL: the path's last component) and `content_type` (NULL:
/// `application/octet-stream`) are NUL-terminated UTF-8, copied.
#[no_mangle]
pub extern "C" fn quiver_mime_add_file(
    mime: *mut quiver_mime,
    name: *const c_char,
    path: *const c_char,
    filename: *const c_char,
    content_type: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let form = try_mut_from_ptr!(mime);
        let name = try_str!(name);
        let Some(path) = path_from(try_cstr_bytes!(path)) else {
            return quiver_result::InvalidArgument;
        };
        let (filename, content_type) = match (optional_str(filename), optional_str(content_type)) {
            (Ok(f), Ok(c)) => (f, c),
            (Err(code), _) | (_, Err(code)) => return code,
        };
        form.parts.push(PartSpec {
            name: name.to_owned(),
            filename,
            content_type,
            content: Content::File(path),
        });
        quiver_result::Ok
    }
}

/// Adds a part whose content `read` supplies on demand, as `quiver_request_set_body_source`
/// does for a whole body (same callbacks, same threads, pulled only as the connection can
/// send). `len` is its exact length in bytes, or -1 when unknown (the whole form is then sent
/// chunked; a source that delivers another length than it announced fails the request).
/// `filename` and `content_type` may be NULL (none sent).
///
/// quiver calls `release(userdata)` exactly once (`release` may be NULL) when it needs the
/// source no more: after the request, or when the form or the request is freed unsent. On
/// failure (a NULL or unusable argument) nothing is added and `release` is not called.
#[no_mangle]
pub extern "C" fn quiver_mime_add_source(
    mime: *mut quiver_mime,
    name: *const c_char,
    read: quiver_body_read_cb,
    release: quiver_release_cb,
    userdata: *mut c_void,
    len: i64,
    filename: *const c_char,
    content_type: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let form = try_mut_from_ptr!(mime);
        let name = try_str!(name);
        let read = try_callback!(read);
        let (filename, content_type) = match (optional_str(filename), optional_str(content_type)) {
            (Ok(f), Ok(c)) => (f, c),
            (Err(code), _) | (_, Err(code)) => return code,
        };
        form.parts.push(PartSpec {
            name: name.to_owned(),
            filename,
            content_type,
            content: Content::Source(BodySource::new(read, release, userdata), u64::try_from(len).ok()),
        });
        quiver_result::Ok
    }
}
