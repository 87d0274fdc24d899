//! HTTP authentication endpoints' machinery: Basic and Bearer checks, and Digest (RFC 7616,
//! with RFC 2617's and RFC 2069's forms) with the nonces the server issued.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// The realm of every Digest challenge.
pub(crate) const DIGEST_REALM: &str = "quiver@test";
/// The `opaque` of every Digest challenge.
pub(crate) const DIGEST_OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";
/// How many issued nonces the server remembers (the oldest are forgotten first).
const MAX_NONCES: usize = 4096;

/// Whether `value` (an `authorization` header) is `Basic base64(user:passwd)`.
pub(crate) fn basic_ok(value: &[u8], user: &str, passwd: &str) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .is_ok_and(|decoded| decoded == format!("{user}:{passwd}").as_bytes())
}

/// Whether `value` (an `authorization` header) is `Bearer {token}`.
pub(crate) fn bearer_ok(value: &[u8], token: &str) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    value
        .trim()
        .split_once(' ')
        .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t.trim() == token)
}

/// A Digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    /// Parses a name, case-insensitively.
    pub(crate) fn parse(name: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The name as challenges write it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// A hasher for this algorithm's H.
    pub(crate) fn hasher(self) -> DigestHasher {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => DigestHasher::Md5(Md5::new()),
            Algorithm::Sha256 | Algorithm::Sha256Sess => DigestHasher::Sha256(Sha256::new()),
        }
    }

    /// H(data), lower-case hex.
    pub(crate) fn hash(self, data: &str) -> String {
        let mut hasher = self.hasher();
        hasher.update(data.as_bytes());
        hasher.finish()
    }
}

/// An incremental H (for auth-int's body hash).
pub(crate) enum DigestHasher {
    Md5(Md5),
    Sha256(Sha256),
}

impl DigestHasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            DigestHasher::Md5(h) => h.update(data),
            DigestHasher::Sha256(h) => h.update(data),
        }
    }

    /// The hash, lower-case hex.
    pub(crate) fn finish(self) -> String {
        match self {
            DigestHasher::Md5(h) => hex(&h.finalize()),
            DigestHasher::Sha256(h) => hex(&h.finalize()),
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A Digest `qop`, as the path names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Qop {
    Auth,
    AuthInt,
    /// No qop: RFC 2069's form.
    None,
}

impl Qop {
    pub(crate) fn parse(name: &str) -> Option<Qop> {
        Some(match name {
            "auth" => Qop::Auth,
            "auth-int" => Qop::AuthInt,
            "none" => Qop::None,
            _ => return None,
        })
    }

    /// The value of the `qop` parameters, `None` for RFC 2069.
    pub(crate) fn value(self) -> Option<&'static str> {
        match self {
            Qop::Auth => Some("auth"),
            Qop::AuthInt => Some("auth-int"),
            Qop::None => None,
        }
    }
}

/// What a Digest response is computed from.
pub(crate) struct DigestInput<'a> {
    pub(crate) algorithm: Algorithm,
    pub(crate) user: &'a str,
    pub(crate) realm: &'a str,
    pub(crate) passwd: &'a str,
    pub(crate) method: &'a str,
    pub(crate) uri: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) nc: &'a str,
    pub(crate) cnonce: &'a str,
    /// `auth`, `auth-int` or none (RFC 2069).
    pub(crate) qop: Option<&'a str>,
    /// H(entity-body), for `auth-int`.
    pub(crate) body_hash: &'a str,
}

/// The expected `response` (RFC 7616, 3.4.1): HA1 = H(user:realm:passwd), for -sess
/// H(HA1:nonce:cnonce); HA2 = H(method:uri), for auth-int H(method:uri:H(body));
/// response = H(HA1:nonce:nc:cnonce:qop:HA2), or H(HA1:nonce:HA2) without qop.
pub(crate) fn digest_response(input: &DigestInput<'_>) -> String {
    let h = |s: String| input.algorithm.hash(&s);
    let mut ha1 = h(format!("{}:{}:{}", input.user, input.realm, input.passwd));
    if input.algorithm.sess() {
        ha1 = h(format!("{ha1}:{}:{}", input.nonce, input.cnonce));
    }
    let ha2 = if input.qop == Some("auth-int") {
        h(format!(
            "{}:{}:{}",
            input.method, input.uri, input.body_hash
        ))
    } else {
        h(format!("{}:{}", input.method, input.uri))
    };
    match input.qop {
        Some(qop) => h(format!(
            "{ha1}:{}:{}:{}:{qop}:{ha2}",
            input.nonce, input.nc, input.cnonce
        )),
        None => h(format!("{ha1}:{}:{ha2}", input.nonce)),
    }
}

/// Parses the parameters of an `authorization: Digest ...` header: names lower-cased, values
/// unquoted (backslash escapes resolved), any order. `None` when the scheme is not Digest or
/// the list does not parse.
pub(crate) fn parse_digest_header(value: &str) -> Option<HashMap<String, String>> {
    let value = value.trim_start();
    let (scheme, mut rest) = value.split_at(value.find(char::is_whitespace)?);
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut params = HashMap::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            return Some(params);
        }
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_ascii_lowercase();
        if name.is_empty() || name.contains([' ', ',', '"']) {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => out.push(chars.next()?.1),
                    (i, '"') => break i,
                    (_, c) => out.push(c),
                }
            };
            value = out;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.insert(name, value);
    }
}

/// What the server remembers of a nonce it issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NonceInfo {
    /// Issued by a `stale=true` challenge: `?stale=1` accepts it.
    pub(crate) replacement: bool,
}

/// The nonces issued by Digest challenges, shared by every listener of a server: the most
/// recent [`MAX_NONCES`].
#[derive(Debug, Default)]
pub(crate) struct NonceStore {
    inner: Mutex<NonceInner>,
}

#[derive(Debug, Default)]
struct NonceInner {
    order: VecDeque<String>,
    known: HashMap<String, NonceInfo>,
}

impl NonceStore {
    /// A fresh random nonce, remembered.
    pub(crate) fn issue(&self, replacement: bool) -> String {
        let nonce = random_hex();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.known.insert(nonce.clone(), NonceInfo { replacement });
        inner.order.push_back(nonce.clone());
        while inner.order.len() > MAX_NONCES {
            if let Some(old) = inner.order.pop_front() {
                inner.known.remove(&old);
            }
        }
        nonce
    }

    /// What is known of `nonce`, if this server issued it (and has not forgotten it).
    pub(crate) fn get(&self, nonce: &str) -> Option<NonceInfo> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .known
            .get(nonce)
            .copied()
    }

    /// Forgets `nonce` (it stays in the order queue until pushed out, harmlessly).
    pub(crate) fn forget(&self, nonce: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .known
            .remove(nonce);
    }
}

/// 32 random hex digits (std's randomly keyed SipHash over a counter and the clock).
fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (0..2)
        .map(|_| {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.write_u128(nanos);
            format!("{:016x}", h.finish())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc7616(algorithm: Algorithm) -> String {
        digest_response(&DigestInput {
            algorithm,
            user: "Mufasa",
            realm: "http-auth@example.org",
            passwd: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            nc: "00000001",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            qop: Some("auth"),
            body_hash: "",
        })
    }

    #[test]
    fn rfc7616_example() {
        // RFC 7616, 3.9.1.
        assert_eq!(rfc7616(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            rfc7616(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_example() {
        // RFC 2617, 3.5.
        let response = digest_response(&DigestInput {
            algorithm: Algorithm::Md5,
            user: "Mufasa",
            realm: "testrealm@host.com",
            passwd: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            nc: "00000001",
            cnonce: "0a4f113b",
            qop: Some("auth"),
            body_hash: "",
        });
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn sess_auth_int_and_rfc2069_forms() {
        let base = DigestInput {
            algorithm: Algorithm::Md5Sess,
            user: "u",
            realm: "r",
            passwd: "p",
            method: "POST",
            uri: "/x",
            nonce: "n",
            nc: "00000001",
            cnonce: "c",
            qop: Some("auth-int"),
            body_hash: &Algorithm::Md5.hash("body"),
        };
        let h = |s: &str| Algorithm::Md5.hash(s);
        let ha1 = h(&format!("{}:n:c", h("u:r:p")));
        let ha2 = h(&format!("POST:/x:{}", h("body")));
        assert_eq!(
            digest_response(&base),
            h(&format!("{ha1}:n:00000001:c:auth-int:{ha2}"))
        );
        let rfc2069 = DigestInput {
            algorithm: Algorithm::Md5,
            qop: None,
            ..base
        };
        assert_eq!(
            digest_response(&rfc2069),
            h(&format!("{}:n:{}", h("u:r:p"), h("POST:/x")))
        );
        assert_eq!(
            Algorithm::parse("sha-256-SESS"),
            Some(Algorithm::Sha256Sess)
        );
        assert_eq!(Algorithm::parse("sha-512"), None);
    }

    #[test]
    fn header_parsing() {
        let params = parse_digest_header(
            "Digest username=\"Mufasa\",realm=\"a, \\\"b\\\"\", NC=00000001 ,  qop=auth, \
             uri=\"/dir/index.html?x=1\"",
        )
        .unwrap();
        assert_eq!(params["username"], "Mufasa");
        assert_eq!(params["realm"], "a, \"b\"");
        assert_eq!(params["nc"], "00000001");
        assert_eq!(params["qop"], "auth");
        assert_eq!(params["uri"], "/dir/index.html?x=1");
        assert!(parse_digest_header("Basic abc").is_none());
        assert!(parse_digest_header("Digest username=\"unterminated").is_none());
        assert!(parse_digest_header("digest a=1").is_some());
    }

    #[test]
    fn basic_and_bearer() {
        // "user:pass" in base64.
        assert!(basic_ok(b"Basic dXNlcjpwYXNz", "user", "pass"));
        assert!(basic_ok(b"basic  dXNlcjpwYXNz", "user", "pass"));
        assert!(!basic_ok(b"Basic dXNlcjpwYXNz", "user", "other"));
        assert!(!basic_ok(b"Bearer dXNlcjpwYXNz", "user", "pass"));
        assert!(bearer_ok(b"Bearer tok", "tok"));
        assert!(!bearer_ok(b"Bearer tok2", "tok"));
    }

    #[test]
    fn nonces_are_bounded() {
        let store = NonceStore::default();
        let first = store.issue(false);
        assert_eq!(first.len(), 32);
        assert_eq!(store.get(&first), Some(NonceInfo { replacement: false }));
        let second = store.issue(true);
        assert_ne!(first, second);
        assert_eq!(store.get(&second), Some(NonceInfo { replacement: true }));
        for _ in 0..MAX_NONCES {
            store.issue(false);
        }
        assert_eq!(store.get(&first), None);
        store.forget(&second);
        assert_eq!(store.get(&second), None);
    }
}
