//! `multipart/form-data` bodies (RFC 7578): text fields, bytes, files and streams as parts.
//! Files and streams are read chunk by chunk as the connection can send, never whole.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{Body, BodyStream};
use crate::error::{Error, ErrorKind, Result};

/// Bytes read from a file part at a time.
const FILE_CHUNK: usize = 64 << 10;

/// A `multipart/form-data` body under construction: parts in order, with a random boundary.
///
/// ```
/// # fn demo() -> quiver_core::Result<()> {
/// use quiver_core::{Multipart, Part, Request};
/// let form = Multipart::new()
///     .text("title", "holiday")
///     .part(Part::bytes("photo", b"...".to_vec()).filename("a.jpg").content_type("image/jpeg"));
/// let req = Request::post("https://example.com/upload").multipart(form).build()?;
/// # let _ = req; Ok(()) }
/// ```
#[must_use]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
    error: Option<Error>,
}

/// One part of a [`Multipart`] body: a field name, optionally a file name and a content type,
/// and the content.
#[must_use]
pub struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    content: Content,
    error: Option<Error>,
}

enum Content {
    Bytes(Bytes),
    File(PathBuf, u64),
    Stream(BodyStream, Option<u64>),
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    /// An empty form with a random boundary.
    pub fn new() -> Multipart {
        Multipart {
            boundary: format!("quiver-{}", random_hex(16)),
            parts: Vec::new(),
            error: None,
        }
    }

    /// Uses `boundary` instead of a random one (1 to 70 characters of RFC 2046's set).
    pub fn boundary(mut self, boundary: &str) -> Multipart {
        let ok = (1..=70).contains(&boundary.len())
            && boundary
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b));
        if ok {
            self.boundary = boundary.to_owned();
        } else {
            self.error.get_or_insert(Error::new(
                ErrorKind::InvalidBody,
                format!(
                    "`{}` is not a valid multipart boundary",
                    boundary.escape_debug()
                ),
            ));
        }
        self
    }

    /// Adds a text field.
    pub fn text(self, name: &str, value: impl Into<String>) -> Multipart {
        self.part(Part::text(name, value))
    }

    /// Adds a part.
    pub fn part(mut self, part: Part) -> Multipart {
        self.parts.push(part);
        self
    }

    /// The boundary that separates the parts.
    pub fn boundary_str(&self) -> &str {
        &self.boundary
    }

    /// The `content-type` header value: `multipart/form-data; boundary=...`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The encoded length, when every part's length is known.
    pub fn content_length(&self) -> Option<u64> {
        let mut total = 0u64;
        for part in &self.parts {
            total = total
                .checked_add(part.head(&self.boundary).len() as u64)?
                .checked_add(part.len()?)?
                .checked_add(2)?;
        }
        total.checked_add(self.boundary.len() as u64 + 6)
    }

    /// The body and its length when known: one buffer when every part is in memory (so it can
    /// be sent again on a redirect or an authentication challenge), otherwise a stream that
    /// opens and reads each file only when the connection gets to it.
    pub(crate) fn into_body(self) -> Result<(Body, Option<u64>)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(e) = self.parts.iter().find_map(|p| p.error.clone()) {
            return Err(e);
        }
        let len = self.content_length();
        let closing = Bytes::from(format!("--{}--\r\n", self.boundary));
        if self
            .parts
            .iter()
            .all(|p| matches!(p.content, Content::Bytes(_)))
        {
            let mut buf = BytesMut::with_capacity(len.unwrap_or(0) as usize);
            for part in self.parts {
                buf.extend_from_slice(part.head(&self.boundary).as_bytes());
                if let Content::Bytes(b) = &part.content {
                    buf.extend_from_slice(b);
                }
                buf.extend_from_slice(b"\r\n");
            }
            buf.extend_from_slice(&closing);
            return Ok((Body::Bytes(buf.freeze()), len));
        }
        let mut segments: Vec<BodyStream> = Vec::with_capacity(self.parts.len() * 3 + 1);
        let crlf = Bytes::from_static(b"\r\n");
        for part in self.parts {
            segments.push(once(Bytes::from(part.head(&self.boundary))));
            segments.push(match part.content {
                Content::Bytes(b) => once(b),
                Content::File(path, _) => file_stream(path),
                Content::Stream(s, _) => s,
            });
            segments.push(once(crlf.clone()));
        }
        segments.push(once(closing));
        let body: BodyStream = Box::pin(stream::iter(segments).flatten());
        Ok((Body::Stream(body), len))
    }
}

fn once(b: Bytes) -> BodyStream {
    Box::pin(stream::once(async move { Ok(b) }))
}

/// A file read in chunks, opened when first polled; read errors fail the request
/// (`body_stream`).
fn file_stream(path: PathBuf) -> BodyStream {
    let shown = path.display().to_string();
    let open = async move { tokio::fs::File::open(&path).await };
    let chunks = stream::once(open)
        .map_ok(|file| tokio_util::io::ReaderStream::with_capacity(file, FILE_CHUNK))
        .try_flatten();
    Box::pin(chunks.map_err(move |e| {
        Error::with_source(
            ErrorKind::BodyStream,
            format!("reading multipart file `{shown}` failed"),
            e,
        )
    }))
}

impl Part {
    fn new(name: &str, content: Content) -> Part {
        let mut part = Part {
            name: name.to_owned(),
            filename: None,
            content_type: None,
            content,
            error: None,
        };
        part.check("field name", name);
        part
    }

    /// A text field.
    pub fn text(name: &str, value: impl Into<String>) -> Part {
        Part::new(name, Content::Bytes(Bytes::from(value.into())))
    }

    /// Bytes in memory (give it a [`filename`](Part::filename) to make it a file upload).
    pub fn bytes(name: &str, data: impl Into<Bytes>) -> Part {
        Part::new(name, Content::Bytes(data.into()))
    }

    /// A file, streamed from disk when the request is sent; its file name defaults to the
    /// path's last component and its content type to `application/octet-stream`. The file's
    /// size is read now (so the body's length is known); a missing file is an `invalid_body`
    /// error from the request's `build`.
    pub fn file(name: &str, path: impl Into<PathBuf>) -> Part {
        let path = path.into();
        let filename = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (len, error) = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => (m.len(), None),
            Ok(_) => (0, Some(format!("`{}` is not a file", path.display()))),
            Err(e) => (0, Some(format!("cannot read `{}`: {e}", path.display()))),
        };
        let mut part = Part::new(name, Content::File(path, len))
            .filename(&filename)
            .content_type("application/octet-stream");
        if let Some(why) = error {
            part.error
                .get_or_insert(Error::new(ErrorKind::InvalidBody, why));
        }
        part
    }

    /// A stream of chunks, pulled as the connection can send; `len`, when known, lets the
    /// whole body carry a `content-length`.
    pub fn stream(name: &str, stream: BodyStream, len: Option<u64>) -> Part {
        Part::new(name, Content::Stream(stream, len))
    }

    /// The file name sent in `content-disposition`.
    pub fn filename(mut self, filename: &str) -> Part {
        self.check("file name", filename);
        self.filename = Some(filename.to_owned());
        self
    }

    /// The part's `content-type`.
    pub fn content_type(mut self, content_type: &str) -> Part {
        self.check("content type", content_type);
        self.content_type = Some(content_type.to_owned());
        self
    }

    fn check(&mut self, what: &str, value: &str) {
        if value.chars().any(|c| c.is_control() && c != '\t') {
            self.error.get_or_insert(Error::new(
                ErrorKind::InvalidBody,
                format!(
                    "multipart {what} `{}` contains a control character",
                    value.escape_debug()
                ),
            ));
        }
    }

    fn len(&self) -> Option<u64> {
        match &self.content {
            Content::Bytes(b) => Some(b.len() as u64),
            Content::File(_, len) => Some(*len),
            Content::Stream(_, len) => *len,
        }
    }

    /// The boundary line and the part's headers, up to the blank line before its content.
    fn head(&self, boundary: &str) -> String {
        let mut head = format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"{}\"",
            escape(&self.name)
        );
        if let Some(f) = &self.filename {
            head.push_str(&format!("; filename=\"{}\"", escape(f)));
        }
        head.push_str("\r\n");
        if let Some(ct) = &self.content_type {
            head.push_str(&format!("content-type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

/// Quotes a name for `content-disposition` as browsers do (HTML's form encoding): `"` and
/// line breaks percent-encoded.
fn escape(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> String {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // No system randomness: a boundary only has to be absent from the content, and a
        // clock-derived one still is with overwhelming probability.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: Body) -> String {
        match body {
            Body::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
            _ => panic!("expected bytes"),
        }
    }

    #[test]
    fn encodes_fields_and_files_in_memory() {
        let form = Multipart::new().boundary("XyZ").text("a", "1").part(
            Part::bytes("f", b"data".to_vec())
                .filename("x\"y.txt")
                .content_type("text/plain"),
        );
        let expected_len = form.content_length();
        let (body, len) = form.into_body().unwrap();
        assert_eq!(len, expected_len);
        let s = text(body);
        assert_eq!(
            s,
            "--XyZ\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
             --XyZ\r\ncontent-disposition: form-data; name=\"f\"; filename=\"x%22y.txt\"\r\n\
             content-type: text/plain\r\n\r\ndata\r\n--XyZ--\r\n"
        );
        assert_eq!(len, Some(s.len() as u64));
    }

    #[test]
    fn refuses_bad_input() {
        let kind = |m: Multipart| m.into_body().err().map(|e| e.kind());
        assert_eq!(
            kind(Multipart::new().boundary("bad boundary")),
            Some(ErrorKind::InvalidBody)
        );
        assert_eq!(
            kind(Multipart::new().text("a\r\nb", "x")),
            Some(ErrorKind::InvalidBody)
        );
        assert_eq!(
            kind(Multipart::new().part(Part::file("f", "/nonexistent/quiver"))),
            Some(ErrorKind::InvalidBody)
        );
        assert!(random_hex(16).len() == 32);
    }

    #[test]
    fn a_stream_of_unknown_length_leaves_the_length_unknown() {
        let s: BodyStream = Box::pin(stream::iter(vec![Ok(Bytes::from_static(b"x"))]));
        let form = Multipart::new().part(Part::stream("s", s, None));
        assert_eq!(form.content_length(), None);
        let s: BodyStream = Box::pin(stream::iter(vec![Ok(Bytes::from_static(b"x"))]));
        let form = Multipart::new()
            .boundary("b")
            .part(Part::stream("s", s, Some(1)));
        assert_eq!(
            form.content_length(),
            Some(
                ("--b\r\ncontent-disposition: form-data; name=\"s\"\r\n\r\nx\r\n--b--\r\n").len()
                    as u64
            )
        );
    }
}
