//! Proxies, as dialers: which origins go through which proxy (options, then the conventional
//! environment variables), CONNECT tunnels over HTTP/1.1 (one connection each) or pooled
//! HTTP/2 connections and connections to a forward proxy for absolute-form HTTP/1.1
//! (`connect`), MASQUE CONNECT-UDP tunnels over pooled HTTP/3 (datagrams) or HTTP/2 (capsules)
//! connections (`masque`), QUIC to an origin through such a tunnel (`socket`), and the pool of
//! connections to proxies (`upstream`).
//!
//! This module implements the dialing layer's traits (`conn::Dial`, `conn::udp::QuicPath`) and
//! uses pools and protocols to do so; nothing below it names a proxy type.

pub(crate) mod connect;
#[cfg(feature = "masque")]
pub(crate) mod masque;
#[cfg(feature = "masque")]
pub(crate) mod socket;
#[cfg(feature = "socks")]
pub(crate) mod socks;
pub(crate) mod upstream;

use http::HeaderValue;

use crate::config::{PoolOptions, Protocol};
use crate::error::{Error, Result};
use crate::origin::{parse_proxy_url, Host, Origin};

/// A proxy a pool goes through.
#[derive(Clone, Debug)]
pub(crate) struct Proxy {
    /// Where the proxy listens (`http` or `https` for TLS to the proxy itself).
    pub origin: Origin,
    /// Sent to the proxy only (CONNECT requests, absolute-form requests), never to the origin.
    pub authorization: Option<HeaderValue>,
    /// How to speak to the proxy: `auto` and `http1` open one HTTP/1.1 connection per tunnel,
    /// `http2` shares pooled HTTP/2 connections, `http3` (MASQUE, for HTTP/3 origins) pooled
    /// HTTP/3 connections.
    pub protocol: Protocol,
    /// Set for a SOCKS5 proxy (`socks5://`, `socks5h://`): origins are reached through it
    /// by the SOCKS dialer instead of CONNECT or absolute-form requests.
    pub socks: Option<crate::origin::SocksUrl>,
}

impl Proxy {
    /// The proxy for a pool with these options serving `origin`, if any: the `proxy` option,
    /// else (with `proxy_from_env`) the environment's, unless `NO_PROXY` excludes the origin.
    pub(crate) fn for_origin(
        options: &PoolOptions,
        env: &EnvProxies,
        origin: &Origin,
    ) -> Result<Option<Proxy>> {
        let (url, from_env) = match options.proxy.as_deref() {
            Some(url) => (Some(url.to_owned()), false),
            None if options.proxy_from_env => (env.for_origin(origin), true),
            None => (None, false),
        };
        let Some(url) = url else { return Ok(None) };
        if url.is_empty() || url.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        if from_env && env.excluded(origin) {
            return Ok(None);
        }
        if let Some(socks) = crate::origin::parse_socks_url(&url) {
            let socks = socks?;
            return Ok(Some(Proxy {
                origin: socks.origin.clone(),
                authorization: None,
                protocol: options.proxy_protocol,
                socks: Some(socks),
            }));
        }
        let (proxy_origin, credentials) = parse_proxy_url(&url)?;
        let authorization = match &options.proxy_authorization {
            Some(value) => Some(HeaderValue::from_str(value).map_err(|_| {
                Error::invalid_config("option `proxy_authorization` is not a valid header value")
            })?),
            None => credentials,
        };
        Ok(Some(Proxy {
            origin: proxy_origin,
            authorization,
            protocol: options.proxy_protocol,
            socks: None,
        }))
    }
}

/// The proxy settings of the environment, read once when a client is built: `https_proxy`,
/// `http_proxy`, `all_proxy`, `no_proxy` (lower-case first, then upper-case).
#[derive(Clone, Debug, Default)]
pub(crate) struct EnvProxies {
    http: Option<String>,
    https: Option<String>,
    all: Option<String>,
    no_proxy: Vec<String>,
}

impl EnvProxies {
    pub(crate) fn from_env() -> EnvProxies {
        let var = |name: &str| {
            std::env::var(name.to_ascii_lowercase())
                .ok()
                .or_else(|| std::env::var(name).ok())
                .filter(|v| !v.trim().is_empty())
        };
        // Under CGI the request's `Proxy:` header arrives as HTTP_PROXY (httpoxy): only the
        // lower-case variable counts there, as in curl and Go.
        let cgi = std::env::var_os("REQUEST_METHOD").is_some();
        let http = if cgi {
            std::env::var("http_proxy")
                .ok()
                .filter(|v| !v.trim().is_empty())
        } else {
            var("HTTP_PROXY")
        };
        EnvProxies {
            http,
            https: var("HTTPS_PROXY"),
            all: var("ALL_PROXY"),
            no_proxy: var("NO_PROXY")
                .map(|v| {
                    v.split(',')
                        .map(|e| e.trim().to_ascii_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn for_origin(&self, origin: &Origin) -> Option<String> {
        let specific = match origin.scheme() {
            crate::origin::Scheme::Https => &self.https,
            crate::origin::Scheme::Http => &self.http,
        };
        specific.clone().or_else(|| self.all.clone())
    }

    /// Whether `NO_PROXY` names this origin: `*`, an exact host (or IP), or a domain suffix
    /// (`example.com` and `.example.com` both cover `a.example.com`); `:port` narrows an entry.
    pub(crate) fn excluded(&self, origin: &Origin) -> bool {
        let host = match origin.host() {
            Host::Name(n) => n.clone(),
            Host::Ip(ip) => ip.to_string(),
        };
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, port) = match entry.rsplit_once(':') {
                Some((n, p)) if !n.contains(':') || n.starts_with('[') => match p.parse::<u16>() {
                    Ok(p) => (n, Some(p)),
                    Err(_) => (entry.as_str(), None),
                },
                _ => (entry.as_str(), None),
            };
            if port.is_some_and(|p| p != origin.port()) {
                return false;
            }
            let name = name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim_start_matches('.');
            host == name || host.ends_with(&format!(".{name}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matching() {
        let env = EnvProxies {
            no_proxy: vec![
                "localhost".into(),
                ".internal.example".into(),
                "10.0.0.1".into(),
                "api.example:8443".into(),
            ],
            ..EnvProxies::default()
        };
        let o = |s: &str| Origin::parse(s).unwrap();
        assert!(env.excluded(&o("http://localhost:8080")));
        assert!(env.excluded(&o("https://a.internal.example")));
        assert!(env.excluded(&o("https://internal.example")));
        assert!(env.excluded(&o("http://10.0.0.1")));
        assert!(env.excluded(&o("https://api.example:8443")));
        assert!(!env.excluded(&o("https://api.example")));
        assert!(!env.excluded(&o("https://example.org")));
        assert!(!env.excluded(&o("https://notlocalhost")));
        let all = EnvProxies {
            no_proxy: vec!["*".into()],
            ..EnvProxies::default()
        };
        assert!(all.excluded(&o("https://anything.example")));
    }
}
