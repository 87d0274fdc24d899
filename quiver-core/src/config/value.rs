//! Option values: what callers give by name ([`OptionValue`]), what each option expects
//! ([`OptionKind`]), the enumerations options take ([`Protocol`], [`TlsRoots`]) and the
//! conversions between them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::request::Secret;

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
pub(crate) trait FromOption: Sized {
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

impl FromOption for Option<Secret> {
    const EXPECTED: &'static str = "a string or none";
    const KIND: OptionKind = OptionKind::OptionalString;
    fn from_option(v: OptionValue) -> Option<Self> {
        match v {
            OptionValue::Str(s) if s.is_empty() => Some(None),
            OptionValue::Str(s) => Some(Some(Secret::new(s))),
            OptionValue::None => Some(None),
            _ => None,
        }
    }
}
