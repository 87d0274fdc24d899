//! The client layer's per-request settings from JavaScript (timeouts, redirects, decoding,
//! credentials, protocol, cookies), `multipart/form-data` bodies, and the redirects a
//! response went through.

use bytes::Bytes;
use napi::bindgen_prelude::BufferSlice;
use napi_derive::napi;
use quiver_core::{
    Auth, Error, ErrorKind, Multipart, Part, Protocol, Redirect, RedirectMode, RequestBuilder,
};

use crate::errors;
use crate::headers;
use crate::upload::UploadSource;

/// Credentials for one request, as `index.js` flattens `auth: { basic: [user, password] }`,
/// `{ bearer: token }`, `{ digest: [user, password] }` or `null`.
#[napi(object, namespace = "native")]
pub struct AuthSpec {
    /// `basic`, `bearer`, `digest`, or `none` (no credentials, even the client's).
    pub scheme: String,
    /// The user name (`basic`, `digest`).
    pub user: Option<String>,
    /// The password, or the bearer token.
    pub secret: Option<String>,
}

/// Per-request settings; unset ones come from the origin's rule (or the client's options).
#[napi(object, namespace = "native")]
pub struct RequestSettings {
    /// Limit for the whole request, ms; 0 and `Infinity`: none (the pool's `request_timeout`).
    pub timeout_ms: Option<f64>,
    /// Longest the request may go without a byte moving, ms, greater than 0 (overrides the
    /// pool's `read_timeout`).
    pub read_timeout_ms: Option<f64>,
    /// Longest the request waits for a connection or stream slot, ms, greater than 0
    /// (overrides the pool's `checkout_timeout`).
    pub checkout_timeout_ms: Option<f64>,
    /// HTTP/3 with `early_data`: whether this request may go in the 0-RTT flight.
    pub early_data: Option<bool>,
    /// `follow`, `manual` or `error` (fetch's `redirect`).
    pub redirect: Option<String>,
    /// Most redirects followed (0: return the first redirect as the response).
    pub max_redirects: Option<f64>,
    /// Whether to ask for compressed responses and decode them.
    pub decompress: Option<bool>,
    /// Credentials for this request's origin.
    pub auth: Option<AuthSpec>,
    /// `auto`, `http1`, `http2` or `http3`: this request over another protocol (its own pool).
    pub protocol: Option<String>,
    /// Cookies for this request only, as a flat `[name, value, ...]` list.
    pub cookies: Option<Vec<String>>,
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, message)
}

/// `builder` with `settings` applied; a value core cannot take is an `invalid_config` error.
pub(crate) fn apply(
    mut builder: RequestBuilder,
    settings: RequestSettings,
) -> Result<RequestBuilder, Error> {
    // 0 and Infinity: no per-request limit (the pool's `request_timeout` applies).
    if let Some(ms) = settings
        .timeout_ms
        .filter(|ms| *ms != 0.0 && *ms != f64::INFINITY)
    {
        builder = builder.timeout(crate::client::duration_ms("timeout", ms)?);
    }
    // Core refuses 0 and more than a year (`invalid_config`), as it does for the pool options.
    if let Some(ms) = settings.read_timeout_ms {
        builder = builder.read_timeout(crate::client::duration_ms("readTimeout", ms)?);
    }
    if let Some(ms) = settings.checkout_timeout_ms {
        builder = builder.checkout_timeout(crate::client::duration_ms("checkoutTimeout", ms)?);
    }
    if let Some(early) = settings.early_data {
        builder = builder.early_data(early);
    }
    if let Some(mode) = settings.redirect {
        builder = builder.redirect(redirect_mode(&mode)?);
    }
    if let Some(max) = settings.max_redirects {
        if !(max.is_finite() && max >= 0.0 && max.fract() == 0.0 && max <= 1000.0) {
            return Err(invalid(format!(
                "`maxRedirections` (`maxRedirects`) must be an integer from 0 to 1000, got {max}"
            )));
        }
        // In range and integral: the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let max = max as usize;
        builder = builder.max_redirects(max);
    }
    if let Some(decompress) = settings.decompress {
        builder = builder.decompress(decompress);
    }
    if let Some(auth) = settings.auth {
        builder = builder.auth(auth_of(auth)?);
    }
    if let Some(protocol) = settings.protocol {
        builder = builder.protocol(protocol.parse::<Protocol>()?);
    }
    if let Some(cookies) = settings.cookies {
        for (name, value) in headers::pairs(&cookies) {
            builder = builder.cookie(name, value);
        }
    }
    Ok(builder)
}

fn redirect_mode(mode: &str) -> Result<RedirectMode, Error> {
    match mode {
        "follow" => Ok(RedirectMode::Follow),
        "manual" => Ok(RedirectMode::Manual),
        "error" => Ok(RedirectMode::Error),
        other => Err(invalid(format!(
            "`redirect` must be 'follow', 'manual' or 'error', got `{}`",
            other.escape_debug()
        ))),
    }
}

fn auth_of(spec: AuthSpec) -> Result<Auth, Error> {
    let user = || {
        spec.user
            .clone()
            .ok_or_else(|| invalid(format!("`auth.{}` needs a user name", spec.scheme)))
    };
    let secret = || spec.secret.clone().unwrap_or_default();
    match spec.scheme.as_str() {
        "basic" => Ok(Auth::basic(user()?, secret())),
        "digest" => Ok(Auth::digest(user()?, secret())),
        "bearer" => Ok(Auth::bearer(secret())),
        "none" => Ok(Auth::None),
        other => Err(invalid(format!(
            "`auth` takes `basic`, `bearer` or `digest`, got `{}`",
            other.escape_debug()
        ))),
    }
}

/// A `multipart/form-data` body being assembled from a `FormData` (core's [`Multipart`]):
/// text fields and bytes in memory, `Blob`s streamed from their source as the connection sends.
#[napi(namespace = "native")]
pub struct NativeForm {
    form: Option<Multipart>,
}

#[napi(namespace = "native")]
impl NativeForm {
    /// An empty form with a random boundary.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> NativeForm {
        NativeForm {
            form: Some(Multipart::new()),
        }
    }

    fn add(&mut self, part: Part) -> napi::Result<()> {
        let form = self.form.take().ok_or_else(used)?;
        self.form = Some(form.part(part));
        Ok(())
    }

    /// Adds a text field.
    #[napi]
    pub fn text(&mut self, name: String, value: String) -> napi::Result<()> {
        self.add(Part::text(&name, value))
    }

    /// Adds bytes in memory (copied), with an optional file name and content type.
    #[napi]
    pub fn bytes(
        &mut self,
        name: String,
        data: BufferSlice,
        filename: Option<String>,
        content_type: Option<String>,
    ) -> napi::Result<()> {
        let part = Part::bytes(&name, Bytes::copy_from_slice(&data));
        self.add(described(part, filename, content_type))
    }

    /// Adds a part streamed from `source` (pulled as the connection can send); `length`, when
    /// known, lets the whole body carry a `content-length`.
    #[napi]
    pub fn stream(
        &mut self,
        name: String,
        source: &mut UploadSource,
        length: Option<f64>,
        filename: Option<String>,
        content_type: Option<String>,
    ) -> napi::Result<()> {
        let stream = source.take_stream().ok_or_else(|| {
            errors::encode(
                ErrorKind::InvalidBody,
                "this form part's stream was already used",
            )
        })?;
        // A Blob's size: a non-negative integer below 2^53, exact as a u64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let length = length
            .filter(|n| n.is_finite() && *n >= 0.0 && n.fract() == 0.0)
            .map(|n| n as u64);
        let part = Part::stream(&name, stream, length);
        self.add(described(part, filename, content_type))
    }
}

impl NativeForm {
    /// The form, taken for a request; `None` if it was already sent.
    pub(crate) fn take(&mut self) -> Option<Multipart> {
        self.form.take()
    }
}

fn described(mut part: Part, filename: Option<String>, content_type: Option<String>) -> Part {
    if let Some(f) = filename {
        part = part.filename(&f);
    }
    if let Some(ct) = content_type {
        part = part.content_type(&ct);
    }
    part
}

fn used() -> napi::Error {
    errors::encode(ErrorKind::InvalidBody, "this form was already sent")
}

/// One redirect a response went through: what answered, and where.
#[derive(Clone)]
#[napi(object, namespace = "native")]
pub struct RedirectEntry {
    /// The redirect's status (301, 302, 303, 307 or 308).
    pub status_code: u32,
    /// The URL that answered with the redirect.
    pub url: String,
    /// The HTTP version it came over (`1.1`, `2.0`, `3.0`).
    pub http_version: String,
    /// Its headers as a flat `[name, value, ...]` list (`location` among them).
    pub headers: Vec<String>,
}

impl From<&Redirect> for RedirectEntry {
    fn from(r: &Redirect) -> Self {
        RedirectEntry {
            status_code: u32::from(r.status.as_u16()),
            url: r.url.clone(),
            http_version: headers::version(r.version).to_owned(),
            headers: headers::flatten(&r.headers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RequestSettings {
        RequestSettings {
            timeout_ms: None,
            read_timeout_ms: None,
            checkout_timeout_ms: None,
            early_data: None,
            redirect: None,
            max_redirects: None,
            decompress: None,
            auth: None,
            protocol: None,
            cookies: None,
        }
    }

    fn build(s: RequestSettings) -> Result<quiver_core::Request, Error> {
        apply(quiver_core::Request::get("http://example.com/"), s)?.build()
    }

    #[test]
    fn settings_reach_the_request() {
        let mut s = settings();
        s.redirect = Some("error".into());
        s.max_redirects = Some(0.0);
        s.decompress = Some(false);
        s.protocol = Some("h2".into());
        s.auth = Some(AuthSpec {
            scheme: "basic".into(),
            user: Some("u".into()),
            secret: Some("p".into()),
        });
        s.cookies = Some(vec!["a".into(), "1".into(), "b".into(), "2".into()]);
        let req = build(s).unwrap();
        let cookie = req.headers().iter().find(|(n, _)| n == "cookie").unwrap();
        assert_eq!(cookie.1, "a=1; b=2");
    }

    #[test]
    fn bad_values_are_invalid() {
        let kind = |s: RequestSettings| build(s).unwrap_err().kind();
        let mut s = settings();
        s.redirect = Some("sometimes".into());
        assert_eq!(kind(s), ErrorKind::InvalidConfig);
        for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY, 1001.0] {
            let mut s = settings();
            s.max_redirects = Some(bad);
            assert_eq!(kind(s), ErrorKind::InvalidConfig, "{bad}");
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 4.0e10] {
            let mut s = settings();
            s.read_timeout_ms = Some(bad);
            assert_eq!(kind(s), ErrorKind::InvalidConfig, "read {bad}");
            let mut s = settings();
            s.checkout_timeout_ms = Some(bad);
            assert_eq!(kind(s), ErrorKind::InvalidConfig, "checkout {bad}");
        }
        let mut s = settings();
        s.protocol = Some("gopher".into());
        assert_eq!(kind(s), ErrorKind::InvalidConfig);
        let mut s = settings();
        s.auth = Some(AuthSpec {
            scheme: "basic".into(),
            user: None,
            secret: None,
        });
        assert_eq!(kind(s), ErrorKind::InvalidConfig);
        let mut s = settings();
        s.auth = Some(AuthSpec {
            scheme: "basic".into(),
            user: Some("a:b".into()),
            secret: None,
        });
        assert_eq!(kind(s), ErrorKind::InvalidHeader);
    }
}
