//! Origins (scheme, host, port) and request targets: the one place URLs are parsed.

use std::fmt;
use std::net::IpAddr;

use http::uri::{PathAndQuery, Uri};

use crate::error::{Error, ErrorKind, Result};

mod proxy_url;
pub(crate) use self::proxy_url::{parse_proxy_url, parse_socks_url, SocksUrl};

/// The URL schemes quiver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Cleartext HTTP.
    Http,
    /// HTTP over TLS (or QUIC for HTTP/3).
    Https,
}

impl Scheme {
    /// The scheme's name as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port implied when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Scheme> {
        if s.eq_ignore_ascii_case("http") {
            Ok(Scheme::Http)
        } else if s.eq_ignore_ascii_case("https") {
            Ok(Scheme::Https)
        } else {
            Err(Error::new(
                ErrorKind::InvalidScheme,
                format!("unsupported scheme `{s}` (expected http or https)"),
            ))
        }
    }
}

/// Where a connection goes: scheme, lower-case host and port. Pools are keyed by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    host: Host,
    port: u16,
}

/// A host: a DNS name (lower-case) or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower-cased, without a trailing dot.
    Name(String),
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
}

impl Host {
    pub(crate) fn parse(raw: &str) -> Result<Host> {
        if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner
                .parse::<std::net::Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| {
                    Error::new(ErrorKind::InvalidUrl, format!("bad IPv6 literal `{raw}`"))
                });
        }
        if let Ok(ip) = raw.parse::<std::net::Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(ip)));
        }
        let name = raw.trim_end_matches('.').to_ascii_lowercase();
        // Numeric forms (`127.1`, `2130706433`, `0x7f.1`) are IPv4 addresses, as browsers and
        // the WHATWG URL standard read them: rules and NO_PROXY see what is connected to.
        if let Some(last) = name.rsplit('.').next() {
            if looks_numeric(last) {
                return parse_ipv4_numbers(&name)
                    .map(|ip| Host::Ip(IpAddr::V4(ip)))
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidUrl,
                            format!("`{raw}` is not a valid IPv4 address"),
                        )
                    });
            }
        }
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("bad host name `{raw}`"),
            ));
        }
        Ok(Host::Name(name))
    }

    /// The host as it appears in a URL authority (IPv6 in brackets).
    pub fn to_authority_string(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::Ip(IpAddr::V4(ip)) => ip.to_string(),
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        }
    }
}

/// Whether a host's last label makes it an IPv4 address (WHATWG URL: "ends in a number").
fn looks_numeric(label: &str) -> bool {
    !label.is_empty()
        && (label.bytes().all(|b| b.is_ascii_digit())
            || ((label.starts_with("0x") || label.starts_with("0X"))
                && label[2..].bytes().all(|b| b.is_ascii_hexdigit())))
}

/// One part of a numeric IPv4 host: decimal, hex (`0x`) or octal (a leading `0`).
fn ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or(part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|n| *n <= u64::from(u32::MAX))
}

/// The WHATWG IPv4 parser: up to four parts, the last one filling the remaining bytes.
fn parse_ipv4_numbers(host: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts
        .iter()
        .map(|p| ipv4_number(p))
        .collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) || *last >= 1u64 << (8 * (5 - numbers.len())) {
        return None;
    }
    let mut ip = *last;
    for (i, n) in init.iter().enumerate() {
        ip += n << (8 * (3 - i));
    }
    Some(std::net::Ipv4Addr::from(u32::try_from(ip).ok()?))
}

impl Origin {
    /// Builds an origin from its parts.
    pub fn new(scheme: Scheme, host: Host, port: u16) -> Origin {
        Origin { scheme, host, port }
    }

    /// The origin's scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The origin's host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The origin's port (defaulted from the scheme when the URL named none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when the port is the scheme's default.
    pub fn has_default_port(&self) -> bool {
        self.port == self.scheme.default_port()
    }

    /// The value of the `Host` header (and `:authority`) for this origin.
    pub fn authority(&self) -> String {
        if self.has_default_port() {
            self.host.to_authority_string()
        } else {
            format!("{}:{}", self.host.to_authority_string(), self.port)
        }
    }

    /// `scheme://authority` (no trailing slash), for building URLs on this origin.
    pub fn to_url_base(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.authority())
    }

    /// Parses an origin such as `https://api.example.com` or `http://[::1]:8080`
    /// (a path, if present, must be empty or `/`).
    pub fn parse(s: &str) -> Result<Origin> {
        let target = Target::parse(s)?;
        if target.path_and_query.as_str() != "/" {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("`{s}` is not an origin: it has a path or query"),
            ));
        }
        Ok(target.origin)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            self.scheme.as_str(),
            self.host.to_authority_string(),
            self.port
        )
    }
}

/// A parsed request URL: its origin plus the origin-form path and query.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where the request goes.
    pub origin: Origin,
    /// The request target in origin-form (`/path?query`), never empty.
    pub path_and_query: PathAndQuery,
}

impl Target {
    /// Parses an absolute `http` or `https` URL. Fragments are dropped; credentials are refused.
    pub fn parse(url: &str) -> Result<Target> {
        let without_fragment = url.split('#').next().unwrap_or_default();
        let uri: Uri = without_fragment.parse().map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidUrl,
                format!("cannot parse URL `{url}`"),
                e,
            )
        })?;
        let scheme = match uri.scheme_str() {
            Some(s) => Scheme::parse(s)?,
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("URL `{url}` is not absolute (no scheme)"),
                ))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| Error::new(ErrorKind::InvalidUrl, format!("URL `{url}` has no host")))?;
        if authority.as_str().contains('@') {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                "credentials in the URL are not supported; send an Authorization header",
            ));
        }
        let host = Host::parse(authority.host())?;
        let after_host = authority
            .as_str()
            .get(authority.host().len()..)
            .unwrap_or_default();
        let port = match authority.port() {
            Some(p) => p.as_u16(),
            None if after_host.is_empty() => scheme.default_port(),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("URL `{url}` has an invalid port"),
                ))
            }
        };
        if port == 0 {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("URL `{url}` has port 0"),
            ));
        }
        let path_and_query = match uri.path_and_query() {
            Some(pq) if !pq.as_str().is_empty() && pq.as_str().starts_with('/') => pq.clone(),
            Some(pq) if pq.as_str().starts_with('?') => format!("/{}", pq.as_str())
                .parse()
                .map_err(|e| Error::with_source(ErrorKind::InvalidUrl, "bad query", e))?,
            _ => PathAndQuery::from_static("/"),
        };
        Ok(Target {
            origin: Origin::new(scheme, host, port),
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("https://API.Example.com/a/b?c=d#frag").unwrap();
        assert_eq!(t.origin.to_string(), "https://api.example.com:443");
        assert_eq!(t.origin.authority(), "api.example.com");
        assert_eq!(t.path_and_query.as_str(), "/a/b?c=d");

        let t = Target::parse("http://[::1]:8080").unwrap();
        assert_eq!(t.origin.host(), &Host::Ip("::1".parse().unwrap()));
        assert_eq!(t.origin.authority(), "[::1]:8080");
        assert_eq!(t.path_and_query.as_str(), "/");

        let t = Target::parse("http://localhost?x=1").unwrap();
        assert_eq!(t.path_and_query.as_str(), "/?x=1");
        assert_eq!(t.origin.port(), 80);
    }

    #[test]
    fn rejects_bad_urls() {
        for (url, kind) in [
            ("ftp://example.com/", ErrorKind::InvalidScheme),
            ("/relative", ErrorKind::InvalidUrl),
            ("http://", ErrorKind::InvalidUrl),
            ("http://exa mple.com/", ErrorKind::InvalidUrl),
            ("http://user:pw@example.com/", ErrorKind::InvalidUrl),
            ("http://[::1/", ErrorKind::InvalidUrl),
            ("http://example.com:0/", ErrorKind::InvalidUrl),
            ("http://example.com:99999/", ErrorKind::InvalidUrl),
            ("not a url", ErrorKind::InvalidUrl),
        ] {
            let err = Target::parse(url).unwrap_err();
            assert_eq!(err.kind(), kind, "{url}: {err}");
        }
    }

    #[test]
    fn numeric_hosts_are_ipv4_addresses() {
        for (host, ip) in [
            ("127.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0x7F.0.0.1", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("10.0.258", "10.0.1.2"),
        ] {
            let t = Target::parse(&format!("http://{host}/")).unwrap();
            assert_eq!(t.origin.host(), &Host::Ip(ip.parse().unwrap()), "{host}");
        }
        for bad in [
            "256.1.1.1",
            "1.2.3.4.5",
            "4294967296",
            "0x100000000",
            "1..2",
        ] {
            let err = Target::parse(&format!("http://{bad}/")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{bad}");
        }
        // Names that merely contain digits stay names.
        assert!(matches!(
            Target::parse("http://1password.com/")
                .unwrap()
                .origin
                .host(),
            Host::Name(_)
        ));
    }

    #[test]
    fn origins_have_no_path() {
        assert!(Origin::parse("https://a.example/").is_ok());
        assert_eq!(
            Origin::parse("https://a.example/x").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
    }
}
