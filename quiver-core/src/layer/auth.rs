//! Authentication headers: Basic (RFC 7617), Bearer (RFC 6750) and Digest (RFC 7616: MD5,
//! SHA-256, SHA-512-256 and their `-sess` forms; `qop=auth`, or none as in RFC 2069), with the
//! last challenge per origin remembered so later requests answer it without a round trip.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use http::{HeaderMap, HeaderValue, Method};
use md5::Digest as _;

use crate::origin::Origin;
use crate::request::{random_hex, Auth, Secret};

/// Challenges remembered for at most this many origins (a bound on what servers can make a
/// client keep).
const MAX_ORIGINS: usize = 1024;

/// `authorization` for Basic or Bearer credentials (Digest needs a challenge first).
pub(crate) fn simple_header(auth: &Auth) -> Option<HeaderValue> {
    let text = match auth {
        Auth::Basic { user, password } => {
            let pair = format!("{user}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        Auth::Bearer(token) => format!("Bearer {}", token.expose()),
        Auth::Digest { .. } | Auth::None => return None,
    };
    let mut value = HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    fn hash(self, data: &str) -> String {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => {
                hex(ring::digest::digest(&ring::digest::SHA256, data.as_bytes()).as_ref())
            }
            Algorithm::Sha512_256 => {
                hex(ring::digest::digest(&ring::digest::SHA512_256, data.as_bytes()).as_ref())
            }
        }
    }
}

/// A parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    /// The name as the server wrote it (`MD5`, `SHA-256-sess`, ...), echoed back.
    algorithm_name: Option<String>,
    sess: bool,
    /// Whether the server offered `qop=auth` (else the RFC 2069 form is used).
    qop_auth: bool,
    /// `stale=true`: the nonce expired, the credentials were right.
    pub(crate) stale: bool,
}

impl Challenge {
    /// The first Digest challenge among a response's `www-authenticate` headers that quiver
    /// can answer (a known algorithm; `qop` absent or offering `auth`).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Challenge> {
        headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(challenges)
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("digest"))
            .find_map(|(_, params)| Challenge::from_params(&params))
    }

    fn from_params(params: &[(String, String)]) -> Option<Challenge> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm_name = get("algorithm");
        let (algorithm, sess) = match algorithm_name.as_deref().map(str::to_ascii_uppercase) {
            None => (Algorithm::Md5, false),
            Some(name) => match name.as_str() {
                "MD5" => (Algorithm::Md5, false),
                "MD5-SESS" => (Algorithm::Md5, true),
                "SHA-256" => (Algorithm::Sha256, false),
                "SHA-256-SESS" => (Algorithm::Sha256, true),
                "SHA-512-256" => (Algorithm::Sha512_256, false),
                "SHA-512-256-SESS" => (Algorithm::Sha512_256, true),
                _ => return None,
            },
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(list) => {
                if !list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    return None;
                }
                true
            }
        };
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            algorithm_name,
            sess,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `authorization` value answering this challenge for `method` on `uri` (the
    /// request target as sent), with nonce count `nc` and client nonce `cnonce`.
    fn answer(
        &self,
        user: &str,
        password: &Secret,
        method: &Method,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let h = |s: &str| self.algorithm.hash(s);
        let mut ha1 = h(&format!("{user}:{}:{}", self.realm, password.expose()));
        if self.sess {
            ha1 = h(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = h(&format!("{method}:{uri}"));
        let nc_text = format!("{nc:08x}");
        let response = if self.qop_auth {
            h(&format!(
                "{ha1}:{}:{nc_text}:{cnonce}:auth:{ha2}",
                self.nonce
            ))
        } else {
            h(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\"",
            quote(user),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri)
        );
        if let Some(name) = &self.algorithm_name {
            out.push_str(&format!(", algorithm={name}"));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        if self.qop_auth {
            out.push_str(&format!(", qop=auth, nc={nc_text}, cnonce=\"{cnonce}\""));
        }
        out
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Splits a `www-authenticate` value into challenges: scheme and its parameters. Parameters
/// are `name=token` or `name="quoted"`, comma-separated; a bare token starts the next
/// challenge (token68 forms such as `Negotiate abc==` are kept as one parameter with an empty
/// name).
fn challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=') {
            *i += 1;
        }
        value[start..*i].to_owned()
    };
    loop {
        skip(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' && !out.is_empty() {
            i += 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let val = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = value[i..].chars().next().unwrap_or(' ');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            if let Some(last) = out.last_mut() {
                last.1.push((word, val));
            }
        } else if i < b.len() && b[i] == b'=' {
            // A parameter before any scheme: malformed; skip it.
            i += 1;
            let _ = token(&mut i);
        } else {
            out.push((word, Vec::new()));
        }
    }
    out
}

struct Remembered {
    challenge: Challenge,
    nc: u32,
}

/// The last Digest challenge each origin sent, answered again (next nonce count) by later
/// requests until the server challenges anew.
#[derive(Default)]
pub(crate) struct DigestCache {
    by_origin: Mutex<HashMap<Origin, Remembered>>,
}

impl DigestCache {
    /// Remembers `challenge` for `origin` (nonce count restarts).
    pub(crate) fn remember(&self, origin: &Origin, challenge: Challenge) {
        let mut map = self.by_origin.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ORIGINS && !map.contains_key(origin) {
            map.clear();
        }
        map.insert(origin.clone(), Remembered { challenge, nc: 0 });
    }

    /// Forgets `origin`'s challenge (its answer was refused).
    pub(crate) fn forget(&self, origin: &Origin) {
        self.by_origin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(origin);
    }

    /// The `authorization` for a request to `origin`, if a challenge is remembered.
    pub(crate) fn header(
        &self,
        origin: &Origin,
        user: &str,
        password: &Secret,
        method: &Method,
        uri: &str,
    ) -> Option<HeaderValue> {
        let (challenge, nc) = {
            let mut map = self.by_origin.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map.get_mut(origin)?;
            entry.nc = entry.nc.wrapping_add(1);
            (entry.challenge.clone(), entry.nc)
        };
        let cnonce = random_hex(16);
        let text = challenge.answer(user, password, method, uri, nc, &cnonce);
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: &str) -> Challenge {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_str(v).unwrap(),
        );
        Challenge::from_headers(&h).unwrap()
    }

    /// RFC 7616 section 3.9.1: Mufasa, "Circle of Life", GET /dir/index.html.
    #[test]
    fn rfc7616_examples() {
        let md5 = params(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        );
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let password = Secret::new("Circle of Life");
        let get = Method::GET;
        let a = md5.answer("Mufasa", &password, &get, "/dir/index.html", 1, cnonce);
        assert!(
            a.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""),
            "{a}"
        );
        assert!(a.contains("nc=00000001") && a.contains("qop=auth,"), "{a}");
        let sha = params(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        );
        let a = sha.answer("Mufasa", &password, &get, "/dir/index.html", 1, cnonce);
        assert!(
            a.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{a}"
        );
    }

    /// RFC 2617 section 3.5 (MD5 with qop=auth).
    #[test]
    fn rfc2617_example() {
        let c = params(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        );
        let a = c.answer(
            "Mufasa",
            &Secret::new("Circle Of Life"),
            &Method::GET,
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert!(
            a.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{a}"
        );
    }

    #[test]
    fn parses_several_challenges_and_refuses_unknown_algorithms() {
        let c = params("Basic realm=\"x\", Digest realm=\"r\", nonce=\"n\", stale=TRUE");
        assert_eq!(c.realm, "r");
        assert!(c.stale && !c.qop_auth);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1024"),
        );
        assert!(Challenge::from_headers(&h).is_none());
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
        );
        assert!(Challenge::from_headers(&h).is_none());
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Digest realm=\"a \\\"q\\\" b\", nonce=n2"),
        );
        assert_eq!(Challenge::from_headers(&h).unwrap().realm, "a \"q\" b");
    }

    #[test]
    fn basic_and_bearer_headers() {
        let v = simple_header(&Auth::basic("Aladdin", "open sesame")).unwrap();
        assert_eq!(v, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(v.is_sensitive());
        assert_eq!(simple_header(&Auth::bearer("t0k")).unwrap(), "Bearer t0k");
        assert!(simple_header(&Auth::digest("a", "b")).is_none());
    }
}
