//! HTTP/2 request streams: the header-list check, uploads (held bodies handed to h2, streamed
//! bodies pulled only as send capacity is granted) and the receive half of a response, which
//! re-opens the window only as the caller takes bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use h2::{Reason, RecvStream, SendStream};
use http::HeaderMap;

use super::H2Shared;
use crate::conn::Activity;
use crate::error::{Error, ErrorKind, Result};
use crate::proto::body::RecvHalf;
use crate::proto::UploadFailure;
use crate::request::BodyStream;

/// Hands a body the caller already holds to h2, which sends it as the window allows. A frame's
/// payload is capped at 2^31-1 bytes, so larger bodies go in pieces.
///
/// A send can fail only once the stream is closed: the server may answer and end the stream
/// before it has read the body (RFC 9113 §8.1), or reset it. Either way the response future
/// says what happened, so the error is left for it and the stream is not reset here (a local
/// reset would turn an already received response into an error).
pub(crate) fn send_held(mut stream: SendStream<Bytes>, mut body: Bytes) {
    const MAX_FRAME_PAYLOAD: usize = (1 << 31) - 1;
    while body.len() > MAX_FRAME_PAYLOAD {
        if stream
            .send_data(body.split_to(MAX_FRAME_PAYLOAD), false)
            .is_err()
        {
            return;
        }
    }
    let _ = stream.send_data(body, true);
}

/// Pulls the caller's body only as send capacity is granted: at most one chunk is held here,
/// and nothing goes out beyond the peer's window.
pub(crate) async fn pump(
    mut body: BodyStream,
    mut stream: SendStream<Bytes>,
    activity: Activity,
    error: Arc<UploadFailure>,
    on_sent: Option<crate::request::SentHook>,
) {
    const WANT: usize = 64 * 1024;
    let mut pending: Option<Bytes> = None;
    let mut sent = 0u64;
    loop {
        // Room first: nothing is pulled from the caller's body before the window has space.
        if stream.capacity() == 0 {
            let want = pending.as_ref().map_or(WANT, |c| c.len().max(WANT));
            stream.reserve_capacity(want);
            // poll_capacity wakes when capacity grows; loop until some is actually assigned.
            while stream.capacity() == 0 {
                match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        }
        let chunk = match pending.take() {
            Some(chunk) => chunk,
            None => match body.next().await {
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    error.fail(e);
                    stream.send_reset(Reason::CANCEL);
                    return;
                }
                None => {
                    if stream.send_data(Bytes::new(), true).is_ok() {
                        if let Some(hook) = on_sent {
                            hook(sent);
                        }
                    }
                    return;
                }
            },
        };
        let mut chunk = chunk;
        let part = chunk.split_to(stream.capacity().min(chunk.len()));
        if !chunk.is_empty() {
            pending = Some(chunk);
        }
        sent += part.len() as u64;
        if stream.send_data(part, false).is_err() {
            return;
        }
        activity.touch();
    }
}

/// Refuses, before sending, a header list larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE
/// (sizes as RFC 9113 counts them: name + value + 32 per field, pseudo-headers included).
pub(crate) fn check_header_list_size(head: &http::Request<()>, shared: &H2Shared) -> Result<()> {
    let max = shared.signals.max_header_list_size.load(Ordering::Acquire);
    if max == u32::MAX {
        return Ok(());
    }
    let uri = head.uri();
    let pseudo = [
        (":method".len(), head.method().as_str().len()),
        (":scheme".len(), uri.scheme_str().unwrap_or_default().len()),
        (
            ":authority".len(),
            uri.authority().map_or(0, |a| a.as_str().len()),
        ),
        (
            ":path".len(),
            uri.path_and_query().map_or(1, |p| p.as_str().len()),
        ),
    ];
    let size: usize = pseudo.iter().map(|(n, v)| n + v + 32).sum::<usize>()
        + head
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum::<usize>();
    if size > max as usize {
        return Err(Error::new(
            ErrorKind::HeaderListTooLarge,
            format!("the request's header list is {size} bytes; the server accepts at most {max} (SETTINGS_MAX_HEADER_LIST_SIZE)"),
        ));
    }
    Ok(())
}

/// How many received bytes an HTTP/2 response body holds for its caller right now.
pub(crate) struct H2Buffered {
    flow: h2::FlowControl,
    unreleased: AtomicUsize,
}

impl H2Buffered {
    /// Bytes received and not yet taken by the caller.
    pub(crate) fn buffered(&self) -> u64 {
        let used = self.flow.used_capacity();
        used.saturating_sub(self.unreleased.load(Ordering::Relaxed)) as u64
    }
}

/// The receiving half of an HTTP/2 request stream: the window is re-opened (capacity
/// released) once the caller has taken `threshold` bytes, or at once when it waits for more.
pub(crate) struct H2Recv {
    recv: RecvStream,
    shared: Arc<H2Shared>,
    threshold: usize,
    buffered: Arc<H2Buffered>,
}

impl H2Recv {
    pub(crate) fn new(mut recv: RecvStream, shared: Arc<H2Shared>, threshold: usize) -> H2Recv {
        let buffered = Arc::new(H2Buffered {
            flow: recv.flow_control().clone(),
            unreleased: AtomicUsize::new(0),
        });
        H2Recv {
            recv,
            shared,
            threshold: threshold.max(1),
            buffered,
        }
    }

    /// The body's buffered-bytes gauge, for the pool's stats.
    pub(crate) fn buffered(&self) -> Arc<H2Buffered> {
        self.buffered.clone()
    }

    /// Counts `n` bytes taken by the caller; re-opens the window once `threshold` bytes are
    /// pending, or at once with `flush` (the caller caught up and waits for more: holding
    /// credit back then would only stall the sender, and on a shared connection window could
    /// stall every stream on the connection).
    fn give_back(&mut self, n: usize, flush: bool) {
        let pending = self.buffered.unreleased.fetch_add(n, Ordering::Relaxed) + n;
        if pending > 0 && (flush || pending >= self.threshold) {
            self.buffered.unreleased.store(0, Ordering::Relaxed);
            let _ = self.recv.flow_control().release_capacity(pending);
        }
    }
}

impl RecvHalf for H2Recv {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        match self.recv.poll_data(cx) {
            Poll::Ready(Some(Ok(data))) => {
                self.give_back(data.len(), false);
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(self.shared.error(&e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                self.give_back(0, true);
                Poll::Pending
            }
        }
    }

    fn poll_trailers(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<HeaderMap>>> {
        self.recv
            .poll_trailers(cx)
            .map(|r| r.map_err(|e| self.shared.error(&e)))
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}
