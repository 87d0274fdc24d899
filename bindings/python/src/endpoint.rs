//! What datagram channels and UDP tunnels share in Python: core's send half (sends go straight
//! to core) and receive half (cancel-safe receives with `&self`, so a receive given up on by a
//! timeout or a cancelled task loses nothing), the response head, and the waits in both the
//! blocking and the asyncio shape.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pyo3::exceptions::{PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use quiver_core::{Bytes, DatagramReceiver, DatagramSender, Error, ErrorKind, ResponseHead};
use tokio::runtime::Handle;

use crate::bridge::{self, LoopBridge, Pending};
use crate::errors;
use crate::response::{header_list, version_str};
use crate::wait::{self, ForkGuard};

/// The halves of an open channel or tunnel; both are dropped by `abort()`.
struct Halves {
    sender: DatagramSender,
    receiver: Arc<DatagramReceiver>,
}

/// An open channel or tunnel as Python sees it.
pub(crate) struct Endpoint {
    head: ResponseHead,
    halves: Mutex<Option<Halves>>,
    handle: Handle,
    fork: ForkGuard,
    /// What it is, for "… is closed" errors (`the UDP tunnel`).
    what: &'static str,
}

/// `bytes`, or `None`.
fn to_bytes(py: Python<'_>, value: Option<Bytes>) -> Py<PyAny> {
    match value {
        Some(b) => PyBytes::new(py, &b).into_any().unbind(),
        None => py.None(),
    }
}

impl Endpoint {
    pub(crate) fn new(
        head: ResponseHead,
        sender: DatagramSender,
        receiver: DatagramReceiver,
        handle: Handle,
        fork: ForkGuard,
        what: &'static str,
    ) -> Endpoint {
        Endpoint {
            head,
            halves: Mutex::new(Some(Halves {
                sender,
                receiver: Arc::new(receiver),
            })),
            handle,
            fork,
            what,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Halves>> {
        self.halves.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed(&self, py: Python<'_>) -> PyErr {
        errors::new_py(
            py,
            ErrorKind::DatagramError,
            format!("{} is closed", self.what),
        )
    }

    fn sender(&self, py: Python<'_>) -> PyResult<DatagramSender> {
        self.fork.check(py)?;
        let halves = self.lock();
        halves
            .as_ref()
            .map(|h| h.sender.clone())
            .ok_or_else(|| self.closed(py))
    }

    fn receiver(&self, py: Python<'_>) -> PyResult<Arc<DatagramReceiver>> {
        self.fork.check(py)?;
        let halves = self.lock();
        halves
            .as_ref()
            .map(|h| h.receiver.clone())
            .ok_or_else(|| self.closed(py))
    }

    /// The status code of the CONNECT's answer.
    pub(crate) fn status(&self) -> u16 {
        self.head.status.as_u16()
    }

    /// `HTTP/3` or `HTTP/2`.
    pub(crate) fn http_version(&self) -> &'static str {
        version_str(self.head.version)
    }

    /// The response headers as `(name, value)` pairs.
    pub(crate) fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_list(py, &self.head.headers)
    }

    /// The stream's trailers, once received.
    pub(crate) fn trailers<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let trailers = self.lock().as_ref().and_then(|h| h.receiver.trailers());
        trailers.map(|t| header_list(py, &t)).transpose()
    }

    /// True once the stream has ended (or the endpoint was released).
    pub(crate) fn is_ended(&self) -> bool {
        self.lock().as_ref().is_none_or(|h| h.receiver.is_ended())
    }

    /// The largest payload the path takes now (`None` once released or without datagrams).
    pub(crate) fn max_payload(&self) -> Option<usize> {
        self.lock().as_ref().and_then(|h| h.sender.max_payload())
    }

    /// Sends one payload (unreliable); never waits.
    pub(crate) fn send(&self, py: Python<'_>, payload: &[u8]) -> PyResult<()> {
        let sender = self.sender(py)?;
        py.detach(|| sender.send(payload))
            .map_err(|e| errors::to_py(py, &e))
    }

    /// Blocks (the GIL released) for `fut`; `timeout` in seconds raises the builtin
    /// `TimeoutError` (the receive given up loses nothing: what arrives goes to the next).
    fn wait<T: Send>(
        &self,
        py: Python<'_>,
        fut: impl Future<Output = Result<T, Error>> + Send,
        timeout: Option<f64>,
    ) -> PyResult<T> {
        let answer = match timeout {
            None => wait::block_on(py, &self.handle, fut)?,
            Some(secs) => {
                let limit = Duration::try_from_secs_f64(secs).map_err(|_| {
                    PyValueError::new_err("timeout must be a non-negative number of seconds")
                })?;
                match wait::block_on(py, &self.handle, async move {
                    tokio::time::timeout(limit, fut).await
                })? {
                    Ok(answer) => answer,
                    Err(_) => {
                        return Err(PyTimeoutError::new_err(format!(
                            "nothing arrived within {secs} s"
                        )))
                    }
                }
            }
        };
        answer.map_err(|e| errors::to_py(py, &e))
    }

    /// The next datagram; `None` once the stream has ended.
    pub(crate) fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let receiver = self.receiver(py)?;
        let value = self.wait(py, async move { receiver.recv().await }, timeout)?;
        Ok(to_bytes(py, value))
    }

    /// The next piece of the stream's data; `None` at its end.
    pub(crate) fn recv_data(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let receiver = self.receiver(py)?;
        let value = self.wait(py, async move { receiver.recv_data().await }, timeout)?;
        Ok(to_bytes(py, value))
    }

    /// Ends our side of the stream; what the peer still sends can be received.
    pub(crate) fn close(&self, py: Python<'_>) -> PyResult<()> {
        let sender = self.sender(py)?;
        self.wait(py, async move { sender.close().await }, None)
    }

    /// Like `recv`, completing the asyncio future `fut`; cancelling it loses nothing.
    pub(crate) fn recv_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let receiver = self.receiver(py)?;
        Ok(self.answer(bridge, fut, async move { receiver.recv().await }))
    }

    /// Like `recv_data`, completing the asyncio future `fut`.
    pub(crate) fn recv_data_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let receiver = self.receiver(py)?;
        Ok(self.answer(bridge, fut, async move { receiver.recv_data().await }))
    }

    /// Like `close`, completing the asyncio future `fut`.
    pub(crate) fn close_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let sender = self.sender(py)?;
        Ok(bridge::spawn(
            &self.handle,
            bridge.shared(),
            fut,
            async move { sender.close().await },
            |py, r| r.map(|()| py.None()).map_err(|e| errors::to_py(py, &e)),
        ))
    }

    fn answer(
        &self,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
        work: impl Future<Output = Result<Option<Bytes>, Error>> + Send + 'static,
    ) -> Pending {
        bridge::spawn(&self.handle, bridge.shared(), fut, work, |py, r| {
            r.map(|v| to_bytes(py, v))
                .map_err(|e| errors::to_py(py, &e))
        })
    }

    /// Releases both halves now: core resets the stream if it has not ended.
    pub(crate) fn abort(&self) {
        self.lock().take();
    }
}
