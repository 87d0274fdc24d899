//! One hop of a request through the layer: what it carries over to the next hop (a redirect,
//! an answer to a challenge), whose credentials it sends, and the response it reads and drops.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue, Method};

use crate::config::ResolvedRule;
use crate::error::{Error, ErrorKind, Result};
use crate::request::{Auth, Body, LayerOptions, Request};
use crate::response::StreamResponse;

/// A redirect's body is read and dropped up to this much, so its connection can be reused; a
/// longer one closes the connection instead.
const DRAIN_LIMIT: usize = 64 << 10;

/// What a hop sends with its request that the next hop may need again.
pub(super) struct Retained {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Body>,
}

/// The credentials for one hop: the request's own and the client's go to the origin the
/// caller addressed only; a rule's go to its own origins.
pub(super) fn pick_auth<'a>(
    options: &'a LayerOptions,
    rule: &'a Arc<ResolvedRule>,
    client: Option<&'a Auth>,
    at_initial: bool,
) -> Option<&'a Auth> {
    let chosen = match (&options.auth, &rule.auth) {
        (Some(own), _) if at_initial => Some(own),
        (Some(Auth::None), _) => Some(&Auth::None),
        (_, Some(rule_auth)) if rule.name != "default" => Some(rule_auth),
        _ if at_initial => client,
        _ => None,
    };
    chosen.filter(|a| !matches!(a, Auth::None))
}

/// A request's own `content-length`, if it set one.
pub(super) fn declared_length(headers: &[(HeaderName, HeaderValue)]) -> Option<u64> {
    headers
        .iter()
        .find(|(n, _)| n == http::header::CONTENT_LENGTH)
        .and_then(|(_, v)| v.to_str().ok()?.trim().parse().ok())
}

/// A response's `content-length`, if it announced one.
pub(super) fn declared_length_of(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse().ok())
}

pub(super) fn has(headers: &[(HeaderName, HeaderValue)], name: &HeaderName) -> bool {
    headers.iter().any(|(n, _)| n == name)
}

/// The request of the next hop (a redirect, or the same one answering a challenge), its time
/// limit what is left of the first request's.
pub(super) fn rebuild(
    method: Method,
    url: String,
    target: crate::origin::Target,
    retained: Retained,
    deadline: Option<std::time::Duration>,
    started: Instant,
) -> Result<Request> {
    let timeout = match deadline {
        Some(limit) => {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::RequestTimeout,
                    format!("the request took longer than {limit:?} (redirects included)"),
                ));
            }
            Some(left)
        }
        None => None,
    };
    Ok(Request {
        method,
        target,
        url,
        headers: retained.headers,
        body: retained.body.unwrap_or_default(),
        timeout,
        read_timeout: None,
        checkout_timeout: None,
        early_data: None,
        layer: LayerOptions::default(),
        trace: None,
        progress: None,
    })
}

/// Reads and drops a response the caller will not see (a redirect, a challenge), so that its
/// connection can be reused; a long body is cut (the connection closes instead).
pub(super) async fn discard(resp: StreamResponse) {
    let (_, mut body) = resp.into_parts();
    let mut read = 0usize;
    while let Ok(Some(chunk)) = body.chunk().await {
        read += chunk.len();
        if read > DRAIN_LIMIT {
            break;
        }
    }
}
