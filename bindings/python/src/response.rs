//! Responses handed to Python: [`RawResponse`] (read to its end) and [`ResponseStream`] (the
//! body pulled chunk by chunk). Headers and the body become Python objects only when asked for.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use quiver_core::{
    Bytes, Error, HeaderMap, Response, ResponseBody, ResponseHead, StatusCode, Version,
};
use tokio::runtime::Handle;

use crate::bridge::{self, LoopBridge, Pending};
use crate::errors;
use crate::wait::{self, ForkGuard};

/// Most bytes one read of a stream returns: chunks already received are joined up to this, so a
/// fast body costs fewer round trips through Python.
const READ_LIMIT: usize = 256 * 1024;

/// The HTTP version as Python shows it (`HTTP/1.1`, `HTTP/2`, `HTTP/3`).
pub(crate) fn version_str(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Header fields as a list of `(name, value)` str pairs, in order, duplicates kept. Values that
/// are not UTF-8 are decoded as Latin-1.
pub(crate) fn header_list<'py>(py: Python<'py>, map: &HeaderMap) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in map {
        let value = match value.to_str() {
            Ok(v) => PyString::new(py, v),
            Err(_) => {
                let latin1: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
                PyString::new(py, &latin1)
            }
        };
        list.append(PyTuple::new(py, [PyString::new(py, name.as_str()), value])?)?;
    }
    Ok(list)
}

/// A response read to its end.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct RawResponse {
    head: ResponseHead,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl RawResponse {
    /// Wraps a core response.
    pub(crate) fn new(resp: Response) -> RawResponse {
        let head = resp.head().clone();
        let trailers = resp.trailers().cloned();
        RawResponse {
            head,
            body: resp.into_body(),
            trailers,
        }
    }
}

#[pymethods]
impl RawResponse {
    /// The status code.
    #[getter]
    fn status(&self) -> u16 {
        self.head.status.as_u16()
    }

    /// `HTTP/1.1`, `HTTP/2` or `HTTP/3`.
    #[getter]
    fn http_version(&self) -> &'static str {
        version_str(self.head.version)
    }

    /// The headers as `(name, value)` pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_list(py, &self.head.headers)
    }

    /// The body (a new `bytes` object on every call).
    fn content<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    /// The trailer fields, if the response had any.
    fn trailers<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.trailers
            .as_ref()
            .map(|t| header_list(py, t))
            .transpose()
    }
}

/// What a stream's body is doing; the body leaves the slot while a read is in flight, so a
/// waiting reader never holds a lock.
#[derive(Default)]
struct Slot {
    body: Option<ResponseBody>,
    reading: bool,
    closed: bool,
    /// An error that arrived after data a read already returned: raised by the next read.
    error: Option<Error>,
    trailers: Option<HeaderMap>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one read produced.
struct Read {
    chunks: Vec<Bytes>,
    ended: bool,
    error: Option<Error>,
}

/// Reads the next chunk and whatever else has already arrived, up to [`READ_LIMIT`].
async fn read_some(body: &mut ResponseBody) -> Read {
    let mut read = Read {
        chunks: Vec::new(),
        ended: false,
        error: None,
    };
    let mut total = 0;
    std::future::poll_fn(|cx| loop {
        match body.poll_chunk(cx) {
            Poll::Ready(Ok(Some(chunk))) => {
                total += chunk.len();
                read.chunks.push(chunk);
                if total >= READ_LIMIT {
                    return Poll::Ready(());
                }
            }
            Poll::Ready(Ok(None)) => {
                read.ended = true;
                return Poll::Ready(());
            }
            Poll::Ready(Err(e)) => {
                read.error = Some(e);
                return Poll::Ready(());
            }
            Poll::Pending if read.chunks.is_empty() => return Poll::Pending,
            Poll::Pending => return Poll::Ready(()),
        }
    })
    .await;
    read
}

/// Gives the body back after a read (or drops it when the read ended it or `close()` came in
/// meanwhile), and turns the read into chunks or an error.
fn finish_read(
    slot: &Mutex<Slot>,
    body: ResponseBody,
    read: Read,
) -> Result<Option<Vec<Bytes>>, Error> {
    let mut s = lock(slot);
    s.reading = false;
    if read.ended {
        s.trailers = body.trailers().cloned();
    } else if read.error.is_none() && !s.closed {
        s.body = Some(body);
    }
    match read.error {
        Some(e) if read.chunks.is_empty() => Err(e),
        Some(e) => {
            s.error = Some(e);
            Ok(Some(read.chunks))
        }
        None if read.chunks.is_empty() => Ok(None),
        None => Ok(Some(read.chunks)),
    }
}

/// Joins chunks into one `bytes` object (one copy).
fn join<'py>(py: Python<'py>, chunks: &[Bytes]) -> PyResult<Bound<'py, PyBytes>> {
    if let [one] = chunks {
        return Ok(PyBytes::new(py, one));
    }
    let total = chunks.iter().map(Bytes::len).sum();
    PyBytes::new_with(py, total, |buf| {
        let mut at = 0;
        for c in chunks {
            buf[at..at + c.len()].copy_from_slice(c);
            at += c.len();
        }
        Ok(())
    })
}

/// Puts the stream back into a consistent state if a read's task is dropped (cancelled)
/// before it returned the body: the body went with the task, so the stream is closed.
struct ReadGuard {
    slot: Arc<Mutex<Slot>>,
    armed: bool,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        if self.armed {
            let mut s = lock(&self.slot);
            s.reading = false;
            s.closed = true;
        }
    }
}

/// A response whose body is read chunk by chunk; it holds its connection (or stream slot)
/// until the body ends or it is closed.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct ResponseStream {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    slot: Arc<Mutex<Slot>>,
    handle: Handle,
    fork: ForkGuard,
}

impl ResponseStream {
    /// Wraps a core streamed response; reads run on `handle`.
    pub(crate) fn new(
        resp: quiver_core::StreamResponse,
        handle: Handle,
        fork: ForkGuard,
    ) -> ResponseStream {
        let (head, body) = resp.into_parts();
        let slot = Slot {
            body: Some(body),
            ..Slot::default()
        };
        ResponseStream {
            status: head.status,
            version: head.version,
            headers: head.headers,
            slot: Arc::new(Mutex::new(slot)),
            handle,
            fork,
        }
    }

    /// Takes the body out for a read: `Ok(None)` when the body has ended.
    fn take(&self, py: Python<'_>) -> PyResult<Option<ResponseBody>> {
        self.fork.check(py)?;
        let mut s = lock(&self.slot);
        if let Some(e) = s.error.take() {
            return Err(errors::to_py(py, &e));
        }
        if s.reading {
            return Err(PyRuntimeError::new_err(
                "another read of this response is in progress",
            ));
        }
        match s.body.take() {
            Some(body) => {
                s.reading = true;
                Ok(Some(body))
            }
            None if s.closed => Err(PyRuntimeError::new_err(
                "the response is closed; read it inside its `stream()` block",
            )),
            None => Ok(None),
        }
    }
}

#[pymethods]
impl ResponseStream {
    /// The status code.
    #[getter]
    fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// `HTTP/1.1`, `HTTP/2` or `HTTP/3`.
    #[getter]
    fn http_version(&self) -> &'static str {
        version_str(self.version)
    }

    /// The headers as `(name, value)` pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_list(py, &self.headers)
    }

    /// The trailer fields, once the body has ended (if it had any).
    fn trailers<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let s = lock(&self.slot);
        s.trailers.as_ref().map(|t| header_list(py, t)).transpose()
    }

    /// True once the body has ended or the stream was closed.
    #[getter]
    fn is_closed(&self) -> bool {
        let s = lock(&self.slot);
        s.body.is_none() && !s.reading
    }

    /// Blocks for the next chunks of the body (joined, at most 256 KiB); `None` at the end.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let Some(mut body) = self.take(py)? else {
            return Ok(None);
        };
        let mut guard = ReadGuard {
            slot: self.slot.clone(),
            armed: true,
        };
        let read = wait::block_on(py, &self.handle, read_some(&mut body))?;
        guard.armed = false;
        match finish_read(&self.slot, body, read) {
            Ok(Some(chunks)) => join(py, &chunks).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(errors::to_py(py, &e)),
        }
    }

    /// Starts reading the next chunks; completes the asyncio future `fut` with `bytes` or `None`.
    fn read_async(&self, py: Python<'_>, bridge: &LoopBridge, fut: Py<PyAny>) -> PyResult<Pending> {
        let Some(mut body) = self.take(py)? else {
            bridge::resolve(py, &fut, Ok(py.None()));
            return Ok(Pending::done());
        };
        let slot = self.slot.clone();
        let work = async move {
            let mut guard = ReadGuard {
                slot: slot.clone(),
                armed: true,
            };
            let read = read_some(&mut body).await;
            guard.armed = false;
            finish_read(&slot, body, read)
        };
        Ok(bridge::spawn(
            &self.handle,
            bridge.shared(),
            fut,
            work,
            |py, out| match out {
                Ok(Some(chunks)) => Ok(join(py, &chunks)?.into_any().unbind()),
                Ok(None) => Ok(py.None()),
                Err(e) => Err(errors::to_py(py, &e)),
            },
        ))
    }

    /// Closes the stream: the rest of the body is discarded (an HTTP/1.1 connection that has not
    /// finished its body is closed, an HTTP/2 or HTTP/3 stream is reset).
    fn close(&self) {
        let body = {
            let mut s = lock(&self.slot);
            s.closed = true;
            s.body.take()
        };
        drop(body);
    }
}
