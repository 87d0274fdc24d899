//! Streamed request bodies: core pulls, JavaScript answers.
//!
//! Core polls the body only when the connection can send. Each poll that finds nothing
//! buffered asks JavaScript for one more chunk through a weak threadsafe function (`pull(true)`,
//! at most one request outstanding); JavaScript answers with `push(chunk)`, `end()` or
//! `fail(message)`. So at most one chunk waits between the source and core, whatever the body's
//! size. When core drops the body before its end (the request failed, was cancelled, or the
//! server answered early) JavaScript gets `pull(false)` and closes its source.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream::Stream;
use napi::bindgen_prelude::{BufferSlice, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use quiver_core::{Body, BodyStream, Error, ErrorKind};

/// JavaScript's `pull(more)`: weak, so a body waiting on it never holds the event loop alone.
type PullFn = ThreadsafeFunction<bool, (), bool, Status, false, true, 0>;

#[derive(Default)]
struct State {
    chunk: Option<Bytes>,
    error: Option<String>,
    done: bool,
    /// A `pull(true)` is outstanding.
    requested: bool,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, update: impl FnOnce(&mut State)) {
        let waker = {
            let mut st = self.lock();
            update(&mut st);
            st.requested = false;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The native end of a streamed request body (`index.js` makes one per async-iterable,
/// `Readable` or `Blob` body, and per `Blob` in a `FormData`, and feeds it from the source).
#[napi(namespace = "native")]
pub struct UploadSource {
    shared: Arc<Shared>,
    pull: Option<PullFn>,
}

#[napi(namespace = "native")]
impl UploadSource {
    /// A source that asks `pull(true)` for each chunk and says `pull(false)` when it is no
    /// longer needed.
    #[napi(constructor)]
    pub fn new(pull: Function<bool, ()>) -> napi::Result<UploadSource> {
        let pull = pull
            .build_threadsafe_function::<bool>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        Ok(UploadSource {
            shared: Arc::default(),
            pull: Some(pull),
        })
    }

    /// The next chunk (copied: the caller may reuse its buffer).
    #[napi]
    pub fn push(&self, chunk: BufferSlice) {
        let bytes = Bytes::copy_from_slice(&chunk);
        self.shared.deliver(|st| st.chunk = Some(bytes));
    }

    /// The source has no more chunks.
    #[napi]
    pub fn end(&self) {
        self.shared.deliver(|st| st.done = true);
    }

    /// The source failed: the request fails with kind `body_stream`.
    #[napi]
    pub fn fail(&self, message: String) {
        self.shared.deliver(|st| st.error = Some(message));
    }
}

impl UploadSource {
    /// The body core sends; `None` if this source was already used.
    pub(crate) fn take_body(&mut self) -> Option<Body> {
        self.take_stream().map(Body::Stream)
    }

    /// The chunks core pulls (a request body, or one part of a form); `None` if this source
    /// was already used.
    pub(crate) fn take_stream(&mut self) -> Option<BodyStream> {
        let pull = self.pull.take()?;
        Some(Box::pin(UploadStream {
            shared: self.shared.clone(),
            pull,
        }))
    }
}

struct UploadStream {
    shared: Arc<Shared>,
    pull: PullFn,
}

impl Stream for UploadStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut st = self.shared.lock();
        if let Some(chunk) = st.chunk.take() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        if let Some(message) = st.error.take() {
            st.done = true;
            return Poll::Ready(Some(Err(Error::new(
                ErrorKind::BodyStream,
                format!("request body stream failed: {message}"),
            ))));
        }
        if st.done {
            return Poll::Ready(None);
        }
        st.waker = Some(cx.waker().clone());
        if !st.requested {
            st.requested = true;
            drop(st);
            if self
                .pull
                .call(true, ThreadsafeFunctionCallMode::NonBlocking)
                != Status::Ok
            {
                self.shared.lock().done = true;
                return Poll::Ready(Some(Err(Error::new(
                    ErrorKind::BodyStream,
                    "the JavaScript side of the request body is gone",
                ))));
            }
        }
        Poll::Pending
    }
}

impl Drop for UploadStream {
    fn drop(&mut self) {
        let unfinished = {
            let mut st = self.shared.lock();
            let unfinished = !st.done;
            st.done = true;
            st.chunk = None;
            unfinished
        };
        if unfinished {
            // Let JavaScript close its source (destroy a Readable, return an iterator).
            let _ = self
                .pull
                .call(false, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}
