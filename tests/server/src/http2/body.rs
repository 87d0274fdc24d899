//! The request body of an HTTP/2 stream, as an [`http_body::Body`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::RecvStream;
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::stats::Counters;

/// Adapts [`h2::RecvStream`] to [`Body`], counting the bytes in `bytes_received`.
///
/// Flow-control capacity of a data frame is released only when the next frame is asked for
/// (or when the body is dropped): the window the client sees is what the endpoint has not
/// consumed yet, so an endpoint that reads slowly (`/slow-sink`) or that cannot pass the bytes
/// on (`/echo` to a client that does not read) fills the client's send window.
pub(crate) struct RecvBody {
    inner: RecvStream,
    /// Bytes of the last data frame handed out and not yet released.
    unreleased: usize,
    /// What `content-length` still announces, when the request has one.
    remaining: Option<u64>,
    data_done: bool,
    trailers_done: bool,
    counters: Arc<Counters>,
}

impl RecvBody {
    /// Wraps the body of a request whose headers are `headers`.
    pub(crate) fn new(inner: RecvStream, headers: &HeaderMap, counters: Arc<Counters>) -> Self {
        let remaining = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        RecvBody {
            inner,
            unreleased: 0,
            remaining,
            data_done: false,
            trailers_done: false,
            counters,
        }
    }

    fn release(&mut self) {
        if self.unreleased > 0 {
            // Fails only once the stream is gone, when there is nothing left to release.
            let _ = self.inner.flow_control().release_capacity(self.unreleased);
            self.unreleased = 0;
        }
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        self.release();
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        // The endpoint is done with the previous frame: give its window back.
        this.release();
        if !this.data_done {
            match ready!(this.inner.poll_data(cx)) {
                Some(Ok(data)) => {
                    this.unreleased = data.len();
                    this.counters.on_received(data.len());
                    if let Some(remaining) = this.remaining.as_mut() {
                        *remaining = remaining.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => this.data_done = true,
            }
        }
        if !this.trailers_done {
            let trailers = ready!(this.inner.poll_trailers(cx));
            this.trailers_done = true;
            match trailers {
                Ok(Some(trailers)) => return Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.trailers_done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            return SizeHint::with_exact(0);
        }
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::new(),
        }
    }
}
