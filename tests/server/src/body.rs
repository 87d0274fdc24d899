//! Response bodies generated on the fly.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::time::Sleep;

use crate::stats::Counters;

/// The error type of response bodies.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// The body type every endpoint produces, whatever the transport.
pub(crate) type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// The byte at offset `i` of the pattern: `b'a' + (i % 26)`.
pub(crate) fn pattern_byte(i: u64) -> u8 {
    b'a' + (i % 26) as u8
}

/// Largest chunk served as a zero-copy slice of the shared pattern buffer.
const SHARED_CHUNK_MAX: usize = 1 << 20;

fn shared_pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        (0..(SHARED_CHUNK_MAX + 26) as u64)
            .map(pattern_byte)
            .collect::<Vec<u8>>()
            .into()
    })
}

/// `len` pattern bytes starting at pattern offset `offset`.
pub(crate) fn pattern_chunk(offset: u64, len: usize) -> Bytes {
    if len <= SHARED_CHUNK_MAX {
        let start = (offset % 26) as usize;
        shared_pattern().slice(start..start + len)
    } else {
        (offset..offset + len as u64)
            .map(pattern_byte)
            .collect::<Vec<u8>>()
            .into()
    }
}

/// A body of exactly `text`.
pub(crate) fn full(text: impl Into<Bytes>) -> BoxBody {
    Full::new(text.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// An empty body.
pub(crate) fn empty() -> BoxBody {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// The error a [`PatternBody`] in abort mode yields to make the transport drop the connection.
#[derive(Debug)]
pub(crate) struct AbortBody;

impl fmt::Display for AbortBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response body aborted on purpose")
    }
}

impl StdError for AbortBody {}

/// How long an aborting body waits after its last bytes so the transport flushes them.
const ABORT_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// Streams `len` pattern bytes lazily in chunks of `chunk_size`, optionally sleeping between
/// chunks, optionally failing at the end (to abort the connection mid-body).
pub(crate) struct PatternBody {
    offset: u64,
    remaining: u64,
    chunk_size: usize,
    delay: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    exact: bool,
    abort: AbortState,
}

#[derive(PartialEq, Eq)]
enum AbortState {
    No,
    Pending,
    Done,
}

impl PatternBody {
    /// `len` bytes whose size is announced (`content-length` on HTTP/1).
    pub(crate) fn exact(len: u64, chunk_size: usize) -> Self {
        PatternBody {
            offset: 0,
            remaining: len,
            chunk_size: chunk_size.max(1),
            delay: None,
            sleep: None,
            exact: true,
            abort: AbortState::No,
        }
    }

    /// `len` bytes of unannounced size (chunked on HTTP/1), `delay` between chunks.
    pub(crate) fn streamed(len: u64, chunk_size: usize, delay: Option<Duration>) -> Self {
        PatternBody {
            exact: false,
            delay: delay.filter(|d| !d.is_zero()),
            ..Self::exact(len, chunk_size)
        }
    }

    /// `len` bytes, then an error instead of the end of the body; the size is not announced by
    /// the body (the caller sets the header it wants).
    pub(crate) fn aborting(len: u64, chunk_size: usize) -> Self {
        PatternBody {
            exact: false,
            abort: AbortState::Pending,
            ..Self::exact(len, chunk_size)
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        if this.remaining == 0 {
            return match this.abort {
                AbortState::No => Poll::Ready(None),
                AbortState::Done => Poll::Ready(Some(Err(AbortBody.into()))),
                AbortState::Pending => {
                    // Pause once so the transport flushes what was sent, then fail.
                    this.abort = AbortState::Done;
                    let mut sleep = Box::pin(tokio::time::sleep(ABORT_FLUSH_DELAY));
                    if sleep.as_mut().poll(cx).is_pending() {
                        this.sleep = Some(sleep);
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(Err(AbortBody.into())))
                }
            };
        }
        let len = this.remaining.min(this.chunk_size as u64) as usize;
        let chunk = pattern_chunk(this.offset, len);
        this.offset += len as u64;
        this.remaining -= len as u64;
        if this.remaining > 0 {
            if let Some(delay) = this.delay {
                this.sleep = Some(Box::pin(tokio::time::sleep(delay)));
            }
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.abort == AbortState::No
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.remaining)
        } else {
            let mut hint = SizeHint::new();
            if self.abort == AbortState::No {
                hint.set_lower(self.remaining);
            }
            hint
        }
    }
}

/// Which counter a [`Counted`] body feeds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// Response bodies: `bytes_sent`.
    Sent,
    /// Request bodies: `bytes_received`.
    Received,
}

/// Passes a body through, adding the length of every data frame to a counter.
pub(crate) struct Counted<B> {
    inner: B,
    counters: Arc<Counters>,
    direction: Direction,
}

impl<B> Counted<B> {
    /// Wraps `inner`, counting its data bytes in `direction`'s counter.
    pub(crate) fn new(inner: B, counters: Arc<Counters>, direction: Direction) -> Self {
        Counted {
            inner,
            counters,
            direction,
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                match this.direction {
                    Direction::Sent => this.counters.on_sent(data.len()),
                    Direction::Received => this.counters.on_received(data.len()),
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that, when an endpoint drops it unread, is read to its end in the background
/// (for at most [`LINGER`]) instead of being abandoned: a server that closes a connection with
/// request bytes still unread makes the kernel reset it, and the client can lose the response it
/// already sent (the "lingering close" real servers do). `enabled` false: dropped as is.
pub(crate) struct DrainOnDrop<B: Body + Send + Unpin + 'static> {
    inner: Option<B>,
    enabled: bool,
}

/// How long a dropped request body is read in the background.
const LINGER: Duration = Duration::from_secs(2);

impl<B: Body + Send + Unpin + 'static> DrainOnDrop<B> {
    pub(crate) fn new(inner: B, enabled: bool) -> Self {
        DrainOnDrop {
            inner: Some(inner),
            enabled,
        }
    }
}

impl<B: Body + Send + Unpin + 'static> Body for DrainOnDrop<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.inner.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map(Body::size_hint).unwrap_or_default()
    }
}

impl<B: Body + Send + Unpin + 'static> Drop for DrainOnDrop<B> {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if !self.enabled || body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER, async {
                while let Some(Ok(_)) = body.frame().await {}
            })
            .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: PatternBody) -> (Vec<u8>, usize, bool) {
        let mut body = std::pin::pin!(body);
        let mut out = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    frames += 1;
                    out.extend_from_slice(&frame.into_data().unwrap());
                }
                Err(_) => return (out, frames, true),
            }
        }
        (out, frames, false)
    }

    #[tokio::test]
    async fn pattern_bodies() {
        let (data, frames, err) = collect(PatternBody::exact(100, 30)).await;
        assert_eq!(data.len(), 100);
        assert_eq!(frames, 4);
        assert!(!err);
        assert!(data
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern_byte(i as u64)));

        let big = SHARED_CHUNK_MAX + 100;
        let (data, frames, _) = collect(PatternBody::exact(big as u64 * 2, big)).await;
        assert_eq!(frames, 2);
        assert!(data
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern_byte(i as u64)));

        let (data, _, err) = collect(PatternBody::aborting(10, 4)).await;
        assert_eq!(data.len(), 10);
        assert!(err);

        let (data, frames, err) =
            collect(PatternBody::streamed(5, 2, Some(Duration::from_millis(1)))).await;
        assert_eq!(data, b"abcde");
        assert_eq!(frames, 3);
        assert!(!err);
    }
}
