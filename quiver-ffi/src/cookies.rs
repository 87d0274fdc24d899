//! `quiver_client_cookies_*`: a client's cookie jar (option `cookies`), read and written from C:
//! set a cookie, see what a request would carry, remove, clear, and export / import the
//! Netscape cookie-file format curl reads and writes. Core's `CookieJar` does the work.

use std::ffi::c_char;
use std::ptr::null_mut;
use std::sync::Arc;

use quiver_core::{CookieJar, Error, ErrorKind};

use crate::client::{quiver_client, ClientShared};
use crate::error::{c_string, quiver_error, quiver_result, set_error_out};
use crate::ffi::{
    set_optional_out, to_c_string_ptr, try_cstr, try_out_ptr, try_ref_from_ptr, try_slice, try_str,
};
use crate::panic::ffi_panic_boundary;

/// The client's jar, or the error that says why there is none to use.
fn jar(client: &ClientShared) -> Result<Arc<CookieJar>, Error> {
    if client.forked() {
        // The jar's lock may be held by a thread that does not exist in the child.
        return Err(Error::new(
            ErrorKind::Forked,
            "a client created before fork() was used in the child; create a new client there",
        ));
    }
    client.core().cookies().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidConfig,
            "the client keeps no cookies: build it with the option `cookies` set to true",
        )
    })
}

/// Hands C a NUL-terminated copy of `text` and its length.
fn string_out(text: &str, out: &mut *mut c_char, len: *mut usize) {
    let text = c_string(text);
    set_optional_out(len, text.as_bytes().len());
    *out = to_c_string_ptr(text);
}

/// Stores a cookie in the client's jar as if `url` (an absolute http(s) URL) had answered with
/// `set-cookie: <set_cookie>`, attributes included (`"a=1; Path=/; Max-Age=60"`); both
/// NUL-terminated UTF-8.
///
/// Every `quiver_client_cookies_*` call needs a client built with the option `cookies` set to
/// true; otherwise it returns `QUIVER_RESULT_INVALID_CONFIG` (with an `invalid_config` error
/// where the call has an `error` out-parameter). In a child process forked after the client
/// was built: `QUIVER_RESULT_FORKED`. The jar is shared with the client's requests and is
/// thread-safe: any thread, callbacks included; none of these calls waits for the network.
///
/// A cookie the rules refuse (another domain, a public suffix, already expired) or cannot
/// parse: `QUIVER_RESULT_INVALID_HEADER`, a bad URL: `QUIVER_RESULT_INVALID_URL`; when `error`
/// is not NULL, `*error` then receives the error saying why (free it with `quiver_error_free`).
#[no_mangle]
pub extern "C" fn quiver_client_cookies_set(
    client: *const quiver_client,
    url: *const c_char,
    set_cookie: *const c_char,
    error: *mut *mut quiver_error,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(error, null_mut());
        let client = try_ref_from_ptr!(client);
        let url = try_str!(url);
        let set_cookie = try_str!(set_cookie);
        match jar(client).and_then(|jar| jar.set(url, set_cookie)) {
            Ok(()) => quiver_result::Ok,
            Err(e) => set_error_out(error, e),
        }
    }
}

/// The value of the `cookie` header a request to `url` (an absolute http(s) URL,
/// NUL-terminated) would carry from the jar: `name=value` pairs joined with `"; "`, empty when
/// none match. `*header` receives a NUL-terminated string (free it with `quiver_string_free`)
/// and `*len`, when `len` is not NULL, its length. A bad URL: `QUIVER_RESULT_INVALID_URL`
/// (`*header` is then NULL). See `quiver_client_cookies_set` for the rest.
#[no_mangle]
pub extern "C" fn quiver_client_cookies_header(
    client: *const quiver_client,
    url: *const c_char,
    header: *mut *mut c_char,
    len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let header = try_out_ptr!(header);
        *header = null_mut();
        set_optional_out(len, 0);
        let client = try_ref_from_ptr!(client);
        let url = try_str!(url);
        match jar(client).and_then(|jar| jar.cookies_for(url)) {
            Ok(cookies) => {
                let pairs: Vec<String> =
                    cookies.iter().map(|c| format!("{}={}", c.name, c.value)).collect();
                string_out(&pairs.join("; "), header, len);
                quiver_result::Ok
            }
            Err(e) => quiver_result::from_kind(e.kind()),
        }
    }
}

/// Removes the cookie `name` set for exactly `domain` (a host; a leading dot is ignored) and
/// `path` (all NUL-terminated UTF-8); `*removed`, when `removed` is not NULL, says whether there
/// was one. See `quiver_client_cookies_set` for the rest.
#[no_mangle]
pub extern "C" fn quiver_client_cookies_remove(
    client: *const quiver_client,
    domain: *const c_char,
    path: *const c_char,
    name: *const c_char,
    removed: *mut bool,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(removed, false);
        let client = try_ref_from_ptr!(client);
        let domain = try_str!(domain);
        let path = try_str!(path);
        let name = try_str!(name);
        match jar(client) {
            Ok(jar) => {
                set_optional_out(removed, jar.remove(domain, path, name));
                quiver_result::Ok
            }
            Err(e) => quiver_result::from_kind(e.kind()),
        }
    }
}

/// Removes every cookie, or with `domain` (NUL-terminated; NULL: all) only those of that
/// host. See `quiver_client_cookies_set` for the rest.
#[no_mangle]
pub extern "C" fn quiver_client_cookies_clear(
    client: *const quiver_client,
    domain: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        let client = try_ref_from_ptr!(client);
        let domain = match try_cstr(domain).map(|d| d.to_str()) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(_)) => return quiver_result::InvalidArgument,
        };
        match jar(client) {
            Ok(jar) => {
                jar.clear(domain);
                quiver_result::Ok
            }
            Err(e) => quiver_result::from_kind(e.kind()),
        }
    }
}

/// The jar's unexpired cookies in the Netscape cookie-file format (`curl -c` writes it,
/// `curl -b` reads it): one line per cookie, tab-separated domain, subdomains flag, path,
/// secure flag, expiry (Unix seconds, 0 for a session cookie), name and value; `HttpOnly` ones
/// prefixed `#HttpOnly_`. `*text` receives a NUL-terminated string (free it with
/// `quiver_string_free`) and `*len`, when `len` is not NULL, its length. See
/// `quiver_client_cookies_set` for the rest.
#[no_mangle]
pub extern "C" fn quiver_client_cookies_export(
    client: *const quiver_client,
    text: *mut *mut c_char,
    len: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let text = try_out_ptr!(text);
        *text = null_mut();
        set_optional_out(len, 0);
        let client = try_ref_from_ptr!(client);
        match jar(client) {
            Ok(jar) => {
                string_out(&jar.export_netscape(), text, len);
                quiver_result::Ok
            }
            Err(e) => quiver_result::from_kind(e.kind()),
        }
    }
}

/// Adds the cookies of a Netscape cookie file (`len` bytes of UTF-8 at `text`, as
/// `quiver_client_cookies_export` or `curl -c` writes it; expired ones are skipped);
/// `*stored`, when `stored` is not NULL, receives how many were stored. A malformed line:
/// `QUIVER_RESULT_INVALID_HEADER` naming its number (in `*error` when `error` is not NULL; the
/// lines before it are stored); text that is not UTF-8: `QUIVER_RESULT_INVALID_ARGUMENT`. See
/// `quiver_client_cookies_set` for the rest.
#[no_mangle]
pub extern "C" fn quiver_client_cookies_import(
    client: *const quiver_client,
    text: *const c_char,
    len: usize,
    stored: *mut usize,
    error: *mut *mut quiver_error,
) -> quiver_result {
    ffi_panic_boundary! {
        set_optional_out(stored, 0);
        set_optional_out(error, null_mut());
        let client = try_ref_from_ptr!(client);
        let Ok(text) = std::str::from_utf8(try_slice!(text.cast::<u8>(), len)) else {
            return quiver_result::InvalidArgument;
        };
        match jar(client).and_then(|jar| jar.import_netscape(text)) {
            Ok(n) => {
                set_optional_out(stored, n);
                quiver_result::Ok
            }
            Err(e) => set_error_out(error, e),
        }
    }
}
