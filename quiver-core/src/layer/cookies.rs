//! The client's cookie jar (RFC 6265, `cookie_store`): what responses set is kept and sent back
//! to matching requests; the public suffix list (`psl`) refuses cookies for `co.uk` and the
//! like. Export and import in the Netscape cookie-file format curl reads and writes.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use cookie_store::{Cookie, CookieDomain, CookieExpiration, CookieStore, RawCookie};
use http::{HeaderMap, HeaderValue};
use url::Url;

use crate::error::{Error, ErrorKind, Result};

/// One cookie in the jar, as [`CookieJar::cookies`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieInfo {
    /// The cookie's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The host it belongs to (without a leading dot).
    pub domain: String,
    /// True when only that exact host gets it (no `Domain` attribute); false when its
    /// subdomains do too.
    pub host_only: bool,
    /// The path prefix it is sent for.
    pub path: String,
    /// Sent only over https (and to loopback hosts, as browsers do).
    pub secure: bool,
    /// Marked `HttpOnly`.
    pub http_only: bool,
    /// The `SameSite` attribute as sent (`Strict`, `Lax`, `None`), if any.
    pub same_site: Option<String>,
    /// When it expires; `None` for a session cookie (lives as long as the client).
    pub expires: Option<SystemTime>,
}

/// A client's cookie jar. Thread-safe; its lock is held only while a request's cookies are
/// looked up or a response's are stored, never across a wait.
#[derive(Default)]
pub struct CookieJar {
    store: Mutex<CookieStore>,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar")
            .field("cookies", &self.cookies().len())
            .finish()
    }
}

fn parse_url(url: &str) -> Result<Url> {
    Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("`{url}` is not an absolute http(s) URL"),
            )
        })
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CookieStore> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a cookie as if `url` had answered with `set-cookie: {set_cookie}` (attributes
    /// included: `a=1; Path=/; Max-Age=60`). A cookie the rules refuse (another domain, a
    /// public suffix, already expired) is an `invalid_header` error saying why.
    pub fn set(&self, url: &str, set_cookie: &str) -> Result<()> {
        let url = parse_url(url)?;
        let raw = RawCookie::parse(set_cookie.to_owned()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidHeader,
                format!("cannot parse cookie `{}`: {e}", set_cookie.escape_debug()),
            )
        })?;
        self.insert(&raw, &url).map_err(|why| {
            Error::new(
                ErrorKind::InvalidHeader,
                format!("cookie `{}` refused for {url}: {why}", raw.name()),
            )
        })
    }

    /// Every unexpired cookie.
    pub fn cookies(&self) -> Vec<CookieInfo> {
        self.lock().iter_unexpired().map(info).collect()
    }

    /// The cookies a request to `url` would carry.
    pub fn cookies_for(&self, url: &str) -> Result<Vec<CookieInfo>> {
        let url = parse_url(url)?;
        Ok(self.lock().matches(&url).into_iter().map(info).collect())
    }

    /// Removes the cookie `name` set for exactly `domain` and `path`; true if there was one.
    pub fn remove(&self, domain: &str, path: &str, name: &str) -> bool {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        self.lock().remove(&domain, path, name).is_some()
    }

    /// Removes every cookie (`domain`: only those of that host).
    pub fn clear(&self, domain: Option<&str>) {
        let mut store = self.lock();
        match domain {
            None => store.clear(),
            Some(d) => {
                let d = d.trim_start_matches('.').to_ascii_lowercase();
                let doomed: Vec<(String, String, String)> = store
                    .iter_any()
                    .filter(|c| c.domain.as_cow().is_some_and(|cd| cd == d))
                    .map(|c| (d.clone(), String::from(&c.path), c.name().to_owned()))
                    .collect();
                for (domain, path, name) in doomed {
                    store.remove(&domain, &path, &name);
                }
            }
        }
    }

    /// The unexpired cookies in the Netscape cookie-file format (`curl -c`): one line per
    /// cookie, tab-separated domain, subdomains flag, path, secure flag, expiry (Unix seconds,
    /// 0 for a session cookie), name and value; `HttpOnly` ones prefixed `#HttpOnly_`.
    pub fn export_netscape(&self) -> String {
        let mut out =
            String::from("# Netscape HTTP Cookie File\n# Written by quiver; curl -b reads it.\n\n");
        for c in self.cookies() {
            let flag = |b: bool| if b { "TRUE" } else { "FALSE" };
            let expires = c
                .expires
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs().max(1));
            out.push_str(&format!(
                "{}{}{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                if c.http_only { "#HttpOnly_" } else { "" },
                if c.host_only { "" } else { "." },
                c.domain,
                flag(!c.host_only),
                c.path,
                flag(c.secure),
                expires,
                c.name,
                c.value
            ));
        }
        out
    }

    /// Adds the cookies of a Netscape cookie file (`curl -c` output, or
    /// [`export_netscape`](CookieJar::export_netscape)'s); expired ones are skipped. Returns
    /// how many were stored; a malformed line is an `invalid_header` error naming its number.
    pub fn import_netscape(&self, text: &str) -> Result<usize> {
        let mut stored = 0;
        for (number, line) in text.lines().enumerate() {
            let (http_only, line) = match line.strip_prefix("#HttpOnly_") {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("cookie file line {}: {why}", number + 1),
                )
            };
            let fields: Vec<&str> = line.split('\t').collect();
            let [domain, subdomains, path, secure, expires, name, value] = fields[..] else {
                return Err(bad("expected 7 tab-separated fields"));
            };
            let expires: i64 = expires.trim().parse().map_err(|_| bad("bad expiry"))?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs() as i64;
            if expires != 0 && expires <= now {
                continue;
            }
            let host = domain.trim_start_matches('.');
            let secure = secure.eq_ignore_ascii_case("TRUE");
            let mut cookie = format!("{name}={value}; Path={path}");
            if subdomains.eq_ignore_ascii_case("TRUE") {
                cookie.push_str(&format!("; Domain={host}"));
            }
            if secure {
                cookie.push_str("; Secure");
            }
            if http_only {
                cookie.push_str("; HttpOnly");
            }
            if expires != 0 {
                cookie.push_str(&format!("; Max-Age={}", expires - now));
            }
            let scheme = if secure { "https" } else { "http" };
            let url = format!("{scheme}://{}/", bracket_ipv6(host));
            self.set(&url, &cookie).map_err(|e| bad(e.message()))?;
            stored += 1;
        }
        Ok(stored)
    }

    /// The `cookie` header a request to `url` carries, if any cookie matches.
    pub(crate) fn header_for(&self, url: &Url) -> Option<HeaderValue> {
        let store = self.lock();
        let mut pairs = store.get_request_values(url).peekable();
        pairs.peek()?;
        let joined: Vec<String> = pairs.map(|(n, v)| format!("{n}={v}")).collect();
        HeaderValue::from_str(&joined.join("; ")).ok()
    }

    /// Stores what a response from `url` sets; cookies the rules refuse are skipped, as
    /// browsers do.
    pub(crate) fn store_from(&self, url: &Url, headers: &HeaderMap) {
        let mut values = headers.get_all(http::header::SET_COOKIE).iter().peekable();
        if values.peek().is_none() {
            return;
        }
        for value in values {
            let Ok(text) = value.to_str() else { continue };
            if let Ok(raw) = RawCookie::parse(text.to_owned()) {
                let _refused = self.insert(&raw, url);
            }
        }
    }

    /// RFC 6265 section 5.3 with the public suffix step: a `Domain` that is a public suffix is
    /// refused unless it is the request's own host (then the cookie is host-only).
    fn insert(&self, raw: &RawCookie<'_>, url: &Url) -> std::result::Result<(), String> {
        let mut cookie = Cookie::try_from_raw_cookie(raw, url).map_err(|e| e.to_string())?;
        if let CookieDomain::Suffix(domain) = &cookie.domain {
            let public = psl::suffix(domain.as_bytes())
                .filter(|s| s.is_known())
                .is_some_and(|s| s == domain.as_bytes());
            if public {
                if url.host_str() == Some(domain.as_str()) {
                    cookie.domain = CookieDomain::host_only(url).map_err(|e| e.to_string())?;
                } else {
                    return Err(format!("`{domain}` is a public suffix"));
                }
            }
        }
        self.lock()
            .insert(cookie.into_owned(), url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn info(c: &Cookie<'_>) -> CookieInfo {
    let (domain, host_only) = match &c.domain {
        CookieDomain::HostOnly(d) => (d.clone(), true),
        CookieDomain::Suffix(d) => (d.clone(), false),
        _ => (String::new(), true),
    };
    CookieInfo {
        name: c.name().to_owned(),
        value: c.value().to_owned(),
        domain,
        host_only,
        path: String::from(&c.path),
        secure: c.secure().unwrap_or(false),
        http_only: c.http_only().unwrap_or(false),
        same_site: c.same_site().map(|s| s.to_string()),
        expires: match &c.expires {
            CookieExpiration::AtUtc(t) => Some(SystemTime::from(*t)),
            CookieExpiration::SessionEnd => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(jar: &CookieJar, url: &str) -> Option<String> {
        jar.header_for(&Url::parse(url).unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn stores_and_matches_by_domain_path_and_secure() {
        let jar = CookieJar::new();
        let url = Url::parse("http://www.example.com/a/b").unwrap();
        let mut h = HeaderMap::new();
        for v in [
            "host=1",
            "sub=2; Domain=example.com; Path=/",
            "deep=3; Path=/a",
            "sec=4; Secure; Path=/",
            "site=5; Domain=co.uk",
            "other=6; Domain=example.org",
            "gone=7; Max-Age=0",
        ] {
            h.append(http::header::SET_COOKIE, HeaderValue::from_static(v));
        }
        jar.store_from(&url, &h);
        let names: Vec<String> = {
            let mut n: Vec<String> = jar.cookies().into_iter().map(|c| c.name).collect();
            n.sort();
            n
        };
        assert_eq!(names, ["deep", "host", "sec", "sub"]);
        let h = header(&jar, "http://www.example.com/a/x").unwrap();
        assert!(h.contains("host=1") && h.contains("sub=2") && h.contains("deep=3"));
        assert!(!h.contains("sec=4"), "Secure cookie over http: {h}");
        assert!(header(&jar, "https://www.example.com/")
            .unwrap()
            .contains("sec=4"));
        let h = header(&jar, "http://api.example.com/a").unwrap();
        assert_eq!(h, "sub=2");
        assert_eq!(header(&jar, "http://example.org/"), None);
    }

    #[test]
    fn public_suffix_and_refusals_are_errors_when_set_by_hand() {
        let jar = CookieJar::new();
        let e = jar
            .set("http://www.example.co.uk/", "a=1; Domain=co.uk")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidHeader);
        assert!(e.message().contains("public suffix"), "{e}");
        assert!(jar
            .set("http://www.example.co.uk/", "a=1; Domain=example.co.uk")
            .is_ok());
        assert!(jar.set("http://a.com/", "b=1; Domain=b.com").is_err());
        assert!(jar.set("ftp://a.com/", "b=1").is_err());
        assert_eq!(jar.cookies().len(), 1);
    }

    #[test]
    fn netscape_round_trip() {
        let jar = CookieJar::new();
        jar.set(
            "https://example.com/",
            "a=1; Domain=example.com; Path=/; Secure; HttpOnly; Max-Age=3600; SameSite=Lax",
        )
        .unwrap();
        jar.set("http://host.example.com/p/q", "b=2").unwrap();
        let text = jar.export_netscape();
        assert!(
            text.contains("#HttpOnly_.example.com\tTRUE\t/\tTRUE\t"),
            "{text}"
        );
        assert!(
            text.contains("host.example.com\tFALSE\t/p\tFALSE\t0\tb\t2"),
            "{text}"
        );
        let copy = CookieJar::new();
        assert_eq!(copy.import_netscape(&text).unwrap(), 2);
        let mut a = jar.cookies();
        let mut b = copy.cookies();
        a.sort_by(|x, y| x.name.cmp(&y.name));
        b.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (
                    &x.name,
                    &x.value,
                    &x.domain,
                    x.host_only,
                    &x.path,
                    x.secure,
                    x.http_only
                ),
                (
                    &y.name,
                    &y.value,
                    &y.domain,
                    y.host_only,
                    &y.path,
                    y.secure,
                    y.http_only
                )
            );
        }
        let err = copy.import_netscape("bad line").unwrap_err();
        assert!(err.message().contains("line 1"), "{err}");
        assert_eq!(
            copy.import_netscape("example.com\tFALSE\t/\tFALSE\t1\told\tx\n")
                .unwrap(),
            0
        );
    }

    #[test]
    fn clear_and_remove() {
        let jar = CookieJar::new();
        jar.set("http://a.com/", "x=1").unwrap();
        jar.set("http://b.com/", "y=1").unwrap();
        assert!(jar.remove("a.com", "/", "x"));
        assert!(!jar.remove("a.com", "/", "x"));
        jar.set("http://a.com/", "x=1").unwrap();
        jar.clear(Some("a.com"));
        assert_eq!(jar.cookies().len(), 1);
        jar.clear(None);
        assert!(jar.cookies().is_empty());
    }
}
