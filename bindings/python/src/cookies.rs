//! The native cookie jar behind `quiver.Cookies`: a client's jar (core's `Client::cookies`) or
//! one of its own, with core's operations as they are. The jar's lock is core's, held only for
//! the call itself.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use quiver_core::{CookieInfo, CookieJar};

use crate::errors;

/// A cookie jar shared with the client that fills it (or standing alone).
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeCookieJar {
    jar: Arc<CookieJar>,
}

impl NativeCookieJar {
    /// Wraps a client's jar.
    pub(crate) fn new(jar: Arc<CookieJar>) -> NativeCookieJar {
        NativeCookieJar { jar }
    }
}

/// A cookie as a dict: name, value, domain, host_only, path, secure, http_only, same_site and
/// expires (seconds since the epoch as a float, None for a session cookie).
fn to_dict<'py>(py: Python<'py>, c: &CookieInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &c.name)?;
    d.set_item("value", &c.value)?;
    d.set_item("domain", &c.domain)?;
    d.set_item("host_only", c.host_only)?;
    d.set_item("path", &c.path)?;
    d.set_item("secure", c.secure)?;
    d.set_item("http_only", c.http_only)?;
    d.set_item("same_site", c.same_site.as_deref())?;
    let expires = c.expires.map(|t| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    });
    d.set_item("expires", expires)?;
    Ok(d)
}

fn to_list<'py>(py: Python<'py>, cookies: &[CookieInfo]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for c in cookies {
        list.append(to_dict(py, c)?)?;
    }
    Ok(list)
}

/// The `set-cookie` value (and the URL to set it for) that recreates `c` in another jar.
fn recreate(c: &CookieInfo) -> Option<(String, String)> {
    let mut header = format!("{}={}; Path={}", c.name, c.value, c.path);
    if !c.host_only {
        header.push_str(&format!("; Domain={}", c.domain));
    }
    if c.secure {
        header.push_str("; Secure");
    }
    if c.http_only {
        header.push_str("; HttpOnly");
    }
    if let Some(same_site) = &c.same_site {
        header.push_str(&format!("; SameSite={same_site}"));
    }
    if let Some(expires) = c.expires {
        let left = expires.duration_since(SystemTime::now()).ok()?.as_secs();
        header.push_str(&format!("; Max-Age={}", left.max(1)));
    }
    let host = if c.domain.contains(':') {
        format!("[{}]", c.domain)
    } else {
        c.domain.clone()
    };
    let scheme = if c.secure { "https" } else { "http" };
    Some((format!("{scheme}://{host}/"), header))
}

#[pymethods]
impl NativeCookieJar {
    /// An empty jar of its own (not a client's).
    #[new]
    fn standalone() -> NativeCookieJar {
        NativeCookieJar::new(Arc::new(CookieJar::new()))
    }

    /// Stores a cookie as if `url` had answered `set-cookie: {set_cookie}`; a refused one is an
    /// `InvalidError` (kind `invalid_header`, or `invalid_url`) saying why.
    fn set(&self, py: Python<'_>, url: &str, set_cookie: &str) -> PyResult<()> {
        self.jar
            .set(url, set_cookie)
            .map_err(|e| errors::to_py(py, &e))
    }

    /// Every unexpired cookie, as dicts.
    fn cookies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        to_list(py, &self.jar.cookies())
    }

    /// The cookies a request to `url` would carry, as dicts.
    fn cookies_for<'py>(&self, py: Python<'py>, url: &str) -> PyResult<Bound<'py, PyList>> {
        let cookies = self
            .jar
            .cookies_for(url)
            .map_err(|e| errors::to_py(py, &e))?;
        to_list(py, &cookies)
    }

    /// Removes the cookie `name` of exactly `domain` and `path`; True if there was one.
    fn remove(&self, domain: &str, path: &str, name: &str) -> bool {
        self.jar.remove(domain, path, name)
    }

    /// Removes every cookie, or those of `domain`.
    #[pyo3(signature = (domain = None))]
    fn clear(&self, domain: Option<&str>) {
        self.jar.clear(domain);
    }

    /// The cookies in the Netscape cookie-file format (`curl -c`).
    fn export_netscape(&self) -> String {
        self.jar.export_netscape()
    }

    /// Adds the cookies of a Netscape cookie file; returns how many were stored.
    fn import_netscape(&self, py: Python<'_>, text: &str) -> PyResult<usize> {
        self.jar
            .import_netscape(text)
            .map_err(|e| errors::to_py(py, &e))
    }

    /// Copies every cookie of `other` (domain, path, flags and expiry kept) into this jar;
    /// returns how many were stored.
    fn copy_from(&self, py: Python<'_>, other: &NativeCookieJar) -> PyResult<usize> {
        let mut stored = 0;
        for c in other.jar.cookies() {
            if let Some((url, header)) = recreate(&c) {
                self.jar
                    .set(&url, &header)
                    .map_err(|e| errors::to_py(py, &e))?;
                stored += 1;
            }
        }
        Ok(stored)
    }
}
