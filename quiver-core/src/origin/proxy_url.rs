//! Proxy URLs: `http(s)://[user:password@]host:port` (credentials as a Basic value) and
//! `socks5(h)://[user:password@]host[:port]`, with secrets kept out of error messages.

use std::fmt;

use super::Origin;
use crate::error::{Error, ErrorKind, Result};

/// Parses `http://[user:password@]host:port` (or https); credentials become a Basic
/// Proxy-Authorization value.
pub(crate) fn parse_proxy_url(url: &str) -> Result<(Origin, Option<http::HeaderValue>)> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("proxy `{}`: {why}", redact(url)),
        )
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL (expected http://host:port)"))?;
    let rest = rest.trim_end_matches('/');
    let (credentials, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, rest),
    };
    let origin = Origin::parse(&format!("{scheme}://{hostport}")).map_err(|e| bad(e.message()))?;
    let authorization = match credentials {
        Some(userinfo) => {
            let decoded = percent_decode(userinfo)
                .ok_or_else(|| bad("bad percent-encoding in the credentials"))?;
            let value = format!("Basic {}", base64(decoded.as_bytes()));
            Some(http::HeaderValue::from_str(&value).map_err(|_| bad("bad credentials"))?)
        }
        None => None,
    };
    Ok((origin, authorization))
}

/// A `socks5://` (names resolved here) or `socks5h://` (names sent to the proxy) proxy URL.
#[derive(Clone)]
pub(crate) struct SocksUrl {
    /// Where the proxy listens (port 1080 unless given).
    pub origin: Origin,
    /// `socks5h`: the proxy resolves the target's name.
    pub remote_dns: bool,
    /// RFC 1929 username and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for SocksUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password never reaches logs.
        f.debug_struct("SocksUrl")
            .field("origin", &self.origin)
            .field("remote_dns", &self.remote_dns)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

/// Parses a SOCKS proxy URL; `None` when `url` is not one.
pub(crate) fn parse_socks_url(url: &str) -> Option<Result<SocksUrl>> {
    let (scheme, rest) = url.split_once("://")?;
    let remote_dns = match scheme.to_ascii_lowercase().as_str() {
        "socks5" => false,
        "socks5h" => true,
        _ => return None,
    };
    let bad = |why: &str| Error::invalid_config(format!("proxy `{}`: {why}", redact(url)));
    let rest = rest.trim_end_matches('/');
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let has_port = match hostport.rsplit_once(']') {
        Some((_, after)) => after.starts_with(':'),
        None => hostport.contains(':'),
    };
    let port = if has_port { "" } else { ":1080" };
    Some((|| {
        let origin =
            Origin::parse(&format!("http://{hostport}{port}")).map_err(|e| bad(e.message()))?;
        let credentials = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let decode = |s| {
                    percent_decode(s).ok_or_else(|| bad("bad percent-encoding in the credentials"))
                };
                Some((decode(user)?, decode(pass)?))
            }
            None => None,
        };
        Ok(SocksUrl {
            origin,
            remote_dns,
            credentials,
        })
    })())
}

fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Standard base64 (RFC 4648, padded), for Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_and_urls() {
        assert_eq!(base64(b"quiver:secret"), "cXVpdmVyOnNlY3JldA==");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
        let (origin, auth) = parse_proxy_url("http://quiver:secret@127.0.0.1:3128").unwrap();
        assert_eq!(origin.to_string(), "http://127.0.0.1:3128");
        assert_eq!(auth.unwrap(), "Basic cXVpdmVyOnNlY3JldA==");
        let (origin, auth) = parse_proxy_url("https://proxy.example/").unwrap();
        assert_eq!(origin.port(), 443);
        assert!(auth.is_none());
        let err = parse_proxy_url("ftp://user:pw@proxy").unwrap_err();
        assert!(
            !err.message().contains("pw"),
            "credentials are not echoed: {err}"
        );
        assert!(parse_proxy_url("proxy:3128").is_err());
    }
}
