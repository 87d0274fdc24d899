//! The request builder: everything a caller supplies, validated once by `build`.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use super::framing::{check_framing, LengthChecked};
use super::{Auth, Body, LayerOptions, Multipart, Progress, RedirectMode, Request};
use crate::config::Protocol;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Target;

/// Builds a [`Request`]; every problem is reported by [`RequestBuilder::build`] as an
/// `invalid` error, before anything is sent.
#[must_use]
pub struct RequestBuilder {
    method: String,
    url: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Body,
    timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    checkout_timeout: Option<Duration>,
    early_data: Option<bool>,
    layer: LayerOptions,
    multipart: Option<Multipart>,
    cookies: Vec<(String, String)>,
    progress: Option<std::sync::Arc<Progress>>,
}

impl RequestBuilder {
    pub(super) fn new(method: &str, url: &str) -> RequestBuilder {
        RequestBuilder {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Body::Empty,
            timeout: None,
            read_timeout: None,
            checkout_timeout: None,
            early_data: None,
            layer: LayerOptions::default(),
            multipart: None,
            cookies: Vec::new(),
            progress: None,
        }
    }

    /// Whether to follow redirects (overrides the rule's `follow_redirects`).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.layer.redirect = Some(if follow {
            RedirectMode::Follow
        } else {
            RedirectMode::Manual
        });
        self
    }

    /// What to do with redirects: follow, return them, or fail.
    pub fn redirect(mut self, mode: RedirectMode) -> Self {
        self.layer.redirect = Some(mode);
        self
    }

    /// Most redirects followed before failing with `too_many_redirects` (overrides the rule's
    /// `max_redirects`; 0 returns the first redirect as the response).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.layer.max_redirects = Some(max);
        self
    }

    /// Whether to ask for compressed responses and decode them (overrides the rule's
    /// `decompress`); `false` gives the bytes as the server sent them.
    pub fn decompress(mut self, decompress: bool) -> Self {
        self.layer.decompress = Some(decompress);
        self
    }

    /// Credentials for this request's origin (override the rule's and the client's;
    /// [`Auth::None`] sends none). An explicit `authorization` header wins over all of them.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.layer.auth = Some(auth);
        self
    }

    /// Basic credentials for this request's origin.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        self.auth(Auth::basic(user, password))
    }

    /// A bearer token for this request's origin.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.auth(Auth::bearer(token))
    }

    /// Sends this request over `protocol` instead of the rule's (its own pool for the origin).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.layer.protocol = Some(protocol);
        self
    }

    /// Keeps this request's upload and download progress in `progress` (read it while the
    /// request runs).
    pub fn progress(mut self, progress: std::sync::Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// A `multipart/form-data` body; sets `content-type` (with the boundary) and, when every
    /// part's length is known, `content-length`.
    pub fn multipart(mut self, form: Multipart) -> Self {
        self.multipart = Some(form);
        self
    }

    /// A cookie sent with this request only (joined into one `cookie` header); the client's
    /// jar, if any, adds nothing when the request has a `cookie` header.
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.cookies.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Appends a header (duplicates are kept, in order).
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// Limits this request's total time, overriding the pool's `request_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Longest this request may go without a byte moving on its connection, overriding the
    /// pool's `read_timeout` (httpx's `read` timeout).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Longest this request waits for a connection or stream slot, overriding the pool's
    /// `checkout_timeout` (httpx's `pool` timeout).
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = Some(timeout);
        self
    }

    /// HTTP/3 with `early_data`: whether this request may go in the 0-RTT flight. Default:
    /// only idempotent, safe methods (GET, HEAD, OPTIONS, TRACE).
    pub fn early_data(mut self, allowed: bool) -> Self {
        self.early_data = Some(allowed);
        self
    }

    /// Validates and builds the request.
    pub fn build(self) -> Result<Request> {
        let method = Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidMethod,
                format!(
                    "`{}` is not a valid HTTP method",
                    self.method.escape_debug()
                ),
            )
        })?;
        let target = Target::parse(&self.url)?;
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            let shown = String::from_utf8_lossy(&name).escape_debug().to_string();
            let name = HeaderName::from_bytes(&name).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("invalid header name `{shown}`"),
                )
            })?;
            let value = HeaderValue::from_bytes(&value).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    format!("invalid value for header `{name}` (control characters such as CR, LF or NUL are not allowed)"),
                )
            })?;
            headers.push((name, value));
        }
        for (what, t) in [
            ("request timeout", self.timeout),
            ("read timeout", self.read_timeout),
            ("checkout timeout", self.checkout_timeout),
        ] {
            match t {
                Some(t) if t > crate::config::MAX_DURATION => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("the {what} ({t:?}) must be at most a year"),
                    ))
                }
                Some(t) if t.is_zero() && what != "request timeout" => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("the {what} must be greater than zero"),
                    ))
                }
                _ => {}
            }
        }
        if let Some(auth) = &self.layer.auth {
            auth.validate()?;
        }
        if !self.cookies.is_empty() {
            let joined = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let value = HeaderValue::from_str(&joined).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidHeader,
                    "a cookie name or value contains a character a header cannot carry",
                )
            })?;
            headers.push((http::header::COOKIE, value));
        }
        let mut body = self.body;
        if let Some(form) = self.multipart {
            let content_type = HeaderValue::from_str(&form.content_type())
                .map_err(|_| Error::new(ErrorKind::InvalidBody, "bad multipart boundary"))?;
            let (form_body, len) = form.into_body()?;
            headers.retain(|(n, _)| {
                n != http::header::CONTENT_TYPE
                    && n != http::header::CONTENT_LENGTH
                    && n != http::header::TRANSFER_ENCODING
            });
            headers.push((http::header::CONTENT_TYPE, content_type));
            if let (Some(len), Body::Stream(_)) = (len, &form_body) {
                headers.push((http::header::CONTENT_LENGTH, HeaderValue::from(len)));
            }
            body = form_body;
        }
        let declared = check_framing(&mut headers, &body)?;
        let body = match (declared, body) {
            (Some(len), Body::Stream(s)) => Body::Stream(Box::pin(LengthChecked::new(s, len))),
            (_, body) => body,
        };
        Ok(Request {
            method,
            target,
            url: self.url,
            headers,
            body,
            timeout: self.timeout,
            read_timeout: self.read_timeout,
            checkout_timeout: self.checkout_timeout,
            early_data: self.early_data,
            layer: self.layer,
            trace: None,
            progress: self.progress,
        })
    }
}
