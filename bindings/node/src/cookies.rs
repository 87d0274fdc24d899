//! The client's cookie jar (core's [`CookieJar`]) for JavaScript; `index.js` wraps it as
//! `client.cookies`.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use napi_derive::napi;
use quiver_core::CookieJar;

use crate::errors;

/// One cookie in the jar.
#[napi(object, namespace = "native")]
pub struct CookieEntry {
    /// The cookie's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The host it belongs to (without a leading dot).
    pub domain: String,
    /// True when only that exact host gets it (no `Domain` attribute).
    pub host_only: bool,
    /// The path prefix it is sent for.
    pub path: String,
    /// Sent only over https (and to loopback hosts).
    pub secure: bool,
    /// Marked `HttpOnly`.
    pub http_only: bool,
    /// The `SameSite` attribute as sent (`Strict`, `Lax`, `None`); absent without one.
    pub same_site: Option<String>,
    /// When it expires, in milliseconds since the Unix epoch; absent for a session cookie.
    pub expires: Option<f64>,
}

impl From<quiver_core::CookieInfo> for CookieEntry {
    fn from(c: quiver_core::CookieInfo) -> Self {
        CookieEntry {
            expires: c.expires.map(|t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_secs_f64() * 1000.0,
                Err(before) => -before.duration().as_secs_f64() * 1000.0,
            }),
            name: c.name,
            value: c.value,
            domain: c.domain,
            host_only: c.host_only,
            path: c.path,
            secure: c.secure,
            http_only: c.http_only,
            same_site: c.same_site,
        }
    }
}

/// A client's cookie jar: what responses set is kept and sent back to matching requests.
#[napi(namespace = "native")]
pub struct NativeCookieJar {
    jar: Arc<CookieJar>,
}

impl NativeCookieJar {
    pub(crate) fn new(jar: Arc<CookieJar>) -> NativeCookieJar {
        NativeCookieJar { jar }
    }
}

#[napi(namespace = "native")]
impl NativeCookieJar {
    /// Every unexpired cookie.
    #[napi]
    pub fn list(&self) -> Vec<CookieEntry> {
        self.jar
            .cookies()
            .into_iter()
            .map(CookieEntry::from)
            .collect()
    }

    /// The cookies a request to `url` would carry.
    #[napi]
    pub fn get(&self, url: String) -> napi::Result<Vec<CookieEntry>> {
        let cookies = self.jar.cookies_for(&url).map_err(|e| errors::to_js(&e))?;
        Ok(cookies.into_iter().map(CookieEntry::from).collect())
    }

    /// Stores a cookie as if `url` had answered with `set-cookie: {setCookie}`; a refused one
    /// throws `invalid_header` saying why.
    #[napi]
    pub fn set(&self, url: String, set_cookie: String) -> napi::Result<()> {
        self.jar
            .set(&url, &set_cookie)
            .map_err(|e| errors::to_js(&e))
    }

    /// Removes the cookie `name` set for exactly `domain` and `path`; true if there was one.
    #[napi]
    pub fn remove(&self, domain: String, path: String, name: String) -> bool {
        self.jar.remove(&domain, &path, &name)
    }

    /// Removes every cookie, or only those of the host `domain`.
    #[napi]
    pub fn clear(&self, domain: Option<String>) {
        self.jar.clear(domain.as_deref());
    }

    /// The unexpired cookies in the Netscape cookie-file format (`curl -c`).
    #[napi]
    pub fn export_netscape(&self) -> String {
        self.jar.export_netscape()
    }

    /// Adds the cookies of a Netscape cookie file; returns how many were stored. A malformed
    /// line throws `invalid_header` naming its number.
    #[napi]
    pub fn import_netscape(&self, text: String) -> napi::Result<u32> {
        let n = self
            .jar
            .import_netscape(&text)
            .map_err(|e| errors::to_js(&e))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
