//! Request heads for the multiplexed protocols (HTTP/2 and HTTP/3), built one way for both.

use http::{HeaderMap, HeaderValue, Method, Uri, Version};

use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::request::Request;

/// Builds an HTTP/2 or HTTP/3 request head: absolute URI (the protocol crates derive the
/// pseudo-headers from it), the caller's headers minus connection-specific ones,
/// `content-length` for in-memory bodies.
pub(crate) fn request_head(
    req: &Request,
    origin: &Origin,
    version: Version,
) -> Result<http::Request<()>> {
    let mut authority = origin.authority();
    let mut headers = HeaderMap::with_capacity(req.headers.len() + 1);
    for (name, value) in &req.headers {
        match name.as_str() {
            "host" => {
                authority = value
                    .to_str()
                    .map_err(|_| {
                        Error::new(
                            ErrorKind::InvalidHeader,
                            "the Host header is not valid text",
                        )
                    })?
                    .to_owned();
            }
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" => {}
            "te" if !value.as_bytes().eq_ignore_ascii_case(b"trailers") => {}
            _ => {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    if let (Some(len), false) = (
        req.body.exact_len(),
        headers.contains_key(http::header::CONTENT_LENGTH),
    ) {
        if len > 0
            || !matches!(
                req.method,
                Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
            )
        {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    let uri = Uri::builder()
        .scheme(origin.scheme().as_str())
        .authority(authority.as_str())
        .path_and_query(req.target.path_and_query.clone())
        .build()
        .map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidHeader,
                format!("invalid authority `{authority}`"),
                e,
            )
        })?;
    let mut head = http::Request::new(());
    *head.method_mut() = req.method.clone();
    *head.uri_mut() = uri;
    *head.version_mut() = version;
    *head.headers_mut() = headers;
    Ok(head)
}

/// The header section size announced to servers (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, HTTP/3
/// SETTINGS_MAX_FIELD_SECTION_SIZE) for a `max_response_headers` of `max`: four times it, so
/// that a server sending a little over the limit still sends it and the caller learns
/// `response_headers_too_large` from [`check_response_headers`] (over the announced size, h2
/// fails without saying why and an HTTP/3 server may just end the stream).
pub(crate) fn announced_header_limit(max: usize) -> u64 {
    (max as u64).saturating_mul(4)
}

/// Refuses a response header section larger than `max` bytes (`max_response_headers`),
/// counted as RFC 9113 counts a header list (name + value + 32 per field).
pub(crate) fn check_response_headers(
    headers: &http::HeaderMap,
    max: usize,
    origin: &Origin,
) -> Result<()> {
    let size: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 32)
        .sum();
    if size > max {
        return Err(Error::new(
            ErrorKind::ResponseHeadersTooLarge,
            format!("{origin} sent a {size}-byte response head; max_response_headers is {max}"),
        ));
    }
    Ok(())
}
