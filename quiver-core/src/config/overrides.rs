//! The `resolve` option: addresses given for `host:port`, as `curl --resolve` takes them.

use std::net::IpAddr;

use crate::error::{Error, Result};

/// One `resolve` entry: `host:port:address[,address...]` (IPv6 in brackets).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Override {
    host: String,
    port: u16,
    addrs: Vec<IpAddr>,
}

impl Override {
    /// Parses a whole `resolve` value: entries separated by spaces or `;`.
    pub(crate) fn parse_all(spec: &str) -> Result<Vec<Override>> {
        spec.split([' ', ';', '\n', '\t'])
            .filter(|e| !e.is_empty())
            .map(Override::parse)
            .collect()
    }

    fn parse(entry: &str) -> Result<Override> {
        let bad = || {
            Error::invalid_config(format!(
                "option `resolve`: `{entry}` is not `host:port:address[,address...]`"
            ))
        };
        let (host, rest) = entry.split_once(':').ok_or_else(bad)?;
        let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad());
        }
        let addrs = addrs
            .split(',')
            .map(|a| {
                a.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map_err(|_| bad())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Override { host, port, addrs })
    }

    /// The addresses the first of `overrides` naming `host:port` gives, if any.
    pub(crate) fn find<'a>(
        overrides: &'a [Override],
        host: &str,
        port: u16,
    ) -> Option<&'a [IpAddr]> {
        overrides
            .iter()
            .find(|o| o.port == port && o.host == host)
            .map(|o| o.addrs.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_like_curl_resolve() {
        let all = Override::parse_all("a.test:443:127.0.0.1,[::1] B.test.:80:10.0.0.1").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].host, "a.test");
        assert_eq!(
            all[0].addrs,
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!((all[1].host.as_str(), all[1].port), ("b.test", 80));
        for bad in [
            "a.test",
            "a.test:443",
            "a.test:x:127.0.0.1",
            ":443:127.0.0.1",
            "a:1:nope",
        ] {
            assert!(Override::parse_all(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Override::find(
                &Override::parse_all("a.test:1:127.0.0.1").unwrap(),
                "a.test",
                2
            ),
            None
        );
    }
}
