//! HTTP/3 request streams: the upload (QUIC flow control paces it) and the receive half of a
//! response (h3 reads from QUIC only as the caller pulls, so MAX_STREAM_DATA follows the
//! consumer).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use h3::error::Code;
use http::HeaderMap;

use super::errors::map_stream_error;
use super::{H3Conn, H3RecvStream, H3SendHalf};
use crate::conn::Activity;
use crate::error::{Error, ErrorKind, Result};
use crate::proto::body::RecvHalf;
use crate::proto::UploadFailure;
use crate::request::{Body, BodyStream};

/// The most of a held body handed to h3 at a time.
const PIECE: usize = 64 * 1024;

/// The send half of a request stream that is reset (H3_REQUEST_CANCELLED) when dropped before
/// it finished: an upload abandoned midway (the response came and went, the caller gave up)
/// must not look like a complete body to the server, which quinn's implicit finish on drop
/// would make it (a stream ending inside a DATA frame).
struct ResetOnDrop(Option<H3SendHalf>);

impl ResetOnDrop {
    fn stream(&mut self) -> std::result::Result<&mut H3SendHalf, Option<Error>> {
        self.0.as_mut().ok_or(None)
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if let Some(send) = &mut self.0 {
            send.stop_stream(Code::H3_REQUEST_CANCELLED);
        }
    }
}

/// Sends the request body (QUIC flow control paces `send_data`), then finishes the stream.
pub(crate) async fn upload(
    body: Body,
    send: H3SendHalf,
    activity: Activity,
    error: Arc<UploadFailure>,
    on_sent: Option<crate::request::SentHook>,
) {
    let mut send = ResetOnDrop(Some(send));
    let mut sent = 0u64;
    let result: std::result::Result<(), Option<Error>> = async {
        match body {
            Body::Empty => {}
            Body::Bytes(mut b) => {
                // In pieces, so that a large body records that bytes are moving
                // (`read_timeout`) as QUIC flow control lets each one go.
                while !b.is_empty() {
                    let piece = b.split_to(b.len().min(PIECE));
                    sent += piece.len() as u64;
                    send.stream()?.send_data(piece).await.map_err(|_| None)?;
                    activity.touch();
                }
            }
            Body::Stream(mut s) => {
                let s: &mut BodyStream = &mut s;
                while let Some(chunk) = s.next().await {
                    let mut chunk = chunk.map_err(Some)?;
                    while !chunk.is_empty() {
                        let piece = chunk.split_to(chunk.len().min(PIECE));
                        sent += piece.len() as u64;
                        send.stream()?.send_data(piece).await.map_err(|_| None)?;
                        activity.touch();
                    }
                }
            }
        }
        send.stream()?.finish().await.map_err(|_| None)
    }
    .await;
    match result {
        // Finished: nothing to reset.
        Ok(()) => {
            send.0 = None;
            if let Some(hook) = on_sent {
                hook(sent);
            }
        }
        // The caller's body failed: the drop resets the stream.
        Err(Some(e)) => error.fail(e),
        // The peer stopped the stream (or it broke): resetting it too is harmless.
        Err(None) => {}
    }
}

/// The receiving half of an HTTP/3 request stream.
pub(crate) struct H3Recv {
    recv: H3RecvStream,
    conn: Arc<H3Conn>,
    /// What the response's content-length still announces: a stream that ends short of it,
    /// or goes past it, is malformed (RFC 9114 §4.1.2), never a complete body.
    remaining: Option<u64>,
}

impl H3Recv {
    /// The receive half of a response announcing `declared` bytes of body.
    pub(crate) fn new(recv: H3RecvStream, conn: Arc<H3Conn>, declared: Option<u64>) -> H3Recv {
        H3Recv {
            recv,
            conn,
            remaining: declared,
        }
    }
}

impl RecvHalf for H3Recv {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        match self.recv.poll_recv_data(cx) {
            Poll::Ready(Ok(Some(mut buf))) => {
                let data = buf.copy_to_bytes(buf.remaining());
                if let Some(remaining) = self.remaining.as_mut() {
                    match remaining.checked_sub(data.len() as u64) {
                        Some(left) => *remaining = left,
                        None => {
                            return Poll::Ready(Some(Err(Error::new(
                                ErrorKind::Protocol,
                                format!(
                                    "{} sent more response body than its content-length",
                                    self.conn.origin
                                ),
                            ))))
                        }
                    }
                }
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Ok(None)) if self.remaining.is_some_and(|r| r > 0) => {
                Poll::Ready(Some(Err(Error::new(
                    ErrorKind::ConnectionClosed,
                    format!(
                        "{} ended the response {} bytes short of its content-length",
                        self.conn.origin,
                        self.remaining.unwrap_or_default()
                    ),
                ))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(map_stream_error(&e, &self.conn)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_trailers(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<HeaderMap>>> {
        self.recv
            .poll_recv_trailers(cx)
            .map(|r| r.map_err(|e| map_stream_error(&e, &self.conn)))
    }
}
