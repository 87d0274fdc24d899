//! Request bodies from Python: bytes (shared with core without a copy), and iterators and async
//! iterators pulled one chunk at a time, only when core polls for the next chunk (backpressure).
//!
//! A sync iterator's `__next__` runs on tokio's blocking pool with the GIL (it may block, and the
//! thread that made the request waits with the GIL released). An async iterator's `__anext__`
//! runs on the caller's event loop, scheduled through the loop's [`Bridge`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use pyo3::exceptions::{PyRuntimeError, PyStopAsyncIteration, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyIterator, PyMemoryView, PyString};
use quiver_core::Body;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::bridge::Bridge;

/// Where a failing body iterator leaves its Python exception: core reports the failure as a
/// `body_stream` error with the exception's text, and the binding makes the exception itself
/// the `__cause__` of the error it raises.
#[derive(Clone, Default)]
pub(crate) struct BodyFailure(Arc<Mutex<Option<PyErr>>>);

impl BodyFailure {
    /// Keeps `err` (while attached, to render it) and returns what core gets instead.
    fn record(&self, err: PyErr) -> BodyError {
        let message = err.to_string();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
        BodyError(message)
    }

    /// The exception a body iterator raised, if one did.
    pub(crate) fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A body iterator's exception as core sees it: its text.
#[derive(Debug)]
struct BodyError(String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// Converts a request body given by Python: `None`, bytes-like, `str`, an iterator or an async
/// iterator of chunks. Async iterators need `bridge` (only `AsyncClient` has one).
pub(crate) fn to_body(
    content: Option<&Bound<'_, PyAny>>,
    handle: &Handle,
    bridge: Option<&Arc<Bridge>>,
    failure: &BodyFailure,
) -> PyResult<Body> {
    let Some(content) = content else {
        return Ok(Body::Empty);
    };
    if content.is_none() {
        return Ok(Body::Empty);
    }
    if let Some(bytes) = chunk_bytes(content)? {
        return Ok(Body::Bytes(bytes));
    }
    let py = content.py();
    if content.hasattr(intern!(py, "__anext__"))? {
        let Some(bridge) = bridge else {
            return Err(PyTypeError::new_err(
                "an async iterator body needs quiver.AsyncClient; quiver.Client takes bytes, str or an iterator",
            ));
        };
        return Ok(Body::from_stream(AsyncIterBody {
            aiter: Arc::new(content.clone().unbind()),
            bridge: bridge.clone(),
            failure: failure.clone(),
            pending: None,
            task: Arc::new(Mutex::new(None)),
            done: false,
        }));
    }
    if let Ok(iter) = content.cast::<PyIterator>() {
        return Ok(Body::from_stream(iter_stream(
            handle.clone(),
            iter.clone().into_any().unbind(),
            failure.clone(),
        )));
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a body of type {}: give bytes, str, an iterator or an async iterator of bytes",
        content.get_type().name()?
    )))
}

/// A chunk's bytes: `bytes` is shared without a copy; `bytearray`, `memoryview` and `str`
/// (UTF-8) are copied. `None` for other types.
pub(crate) fn chunk_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Option<Bytes>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Some(Bytes::from_owner(PyBackedBytes::from(b.clone()))));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(Bytes::copy_from_slice(s.to_cow()?.as_bytes())));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Some(Bytes::from(b.to_vec())));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let copied = obj.call_method0(intern!(obj.py(), "tobytes"))?;
        return Ok(copied
            .cast::<PyBytes>()
            .ok()
            .map(|b| Bytes::from_owner(PyBackedBytes::from(b.clone()))));
    }
    Ok(None)
}

fn chunk_or_error(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    chunk_bytes(obj)?.ok_or_else(|| {
        let name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyTypeError::new_err(format!(
            "request body chunks must be bytes, bytearray, memoryview or str, not {name}"
        ))
    })
}

/// A sync iterator as a body stream: each `__next__` on the blocking pool, one at a time, only
/// when core asks for the next chunk.
fn iter_stream(
    handle: Handle,
    iter: Py<PyAny>,
    failure: BodyFailure,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
    stream::unfold(Some(iter), move |state| {
        let handle = handle.clone();
        let failure = failure.clone();
        async move {
            let iter = state?;
            let pulled = handle
                .spawn_blocking(move || {
                    let next = Python::attach(|py| {
                        let pulled = iter
                            .bind(py)
                            .cast::<PyIterator>()
                            .map_err(PyErr::from)
                            .and_then(|it| match it.clone().next() {
                                Some(item) => item.and_then(|i| chunk_or_error(&i)).map(Some),
                                None => Ok(None),
                            });
                        pulled.map_err(|e| failure.record(e))
                    });
                    (iter, next)
                })
                .await;
            match pulled {
                Ok((iter, Ok(Some(chunk)))) => Some((Ok(chunk), Some(iter))),
                Ok((_, Ok(None))) => None,
                Ok((_, Err(e))) => Some((Err(e), None)),
                Err(e) => Some((
                    Err(BodyError(format!("the request body iterator failed: {e}"))),
                    None,
                )),
            }
        }
    })
}

/// The result of one `__anext__`: a chunk, the end, or the exception it raised.
type Pulled = Result<Option<Bytes>, BodyError>;

/// An async iterator as a body stream: each `__anext__` scheduled on the caller's event loop
/// when core polls for the next chunk; dropping the stream cancels a pull in flight.
struct AsyncIterBody {
    aiter: Arc<Py<PyAny>>,
    bridge: Arc<Bridge>,
    failure: BodyFailure,
    pending: Option<oneshot::Receiver<Pulled>>,
    /// The asyncio task running the current `__anext__`, to cancel it on drop.
    task: Arc<Mutex<Option<Py<PyAny>>>>,
    done: bool,
}

impl Stream for AsyncIterBody {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let pending = this.pending.get_or_insert_with(|| {
            let (tx, rx) = oneshot::channel();
            let aiter = this.aiter.clone();
            let task = this.task.clone();
            let failure = this.failure.clone();
            this.bridge.post(Box::new(move |py| {
                start_anext(py, &aiter, &task, tx, failure)
            }));
            rx
        });
        let pulled = match Pin::new(pending).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(pulled) => pulled,
        };
        this.pending = None;
        match pulled {
            Ok(Ok(Some(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Ok(Ok(None)) => {
                this.done = true;
                Poll::Ready(None)
            }
            Ok(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Err(_) => {
                this.done = true;
                Poll::Ready(Some(Err(BodyError(
                    "the event loop that runs the request body's async iterator is gone".into(),
                ))))
            }
        }
    }
}

impl Drop for AsyncIterBody {
    fn drop(&mut self) {
        if self.pending.is_some() {
            let task = self.task.clone();
            self.bridge.post(Box::new(move |py| {
                let running = task.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(running) = running {
                    if let Err(e) = running.bind(py).call_method0(intern!(py, "cancel")) {
                        e.write_unraisable(py, None);
                    }
                }
            }));
        }
    }
}

static ENSURE_FUTURE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// On the loop's thread: starts `aiter.__anext__()` as a task whose completion answers `tx`.
fn start_anext(
    py: Python<'_>,
    aiter: &Py<PyAny>,
    task: &Arc<Mutex<Option<Py<PyAny>>>>,
    tx: oneshot::Sender<Pulled>,
    failure: BodyFailure,
) {
    let done = AnextDone {
        tx: Mutex::new(Some(tx)),
        task: task.clone(),
        failure,
    };
    let done = match Bound::new(py, done) {
        Ok(done) => done,
        // Dropping `tx` fails the body stream.
        Err(e) => return e.write_unraisable(py, None),
    };
    let started = (|| -> PyResult<()> {
        let awaitable = aiter.bind(py).call_method0(intern!(py, "__anext__"))?;
        let ensure_future = ENSURE_FUTURE.import(py, "asyncio", "ensure_future")?;
        let fut = ensure_future.call1((awaitable,))?;
        *task.lock().unwrap_or_else(|p| p.into_inner()) = Some(fut.clone().unbind());
        fut.call_method1(intern!(py, "add_done_callback"), (done.clone(),))?;
        Ok(())
    })();
    if let Err(e) = started {
        let done = done.get();
        done.answer(Err(done.failure.record(e)));
    }
}

/// The done-callback of an `__anext__` task: hands its outcome to the body stream.
#[pyclass(frozen, module = "quiver._quiver")]
struct AnextDone {
    tx: Mutex<Option<oneshot::Sender<Pulled>>>,
    task: Arc<Mutex<Option<Py<PyAny>>>>,
    failure: BodyFailure,
}

impl AnextDone {
    fn answer(&self, pulled: Pulled) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // The stream may be gone (request cancelled); nothing to tell then.
            let _ = tx.send(pulled);
        }
    }
}

#[pymethods]
impl AnextDone {
    /// Called by asyncio with the finished `__anext__` task.
    fn __call__(&self, fut: &Bound<'_, PyAny>) {
        let py = fut.py();
        self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        let pulled = (|| -> PyResult<Option<Bytes>> {
            if fut.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
                return Err(PyRuntimeError::new_err(
                    "the request body's __anext__ was cancelled",
                ));
            }
            let exc = fut.call_method0(intern!(py, "exception"))?;
            if !exc.is_none() {
                if exc.is_instance_of::<PyStopAsyncIteration>() {
                    return Ok(None);
                }
                return Err(PyErr::from_value(exc));
            }
            let item = fut.call_method0(intern!(py, "result"))?;
            chunk_or_error(&item).map(Some)
        })();
        self.answer(pulled.map_err(|e| self.failure.record(e)));
    }
}
