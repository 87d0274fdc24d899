//! `/multipart`: parses a `multipart/form-data` body as it streams in (multer), recording each
//! part's size and SHA-256 without holding a whole part.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::Request;
use http_body::Body;
use http_body_util::BodyExt;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::auth::hex;
use crate::body::BoxError;

/// Parts at most this long that are valid UTF-8 are reported as `text`.
const TEXT_MAX: usize = 1024;

/// One part of the form.
#[derive(Serialize)]
pub(crate) struct PartJson {
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
    size: u64,
    sha256: String,
    text: Option<String>,
}

/// The answer of `/multipart`.
#[derive(Serialize)]
pub(crate) struct MultipartJson {
    parts: Vec<PartJson>,
    content_type: Option<String>,
    content_length: Option<u64>,
    chunked: bool,
}

/// Reads the whole form, sleeping `delay` after each body chunk read. `Err` holds the parser's
/// error (a body that is not valid multipart, or a broken transfer).
pub(crate) async fn parse<B>(
    req: Request<B>,
    delay: Option<Duration>,
) -> Result<MultipartJson, String>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let content_length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let boundary =
        multer::parse_boundary(content_type.as_deref().unwrap_or("")).map_err(|e| e.to_string())?;
    let delay = delay.filter(|d| !d.is_zero());
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(Into::<BoxError>::into))
        .then(move |chunk| async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            chunk
        });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().map(str::to_owned);
        let filename = field.file_name().map(str::to_owned);
        let part_type = field.content_type().map(|m| m.to_string());
        let mut size = 0u64;
        let mut sha = Sha256::new();
        let mut head = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| e.to_string())? {
            size += chunk.len() as u64;
            sha.update(&chunk);
            if head.len() <= TEXT_MAX {
                let take = chunk.len().min(TEXT_MAX + 1 - head.len());
                head.extend_from_slice(&chunk[..take]);
            }
        }
        let text = (size <= TEXT_MAX as u64)
            .then(|| String::from_utf8(head).ok())
            .flatten();
        out.push(PartJson {
            name,
            filename,
            content_type: part_type,
            size,
            sha256: hex(&sha.finalize()),
            text,
        });
    }
    Ok(MultipartJson {
        parts: out,
        content_type,
        chunked: content_length.is_none(),
        content_length,
    })
}
