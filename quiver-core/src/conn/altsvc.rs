//! HTTP Alternative Services (RFC 7838): a client-wide cache of the HTTP/3 alternatives origins
//! advertise in `alt-svc` response headers (or in HTTPS DNS records, see `https_rr`), and which
//! of them failed lately.
//!
//! Only `h3` alternatives are kept (draft versions and other protocols are skipped). A response
//! that carries `alt-svc` replaces what was known for its origin; `clear` forgets it. Entries
//! expire after `ma` seconds (24 hours without it). An alternative whose connection attempt
//! failed is broken for 5 minutes, doubling with each further failure up to 2 days, and a
//! successful connection forgets the failures; a broken mark survives re-advertisement.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::origin::{Host, Origin};

/// Origins remembered at most; beyond it, expired entries are dropped and new origins ignored.
const MAX_ORIGINS: usize = 4096;
/// Alternatives kept per origin (in the server's order of preference).
const MAX_ALTERNATIVES: usize = 8;
/// `ma` when the header has none (RFC 7838 §3.1).
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(86_400);
/// How long an alternative is avoided after its first failure.
const BROKEN_FIRST: Duration = Duration::from_secs(300);
/// The longest an alternative is avoided.
const BROKEN_MAX: Duration = Duration::from_secs(2 * 86_400);

/// One advertised HTTP/3 alternative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Alternative {
    /// `None`: the origin's own host.
    pub(crate) host: Option<Host>,
    pub(crate) port: u16,
    pub(crate) max_age: Duration,
    pub(crate) persist: bool,
    /// Addresses to try without resolving (an HTTPS record's `ipv4hint`/`ipv6hint`).
    pub(crate) hints: Vec<IpAddr>,
}

/// What one response's `alt-svc` headers say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Advertised {
    /// `clear`: forget the origin's alternatives.
    Clear,
    /// These replace the origin's alternatives (empty: the response named none quiver uses).
    Alternatives(Vec<Alternative>),
}

/// Reads the `alt-svc` header values of one response, in order. `None` when none of them
/// parses (a malformed header leaves the cache as it was).
pub(crate) fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Advertised> {
    let mut alternatives = Vec::new();
    let mut understood = false;
    for value in values {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for item in split_outside_quotes(value, ',') {
            let item = item.trim();
            if item.eq_ignore_ascii_case("clear") {
                return Some(Advertised::Clear);
            }
            if let Some(alt) = parse_alternative(item) {
                understood = true;
                if let Some(alt) = alt {
                    if alternatives.len() < MAX_ALTERNATIVES {
                        alternatives.push(alt);
                    }
                }
            }
        }
    }
    understood.then_some(Advertised::Alternatives(alternatives))
}

/// One `alt-value`: `None` if malformed, `Some(None)` if well formed but not `h3`.
fn parse_alternative(item: &str) -> Option<Option<Alternative>> {
    let mut parts = split_outside_quotes(item, ';').into_iter();
    let (protocol, authority) = parts.next()?.split_once('=')?;
    // The authority is always a quoted string (RFC 7838 §3).
    let authority = authority.trim();
    if !authority.starts_with('"') {
        return None;
    }
    let authority = unquote(authority)?;
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = match host {
        "" => None,
        h => Some(Host::parse(h).ok()?),
    };
    let mut alt = Alternative {
        host,
        port,
        max_age: DEFAULT_MAX_AGE,
        persist: false,
        hints: Vec::new(),
    };
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim())?;
        match name.trim().to_ascii_lowercase().as_str() {
            // delta-seconds; absurd values saturate (at a year) rather than overflow.
            "ma" => {
                let secs: u64 = value.parse().ok()?;
                alt.max_age = Duration::from_secs(secs.min(365 * 86_400));
            }
            "persist" => alt.persist = value == "1",
            _ => {}
        }
    }
    Some((protocol.trim() == "h3").then_some(alt))
}

/// A token as is, or a quoted string with its escapes undone.
fn unquote(s: &str) -> Option<String> {
    let Some(inner) = s.strip_prefix('"') else {
        return (!s.is_empty() && !s.contains(['"', '\\'])).then(|| s.to_string());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Splits at `sep` outside quoted strings.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[derive(Default)]
struct Entry {
    /// Advertised alternatives with the instant each expires.
    alternatives: Vec<(Alternative, Instant)>,
    broken_until: Option<Instant>,
    failures: u32,
}

/// The alternative to connect to for an origin, as [`AltSvcCache::usable`] hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: Host,
    pub(crate) port: u16,
    /// Addresses known without resolving `host` (may be empty).
    pub(crate) hints: Vec<IpAddr>,
}

/// The client-wide Alt-Svc cache.
#[derive(Default)]
pub(crate) struct AltSvcCache {
    entries: Mutex<HashMap<Origin, Entry>>,
}

impl AltSvcCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in what a response from `origin` advertised.
    pub(crate) fn learn(&self, origin: &Origin, advertised: Advertised, now: Instant) {
        let mut entries = self.lock();
        let alternatives = match advertised {
            Advertised::Clear => Vec::new(),
            Advertised::Alternatives(alts) => alts
                .into_iter()
                .map(|a| {
                    let expires = now + a.max_age;
                    (a, expires)
                })
                .collect(),
        };
        if let Some(entry) = entries.get_mut(origin) {
            entry.alternatives = alternatives;
            return;
        }
        if alternatives.is_empty() {
            return;
        }
        if entries.len() >= MAX_ORIGINS {
            entries.retain(|_, e| {
                e.alternatives.iter().any(|(_, exp)| *exp > now)
                    || e.broken_until.is_some_and(|b| b > now)
            });
            if entries.len() >= MAX_ORIGINS {
                return;
            }
        }
        entries.insert(
            origin.clone(),
            Entry {
                alternatives,
                ..Entry::default()
            },
        );
    }

    /// The fresh alternative to use for `origin` now, unless it is broken.
    pub(crate) fn usable(&self, origin: &Origin, now: Instant) -> Option<Target> {
        let entries = self.lock();
        let entry = entries.get(origin)?;
        if entry.broken_until.is_some_and(|b| b > now) {
            return None;
        }
        let (alt, _) = entry.alternatives.iter().find(|(_, exp)| *exp > now)?;
        Some(Target {
            host: alt.host.clone().unwrap_or_else(|| origin.host().clone()),
            port: alt.port,
            hints: alt.hints.clone(),
        })
    }

    /// A connection to `origin`'s alternative failed: avoid it for a while, longer each time.
    pub(crate) fn broken(&self, origin: &Origin, now: Instant) {
        let mut entries = self.lock();
        let entry = entries.entry(origin.clone()).or_default();
        let backoff = BROKEN_FIRST
            .saturating_mul(1 << entry.failures.min(16))
            .min(BROKEN_MAX);
        entry.failures = entry.failures.saturating_add(1);
        entry.broken_until = Some(now + backoff);
    }

    /// A connection to `origin`'s alternative worked: forget its failures.
    pub(crate) fn confirmed(&self, origin: &Origin) {
        if let Some(entry) = self.lock().get_mut(origin) {
            entry.failures = 0;
            entry.broken_until = None;
        }
    }

    /// Whether `origin`'s alternative is marked broken now.
    pub(crate) fn is_broken(&self, origin: &Origin, now: Instant) -> bool {
        self.lock()
            .get(origin)
            .and_then(|e| e.broken_until)
            .is_some_and(|b| b > now)
    }

    /// The fresh alternatives of `origin` written as an `alt-svc` value (`ma` is what is left),
    /// or `None` without any.
    pub(crate) fn describe(&self, origin: &Origin, now: Instant) -> Option<String> {
        let entries = self.lock();
        let shown: Vec<String> = entries
            .get(origin)?
            .alternatives
            .iter()
            .filter(|(_, exp)| *exp > now)
            .map(|(alt, exp)| {
                let host = alt
                    .host
                    .as_ref()
                    .map(Host::to_authority_string)
                    .unwrap_or_default();
                let persist = if alt.persist { "; persist=1" } else { "" };
                format!(
                    "h3=\"{host}:{}\"; ma={}{persist}",
                    alt.port,
                    exp.duration_since(now).as_secs()
                )
            })
            .collect();
        (!shown.is_empty()).then(|| shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(v: &str) -> Option<Advertised> {
        parse([v.as_bytes()])
    }

    fn alt(host: Option<&str>, port: u16, ma: u64, persist: bool) -> Alternative {
        Alternative {
            host: host.map(|h| Host::parse(h).unwrap()),
            port,
            max_age: Duration::from_secs(ma),
            persist,
            hints: Vec::new(),
        }
    }

    #[test]
    fn parses_what_servers_send() {
        // Caddy: several protocols and drafts in one header.
        assert_eq!(
            parse_one(r#"h3=":443"; ma=2592000, h3-29=":443"; ma=2592000"#),
            Some(Advertised::Alternatives(vec![alt(
                None, 443, 2_592_000, false
            )]))
        );
        // Hypercorn: one header per alternative; quoted parameters and a host.
        assert_eq!(
            parse([
                br#"h2="alt.example:8443""#.as_slice(),
                br#"h3="[::1]:4433"; ma="60"; persist=1"#.as_slice(),
                br#"h3=":4434""#.as_slice(),
            ]),
            Some(Advertised::Alternatives(vec![
                alt(Some("[::1]"), 4433, 60, true),
                alt(None, 4434, 86_400, false),
            ]))
        );
        assert_eq!(parse_one(" Clear "), Some(Advertised::Clear));
        // A comma inside a quoted string does not split.
        assert_eq!(
            parse_one(r#"h3="a\"b,c:1", h3=":2""#),
            Some(Advertised::Alternatives(vec![alt(None, 2, 86_400, false)]))
        );
        assert_eq!(
            parse_one(r#"h2=":443""#),
            Some(Advertised::Alternatives(vec![]))
        );
    }

    #[test]
    fn malformed_values_are_ignored() {
        for bad in [
            "",
            "h3",
            "h3=:443",
            r#"h3="host""#,
            r#"h3=":0""#,
            r#"h3=":70000""#,
            r#"h3="bad host:1""#,
            r#"h3=":1"; ma=soon"#,
            r#"h3=":1"; ma=-1"#,
        ] {
            assert_eq!(parse_one(bad), None, "{bad}");
        }
        assert_eq!(parse([&[0xff, b'h'][..]]), None);
        // A huge `ma` saturates; many alternatives are capped.
        let many = vec![r#"h3=":1"; ma=99999999999999"#; 20].join(",");
        let Some(Advertised::Alternatives(alts)) = parse_one(&many) else {
            panic!("parses")
        };
        assert_eq!(alts.len(), MAX_ALTERNATIVES);
        assert_eq!(alts[0].max_age, Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn cache_expiry_replacement_and_clear() {
        let cache = AltSvcCache::default();
        let origin = Origin::parse("https://example.test").unwrap();
        let t0 = Instant::now();
        assert_eq!(cache.usable(&origin, t0), None);
        cache.learn(&origin, parse_one(r#"h3=":4433"; ma=10"#).unwrap(), t0);
        let target = cache.usable(&origin, t0).unwrap();
        assert_eq!(
            (target.host.to_authority_string(), target.port),
            ("example.test".into(), 4433)
        );
        assert_eq!(
            cache
                .describe(&origin, t0 + Duration::from_secs(4))
                .as_deref(),
            Some(r#"h3=":4433"; ma=6"#)
        );
        assert_eq!(cache.usable(&origin, t0 + Duration::from_secs(11)), None);
        // A new response replaces the entry; `clear` forgets it.
        cache.learn(&origin, parse_one(r#"h3="other.test:1""#).unwrap(), t0);
        assert_eq!(cache.usable(&origin, t0).unwrap().port, 1);
        cache.learn(&origin, Advertised::Clear, t0);
        assert_eq!(cache.usable(&origin, t0), None);
        assert_eq!(cache.describe(&origin, t0), None);
    }

    #[test]
    fn broken_alternatives_back_off_and_recover() {
        let cache = AltSvcCache::default();
        let origin = Origin::parse("https://example.test").unwrap();
        let t0 = Instant::now();
        cache.learn(&origin, parse_one(r#"h3=":443""#).unwrap(), t0);
        cache.broken(&origin, t0);
        assert!(cache.is_broken(&origin, t0));
        assert_eq!(cache.usable(&origin, t0 + Duration::from_secs(299)), None);
        // Re-advertising does not clear the mark.
        cache.learn(&origin, parse_one(r#"h3=":443""#).unwrap(), t0);
        assert_eq!(cache.usable(&origin, t0), None);
        let t1 = t0 + Duration::from_secs(301);
        assert!(cache.usable(&origin, t1).is_some());
        // The second failure doubles the wait; the backoff is capped.
        cache.broken(&origin, t1);
        assert!(cache.is_broken(&origin, t1 + Duration::from_secs(599)));
        assert!(!cache.is_broken(&origin, t1 + Duration::from_secs(601)));
        for _ in 0..40 {
            cache.broken(&origin, t1);
        }
        assert!(!cache.is_broken(&origin, t1 + BROKEN_MAX + Duration::from_secs(1)));
        cache.confirmed(&origin);
        assert!(cache.usable(&origin, t1).is_some());
    }
}
