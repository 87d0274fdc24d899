//! Credentials a request carries: Basic, Bearer or Digest, and the secret string type that
//! keeps them out of `Debug` output.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// A string that never shows in `Debug` output (passwords, tokens).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl From<&str> for Secret {
    fn from(v: &str) -> Secret {
        Secret(v.to_owned())
    }
}

impl From<String> for Secret {
    fn from(v: String) -> Secret {
        Secret(v)
    }
}

/// How a request authenticates to its origin. Credentials go only to the origin they were
/// given for: a redirect to another origin drops them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Basic base64(user:password)` (RFC 7617), sent with the first request.
    Basic {
        /// The user name (it may not contain `:`).
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>` (RFC 6750).
    Bearer(Secret),
    /// HTTP Digest (RFC 7616: MD5, SHA-256 and their `-sess` forms, `qop=auth` or none): the
    /// request goes without credentials, and a `401` with a Digest challenge is answered once,
    /// the request replayed with the computed response; later requests to the origin reuse the
    /// challenge (next nonce count) until the server asks again.
    Digest {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// No credentials, even where a rule or the client sets some (per request).
    None,
}

impl Auth {
    /// Basic credentials.
    pub fn basic(user: impl Into<String>, password: impl Into<Secret>) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    /// A bearer token.
    pub fn bearer(token: impl Into<Secret>) -> Auth {
        Auth::Bearer(token.into())
    }

    /// Digest credentials.
    pub fn digest(user: impl Into<String>, password: impl Into<Secret>) -> Auth {
        Auth::Digest {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Parses the `user:password` form the `basic_auth` and `digest_auth` options take.
    pub(crate) fn split_user(option: &str, value: &str) -> Result<(String, Secret)> {
        match value.split_once(':') {
            Some((user, password)) => Ok((user.to_owned(), Secret::new(password))),
            None => Err(Error::invalid_config(format!(
                "option `{option}` expects `user:password`"
            ))),
        }
    }

    /// Checks what a header cannot carry (control characters) and Basic's `:` rule.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::new(
                ErrorKind::InvalidHeader,
                format!("{what} contains a control character (CR, LF, NUL, ...)"),
            ))
        };
        let control = |s: &str| s.chars().any(|c| c.is_control());
        match self {
            Auth::Basic { user, password } | Auth::Digest { user, password } => {
                if control(user) {
                    return bad("the user name");
                }
                if control(password.expose()) {
                    return bad("the password");
                }
                if matches!(self, Auth::Basic { .. }) && user.contains(':') {
                    return Err(Error::new(
                        ErrorKind::InvalidHeader,
                        "a Basic user name cannot contain `:` (RFC 7617)",
                    ));
                }
            }
            Auth::Bearer(token) => {
                if control(token.expose()) {
                    return bad("the bearer token");
                }
            }
            Auth::None => {}
        }
        Ok(())
    }
}
