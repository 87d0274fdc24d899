//! Datagram channels for Python: a thin class over the shared [`Endpoint`].

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyList;
use quiver_core::DatagramChannel;
use tokio::runtime::Handle;

use crate::bridge::{LoopBridge, Pending};
use crate::endpoint::Endpoint;
use crate::wait::ForkGuard;

/// An open RFC 9297 datagram channel (extended CONNECT on an HTTP/3 connection).
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeChannel(Endpoint);

impl NativeChannel {
    /// Wraps an open channel; its waits run on `handle`.
    pub(crate) fn start(ch: DatagramChannel, handle: Handle, fork: ForkGuard) -> NativeChannel {
        let (head, sender, receiver) = ch.split();
        NativeChannel(Endpoint::new(
            head,
            sender,
            receiver,
            handle,
            fork,
            "the datagram channel",
        ))
    }
}

#[pymethods]
impl NativeChannel {
    /// The status code of the extended CONNECT.
    #[getter]
    fn status(&self) -> u16 {
        self.0.status()
    }

    /// `HTTP/3`.
    #[getter]
    fn http_version(&self) -> &'static str {
        self.0.http_version()
    }

    /// The response headers as `(name, value)` pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.0.headers(py)
    }

    /// The stream's trailers, once it has ended.
    fn trailers<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.0.trailers(py)
    }

    /// True once the channel's stream has ended.
    #[getter]
    fn is_ended(&self) -> bool {
        self.0.is_ended()
    }

    /// The largest datagram payload the path takes now, if datagrams are available.
    #[getter]
    fn max_datagram_size(&self) -> Option<usize> {
        self.0.max_payload()
    }

    /// Sends one datagram (unreliable). Never waits: a datagram the path cannot take now is
    /// dropped, as UDP would.
    fn send(&self, py: Python<'_>, payload: PyBackedBytes) -> PyResult<()> {
        self.0.send(py, &payload)
    }

    /// The next datagram; `None` once the stream has ended.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.0.recv(py, timeout)
    }

    /// The next piece of the stream's data; `None` at its end.
    #[pyo3(signature = (timeout = None))]
    fn recv_data(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.0.recv_data(py, timeout)
    }

    /// Ends our side of the stream; what the peer still sends can be received.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.0.close(py)
    }

    /// Like `recv`, completing the asyncio future `fut`.
    fn recv_async(&self, py: Python<'_>, bridge: &LoopBridge, fut: Py<PyAny>) -> PyResult<Pending> {
        self.0.recv_async(py, bridge, fut)
    }

    /// Like `recv_data`, completing the asyncio future `fut`.
    fn recv_data_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        self.0.recv_data_async(py, bridge, fut)
    }

    /// Like `close`, completing the asyncio future `fut`.
    fn close_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        self.0.close_async(py, bridge, fut)
    }

    /// Releases the channel now: core resets its stream if it has not ended.
    fn abort(&self) {
        self.0.abort();
    }
}
