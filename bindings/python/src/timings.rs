//! `quiver.Timings` (how long each step of a request took, and the connection that carried it)
//! and `quiver.Progress` (a request's upload and download so far), as core measures them.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use quiver_core::Progress as CoreProgress;

/// The timings of one response (`response.timings`), in seconds: `queued`, `dns`, `connect`,
/// `tls` (only when the request opened its connection), `ttfb`, `redirects`, `total` (None
/// until the body ended), and the connection: `connection_id`, `reused`, `protocol`, `stream`,
/// `alpn`, `resumed`, `remote`.
#[pyclass(frozen, name = "Timings", module = "quiver")]
pub struct PyTimings {
    inner: quiver_core::Timings,
}

impl PyTimings {
    /// Wraps core's timings (a clone shares the cell `total` is recorded in).
    pub(crate) fn new(inner: quiver_core::Timings) -> PyTimings {
        PyTimings { inner }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[pymethods]
impl PyTimings {
    /// Waiting for a connection or stream slot (of the last hop).
    #[getter]
    fn queued(&self) -> f64 {
        secs(self.inner.queued)
    }

    /// Name resolution, when the request opened its connection (None on a reused one).
    #[getter]
    fn dns(&self) -> Option<f64> {
        self.inner.dns.map(secs)
    }

    /// The transport's connect (TCP; HTTP/3: the QUIC handshake), when the request opened its
    /// connection.
    #[getter]
    fn connect(&self) -> Option<f64> {
        self.inner.connect.map(secs)
    }

    /// The TLS handshake over TCP, when the request opened its connection.
    #[getter]
    fn tls(&self) -> Option<f64> {
        self.inner.tls.map(secs)
    }

    /// From the start of the request (redirects included) to the response head.
    #[getter]
    fn ttfb(&self) -> f64 {
        secs(self.inner.ttfb)
    }

    /// Spent on redirects before the last hop started.
    #[getter]
    fn redirects(&self) -> f64 {
        secs(self.inner.redirects)
    }

    /// From the start of the request to the end of its body; None until the body ended.
    #[getter]
    fn total(&self) -> Option<f64> {
        self.inner.total().map(secs)
    }

    /// The id of the connection that carried the last hop (as in events).
    #[getter]
    fn connection_id(&self) -> u64 {
        self.inner.connection.id
    }

    /// True when that connection had carried requests before.
    #[getter]
    fn reused(&self) -> bool {
        self.inner.reused
    }

    /// `http1`, `http2` or `http3`.
    #[getter]
    fn protocol(&self) -> &'static str {
        self.inner.protocol.as_str()
    }

    /// The HTTP/2 or HTTP/3 stream id, when there is one.
    #[getter]
    fn stream(&self) -> Option<u64> {
        self.inner.stream
    }

    /// The protocol ALPN chose for the connection (`h2`, `http/1.1`, `h3`), if any.
    #[getter]
    fn alpn(&self) -> Option<&str> {
        self.inner.connection.alpn.as_deref()
    }

    /// True when the connection's TLS session was resumed.
    #[getter]
    fn resumed(&self) -> bool {
        self.inner.connection.resumed
    }

    /// The peer's `(host, port)`, when connected directly.
    #[getter]
    fn remote<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        crate::events::address(py, self.inner.connection.remote)
    }

    fn __repr__(&self) -> String {
        let opt = |d: Option<f64>| d.map_or_else(|| "None".to_owned(), |d| format!("{d:.6}"));
        format!(
            "<Timings queued={:.6} dns={} connect={} tls={} ttfb={:.6} redirects={:.6} total={} \
             connection_id={} reused={} protocol={}>",
            self.queued(),
            opt(self.dns()),
            opt(self.connect()),
            opt(self.tls()),
            self.ttfb(),
            self.redirects(),
            opt(self.total()),
            self.connection_id(),
            if self.reused() { "True" } else { "False" },
            self.protocol(),
        )
    }
}

/// How far one request's upload and download are (`progress=quiver.Progress()` on a request):
/// bytes so far and the totals when known, readable from any thread while the request runs.
#[pyclass(frozen, name = "Progress", module = "quiver")]
pub struct PyProgress {
    inner: Arc<CoreProgress>,
}

impl PyProgress {
    /// The core record, for a request builder.
    pub(crate) fn shared(&self) -> Arc<CoreProgress> {
        self.inner.clone()
    }
}

#[pymethods]
impl PyProgress {
    /// A fresh record: nothing moved, no totals.
    #[new]
    fn new() -> Self {
        PyProgress {
            inner: Arc::new(CoreProgress::new()),
        }
    }

    /// Request body bytes handed to the connection so far.
    #[getter]
    fn uploaded(&self) -> u64 {
        self.inner.uploaded()
    }

    /// The request body's length, when known.
    #[getter]
    fn upload_total(&self) -> Option<u64> {
        self.inner.upload_total()
    }

    /// Response body bytes received for the caller so far (decoded, when the body is).
    #[getter]
    fn downloaded(&self) -> u64 {
        self.inner.downloaded()
    }

    /// The response body's length, when the response announced it (None for a decoded body).
    #[getter]
    fn download_total(&self) -> Option<u64> {
        self.inner.download_total()
    }

    fn __repr__(&self) -> String {
        let total = |t: Option<u64>| t.map_or_else(|| "?".to_owned(), |t| t.to_string());
        format!(
            "<Progress uploaded={}/{} downloaded={}/{}>",
            self.uploaded(),
            total(self.upload_total()),
            self.downloaded(),
            total(self.download_total()),
        )
    }
}
