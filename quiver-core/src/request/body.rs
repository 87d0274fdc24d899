//! Request bodies: bytes in memory (replayable) or a stream, and the form hyper pulls.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};

use crate::error::{BoxError, Error, ErrorKind, Result};

/// A request body stream: chunks pulled only as the connection can send them.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// A request body: nothing, bytes in memory (replayable), or a stream of chunks.
#[derive(Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A body held in memory; can be sent again if a retry is needed.
    Bytes(Bytes),
    /// A body produced chunk by chunk, pulled only when there is room to send it.
    Stream(BodyStream),
}

impl Body {
    /// Wraps a stream of chunks; a stream error fails the request with kind `body_stream`.
    pub fn from_stream<S, E>(stream: S) -> Body
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Body::Stream(Box::pin(stream.map(|item| {
            item.map_err(|e| {
                let e: BoxError = e.into();
                match e.downcast::<Error>() {
                    Ok(quiver) => *quiver,
                    Err(other) => Error::with_source(
                        ErrorKind::BodyStream,
                        format!("request body stream failed: {other}"),
                        other,
                    ),
                }
            })
        })))
    }

    /// The body's exact length, when known without reading it.
    pub fn exact_len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Stream(_) => None,
        }
    }

    /// A copy of the body for a retry, when it can be replayed.
    pub(crate) fn try_clone(&self) -> Option<Body> {
        match self {
            Body::Empty => Some(Body::Empty),
            Body::Bytes(b) => Some(Body::Bytes(b.clone())),
            Body::Stream(_) => None,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

macro_rules! body_from {
    ($($t:ty),*) => { $(impl From<$t> for Body { fn from(v: $t) -> Body { Body::Bytes(Bytes::from(v)) } })* };
}
body_from!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

/// The body as hyper (HTTP/1.1) pulls it: frames are produced only when hyper polls.
pub(crate) struct WireBody {
    body: Body,
    sent: u64,
    on_sent: Option<SentHook>,
}

/// Told, once, that a request body went out whole, with its length (the `body_sent` event).
pub(crate) type SentHook = Box<dyn FnOnce(u64) + Send>;

impl WireBody {
    pub(crate) fn new(body: Body, on_sent: Option<SentHook>) -> WireBody {
        WireBody {
            body,
            sent: 0,
            on_sent,
        }
    }

    fn sent_all(&mut self) {
        if let Some(hook) = self.on_sent.take() {
            hook(self.sent);
        }
    }
}

impl http_body::Body for WireBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>>>> {
        let this = self.get_mut();
        match &mut this.body {
            Body::Empty => {
                this.sent_all();
                Poll::Ready(None)
            }
            // Handed over whole: hyper asks for nothing more (the body is then at its end).
            Body::Bytes(_) => match std::mem::take(&mut this.body) {
                Body::Bytes(b) if !b.is_empty() => {
                    this.sent = b.len() as u64;
                    this.sent_all();
                    Poll::Ready(Some(Ok(http_body::Frame::data(b))))
                }
                _ => {
                    this.sent_all();
                    Poll::Ready(None)
                }
            },
            Body::Stream(s) => loop {
                match s.as_mut().poll_next(cx) {
                    // Skip empty chunks: an empty chunk would end an HTTP/1.1 chunked body.
                    Poll::Ready(Some(Ok(b))) if b.is_empty() => continue,
                    Poll::Ready(Some(Ok(b))) => {
                        this.sent += b.len() as u64;
                        return Poll::Ready(Some(Ok(http_body::Frame::data(b))));
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        this.body = Body::Empty;
                        this.sent_all();
                        return Poll::Ready(None);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Body::Empty => true,
            Body::Bytes(b) => b.is_empty(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.body.exact_len() {
            Some(n) => http_body::SizeHint::with_exact(n),
            None => http_body::SizeHint::default(),
        }
    }
}
