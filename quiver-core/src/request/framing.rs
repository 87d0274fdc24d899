//! Request framing: the content-length and transfer-encoding a caller may set, checked against
//! the body, and a streamed body held to its declared length.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::Stream;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue};

use super::{Body, BodyStream};
use crate::error::{Error, ErrorKind, Result};

/// Refuses content-length values that are malformed, absurd, contradictory or that do not
/// match the body, and transfer-encodings other than one `chunked`; repeated equal
/// content-lengths are sent once. Returns the declared length.
pub(super) fn check_framing(
    headers: &mut Vec<(HeaderName, HeaderValue)>,
    body: &Body,
) -> Result<Option<u64>> {
    let invalid = |msg: String| Err(Error::new(ErrorKind::InvalidBody, msg));
    let mut declared: Option<u64> = None;
    let mut chunked = false;
    for (name, value) in headers.iter() {
        if name == CONTENT_LENGTH {
            let text = value.to_str().unwrap_or_default().trim();
            let n = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u64>().ok())
                .flatten()
                .filter(|n| *n <= i64::MAX as u64);
            let Some(n) = n else {
                return invalid(format!(
                    "content-length `{}` is not a valid length",
                    value.to_str().unwrap_or("<binary>")
                ));
            };
            if declared.is_some_and(|d| d != n) {
                return invalid("conflicting content-length headers".into());
            }
            declared = Some(n);
        } else if name == TRANSFER_ENCODING {
            if !value.as_bytes().eq_ignore_ascii_case(b"chunked") {
                return invalid(
                    "only `transfer-encoding: chunked` may be set by the caller".into(),
                );
            }
            if chunked {
                return invalid("transfer-encoding is given twice".into());
            }
            chunked = true;
            if headers.iter().any(|(n, _)| n == CONTENT_LENGTH) {
                return invalid("content-length and transfer-encoding cannot both be set".into());
            }
        }
    }
    if let (Some(declared), Some(actual)) = (declared, body.exact_len()) {
        if declared != actual {
            return invalid(format!(
                "content-length {declared} does not match the body's {actual} bytes"
            ));
        }
    }
    // One content-length on the wire, however often the caller gave the same value.
    let mut seen = false;
    headers.retain(|(n, _)| n != CONTENT_LENGTH || !std::mem::replace(&mut seen, true));
    Ok(declared)
}

/// A streamed body with a declared content-length: more bytes, or fewer by the end, fail the
/// request (`invalid_body`) instead of sending a body that contradicts its framing.
pub(super) struct LengthChecked {
    inner: BodyStream,
    declared: u64,
    seen: u64,
    /// What the look past the declared length found, to give on the next poll.
    ahead: Option<Option<Result<Bytes>>>,
}

impl LengthChecked {
    /// Holds `inner` to `declared` bytes.
    pub(super) fn new(inner: BodyStream, declared: u64) -> LengthChecked {
        LengthChecked {
            inner,
            declared,
            seen: 0,
            ahead: None,
        }
    }
}

impl Stream for LengthChecked {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = self.get_mut();
        let next = match this.ahead.take() {
            Some(ahead) => Poll::Ready(ahead),
            None => this.inner.as_mut().poll_next(cx),
        };
        match next {
            Poll::Ready(Some(Ok(chunk))) => {
                this.seen = this.seen.saturating_add(chunk.len() as u64);
                let too_long = || {
                    Poll::Ready(Some(Err(Error::new(
                        ErrorKind::InvalidBody,
                        format!(
                            "the body stream gave more than its content-length of {} bytes",
                            this.declared
                        ),
                    ))))
                };
                if this.seen > this.declared {
                    return too_long();
                }
                // At the declared length HTTP/1.1 stops pulling: look once more now, so that a
                // longer stream fails instead of being cut off unseen.
                if this.seen == this.declared && !chunk.is_empty() {
                    match this.inner.as_mut().poll_next(cx) {
                        Poll::Ready(Some(Ok(more))) if !more.is_empty() => return too_long(),
                        Poll::Ready(ahead) => this.ahead = Some(ahead),
                        Poll::Pending => {}
                    }
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) if this.seen < this.declared => Poll::Ready(Some(Err(Error::new(
                ErrorKind::InvalidBody,
                format!(
                    "the body stream ended after {} of its content-length's {} bytes",
                    this.seen, this.declared
                ),
            )))),
            other => other,
        }
    }
}
