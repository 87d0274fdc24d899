//! Pool options, their defaults and validation, and the rules that pick options per origin.
//!
//! Every option is declared once in the `options!` table below: its name (the same string in
//! Rust, C, Python and Node), its type, its default (as a value and as documentation), its
//! range and its documentation. `docs/options.md` is generated from the table (a test fails
//! while it is stale). [`PoolSettings`] holds what a caller set (every field optional);
//! [`PoolOptions`] is the resolved, validated result for one origin: built-in defaults,
//! overlaid by the client-wide settings, overlaid by the most specific matching rule
//! (exact > wildcard > default).
//!
//! Longer than 520 lines: the options table is one table on purpose (docs, bindings and
//! validation all read it).

mod overrides;
mod rules;
mod value;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::origin::Scheme;
use crate::request::{Auth, Secret};

pub(crate) use self::overrides::Override;
pub(crate) use self::rules::{ResolvedRule, RuleTable};
use self::value::FromOption;
pub use self::value::{OptionKind, OptionValue, Protocol, TlsRoots};

/// The longest duration any option takes.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(86_400 * 365);

/// One option as documentation and bindings see it: the row of the options table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OptionInfo {
    /// The option's name, the same in every language.
    pub name: &'static str,
    /// The kind of value it takes.
    pub kind: OptionKind,
    /// Its default, as documentation shows it.
    pub default: &'static str,
    /// The values it accepts, as documentation shows them (empty when the kind says it all).
    pub range: &'static str,
    /// What it does.
    pub doc: &'static str,
}

macro_rules! options {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr, $shown:literal, $range:literal; )*) => {
        /// Options a caller set for a pool rule (or client-wide); unset fields fall through.
        ///
        /// Each field's documentation is on the same-named field of [`PoolOptions`].
        #[derive(Clone, Debug, Default, PartialEq)]
        #[non_exhaustive]
        pub struct PoolSettings {
            $( #[allow(missing_docs)] pub $name: Option<$ty>, )*
        }

        /// Resolved options for one origin's pool. Defaults are documented per field.
        #[derive(Clone, Debug, PartialEq)]
        #[non_exhaustive]
        pub struct PoolOptions {
            $( $(#[doc = $doc])* #[doc = concat!("\n\nDefault: ", $shown, ".")] pub $name: $ty, )*
        }

        impl Default for PoolOptions {
            fn default() -> Self {
                PoolOptions { $( $name: $default, )* }
            }
        }

        impl PoolSettings {
            /// Every option name, as accepted by [`PoolSettings::set`].
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Every option: name, kind, default, range and documentation, in table order.
            pub const OPTIONS: &'static [OptionInfo] = &[$(OptionInfo {
                name: stringify!($name),
                kind: <$ty as FromOption>::KIND,
                default: $shown,
                range: $range,
                doc: concat!($($doc, "\n"),*),
            }),*];

            $(
                $(#[doc = $doc])*
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
    /// Which HTTP version the pool speaks: `auto` (https: ALPN decides h2 or http/1.1 on the
    /// pool's first connection; http: HTTP/1.1), `http1`, `http2` (https: ALPN h2 only; http:
    /// h2c prior knowledge), `http3` (QUIC; https only: an `http://` rule asking for it is
    /// invalid, and a client-wide `http3` leaves `http://` origins on HTTP/1.1).
    protocol: Protocol = Protocol::Auto, "`auto`", "`auto`, `http1`, `http2`, `http3` (also `h1`, `http/1.1`, `h2`, `h3`)";
    /// With `protocol` `auto` on https: learn HTTP/3 alternatives from `alt-svc` response
    /// headers (RFC 7838: `h3` entries, `ma`, `persist`, `clear`; a client-wide cache) and send
    /// later requests to that origin over HTTP/3 while one is fresh. A new QUIC connection
    /// races TCP: QUIC first, TCP `happy_eyeballs_delay` later, the first connection up carries
    /// the request. A failed QUIC connection marks the alternative broken (5 minutes, doubling
    /// with each failure up to 2 days) and the request goes over TCP without the caller seeing
    /// it. Not through proxies or a `unix_socket`. On by default, as in browsers: only origins
    /// that advertise HTTP/3 are affected, and a blocked UDP path costs at most the head start,
    /// once.
    alt_svc: bool = true, "true", "needs the `http3` feature to take effect";
    /// HTTP/1: most connections to one origin; callers beyond wait in a FIFO queue.
    size: usize = 10, "10", "1–100000";
    /// HTTP/2 and HTTP/3: most connections to one origin. Each connection carries as many
    /// streams as the peer allows (typically 100–128), so 4 connections serve bursts of several
    /// hundred concurrent requests while keeping handshakes and server memory low; another
    /// connection opens only when every stream slot in sight (on open connections and ones
    /// still handshaking) is taken.
    max_connections: usize = 4, "4", "1–1000";
    /// Client-wide: most connections open at once across every origin (HTTP/1.1, HTTP/2 and
    /// HTTP/3 alike; connections to proxies that carry them are not counted twice). A dial
    /// beyond it waits, first come first served, for a connection to close, up to
    /// `checkout_timeout` (`checkout_timeout` error); while it waits, idle connections to other
    /// origins are closed to make room. Only without a pattern (it is not per origin).
    max_total_connections: usize = 0, "0 (no cap)", "0–100000";
    /// HTTP/2 and HTTP/3: stream slots assumed on a connection until the peer states its limit
    /// (callers arriving during a handshake are counted against it rather than opening more
    /// connections).
    initial_max_streams: usize = 100, "100", "1–1000000";
    /// HTTP/2 and HTTP/3: receive window per stream, in bytes; a consumer that stops reading
    /// holds at most this much (plus one chunk) for that stream. On HTTP/3 quinn may reassemble
    /// buffered data into one chunk that h3 holds while QUIC credit is reopened, so the worst
    /// case there is two windows.
    stream_window: u32 = 2 << 20, "2 MiB", "1024–2147483647";
    /// HTTP/2 and HTTP/3: receive window per connection, in bytes.
    connection_window: u32 = 8 << 20, "8 MiB", "65535–2147483647";
    /// HTTP/2 and HTTP/3: credit is returned to the peer only as the caller takes bytes, never
    /// on arrival; it is batched until the caller has taken this fraction of the stream window,
    /// or has taken everything received so far and waits for more (holding it back then would
    /// only stall the sender and, on a shared connection window, the other streams).
    window_update_threshold: f64 = 0.5, "0.5", "greater than 0, at most 1";
    /// HTTP/2: keep-alive PING interval (0 or none disables); HTTP/3: QUIC keep-alive interval,
    /// at most a third of `quic_idle_timeout` (so that keep-alive keeps the connection open).
    ping_interval: Option<Duration> = Some(Duration::from_secs(30)), "30 s", "at most a year; 0 or none: off";
    /// HTTP/2: a PING unanswered this long closes the connection; its requests fail with
    /// `ping_timeout`.
    ping_timeout: Duration = Duration::from_secs(10), "10 s", "";
    /// HTTP/3: a QUIC connection with no packets for this long is closed (keep-alive packets,
    /// every `ping_interval` or a third of this, whichever is shorter, keep a live one open).
    quic_idle_timeout: Duration = Duration::from_secs(30), "30 s", "";
    /// HTTP/3 only: on a resumed connection (a session ticket from an earlier connection to the
    /// same server name), idempotent requests (GET, HEAD, OPTIONS, TRACE; per request:
    /// `early_data(bool)`) go in the 0-RTT flight; a rejected flight or a `425 Too Early` is
    /// replayed after the handshake, transparently.
    early_data: bool = false, "false", "needs `protocol` `http3`";
    /// Proxy URL `http://[user:pass@]host:port` or `https://...` (TLS to the proxy itself,
    /// verified with this rule's trust settings), or `none`. https targets go through a CONNECT
    /// tunnel (TLS to the origin inside it); http targets over HTTP/1.1 go in absolute form to
    /// the proxy; `http3` origins go through MASQUE CONNECT-UDP (QUIC inside the tunnel).
    /// Without the option (and with `proxy_from_env`), `HTTPS_PROXY` / `HTTP_PROXY` /
    /// `ALL_PROXY` apply (lower-case first), except for hosts in `NO_PROXY` (`*`, hosts,
    /// domain suffixes, `host:port`).
    proxy: Option<String> = None, "from the environment", "";
    /// Proxy-Authorization value sent to the proxy only, never to the origin (credentials in
    /// the proxy URL become a Basic value otherwise).
    proxy_authorization: Option<String> = None, "none", "";
    /// How to speak to the proxy: `auto`/`http1` (CONNECT over HTTP/1.1, a connection per
    /// tunnel; HTTP/1.1 is never pooled for tunnels), `http2` (CONNECT streams on pooled HTTP/2
    /// connections; MASQUE over capsules), `http3` (MASQUE over pooled HTTP/3 connections with
    /// datagrams; `http3` origins only). Pooled proxy connections are shared per proxy and trust
    /// settings.
    proxy_protocol: Protocol = Protocol::Auto, "`auto`", "`auto`, `http1`, `http2`, `http3`";
    /// Use the proxy environment variables when `proxy` is not set.
    proxy_from_env: bool = true, "true", "";
    /// Longest a caller waits for a connection or stream slot (`checkout_timeout` error).
    checkout_timeout: Duration = Duration::from_secs(5), "5 s", "";
    /// An idle connection is closed after this long unused.
    idle_timeout: Duration = Duration::from_secs(30), "30 s", "";
    /// Longest a TCP connect plus TLS handshake (or a QUIC handshake) may take, name
    /// resolution and every Happy Eyeballs attempt included. A caller waiting for a connection
    /// being dialled for it waits this long (or `checkout_timeout`, if longer) and gets the
    /// dial's own error (`connect_timeout`, `connect_refused`, `dns`, ...).
    connect_timeout: Duration = Duration::from_secs(5), "5 s", "";
    /// Happy Eyeballs (RFC 8305) connection attempt delay: the resolved addresses are tried
    /// alternating IPv6 and IPv4 (starting with the resolver's first answer), the next attempt
    /// starting this long after the previous one or at once when it fails; the first connection
    /// made wins and the others are cancelled. TCP and QUIC alike.
    happy_eyeballs_delay: Duration = Duration::from_millis(250), "250 ms", "";
    /// With `protocol` `auto` (and `alt_svc`) on https: ask DNS for the origin's HTTPS
    /// resource record (RFC 9460) before its first request; one listing `alpn=h3` gives the
    /// origin an HTTP/3 alternative at once (its target, `port` and address hints; alive for the
    /// record's TTL), so even the first request races QUIC against TCP. The lookup is bounded by
    /// `connect_timeout` and any failure just means no alternative. Addresses for TCP still come
    /// from the system resolver. Needs the `https-rr` feature (hickory-resolver).
    https_rr: bool = false, "false", "needs the `https-rr` feature";
    /// The nameserver (`ip:port`) asked for HTTPS records instead of the system's
    /// (`/etc/resolv.conf`).
    https_rr_nameserver: Option<String> = None, "the system's", "`ip:port`";
    /// Path of a Unix domain socket to connect to instead of TCP (`curl --unix-socket`), for
    /// HTTP/1.1 and HTTP/2 (h2c with `protocol` `http2`; TLS too for https origins). The URL's
    /// origin still gives `Host` and the TLS server name; proxies do not apply. Not with
    /// `http3`.
    unix_socket: Option<PathBuf> = None, "none", "not with `protocol` `http3`";
    /// Addresses for names, instead of asking the resolver, as `curl --resolve` takes them:
    /// `host:port:address[,address...]` (IPv6 in brackets), several entries separated by spaces
    /// or `;`. Only the named host and port are affected.
    resolve: Option<String> = None, "none", "";
    /// How long resolved addresses are reused (a client-wide cache; the system resolver does not
    /// report record TTLs, so entries live this long, as in curl). 0 or none: resolve every
    /// connection afresh.
    dns_cache_ttl: Option<Duration> = Some(Duration::from_secs(60)), "60 s", "at most a year; 0 or none: no cache";
    /// Longest the connection may go without moving a byte while a request waits on it (idle
    /// between bytes).
    read_timeout: Duration = Duration::from_secs(30), "30 s", "";
    /// Longest a whole request may take, body included; per-request override available.
    request_timeout: Option<Duration> = None, "none", "at most a year; 0 or none: no limit";
    /// PEM file of CA certificates trusted instead of the default roots.
    ca_file: Option<PathBuf> = None, "none", "";
    /// PEM certificate chain for mutual TLS (with `client_key`).
    client_cert: Option<PathBuf> = None, "none", "";
    /// PEM private key of `client_cert`.
    client_key: Option<PathBuf> = None, "none", "";
    /// Roots used without `ca_file`: `webpki` (Mozilla's, bundled) or `system` (the OS store).
    tls_roots: TlsRoots = TlsRoots::Webpki, "`webpki`", "`webpki`, `system`";
    /// Accept any server certificate, unverified: for tests only.
    danger_accept_invalid_certs: bool = false, "false", "";
    /// Largest response header section accepted, in bytes, counted as RFC 9113 counts a header
    /// list (name + value + 32 per field; HTTP/1.1: the head's size). Larger ones fail with
    /// `response_headers_too_large`. HTTP/2 announces four times it as SETTINGS_MAX_HEADER_LIST_SIZE
    /// (h2 cuts off larger lists as `protocol`), HTTP/3 announces it as
    /// SETTINGS_MAX_FIELD_SECTION_SIZE, and it bounds the HTTP/3 frames buffered
    /// before decoding. 128 KiB: twice what common servers and CDNs allow in a response head
    /// (AWS ALB and Cloudflare: 64 KiB), far beyond real responses, while a hostile server can
    /// make a stream hold only that much.
    max_response_headers: usize = 128 << 10, "128 KiB", "1024–1048576";
    /// Longest response body accepted, in bytes; a longer one fails with
    /// `response_body_too_large` once that many bytes have arrived (and a decoded body once it decodes to more). 0: no
    /// limit.
    max_response_body: u64 = 0, "0 (no limit)", "0–9223372036854775807";
    /// Follow redirects (301, 302, 303, 307, 308 with a `location`): 301/302 after POST and
    /// 303 become GET without a body, 307/308 keep the method and body (a streamed body cannot
    /// be sent again: the redirect is returned, saying why); `authorization`, `cookie` and
    /// `proxy-authorization` are dropped when the origin changes. For a chain, the rule of the
    /// first request's origin decides. On by default, as in requests, fetch, reqwest and Go:
    /// most callers want the resource, and what would make following unsafe (credentials,
    /// cookies, https to http) is handled here, not left to them.
    follow_redirects: bool = true, "true", "";
    /// Most redirects followed for one request; one more fails with `too_many_redirects`
    /// (loops end there too). 0: never follow.
    max_redirects: usize = 10, "10", "0–1000";
    /// Follow redirects from https to http (refused otherwise: `redirect_refused`).
    allow_insecure_redirects: bool = false, "false", "";
    /// Ask for compressed responses (`accept-encoding: gzip, deflate, br, zstd`, unless the
    /// request sets its own) and decode `content-encoding` gzip, deflate, br and zstd (chains
    /// too) as the body is read, paced by the reader. The response keeps its headers as sent
    /// (`content-encoding`, `content-length` of the compressed body), as in httpx. Off: the
    /// bytes as sent, no `accept-encoding` added.
    decompress: bool = true, "true", "";
    /// A decoded body may be at most this many times the compressed bytes that produced it,
    /// checked once it passed 10 MiB; beyond, `decompression_bomb`. gzip and deflate top out
    /// near 1030:1, so 1000 stops only degenerate input. 0: no limit.
    max_decompression_ratio: u64 = 1000, "1000", "0–1000000000";
    /// Keep a cookie jar for the whole client (RFC 6265: domain and path matching, `Secure`,
    /// `HttpOnly`, `SameSite` kept, expiry; the public suffix list refuses cookies for
    /// `co.uk` and the like): cookies from responses (redirects included) are stored and sent
    /// with later requests that match them. Client-wide only.
    cookies: bool = false, "false", "client-wide only";
    /// Basic credentials `user:password` sent to this rule's origins (a client-wide value: to
    /// the origin each request names, never to another one a redirect leads to).
    basic_auth: Option<Secret> = None, "none", "`user:password`";
    /// A bearer token sent as `authorization: Bearer ...`, scoped as `basic_auth` is.
    bearer_token: Option<Secret> = None, "none", "";
    /// Digest credentials `user:password` (RFC 7616: MD5, SHA-256, `-sess`, `qop=auth`):
    /// a `401` with a Digest challenge is answered once and the request replayed; scoped as
    /// `basic_auth` is.
    digest_auth: Option<Secret> = None, "none", "`user:password`";
}

/// The integer options' ranges, checked by `validate` and shown by the table (a unit test
/// keeps the two in step).
const INT_RANGES: &[(&str, u64, u64)] = &[
    ("size", 1, 100_000),
    ("max_connections", 1, 1_000),
    ("max_total_connections", 0, 100_000),
    ("initial_max_streams", 1, 1_000_000),
    ("stream_window", 1024, 0x7fff_ffff),
    ("connection_window", 65_535, 0x7fff_ffff),
    ("max_response_headers", 1024, 1 << 20),
    ("max_response_body", 0, i64::MAX as u64),
    ("max_redirects", 0, 1_000),
    ("max_decompression_ratio", 0, 1_000_000_000),
];

impl PoolOptions {
    fn int_value(&self, name: &str) -> Option<u64> {
        Some(match name {
            "size" => self.size as u64,
            "max_connections" => self.max_connections as u64,
            "max_total_connections" => self.max_total_connections as u64,
            "initial_max_streams" => self.initial_max_streams as u64,
            "stream_window" => u64::from(self.stream_window),
            "connection_window" => u64::from(self.connection_window),
            "max_response_headers" => self.max_response_headers as u64,
            "max_response_body" => self.max_response_body,
            "max_redirects" => self.max_redirects as u64,
            "max_decompression_ratio" => self.max_decompression_ratio,
            _ => return None,
        })
    }

    /// Checks ranges and cross-field rules for a pool serving `scheme` (when known).
    pub(crate) fn validate(&self, scheme: Option<Scheme>) -> Result<()> {
        let bad =
            |opt: &str, why: &str| Err(Error::invalid_config(format!("option `{opt}` {why}")));
        for (name, lo, hi) in INT_RANGES {
            let v = self.int_value(name).unwrap_or_default();
            if !(*lo..=*hi).contains(&v) {
                return bad(name, &format!("must be between {lo} and {hi}, got {v}"));
            }
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
            ("happy_eyeballs_delay", self.happy_eyeballs_delay),
            ("read_timeout", self.read_timeout),
        ] {
            if d.is_zero() {
                return bad(name, "must be greater than zero");
            }
            if d > MAX_DURATION {
                return bad(name, "must be at most a year");
            }
        }
        for (name, d) in [
            ("ping_interval", self.ping_interval),
            ("request_timeout", self.request_timeout),
            ("dns_cache_ttl", self.dns_cache_ttl),
        ] {
            if d.is_some_and(|d| d > MAX_DURATION) {
                return bad(name, "must be at most a year");
            }
        }
        if self.https_rr && !cfg!(feature = "https-rr") {
            return bad("https_rr", "needs quiver's `https-rr` feature");
        }
        if let Some(ns) = &self.https_rr_nameserver {
            if ns.parse::<std::net::SocketAddr>().is_err() {
                return bad(
                    "https_rr_nameserver",
                    &format!("expects `ip:port`, got `{ns}`"),
                );
            }
        }
        if let Some(spec) = &self.resolve {
            Override::parse_all(spec)?;
        }
        if self.unix_socket.is_some() {
            if !cfg!(unix) {
                return bad("unix_socket", "needs a Unix system");
            }
            if self.protocol == Protocol::Http3 {
                return bad("unix_socket", "cannot carry HTTP/3 (QUIC runs over UDP)");
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return bad("client_cert", "and `client_key` must be given together");
        }
        if self.protocol == Protocol::Http3 && scheme == Some(Scheme::Http) {
            return bad("protocol", "http3 needs an https origin");
        }
        if let Some(url) = &self.proxy {
            if let Some(socks) = crate::origin::parse_socks_url(url) {
                socks.map_err(|e| {
                    Error::invalid_config(format!("option `proxy`: {}", e.message()))
                })?;
                if !cfg!(feature = "socks") {
                    return bad("proxy", "socks5 needs quiver's `socks` feature");
                }
                if self.protocol == Protocol::Http3 {
                    return bad(
                        "proxy",
                        "socks5 carries TCP only; HTTP/3 (QUIC) cannot go through it",
                    );
                }
            } else if !url.is_empty() && !url.eq_ignore_ascii_case("none") {
                crate::origin::parse_proxy_url(url).map_err(|e| {
                    Error::invalid_config(format!("option `proxy`: {}", e.message()))
                })?;
            }
        }
        for (name, value) in [
            ("basic_auth", &self.basic_auth),
            ("digest_auth", &self.digest_auth),
        ] {
            if let Some(v) = value {
                Auth::split_user(name, v.expose())?;
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

impl PoolSettings {
    /// The credentials these settings give themselves (not inherited): at most one of
    /// `basic_auth`, `bearer_token` and `digest_auth`.
    pub(crate) fn own_auth(&self) -> Result<Option<Auth>> {
        let basic = self.basic_auth.clone().flatten();
        let bearer = self.bearer_token.clone().flatten();
        let digest = self.digest_auth.clone().flatten();
        let set = [basic.is_some(), bearer.is_some(), digest.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(Error::invalid_config(
                "give only one of `basic_auth`, `bearer_token` and `digest_auth`",
            ));
        }
        let auth = if let Some(v) = basic {
            let (user, password) = Auth::split_user("basic_auth", v.expose())?;
            Some(Auth::Basic { user, password })
        } else if let Some(v) = digest {
            let (user, password) = Auth::split_user("digest_auth", v.expose())?;
            Some(Auth::Digest { user, password })
        } else {
            bearer.map(Auth::Bearer)
        };
        if let Some(a) = &auth {
            a.validate()
                .map_err(|e| Error::invalid_config(e.message().to_owned()))?;
        }
        Ok(auth)
    }
}

/// What a kind of value accepts, for the options table.
fn kind_text(kind: OptionKind) -> &'static str {
    match kind {
        OptionKind::Bool => "boolean",
        OptionKind::Int => "integer",
        OptionKind::Float => "number",
        OptionKind::Duration => "duration (greater than 0, at most a year)",
        OptionKind::OptionalDuration => "duration or none",
        OptionKind::Path => "file path or none",
        OptionKind::OptionalString => "string or none",
        OptionKind::Choice => "name",
    }
}

/// `docs/options.md`, generated from the options table.
#[doc(hidden)]
pub fn options_markdown() -> String {
    let mut out = String::from(
        "# Pool options\n\n\
         <!-- Generated from the options table in quiver-core/src/config/mod.rs; edit it there and run \
         `make docs`. A test fails while this file is stale. -->\n\n\
         Options are set client-wide or per origin rule, by the same names in every language\n\
         (Rust `ClientBuilder::set` / `set_for`, C `quiver_config_set_*`, Python keyword arguments and\n\
         `pools={...}`, Node camelCase keys). The whole configuration is validated when the client is built;\n\
         a bad value is an `invalid_config` error naming the rule and the option.\n\n\
         **Rules** are keyed by origin pattern and the most specific one wins:\n\n\
         1. exact: `https://api.example.com` (the port defaults from the scheme: 443 / 80);\n\
         2. wildcard: `https://*.example.com` — the `*` matches exactly one leftmost label\n   \
         (`a.example.com`, not `example.com` nor `a.b.example.com`); scheme and port must match;\n\
         3. `default`: the client-wide options.\n\n\
         A rule's options overlay the client-wide ones, which overlay the built-in defaults below.\n\n\
         Durations are given as `Duration` in Rust, seconds (float) in Python, milliseconds in Node and C.\n\n\
         | option | kind | default | accepts | meaning |\n|---|---|---|---|---|\n",
    );
    for o in PoolSettings::OPTIONS {
        let doc: Vec<&str> = o.doc.split_whitespace().collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            o.name,
            kind_text(o.kind),
            o.default,
            if o.range.is_empty() { "—" } else { o.range },
            doc.join(" ").replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ranges_in_the_table_are_the_ones_validated() {
        for (name, lo, hi) in INT_RANGES {
            let info = PoolSettings::OPTIONS
                .iter()
                .find(|o| o.name == *name)
                .unwrap();
            assert_eq!(info.range, format!("{lo}–{hi}"), "{name}");
            let check = |v: u64| {
                let mut s = PoolSettings::default();
                s.set(name, OptionValue::Int(v as i64)).unwrap();
                RuleTable::build(&s, &[]).map(|_| ())
            };
            assert!(check(*lo).is_ok() && check(*hi).is_ok(), "{name}");
            if *lo > 0 {
                assert!(check(lo - 1).is_err(), "{name}");
            }
            if *hi < i64::MAX as u64 {
                assert!(check(hi + 1).is_err(), "{name}");
            }
        }
        for o in PoolSettings::OPTIONS {
            if o.kind == OptionKind::Int {
                assert!(INT_RANGES.iter().any(|(n, ..)| *n == o.name), "{}", o.name);
            }
            assert!(!o.doc.trim().is_empty(), "{} has no documentation", o.name);
        }
    }
}
