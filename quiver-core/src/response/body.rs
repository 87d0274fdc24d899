//! Response bodies: one type over HTTP/1.1, HTTP/2, HTTP/3 and layered stages (decoding),
//! pulled chunk by chunk, with the request's timers and `max_response_body`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::stream::Stream;
use http::HeaderMap;

use crate::error::Result;
use crate::proto::body::MuxBody;
use crate::proto::h1::H1Body;
use crate::proto::h2::body::H2Recv;
#[cfg(feature = "http3")]
use crate::proto::h3::body::H3Recv;
use crate::timeout::Watchdog;

/// A body stage the client layer stacks on a response body (content decoding): it pulls from
/// the body below only as its own output is taken.
pub(crate) trait LayeredBody: Send {
    /// The next chunk; `Ready(Ok(None))` at the end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>>;
    /// The trailers of the body below, once it ended.
    fn take_trailers(&mut self) -> Option<HeaderMap>;
}

enum Source {
    Http1(H1Body),
    /// A stage of the client layer (content decoding, compiled in with a codec feature).
    #[cfg_attr(
        not(any(feature = "gzip", feature = "brotli", feature = "zstd")),
        allow(dead_code)
    )]
    Layered(Box<dyn LayeredBody>),
    Http2(MuxBody<H2Recv>),
    #[cfg(feature = "http3")]
    Http3(MuxBody<H3Recv>),
    Done,
}

/// A response body pulled chunk by chunk; also a `Stream` of `Result<Bytes>`.
pub struct ResponseBody {
    source: Source,
    watchdog: Option<Watchdog>,
    trailers: Option<HeaderMap>,
    /// `max_response_body` (0: none) and the bytes received so far.
    limit: u64,
    received: u64,
    /// Called once when the body ends or fails (events).
    on_end: Option<EndHook>,
    /// When the request started, and where to record how long until the body ended.
    clock: Option<(
        std::time::Instant,
        std::sync::Arc<std::sync::OnceLock<std::time::Duration>>,
    )>,
    /// The request's progress record, when it keeps one.
    progress: Option<std::sync::Arc<crate::request::Progress>>,
}

/// What runs when a body ends (`Ok`) or fails: it gets the bytes the caller received.
pub(crate) type EndHook =
    Box<dyn FnOnce(u64, std::result::Result<(), &crate::error::Error>) + Send>;

impl ResponseBody {
    pub(crate) fn http1(body: H1Body, watchdog: Watchdog) -> ResponseBody {
        ResponseBody {
            source: Source::Http1(body),
            watchdog: Some(watchdog),
            trailers: None,
            limit: 0,
            received: 0,
            on_end: None,
            clock: None,
            progress: None,
        }
    }

    pub(crate) fn http2(body: MuxBody<H2Recv>, watchdog: Watchdog) -> ResponseBody {
        ResponseBody {
            source: Source::Http2(body),
            watchdog: Some(watchdog),
            trailers: None,
            limit: 0,
            received: 0,
            on_end: None,
            clock: None,
            progress: None,
        }
    }

    #[cfg(feature = "http3")]
    pub(crate) fn http3(body: MuxBody<H3Recv>, watchdog: Watchdog) -> ResponseBody {
        ResponseBody {
            source: Source::Http3(body),
            watchdog: Some(watchdog),
            trailers: None,
            limit: 0,
            received: 0,
            on_end: None,
            clock: None,
            progress: None,
        }
    }

    /// An empty, ended body.
    pub fn empty() -> ResponseBody {
        ResponseBody {
            source: Source::Done,
            watchdog: None,
            trailers: None,
            limit: 0,
            received: 0,
            on_end: None,
            clock: None,
            progress: None,
        }
    }

    /// A body produced by a layer stacked on another body; `limit` caps what it produces
    /// (`max_response_body`; 0: no cap).
    #[cfg_attr(
        not(any(feature = "gzip", feature = "brotli", feature = "zstd")),
        allow(dead_code)
    )]
    pub(crate) fn layered(stage: Box<dyn LayeredBody>, limit: u64) -> ResponseBody {
        ResponseBody {
            source: Source::Layered(stage),
            watchdog: None,
            trailers: None,
            limit,
            received: 0,
            on_end: None,
            clock: None,
            progress: None,
        }
    }

    /// Runs `hook` once, when the body ends or fails.
    pub(crate) fn on_end(&mut self, hook: EndHook) {
        self.on_end = Some(hook);
    }

    /// Counts the bytes the caller takes in `progress`.
    pub(crate) fn count_in(&mut self, progress: std::sync::Arc<crate::request::Progress>) {
        self.progress = Some(progress);
    }

    /// Records in `cell` how long after `started` the body ended (or failed).
    pub(crate) fn time_to_end(
        &mut self,
        started: std::time::Instant,
        cell: std::sync::Arc<std::sync::OnceLock<std::time::Duration>>,
    ) {
        if self.is_end() {
            let _ = cell.set(started.elapsed());
        } else {
            self.clock = Some((started, cell));
        }
    }

    /// Caps the body at `limit` bytes (`max_response_body`; 0: no cap).
    pub(crate) fn limited(mut self, limit: u64) -> ResponseBody {
        self.limit = limit;
        self
    }

    /// True once the body has been read to its end.
    pub fn is_end(&self) -> bool {
        matches!(self.source, Source::Done)
    }

    /// Trailer fields, available once the body has ended.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// Takes the trailer fields (once the body has ended).
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// The next chunk; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Polls for the next chunk; `Ready(Ok(None))` at the end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        let out = self.poll_source(cx);
        if let (Poll::Ready(Ok(Some(data))), Some(p)) = (&out, &self.progress) {
            p.add_downloaded(data.len() as u64);
        }
        if matches!(out, Poll::Ready(Ok(None) | Err(_))) {
            if let Some((started, cell)) = self.clock.take() {
                let _ = cell.set(started.elapsed());
            }
            if let Some(hook) = self.on_end.take() {
                let outcome = match &out {
                    Poll::Ready(Err(e)) => Err(e),
                    _ => Ok(()),
                };
                hook(self.received, outcome);
            }
        }
        out
    }

    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        loop {
            let polled = match &mut self.source {
                Source::Done => return Poll::Ready(Ok(None)),
                Source::Layered(_) => return self.poll_layered(cx),
                Source::Http1(b) => b.poll_frame(cx),
                Source::Http2(b) => b.poll_frame(cx),
                #[cfg(feature = "http3")]
                Source::Http3(b) => b.poll_frame(cx),
            };
            match polled {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => {
                        self.received = self.received.saturating_add(data.len() as u64);
                        if self.limit > 0 && self.received > self.limit {
                            self.finish(false);
                            return Poll::Ready(Err(crate::error::Error::new(
                                crate::error::ErrorKind::ResponseBodyTooLarge,
                                format!(
                                    "the response body is longer than max_response_body ({} bytes)",
                                    self.limit
                                ),
                            )));
                        }
                        if let Some(w) = &mut self.watchdog {
                            w.end_wait();
                        }
                        if let Source::Http1(b) = &mut self.source {
                            b.release_if_ended();
                        }
                        return Poll::Ready(Ok(Some(data)));
                    }
                    Ok(_empty) => {
                        if let Source::Http1(b) = &mut self.source {
                            b.release_if_ended();
                        }
                        continue;
                    }

                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            match &mut self.trailers {
                                Some(t) => t.extend(trailers),
                                None => self.trailers = Some(trailers),
                            }
                        }
                    }
                },
                Poll::Ready(None) => {
                    self.finish(true);
                    return Poll::Ready(Ok(None));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.finish(false);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    let activity = match &self.source {
                        Source::Http1(b) => b.activity(),
                        Source::Http2(b) => b.activity(),
                        #[cfg(feature = "http3")]
                        Source::Http3(b) => b.activity(),
                        Source::Done | Source::Layered(_) => return Poll::Pending,
                    };
                    let expired = match &mut self.watchdog {
                        Some(w) => {
                            w.begin_wait();
                            w.poll_expired(cx, activity)
                        }
                        None => Poll::Pending,
                    };
                    return match expired {
                        Poll::Ready(err) => {
                            self.finish(false);
                            Poll::Ready(Err(err))
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }

    /// Ends the body: a clean end gives the connection (or stream slot) back, an error or an
    /// early drop closes an HTTP/1.1 connection and resets an HTTP/2 stream.
    fn finish(&mut self, clean: bool) {
        match std::mem::replace(&mut self.source, Source::Done) {
            Source::Http1(b) => b.finish(clean),
            Source::Http2(mut b) => b.finish(),
            #[cfg(feature = "http3")]
            Source::Http3(mut b) => b.finish(),
            Source::Layered(_) | Source::Done => {}
        }
        self.watchdog = None;
    }

    fn poll_layered(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        let Source::Layered(stage) = &mut self.source else {
            return Poll::Ready(Ok(None));
        };
        let out = match std::task::ready!(stage.poll_chunk(cx)) {
            Ok(Some(data)) => {
                self.received = self.received.saturating_add(data.len() as u64);
                if self.limit > 0 && self.received > self.limit {
                    Err(crate::error::Error::new(
                        crate::error::ErrorKind::ResponseBodyTooLarge,
                        format!(
                            "the decoded response body is longer than max_response_body ({} bytes)",
                            self.limit
                        ),
                    ))
                } else {
                    return Poll::Ready(Ok(Some(data)));
                }
            }
            Ok(None) => {
                self.trailers = stage.take_trailers();
                Ok(None)
            }
            Err(e) => Err(e),
        };
        // Ended or failed: dropping the stage drops the body below (a clean end already gave
        // its connection back).
        self.source = Source::Done;
        Poll::Ready(out)
    }

    /// Reads the rest of the body into one buffer (`hint`: expected size, 0 if unknown).
    pub(crate) async fn read_all(&mut self, hint: usize) -> Result<Bytes> {
        let first = match self.chunk().await? {
            Some(b) => b,
            None => return Ok(Bytes::new()),
        };
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut buf = BytesMut::with_capacity(initial_capacity(hint, first.len() + second.len()));
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second);
        while let Some(chunk) = self.chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

/// What a whole-body read reserves up front, once `have` bytes arrived: the length the server
/// announced (`hint`) is a hint only, so never more than 64 MiB of it; at least what arrived
/// (which may be more than 64 MiB: no clamp that could panic).
fn initial_capacity(hint: usize, have: usize) -> usize {
    hint.min(64 << 20).max(have)
}

impl Stream for ResponseBody {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx).map(|r| r.transpose())
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("ended", &self.is_end())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding: `hint.clamp(have, 64 MiB)` panicked when the first two chunks held more than
    /// 64 MiB.
    #[test]
    fn initial_capacity_never_panics() {
        assert_eq!(initial_capacity(0, 10), 10);
        assert_eq!(initial_capacity(1000, 10), 1000);
        assert_eq!(initial_capacity(usize::MAX, 10), 64 << 20);
        assert_eq!(initial_capacity(usize::MAX, 100 << 20), 100 << 20);
        assert_eq!(initial_capacity(0, usize::MAX), usize::MAX);
    }
}
