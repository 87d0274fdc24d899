//! MASQUE CONNECT-UDP tunnels for Python: a thin class over the shared [`Endpoint`].

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyList;
use quiver_core::UdpTunnel;
use tokio::runtime::Handle;

use crate::bridge::{LoopBridge, Pending};
use crate::endpoint::Endpoint;
use crate::wait::ForkGuard;

/// An open UDP tunnel to one target through a MASQUE proxy.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeUdpTunnel {
    endpoint: Endpoint,
    target: String,
}

impl NativeUdpTunnel {
    /// Wraps an open tunnel; its waits run on `handle`.
    pub(crate) fn start(tunnel: UdpTunnel, handle: Handle, fork: ForkGuard) -> NativeUdpTunnel {
        let target = tunnel.target().to_owned();
        let (head, sender, receiver) = tunnel.split();
        NativeUdpTunnel {
            endpoint: Endpoint::new(head, sender, receiver, handle, fork, "the UDP tunnel"),
            target,
        }
    }
}

#[pymethods]
impl NativeUdpTunnel {
    /// The status code of the proxy's answer to the CONNECT-UDP.
    #[getter]
    fn status(&self) -> u16 {
        self.endpoint.status()
    }

    /// `HTTP/3` or `HTTP/2`: how the tunnel reaches the proxy.
    #[getter]
    fn http_version(&self) -> &'static str {
        self.endpoint.http_version()
    }

    /// The proxy's response headers as `(name, value)` pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.endpoint.headers(py)
    }

    /// `host:port` of the target.
    #[getter]
    fn target(&self) -> &str {
        &self.target
    }

    /// The largest UDP payload the tunnel carries now (0 once released).
    #[getter]
    fn max_payload(&self) -> usize {
        self.endpoint.max_payload().unwrap_or(0)
    }

    /// True once the tunnel has ended.
    #[getter]
    fn is_ended(&self) -> bool {
        self.endpoint.is_ended()
    }

    /// Sends one UDP payload to the target (unreliable, like UDP).
    fn send(&self, py: Python<'_>, payload: PyBackedBytes) -> PyResult<()> {
        self.endpoint.send(py, &payload)
    }

    /// The next UDP payload from the target; `None` once the tunnel has ended.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.endpoint.recv(py, timeout)
    }

    /// Ends our side of the tunnel; what the target still sends can be received.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.endpoint.close(py)
    }

    /// Like `recv`, completing the asyncio future `fut`.
    fn recv_async(&self, py: Python<'_>, bridge: &LoopBridge, fut: Py<PyAny>) -> PyResult<Pending> {
        self.endpoint.recv_async(py, bridge, fut)
    }

    /// Like `close`, completing the asyncio future `fut`.
    fn close_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        self.endpoint.close_async(py, bridge, fut)
    }

    /// Releases the tunnel now: core resets its stream.
    fn abort(&self) {
        self.endpoint.abort();
    }
}
