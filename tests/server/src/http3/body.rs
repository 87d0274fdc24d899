//! The request body of an HTTP/3 stream, as an [`http_body::Body`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h3::error::StreamError;
use h3::server::RequestStream;
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::Sleep;

use super::Freeze;
use crate::stats::Counters;

/// Adapts the receiving half of an h3 request stream to [`Body`], counting the bytes in
/// `bytes_received`.
///
/// QUIC flow control follows the reads: quinn grants the client more window only as the data
/// is read off the stream, so an endpoint that reads slowly (`/slow-sink`) or not at all fills
/// the client's send window. While the connection is frozen (`/freeze`) nothing is read.
///
/// A body dropped before its end hands the stream back (through the receiver [`RecvBody::new`]
/// returns) instead of dropping it: dropping an unfinished quinn stream sends STOP_SENDING at
/// once, which would break a request whose end is still on its way (such as the FIN of a GET
/// that the endpoint answers without reading). The stream task finishes the response first,
/// then reads what is left ([`drain`]). Stopping the stream explicitly is no option: h3-quinn
/// may hold the QUIC stream inside a read future even after a frame was returned, and its
/// `stop_sending` panics then.
pub(crate) struct RecvBody {
    inner: Option<RecvHalf>,
    park: Option<oneshot::Sender<RecvHalf>>,
    /// What `content-length` still announces, when the request has one.
    remaining: Option<u64>,
    data_done: bool,
    trailers_done: bool,
    counters: Arc<Counters>,
    freeze: Arc<Freeze>,
    frozen: Option<Pin<Box<Sleep>>>,
}

/// The receiving half of a request stream.
pub(crate) type RecvHalf = RequestStream<h3_quinn::RecvStream, Bytes>;

/// How long [`drain`] reads what is left of a request body once the response is out.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Reads and discards the rest of a request body (not counted in `bytes_received`), for at
/// most [`DRAIN_LIMIT`]; then the stream is dropped (quinn stops it if unfinished, code 0).
/// Trailers are not read: a client that finished its stream in the middle of a DATA frame
/// makes h3 0.0.8 end the data early, and asking for trailers then trips an assertion in h3.
pub(crate) async fn drain(mut recv: RecvHalf) {
    let _ = tokio::time::timeout(DRAIN_LIMIT, async {
        while let Ok(Some(_)) = recv.recv_data().await {}
    })
    .await;
}

impl RecvBody {
    /// Wraps the body of a request whose headers are `headers`. The receiver gets the stream
    /// back if the body is dropped before its end.
    pub(crate) fn new(
        inner: RecvHalf,
        headers: &HeaderMap,
        counters: Arc<Counters>,
        freeze: Arc<Freeze>,
    ) -> (Self, oneshot::Receiver<RecvHalf>) {
        let remaining = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let (park, parked) = oneshot::channel();
        let body = RecvBody {
            inner: Some(inner),
            park: Some(park),
            remaining,
            data_done: false,
            trailers_done: false,
            counters,
            freeze,
            frozen: None,
        };
        (body, parked)
    }

    /// Waits while the connection is frozen.
    fn poll_thawed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(sleep) = self.frozen.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.frozen = None;
            }
            match self.freeze.frozen_until() {
                Some(until) => self.frozen = Some(Box::pin(tokio::time::sleep_until(until))),
                None => return Poll::Ready(()),
            }
        }
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        if !self.trailers_done {
            if let (Some(inner), Some(park)) = (self.inner.take(), self.park.take()) {
                let _ = park.send(inner);
            }
        }
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let this = self.get_mut();
        ready!(this.poll_thawed(cx));
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        while !this.data_done {
            match ready!(inner.poll_recv_data(cx)) {
                Ok(Some(mut buf)) => {
                    let data = buf.copy_to_bytes(buf.remaining());
                    if data.is_empty() {
                        continue;
                    }
                    this.counters.on_received(data.len());
                    if let Some(remaining) = this.remaining.as_mut() {
                        *remaining = remaining.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(None) => this.data_done = true,
                Err(e) => {
                    this.data_done = true;
                    this.trailers_done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        if !this.trailers_done {
            let trailers = ready!(inner.poll_recv_trailers(cx));
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
        self.trailers_done
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
