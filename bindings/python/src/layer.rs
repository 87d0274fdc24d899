//! Per-request settings of core's client layer, from the dict the Python layer builds:
//! redirects, decoding, credentials, the protocol, per-request cookies, multipart parts and the
//! progress record.
//!
//! The Python side (`quiver._client`) translates httpx's argument shapes (auth objects, `files=`)
//! into this dict; this module only maps it onto core's `RequestBuilder`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use quiver_core::{Auth, Body, ErrorKind, Multipart, Part, Protocol, RedirectMode, RequestBuilder};
use tokio::runtime::Handle;

use crate::body::{chunk_bytes, to_body, BodyFailure};
use crate::bridge::Bridge;
use crate::errors;
use crate::timings::PyProgress;

/// The keys `apply` understands; any other one is a bug in the Python layer.
const KEYS: &[&str] = &[
    "follow_redirects",
    "redirect",
    "max_redirects",
    "decompress",
    "auth",
    "protocol",
    "cookies",
    "files",
    "progress",
];

/// Where a stream part's chunks come from, and who reports its failures.
pub(crate) struct Streams<'a> {
    pub handle: &'a Handle,
    pub bridge: Option<&'a Arc<Bridge>>,
    pub failure: &'a BodyFailure,
}

fn invalid(py: Python<'_>, kind: ErrorKind, message: String) -> PyErr {
    errors::new_py(py, kind, message)
}

/// Applies the settings in `layer` (None: none) to `builder`.
pub(crate) fn apply(
    py: Python<'_>,
    mut builder: RequestBuilder,
    layer: Option<&Bound<'_, PyDict>>,
    streams: &Streams<'_>,
) -> PyResult<RequestBuilder> {
    let Some(layer) = layer else {
        return Ok(builder);
    };
    for (key, value) in layer.iter() {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        builder = match key.as_str() {
            "follow_redirects" => builder.follow_redirects(value.extract()?),
            "redirect" => builder.redirect(redirect_mode(py, &value.extract::<String>()?)?),
            "max_redirects" => {
                let n: i64 = value.extract()?;
                let n = usize::try_from(n).map_err(|_| {
                    invalid(
                        py,
                        ErrorKind::InvalidConfig,
                        format!("max_redirects must be 0 or more, got {n}"),
                    )
                })?;
                builder.max_redirects(n)
            }
            "decompress" => builder.decompress(value.extract()?),
            "auth" => builder.auth(auth(py, &value)?),
            "protocol" => {
                let name: String = value.extract()?;
                let protocol = name
                    .parse::<Protocol>()
                    .map_err(|e| errors::to_py(py, &e))?;
                builder.protocol(protocol)
            }
            "cookies" => {
                for pair in value.try_iter()? {
                    let (name, value): (String, String) = pair?.extract()?;
                    builder = builder.cookie(&name, &value);
                }
                builder
            }
            "files" => builder.multipart(multipart(py, &value, streams)?),
            "progress" => builder.progress(value.cast::<PyProgress>()?.get().shared()),
            other => {
                return Err(invalid(
                    py,
                    ErrorKind::Internal,
                    format!("unknown request setting `{other}` (expected one of {KEYS:?})"),
                ))
            }
        };
    }
    Ok(builder)
}

/// fetch's names: `follow`, `manual`, `error`.
fn redirect_mode(py: Python<'_>, name: &str) -> PyResult<RedirectMode> {
    match name {
        "follow" => Ok(RedirectMode::Follow),
        "manual" => Ok(RedirectMode::Manual),
        "error" => Ok(RedirectMode::Error),
        other => Err(invalid(
            py,
            ErrorKind::InvalidConfig,
            format!("redirect must be \"follow\", \"manual\" or \"error\", got {other:?}"),
        )),
    }
}

/// `("basic", user, password)`, `("digest", user, password)`, `("bearer", token)` or
/// `("none",)`.
fn auth(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Auth> {
    let tuple = value.cast::<PyTuple>()?;
    let scheme: String = tuple.get_item(0)?.extract()?;
    let text = |i: usize| -> PyResult<String> { tuple.get_item(i)?.extract() };
    match (scheme.as_str(), tuple.len()) {
        ("basic", 3) => Ok(Auth::basic(text(1)?, text(2)?)),
        ("digest", 3) => Ok(Auth::digest(text(1)?, text(2)?)),
        ("bearer", 2) => Ok(Auth::bearer(text(1)?)),
        ("none", 1) => Ok(Auth::None),
        _ => Err(invalid(
            py,
            ErrorKind::Internal,
            format!("unknown credentials {scheme:?}"),
        )),
    }
}

/// One part as the Python layer describes it.
struct PartSpec<'py> {
    name: String,
    kind: String,
    value: Bound<'py, PyAny>,
    filename: Option<String>,
    content_type: Option<String>,
    length: Option<u64>,
}

/// The parts, each `(name, kind, value, filename, content_type, length)` with kind `text`
/// (str), `bytes` (bytes-like), `file` (a path, streamed by core) or `stream` (an iterator or
/// async iterator of chunks, pulled as the connection sends).
fn multipart(
    py: Python<'_>,
    parts: &Bound<'_, PyAny>,
    streams: &Streams<'_>,
) -> PyResult<Multipart> {
    let mut form = Multipart::new();
    for item in parts.try_iter()? {
        let item = item?;
        let tuple = item.cast::<PyTuple>()?;
        let spec = PartSpec {
            name: tuple.get_item(0)?.extract()?,
            kind: tuple.get_item(1)?.extract()?,
            value: tuple.get_item(2)?,
            filename: tuple.get_item(3)?.extract()?,
            content_type: tuple.get_item(4)?.extract()?,
            length: tuple.get_item(5)?.extract()?,
        };
        form = form.part(part(py, spec, streams)?);
    }
    Ok(form)
}

fn part(py: Python<'_>, spec: PartSpec<'_>, streams: &Streams<'_>) -> PyResult<Part> {
    let name = spec.name.as_str();
    let mut part = match spec.kind.as_str() {
        "text" => Part::text(name, spec.value.extract::<String>()?),
        "bytes" => match chunk_bytes(&spec.value)? {
            Some(bytes) => Part::bytes(name, bytes),
            None => {
                return Err(invalid(
                    py,
                    ErrorKind::InvalidBody,
                    format!("multipart field `{name}`: expected bytes"),
                ))
            }
        },
        "file" => Part::file(name, spec.value.extract::<std::path::PathBuf>()?),
        "stream" => {
            let body = to_body(
                Some(&spec.value),
                streams.handle,
                streams.bridge,
                streams.failure,
            )?;
            match body {
                Body::Stream(stream) => Part::stream(name, stream, spec.length),
                Body::Bytes(bytes) => Part::bytes(name, bytes),
                Body::Empty => Part::bytes(name, Vec::new()),
            }
        }
        other => {
            return Err(invalid(
                py,
                ErrorKind::Internal,
                format!("unknown multipart part kind {other:?}"),
            ))
        }
    };
    if let Some(filename) = &spec.filename {
        part = part.filename(filename);
    }
    if let Some(content_type) = &spec.content_type {
        part = part.content_type(content_type);
    }
    Ok(part)
}
