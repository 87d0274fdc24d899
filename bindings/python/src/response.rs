//! Responses handed to Python: [`RawResponse`] (read to its end) and [`ResponseStream`] (the
//! body pulled chunk by chunk). Headers and the body become Python objects only when asked for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use quiver_core::embed::{Prefetch, Taken};
use quiver_core::{
    Bytes, Error, HeaderMap, Redirect, Response, ResponseHead, StatusCode, Timings, Version,
};
use tokio::runtime::Handle;

use crate::bridge::{self, LoopBridge, Pending};
use crate::errors;
use crate::timings::PyTimings;
use crate::wait::{self, ForkGuard};

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

/// Header fields as a list of `(name, value)` bytes pairs, in order, duplicates kept, the values
/// exactly as received (for adapters whose library takes raw bytes, such as httpx).
pub(crate) fn header_bytes<'py>(py: Python<'py>, map: &HeaderMap) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in map {
        let pair = [
            PyBytes::new(py, name.as_str().as_bytes()),
            PyBytes::new(py, value.as_bytes()),
        ];
        list.append(PyTuple::new(py, pair)?)?;
    }
    Ok(list)
}

/// Where a response came from: the URL that answered, the redirects followed to reach it
/// (oldest first) and why a redirect it is was not followed.
#[derive(Clone, Default)]
pub(crate) struct Provenance {
    url: String,
    history: Vec<Redirect>,
    unfollowed: Option<String>,
}

impl Provenance {
    fn new(url: &str, history: &[Redirect], unfollowed: Option<&str>) -> Provenance {
        Provenance {
            url: url.to_owned(),
            history: history.to_vec(),
            unfollowed: unfollowed.map(str::to_owned),
        }
    }

    /// The redirects as responses with empty bodies, oldest first.
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for hop in &self.history {
            list.append(Py::new(py, RawResponse::redirect(hop))?)?;
        }
        Ok(list)
    }
}

/// A response read to its end.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct RawResponse {
    head: ResponseHead,
    body: Bytes,
    trailers: Option<HeaderMap>,
    from: Provenance,
    /// None for the redirects in a history.
    timings: Option<Timings>,
}

impl RawResponse {
    /// Wraps a core response.
    pub(crate) fn new(resp: Response) -> RawResponse {
        let head = resp.head().clone();
        let trailers = resp.trailers().cloned();
        let from = Provenance::new(resp.url(), resp.history(), resp.unfollowed_redirect());
        let timings = Some(resp.timings().clone());
        RawResponse {
            head,
            body: resp.into_body(),
            trailers,
            from,
            timings,
        }
    }

    /// A redirect that was followed, as a response with an empty body (its own history empty).
    fn redirect(hop: &Redirect) -> RawResponse {
        RawResponse {
            head: ResponseHead {
                status: hop.status,
                version: hop.version,
                headers: hop.headers.clone(),
            },
            body: Bytes::new(),
            trailers: None,
            from: Provenance {
                url: hop.url.clone(),
                ..Provenance::default()
            },
            timings: None,
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

    /// The headers as `(name, value)` bytes pairs, values as received.
    fn raw_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_bytes(py, &self.head.headers)
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

    /// The URL that answered (after redirects: the last one).
    #[getter]
    fn url(&self) -> &str {
        &self.from.url
    }

    /// The redirects followed to get here, oldest first, as responses with empty bodies.
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.from.history(py)
    }

    /// Why this redirect was returned rather than followed (a 307/308 whose streamed body
    /// could not be sent again); None otherwise.
    #[getter]
    fn unfollowed_redirect(&self) -> Option<&str> {
        self.from.unfollowed.as_deref()
    }

    /// How long each step took and which connection carried it; None for a redirect in a
    /// history.
    fn timings(&self) -> Option<PyTimings> {
        self.timings.clone().map(PyTimings::new)
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

/// A response whose body is read chunk by chunk; it holds its connection (or stream slot)
/// until the body ends or it is closed.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct ResponseStream {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    /// The body, read ahead; `None` once it ended, failed or was closed.
    body: Mutex<Option<Arc<Prefetch>>>,
    /// Set by `close()` (reads then fail) rather than by the end of the body.
    closed: AtomicBool,
    /// A read is in progress.
    reading: AtomicBool,
    trailers: Mutex<Option<HeaderMap>>,
    from: Provenance,
    /// Shares the cell core records the total in when the body ends.
    timings: Timings,
    handle: Handle,
    fork: ForkGuard,
}

/// Clears `reading` when a read ends, however it ends (a cancelled asyncio read included:
/// what it would have taken stays in the prefetch for the next read).
struct Reading<'a>(&'a AtomicBool);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl ResponseStream {
    /// Wraps a core streamed response; its body is read ahead on `handle`.
    pub(crate) fn new(
        resp: quiver_core::StreamResponse,
        handle: Handle,
        fork: ForkGuard,
    ) -> ResponseStream {
        // Core's `into_parts` drops the URL and the history: read them first.
        let from = Provenance::new(resp.url(), resp.history(), resp.unfollowed_redirect());
        // `into_parts` drops the timings too; a clone still sees the total once the body ends.
        let timings = resp.timings().clone();
        let (head, body) = resp.into_parts();
        // One read returns what arrived meanwhile, joined: fewer round trips through Python.
        let prefetch = Prefetch::start(body, &handle, Prefetch::DEFAULT_HIGH_WATER);
        ResponseStream {
            status: head.status,
            version: head.version,
            headers: head.headers,
            body: Mutex::new(Some(Arc::new(prefetch))),
            closed: AtomicBool::new(false),
            reading: AtomicBool::new(false),
            trailers: Mutex::new(None),
            from,
            timings,
            handle,
            fork,
        }
    }

    /// The body for a read: `Ok(None)` when it has ended.
    fn body(&self, py: Python<'_>) -> PyResult<Option<Arc<Prefetch>>> {
        self.fork.check(py)?;
        match self.held_body() {
            Some(body) => {
                if self.reading.swap(true, Ordering::AcqRel) {
                    return Err(PyRuntimeError::new_err(
                        "another read of this response is in progress",
                    ));
                }
                Ok(Some(body))
            }
            None if self.closed.load(Ordering::Acquire) => Err(PyRuntimeError::new_err(
                "the response is closed; read it inside its `stream()` block",
            )),
            None => Ok(None),
        }
    }

    /// The read-ahead body while the stream has one (not closed, not ended).
    fn held_body(&self) -> Option<Arc<Prefetch>> {
        self.body.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Ends an asyncio read with what it took (`None`: the stream closed meanwhile, which reads
    /// as the end): completes `fut` with bytes, `None` or the body's error.
    fn finish_read(&self, py: Python<'_>, fut: &Py<PyAny>, taken: Option<Taken>) {
        let out = {
            let _reading = Reading(&self.reading);
            taken.map_or(Ok(None), |taken| self.taken(taken))
        };
        let result = match out {
            Ok(Some(chunks)) => join(py, &chunks).map(|b| b.into_any().unbind()),
            Ok(None) => Ok(py.None()),
            Err(e) => Err(errors::to_py(py, &e)),
        };
        bridge::resolve(py, fut, result);
    }

    /// What a take means for Python: chunks, or the end (the body is let go), or the error.
    fn taken(&self, taken: Taken) -> Result<Option<Vec<Bytes>>, Error> {
        match taken {
            Taken::Data(chunks) => Ok(Some(chunks)),
            Taken::Empty => Ok(Some(Vec::new())),
            Taken::End(trailers) => {
                *self.trailers.lock().unwrap_or_else(|p| p.into_inner()) = trailers;
                self.body.lock().unwrap_or_else(|p| p.into_inner()).take();
                Ok(None)
            }
            Taken::Failed(e) => {
                self.body.lock().unwrap_or_else(|p| p.into_inner()).take();
                Err(e)
            }
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
        let trailers = self.trailers.lock().unwrap_or_else(|p| p.into_inner());
        trailers.as_ref().map(|t| header_list(py, t)).transpose()
    }

    /// The headers as `(name, value)` bytes pairs, values as received.
    fn raw_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_bytes(py, &self.headers)
    }

    /// The trailer fields as bytes pairs, once the body has ended (if it had any).
    fn raw_trailers<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let trailers = self.trailers.lock().unwrap_or_else(|p| p.into_inner());
        trailers.as_ref().map(|t| header_bytes(py, t)).transpose()
    }

    /// The URL that answered (after redirects: the last one).
    #[getter]
    fn url(&self) -> &str {
        &self.from.url
    }

    /// The redirects followed to get here, oldest first, as responses with empty bodies.
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.from.history(py)
    }

    /// Why this redirect was returned rather than followed; None otherwise.
    #[getter]
    fn unfollowed_redirect(&self) -> Option<&str> {
        self.from.unfollowed.as_deref()
    }

    /// How long each step took and which connection carried it (`total` once the body ended).
    fn timings(&self) -> Option<PyTimings> {
        Some(PyTimings::new(self.timings.clone()))
    }

    /// True once the body has ended or the stream was closed.
    #[getter]
    fn is_closed(&self) -> bool {
        self.body
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Blocks for the next chunks of the body (what arrived, joined); `None` at the end.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let Some(body) = self.body(py)? else {
            return Ok(None);
        };
        let _reading = Reading(&self.reading);
        // What is buffered already is taken with the GIL held: no release, no runtime wait.
        let taken = match body.try_take() {
            Taken::Empty => wait::block_on(py, &self.handle, body.take())?,
            taken => taken,
        };
        match self.taken(taken) {
            Ok(Some(chunks)) => join(py, &chunks).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(errors::to_py(py, &e)),
        }
    }

    /// Starts reading the next chunks; completes the asyncio future `fut` with `bytes` or `None`.
    fn read_async(
        slf: Py<Self>,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let this = slf.get();
        let Some(body) = this.body(py)? else {
            bridge::resolve(py, &fut, Ok(py.None()));
            return Ok(Pending::done());
        };
        // What is buffered already completes the future now: no task, no trip through the loop.
        let taken = body.try_take();
        if !matches!(taken, Taken::Empty) {
            this.finish_read(py, &fut, Some(taken));
            return Ok(Pending::done());
        }
        // Else the read-ahead calls back as data arrives, from the reading task: one post to
        // the loop, no task of its own. The take happens on the loop's thread, and only while
        // the future still wants it, so a cancelled read loses nothing.
        let shared = bridge.shared();
        let stream = slf.clone_ref(py);
        body.when_ready(move || {
            shared.post(Box::new(move |py| {
                if bridge::is_done(py, fut.bind(py)) {
                    return; // cancelled: `cancel()` ended the read, the data stays buffered
                }
                let this = stream.get();
                // No body: closed meanwhile, which ends the read as the end of the body.
                let taken = this.held_body().map(|body| body.try_take());
                this.finish_read(py, &fut, taken);
            }));
        });
        Ok(Pending::on_cancel(move || {
            let this = slf.get();
            if let Some(body) = this.held_body() {
                body.forget_when_ready();
            }
            this.reading.store(false, Ordering::Release);
        }))
    }

    /// Closes the stream: the rest of the body is discarded (an HTTP/1.1 connection that has not
    /// finished its body is closed, an HTTP/2 or HTTP/3 stream is reset).
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let body = self.body.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(body) = body {
            body.cancel();
        }
    }
}
