//! The response body of the multiplexed protocols (HTTP/2 and HTTP/3): one skeleton (data,
//! then trailers, then the end; the stream slot held until then; the upload stopped with it)
//! over a protocol's receive half.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;

use std::sync::Arc;

use super::{Hold, UploadFailure, UploadGuard};
use crate::conn::Activity;
use crate::error::{Error, Result};

/// The receiving half of one request stream, as a protocol reads it.
pub(crate) trait RecvHalf: Send + Sync + 'static {
    /// The next piece of data; `None` at the end of the data.
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>>;

    /// The trailers, once the data has ended.
    fn poll_trailers(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<HeaderMap>>>;

    /// True when the stream is known to have ended already (nothing more will arrive).
    fn is_end_stream(&self) -> bool {
        false
    }
}

/// A multiplexed response body: `R` reads the stream; the slot it holds is freed at the end.
pub(crate) struct MuxBody<R: RecvHalf> {
    recv: R,
    hold: Option<Hold>,
    activity: Activity,
    _upload: UploadGuard,
    /// Why the upload stopped, if the caller's body failed: the cause of a stream reset that
    /// the response sees after its head arrived.
    upload_failure: Arc<UploadFailure>,
    data_done: bool,
}

impl<R: RecvHalf> MuxBody<R> {
    pub(crate) fn new(
        recv: R,
        hold: Hold,
        activity: Activity,
        upload: (UploadGuard, Arc<UploadFailure>),
    ) -> MuxBody<R> {
        let mut body = MuxBody {
            recv,
            hold: Some(hold),
            activity,
            _upload: upload.0,
            upload_failure: upload.1,
            data_done: false,
        };
        if body.recv.is_end_stream() {
            body.hold = None;
        }
        body
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The next frame: data, then trailers, then `None`.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>>>> {
        if !self.data_done {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    self.activity.touch();
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(self.cause(e)))),
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match self.recv.poll_trailers(cx) {
            Poll::Ready(Ok(Some(trailers))) => {
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err::<_, Error>(self.cause(e)))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The error to report: the caller's own body failure when there was one (the reset the
    /// stream reports is its consequence).
    fn cause(&self, e: Error) -> Error {
        self.upload_failure.get().cloned().unwrap_or(e)
    }

    /// The stream ended (or failed): free its slot.
    pub(crate) fn finish(&mut self) {
        self.hold = None;
    }
}
