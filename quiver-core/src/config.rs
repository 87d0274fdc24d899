//! Pool options, their defaults and validation, and the rules that pick options per origin.
//!
//! Every option is declared once in the `options!` table below: its name (the same string in
//! Rust, C, Python and Node), its type, its default and its documentation. [`PoolSettings`]
//! holds what a caller set (every field optional); [`PoolOptions`] is the resolved, validated
//! result for one origin: built-in defaults, overlaid by the client-wide settings, overlaid by
//! the most specific matching rule (exact > wildcard > default).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::origin::{Host, Origin, Scheme};

/// Which HTTP version a pool speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// https: ALPN decides between h2 and http/1.1; http: HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (ALPN h2 over https, prior-knowledge h2c over http).
    Http2,
    /// HTTP/3 over QUIC (https only).
    Http3,
}

impl Protocol {
    /// The option value's name (`auto`, `http1`, `http2`, `http3`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Http1 => "http1",
            Protocol::Http2 => "http2",
            Protocol::Http3 => "http3",
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = Error;

    /// `auto`, `http1` (or `http/1.1`, `h1`), `http2` (`h2`), `http3` (`h3`), any case.
    fn from_str(s: &str) -> Result<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Protocol::Auto),
            "http1" | "http/1.1" | "h1" => Ok(Protocol::Http1),
            "http2" | "h2" => Ok(Protocol::Http2),
            "http3" | "h3" => Ok(Protocol::Http3),
            _ => Err(Error::invalid_config(format!(
                "`{s}` is not a protocol (expected one of auto, http1, http2, http3)"
            ))),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which trust anchors verify servers when no `ca_file` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TlsRoots {
    /// Mozilla's root set, bundled (webpki-roots): the same everywhere.
    #[default]
    Webpki,
    /// The operating system's trust store (rustls-native-certs).
    System,
}

impl TlsRoots {
    /// The option value's name (`webpki`, `system`).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsRoots::Webpki => "webpki",
            TlsRoots::System => "system",
        }
    }
}

impl std::str::FromStr for TlsRoots {
    type Err = Error;

    /// `webpki` or `system`, any case.
    fn from_str(s: &str) -> Result<TlsRoots> {
        match s.to_ascii_lowercase().as_str() {
            "webpki" => Ok(TlsRoots::Webpki),
            "system" => Ok(TlsRoots::System),
            _ => Err(Error::invalid_config(format!(
                "`{s}` is not a trust store (expected webpki or system)"
            ))),
        }
    }
}

impl fmt::Display for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value given to an option by name (the bindings' and the C ABI's way in).
///
/// Durations accept [`OptionValue::Duration`] or an integer number of milliseconds; for
/// `request_timeout`, zero or [`OptionValue::None`] means no limit.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// A boolean.
    Bool(bool),
    /// An integer (milliseconds for durations).
    Int(i64),
    /// A string (enumerations, paths).
    Str(String),
    /// A floating-point number (fractions such as `window_update_threshold`).
    Float(f64),
    /// A duration.
    Duration(Duration),
    /// Unset / no limit, where an option allows it.
    None,
}

macro_rules! option_value_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for OptionValue { fn from($v: $t) -> Self { $e } })*
    };
}
option_value_from! {
    bool => |v| OptionValue::Bool(v),
    i64 => |v| OptionValue::Int(v),
    i32 => |v| OptionValue::Int(v.into()),
    u32 => |v| OptionValue::Int(v.into()),
    u64 => |v| OptionValue::Int(i64::try_from(v).unwrap_or(i64::MAX)),
    usize => |v| OptionValue::Int(i64::try_from(v).unwrap_or(i64::MAX)),
    &str => |v| OptionValue::Str(v.to_owned()),
    String => |v| OptionValue::Str(v),
    PathBuf => |v| OptionValue::Str(v.to_string_lossy().into_owned()),
    Duration => |v| OptionValue::Duration(v),
    f64 => |v| OptionValue::Float(v),
}

/// What type of value an option takes (for bindings converting their own values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// `true` / `false`.
    Bool,
    /// A non-negative integer.
    Int,
    /// A number.
    Float,
    /// A duration (required).
    Duration,
    /// A duration, or none for "no limit".
    OptionalDuration,
    /// A file path, or none.
    Path,
    /// A string, or none.
    OptionalString,
    /// One of a fixed set of names.
    Choice,
}

/// Conversion of an [`OptionValue`] into an option's Rust type.
trait FromOption: Sized {
    const EXPECTED: &'static str;
    const KIND: OptionKind;
    fn from_option(v: OptionValue) -> Option<Self>;
}

impl FromOption for bool {
    const EXPECTED: &'static str = "a boolean";
    const KIND: OptionKind = OptionKind::Bool;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl FromOption for u64 {
    const EXPECTED: &'static str = "a non-negative integer";
    const KIND: OptionKind = OptionKind::Int;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Int(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }
}

impl FromOption for usize {
    const EXPECTED: &'static str = "a non-negative integer";
    const KIND: OptionKind = OptionKind::Int;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Int(i) => usize::try_from(i).ok(),
            _ => None,
        }
    }
}

impl FromOption for f64 {
    const EXPECTED: &'static str = "a number";
    const KIND: OptionKind = OptionKind::Float;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Float(f) if f.is_finite() => Some(f),
            OptionValue::Int(i) => Some(i as f64),
            _ => None,
        }
    }
}

impl FromOption for u32 {
    const EXPECTED: &'static str = "a non-negative integer";
    const KIND: OptionKind = OptionKind::Int;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Int(i) => u32::try_from(i).ok(),
            _ => None,
        }
    }
}

impl FromOption for Duration {
    const EXPECTED: &'static str = "a duration (integer milliseconds)";
    const KIND: OptionKind = OptionKind::Duration;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Duration(d) => Some(d),
            OptionValue::Int(ms) => u64::try_from(ms).ok().map(Duration::from_millis),
            _ => None,
        }
    }
}

impl FromOption for Option<Duration> {
    const EXPECTED: &'static str = "a duration (integer milliseconds) or none";
    const KIND: OptionKind = OptionKind::OptionalDuration;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::None => Some(None),
            OptionValue::Duration(d) if d.is_zero() => Some(None),
            OptionValue::Int(0) => Some(None),
            other => Duration::from_option(other).map(Some),
        }
    }
}

impl FromOption for Option<PathBuf> {
    const EXPECTED: &'static str = "a file path";
    const KIND: OptionKind = OptionKind::Path;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Str(s) if !s.is_empty() => Some(Some(PathBuf::from(s))),
            OptionValue::None => Some(None),
            _ => None,
        }
    }
}

impl FromOption for Option<String> {
    const EXPECTED: &'static str = "a string";
    const KIND: OptionKind = OptionKind::OptionalString;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Str(s) => Some(Some(s)),
            OptionValue::None => Some(None),
            _ => None,
        }
    }
}

impl FromOption for Protocol {
    const EXPECTED: &'static str = "one of auto, http1, http2, http3";
    const KIND: OptionKind = OptionKind::Choice;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl FromOption for TlsRoots {
    const EXPECTED: &'static str = "one of webpki, system";
    const KIND: OptionKind = OptionKind::Choice;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

macro_rules! options {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $default:expr; )*) => {
        /// Options a caller set for a pool rule (or client-wide); unset fields fall through.
        ///
        /// Each field's documentation is on the same-named field of [`PoolOptions`].
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct PoolSettings {
            $( #[allow(missing_docs)] pub $name: Option<$ty>, )*
        }

        /// Resolved options for one origin's pool. Defaults are documented per field.
        #[derive(Clone, Debug, PartialEq)]
        pub struct PoolOptions {
            $( $(#[$doc])* pub $name: $ty, )*
        }

        impl Default for PoolOptions {
            fn default() -> Self {
                PoolOptions { $( $name: $default, )* }
            }
        }

        impl PoolSettings {
            /// Every option name, as accepted by [`PoolSettings::set`].
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = Some(value);
                    self
                }
            )*

            /// The kind of value an option takes, or `None` for an unknown name.
            pub fn kind(name: &str) -> Option<OptionKind> {
                match name {
                    $( stringify!($name) => Some(<$ty as FromOption>::KIND), )*
                    _ => None,
                }
            }

            /// Sets an option by name; the error names the option and what it expects.
            pub fn set(&mut self, name: &str, value: impl Into<OptionValue>) -> Result<&mut Self> {
                let value = value.into();
                match name {
                    $( stringify!($name) => {
                        let shown = format!("{value:?}");
                        self.$name = Some(<$ty as FromOption>::from_option(value).ok_or_else(|| {
                            Error::invalid_config(format!(
                                "option `{}` expects {}, got {}", name, <$ty as FromOption>::EXPECTED, shown
                            ))
                        })?);
                    } )*
                    _ => return Err(Error::invalid_config(format!("unknown option `{name}`"))),
                }
                Ok(self)
            }

            /// Overlays `self` on `base`: fields set here win.
            fn apply_to(&self, base: &mut PoolOptions) {
                $( if let Some(v) = &self.$name { base.$name = v.clone(); } )*
            }
        }
    };
}

options! {
    /// Which HTTP version the pool speaks. Default `auto`.
    protocol: Protocol = Protocol::Auto;
    /// HTTP/1: most connections the pool opens to one origin. Default 10.
    size: usize = 10;
    /// HTTP/2 and HTTP/3: most connections per origin. Default 4: each connection carries as
    /// many streams as the peer allows (typically 100 to 128), so 4 serve bursts of several
    /// hundred concurrent requests; a new one opens only when every stream slot is busy.
    max_connections: usize = 4;
    /// HTTP/2 and HTTP/3: stream slots assumed on a connection until the peer states its limit.
    /// Default 100.
    initial_max_streams: usize = 100;
    /// HTTP/2 and HTTP/3: receive window per stream, in bytes; a consumer that stops reading
    /// holds at most this much. Default 2 MiB.
    stream_window: u32 = 2 << 20;
    /// HTTP/2 and HTTP/3: receive window per connection, in bytes. Default 8 MiB.
    connection_window: u32 = 8 << 20;
    /// HTTP/2 and HTTP/3: credit goes back to the peer only as the consumer takes bytes,
    /// batched until it took this fraction of the stream window or everything received so
    /// far. Default 0.5.
    window_update_threshold: f64 = 0.5;
    /// HTTP/2: interval of keep-alive PINGs (HTTP/3: QUIC keep-alive). Zero disables.
    /// Default 30 s.
    ping_interval: Option<Duration> = Some(Duration::from_secs(30));
    /// HTTP/2: a PING unanswered this long closes the connection (`ping_timeout`). Default 10 s.
    ping_timeout: Duration = Duration::from_secs(10);
    /// HTTP/3: QUIC idle timeout; a connection with no packets for this long is closed (keep-alive
    /// packets at `ping_interval` keep a live one open). Default 30 s.
    quic_idle_timeout: Duration = Duration::from_secs(30);
    /// HTTP/3: send idempotent requests as 0-RTT early data on resumed connections. Default false.
    early_data: bool = false;
    /// Proxy URL (`http://[user:pass@]host:port`, `https://...`), or `none`. Default: from the
    /// environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) unless
    /// `proxy_from_env` is false.
    proxy: Option<String> = None;
    /// Value of the Proxy-Authorization header sent to the proxy only (overrides credentials in
    /// the proxy URL). Default: none.
    proxy_authorization: Option<String> = None;
    /// How to speak to the proxy: `auto`/`http1` (a connection per tunnel), `http2` (pooled
    /// HTTP/2 connections), `http3` (MASQUE over pooled HTTP/3, for `http3` origins). Default `auto`.
    proxy_protocol: Protocol = Protocol::Auto;
    /// Use the proxy environment variables when `proxy` is not set. Default true.
    proxy_from_env: bool = true;
    /// Longest a caller waits for a connection or stream slot. Default 5 s.
    checkout_timeout: Duration = Duration::from_secs(5);
    /// An idle connection is closed after this long unused. Default 30 s.
    idle_timeout: Duration = Duration::from_secs(30);
    /// Longest a TCP connect plus TLS handshake (or a QUIC handshake) may take. Default 5 s.
    connect_timeout: Duration = Duration::from_secs(5);
    /// Longest the connection may go without moving a byte while a request waits on it
    /// (idle between bytes). Default 30 s.
    read_timeout: Duration = Duration::from_secs(30);
    /// Longest a whole request may take, body included. Default: none.
    request_timeout: Option<Duration> = None;
    /// PEM file of CA certificates to trust instead of the default roots. Default: none.
    ca_file: Option<PathBuf> = None;
    /// PEM file with the client certificate chain for mutual TLS. Default: none.
    client_cert: Option<PathBuf> = None;
    /// PEM file with the private key of `client_cert`. Default: none.
    client_key: Option<PathBuf> = None;
    /// Trust anchors used when `ca_file` is not set: `webpki` (default) or `system`.
    tls_roots: TlsRoots = TlsRoots::Webpki;
    /// Accept any server certificate, unverified. Dangerous; for tests only. Default false.
    danger_accept_invalid_certs: bool = false;
}

impl PoolOptions {
    /// Checks ranges and cross-field rules for a pool serving `scheme` (when known).
    pub(crate) fn validate(&self, scheme: Option<Scheme>) -> Result<()> {
        let bad =
            |opt: &str, why: &str| Err(Error::invalid_config(format!("option `{opt}` {why}")));
        if self.size == 0 || self.size > 100_000 {
            return bad("size", "must be between 1 and 100000");
        }
        if self.max_connections == 0 || self.max_connections > 1_000 {
            return bad("max_connections", "must be between 1 and 1000");
        }
        if self.initial_max_streams == 0 || self.initial_max_streams > 1_000_000 {
            return bad("initial_max_streams", "must be between 1 and 1000000");
        }
        if !(1024..=0x7fff_ffff).contains(&self.stream_window) {
            return bad("stream_window", "must be between 1024 and 2147483647 bytes");
        }
        if !(65_535..=0x7fff_ffff).contains(&self.connection_window) {
            return bad(
                "connection_window",
                "must be between 65535 and 2147483647 bytes",
            );
        }
        if !(self.window_update_threshold > 0.0 && self.window_update_threshold <= 1.0) {
            return bad(
                "window_update_threshold",
                "must be greater than 0 and at most 1",
            );
        }
        if self.early_data && self.protocol != Protocol::Http3 {
            return bad("early_data", "needs protocol `http3`");
        }
        for (name, d) in [
            ("quic_idle_timeout", self.quic_idle_timeout),
            ("ping_timeout", self.ping_timeout),
            ("checkout_timeout", self.checkout_timeout),
            ("idle_timeout", self.idle_timeout),
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
        ] {
            if d.is_zero() {
                return bad(name, "must be greater than zero");
            }
            if d > Duration::from_secs(86_400 * 365) {
                return bad(name, "must be at most a year");
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return bad("client_cert", "and `client_key` must be given together");
        }
        if self.protocol == Protocol::Http3 && scheme == Some(Scheme::Http) {
            return bad("protocol", "http3 needs an https origin");
        }
        if let Some(url) = &self.proxy {
            if !url.is_empty() && !url.eq_ignore_ascii_case("none") {
                crate::origin::parse_proxy_url(url).map_err(|e| {
                    Error::invalid_config(format!("option `proxy`: {}", e.message()))
                })?;
            }
        }
        if self.proxy_protocol == Protocol::Http3 && self.protocol != Protocol::Http3 {
            return bad(
                "proxy_protocol",
                "http3 (MASQUE) carries HTTP/3 origins only; TCP tunnels use http1 or http2",
            );
        }

        Ok(())
    }
}

/// Which origins a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OriginPattern {
    /// Exactly one origin, e.g. `https://api.example.com` (port defaulted from the scheme).
    Exact(Origin),
    /// `scheme://*.suffix:port`: the `*` matches exactly one leftmost label.
    Wildcard {
        /// The scheme that must match.
        scheme: Scheme,
        /// The host after `*.`, lower-case.
        suffix: String,
        /// The port that must match.
        port: u16,
    },
}

impl OriginPattern {
    /// Parses `https://api.example.com`, `http://[::1]:8080` or `https://*.example.com`.
    pub fn parse(pattern: &str) -> Result<OriginPattern> {
        let invalid = |why: String| Error::invalid_config(format!("pool rule `{pattern}`: {why}"));
        if let Some((scheme, rest)) = pattern.split_once("://") {
            if let Some(rest) = rest.strip_prefix("*.") {
                let scheme = Scheme::parse(scheme).map_err(|e| invalid(e.message().to_owned()))?;
                let rest = rest.trim_end_matches('/');
                let (host, port) = match rest.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        p.parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| invalid(format!("bad port `{p}`")))?,
                    ),
                    None => (rest, scheme.default_port()),
                };
                // Reuse the URL parser to validate and normalise the suffix.
                let probe = Origin::parse(&format!("{}://x.{host}", scheme.as_str()))
                    .map_err(|e| invalid(e.message().to_owned()))?;
                let suffix = match probe.host() {
                    Host::Name(n) => match n.strip_prefix("x.") {
                        Some(suffix) if !suffix.is_empty() => suffix.to_owned(),
                        _ => return Err(invalid("a wildcard needs a DNS suffix".into())),
                    },
                    Host::Ip(_) => return Err(invalid("a wildcard needs a DNS suffix".into())),
                };
                return Ok(OriginPattern::Wildcard {
                    scheme,
                    suffix,
                    port,
                });
            }
        }
        Origin::parse(pattern)
            .map(OriginPattern::Exact)
            .map_err(|e| invalid(e.message().to_owned()))
    }

    fn scheme(&self) -> Scheme {
        match self {
            OriginPattern::Exact(o) => o.scheme(),
            OriginPattern::Wildcard { scheme, .. } => *scheme,
        }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Exact(o) => o.fmt(f),
            OriginPattern::Wildcard {
                scheme,
                suffix,
                port,
            } => write!(f, "{}://*.{}:{}", scheme.as_str(), suffix, port),
        }
    }
}

/// A validated rule: where it came from and the options it resolves to.
#[derive(Debug)]
pub(crate) struct ResolvedRule {
    /// `default` or the pattern as the caller wrote it.
    pub name: String,
    pub options: Arc<PoolOptions>,
}

/// The client's validated rule table: exact > wildcard > default.
#[derive(Debug)]
pub(crate) struct RuleTable {
    exact: HashMap<Origin, Arc<ResolvedRule>>,
    wildcard: HashMap<(Scheme, String, u16), Arc<ResolvedRule>>,
    default: Arc<ResolvedRule>,
}

impl RuleTable {
    /// Resolves and validates every rule; the error names the rule and the option.
    pub(crate) fn build(
        defaults: &PoolSettings,
        rules: &[(String, PoolSettings)],
    ) -> Result<RuleTable> {
        let resolve = |name: &str, scheme: Option<Scheme>, rule: Option<&PoolSettings>| {
            let mut options = PoolOptions::default();
            defaults.apply_to(&mut options);
            if let Some(rule) = rule {
                rule.apply_to(&mut options);
            }
            options.validate(scheme).map_err(|e| {
                Error::invalid_config(format!("pool rule `{name}`: {}", e.message()))
            })?;
            Ok::<_, Error>(Arc::new(ResolvedRule {
                name: name.to_owned(),
                options: Arc::new(options),
            }))
        };
        let default = resolve("default", None, None)?;
        let mut table = RuleTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        };
        for (pattern, settings) in rules {
            let parsed = OriginPattern::parse(pattern)?;
            let rule = resolve(pattern, Some(parsed.scheme()), Some(settings))?;
            let duplicate = match parsed {
                OriginPattern::Exact(origin) => table.exact.insert(origin, rule).is_some(),
                OriginPattern::Wildcard {
                    scheme,
                    suffix,
                    port,
                } => table
                    .wildcard
                    .insert((scheme, suffix, port), rule)
                    .is_some(),
            };
            if duplicate {
                return Err(Error::invalid_config(format!(
                    "pool rule `{pattern}` is given twice"
                )));
            }
        }
        Ok(table)
    }

    /// The most specific rule for `origin`.
    pub(crate) fn lookup(&self, origin: &Origin) -> &Arc<ResolvedRule> {
        if let Some(rule) = self.exact.get(origin) {
            return rule;
        }
        if let Host::Name(name) = origin.host() {
            if let Some((_, suffix)) = name.split_once('.') {
                let key = (origin.scheme(), suffix.to_owned(), origin.port());
                if let Some(rule) = self.wildcard.get(&key) {
                    return rule;
                }
            }
        }
        &self.default
    }

    /// The rules other than `default` (for validation that needs every rule).
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<ResolvedRule>> {
        std::iter::once(&self.default)
            .chain(self.exact.values())
            .chain(self.wildcard.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn rule_precedence_is_exact_then_wildcard_then_default() {
        let defaults = PoolSettings::default().size(5);
        let rules = vec![
            (
                "https://api.example.com".to_owned(),
                PoolSettings::default().size(50),
            ),
            (
                "https://*.example.com".to_owned(),
                PoolSettings::default().size(20),
            ),
            (
                "http://*.example.com:8080".to_owned(),
                PoolSettings::default().size(7),
            ),
        ];
        let table = RuleTable::build(&defaults, &rules).unwrap();
        let size = |o: &str| table.lookup(&origin(o)).options.size;
        assert_eq!(size("https://api.example.com"), 50);
        assert_eq!(size("https://api.example.com:443"), 50);
        assert_eq!(size("https://www.example.com"), 20);
        // One label only: a deeper host falls to default.
        assert_eq!(size("https://a.b.example.com"), 5);
        // The apex is not matched by the wildcard.
        assert_eq!(size("https://example.com"), 5);
        // Scheme and port must match.
        assert_eq!(size("http://www.example.com"), 5);
        assert_eq!(size("https://www.example.com:8443"), 5);
        assert_eq!(size("http://www.example.com:8080"), 7);
        assert_eq!(table.lookup(&origin("https://other.org")).name, "default");
    }

    #[test]
    fn rule_options_overlay_client_defaults() {
        let defaults = PoolSettings::default().checkout_timeout(Duration::from_millis(250));
        let rules = vec![(
            "https://a.example".to_owned(),
            PoolSettings::default().size(3),
        )];
        let table = RuleTable::build(&defaults, &rules).unwrap();
        let rule = table.lookup(&origin("https://a.example"));
        assert_eq!(rule.options.size, 3);
        assert_eq!(rule.options.checkout_timeout, Duration::from_millis(250));
        assert_eq!(rule.options.idle_timeout, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_name_rule_and_option() {
        let rules = vec![(
            "https://a.example".to_owned(),
            PoolSettings::default().size(0),
        )];
        let err = RuleTable::build(&PoolSettings::default(), &rules).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains("https://a.example"), "{err}");
        assert!(err.message().contains("size"), "{err}");

        let mut s = PoolSettings::default();
        let err = s.set("size", "ten").unwrap_err();
        assert!(err.message().contains("size"), "{err}");
        let err = s.set("nope", 1).unwrap_err();
        assert!(err.message().contains("unknown option `nope`"), "{err}");
        s.set("checkout_timeout", 1500).unwrap();
        assert_eq!(s.checkout_timeout, Some(Duration::from_millis(1500)));
        s.set("request_timeout", 0).unwrap();
        assert_eq!(s.request_timeout, Some(None));
        s.set("protocol", "HTTP1").unwrap();
        assert_eq!(s.protocol, Some(Protocol::Http1));

        let rules = vec![(
            "http://a.example".to_owned(),
            PoolSettings::default().protocol(Protocol::Http3),
        )];
        let err = RuleTable::build(&PoolSettings::default(), &rules).unwrap_err();
        assert!(err.message().contains("http3"), "{err}");

        let err = RuleTable::build(
            &PoolSettings::default().client_cert(Some(PathBuf::from("/x"))),
            &[],
        )
        .unwrap_err();
        assert!(err.message().contains("client_key"), "{err}");

        for bad in [
            "ftp://*.a.example",
            "https://*.",
            "https://a.example/path",
            "nonsense",
        ] {
            let rules = vec![(bad.to_owned(), PoolSettings::default())];
            let err = RuleTable::build(&PoolSettings::default(), &rules).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(err.message().contains(bad), "{err}");
        }
    }

    #[test]
    fn wildcard_patterns_parse() {
        assert_eq!(
            OriginPattern::parse("https://*.Example.com").unwrap(),
            OriginPattern::Wildcard {
                scheme: Scheme::Https,
                suffix: "example.com".into(),
                port: 443
            }
        );
        assert_eq!(
            OriginPattern::parse("http://*.example.com:81")
                .unwrap()
                .to_string(),
            "http://*.example.com:81"
        );
    }
}
