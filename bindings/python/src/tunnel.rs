//! MASQUE CONNECT-UDP tunnels for Python. Core's [`UdpTunnel`] receives through `&mut self`,
//! so a task owns it ([`Mailbox`]) and Python's receives and `close()` are commands to that
//! task; sends go straight through the tunnel's [`UdpTunnelSender`], without a round trip, so
//! one thread (or task) can send while another waits in `recv()`.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyList;
use quiver_core::{Bytes, Error, ResponseHead, UdpTunnel, UdpTunnelSender};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::bridge::{LoopBridge, Pending};
use crate::errors;
use crate::mailbox::{to_bytes, Mailbox, Receives, Reply, Sends};
use crate::response::{header_list, version_str};
use crate::wait::ForkGuard;

enum Command {
    Recv(Reply<Option<Bytes>>),
    Close(Reply<()>),
}

enum Event {
    Command(Option<Command>),
    Payload(Result<Option<Bytes>, Error>),
}

/// Owns the tunnel until Python closes its handle (then core resets the tunnel's stream).
async fn run(
    mut tunnel: UdpTunnel,
    mut commands: mpsc::UnboundedReceiver<Command>,
    ended: Arc<AtomicBool>,
) {
    let mut payloads = Receives::default();
    loop {
        let want = payloads.waiting();
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(c) = commands.poll_recv(cx) {
                return Poll::Ready(Event::Command(c));
            }
            // `recv` keeps what it has read in the tunnel (a partial capsule included), so
            // dropping it after one poll loses nothing.
            if want {
                if let Poll::Ready(r) = pin!(tunnel.recv()).poll(cx) {
                    return Poll::Ready(Event::Payload(r));
                }
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Command(None) => return,
            Event::Command(Some(Command::Recv(reply))) => payloads.want(reply),
            Event::Command(Some(Command::Close(reply))) => {
                let _ = reply.send(tunnel.close().await);
            }
            Event::Payload(r) => {
                // Before the answer goes out: a caller told "ended" must see `is_ended` true.
                if matches!(r, Ok(None) | Err(_)) {
                    ended.store(true, Ordering::Release);
                }
                payloads.deliver(r);
            }
        }
    }
}

/// An open UDP tunnel to one target through a MASQUE proxy.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeUdpTunnel {
    head: ResponseHead,
    target: String,
    mailbox: Mailbox<Command>,
    sender: Sends<UdpTunnelSender>,
    /// Set (before the answer goes out) once a receive saw the end or failed.
    ended: Arc<AtomicBool>,
}

impl NativeUdpTunnel {
    /// Starts the task that owns `tunnel` on `handle`.
    pub(crate) fn start(tunnel: UdpTunnel, handle: Handle, fork: ForkGuard) -> NativeUdpTunnel {
        let head = tunnel.head().clone();
        let target = tunnel.target().to_owned();
        let sender = Sends::new(tunnel.sender());
        let ended = Arc::new(AtomicBool::new(false));
        let owned = ended.clone();
        NativeUdpTunnel {
            head,
            target,
            mailbox: Mailbox::start(handle, fork, "the UDP tunnel", |commands| {
                run(tunnel, commands, owned)
            }),
            sender,
            ended,
        }
    }
}

#[pymethods]
impl NativeUdpTunnel {
    /// The status code of the proxy's answer to the CONNECT-UDP.
    #[getter]
    fn status(&self) -> u16 {
        self.head.status.as_u16()
    }

    /// `HTTP/3` or `HTTP/2`: how the tunnel reaches the proxy.
    #[getter]
    fn http_version(&self) -> &'static str {
        version_str(self.head.version)
    }

    /// The proxy's response headers as `(name, value)` pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_list(py, &self.head.headers)
    }

    /// `host:port` of the target.
    #[getter]
    fn target(&self) -> &str {
        &self.target
    }

    /// The largest UDP payload the tunnel carries now (0 once released).
    #[getter]
    fn max_payload(&self) -> usize {
        self.sender.with(UdpTunnelSender::max_payload).unwrap_or(0)
    }

    /// True once the tunnel has ended (a receive returned `None` or failed).
    #[getter]
    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Sends one UDP payload to the target (unreliable, like UDP).
    fn send(&self, py: Python<'_>, payload: PyBackedBytes) -> PyResult<()> {
        let sender = self.sender.get(py, &self.mailbox)?;
        py.detach(|| sender.send(&payload))
            .map_err(|e| errors::to_py(py, &e))
    }

    /// The next UDP payload from the target; `None` once the tunnel has ended.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let rx = self.mailbox.command(py, Command::Recv)?;
        let value = self.mailbox.wait(py, rx, timeout)?;
        Ok(to_bytes(py, value))
    }

    /// Ends our side of the tunnel; what the target still sends can be received.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let rx = self.mailbox.command(py, Command::Close)?;
        self.mailbox.wait(py, rx, None)
    }

    /// Like `recv`, completing the asyncio future `fut`.
    fn recv_async(&self, py: Python<'_>, bridge: &LoopBridge, fut: Py<PyAny>) -> PyResult<Pending> {
        let rx = self.mailbox.command(py, Command::Recv)?;
        Ok(self.mailbox.answer_async(bridge, fut, rx, to_bytes))
    }

    /// Like `close`, completing the asyncio future `fut`.
    fn close_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let rx = self.mailbox.command(py, Command::Close)?;
        Ok(self
            .mailbox
            .answer_async(bridge, fut, rx, |py, ()| py.None()))
    }

    /// Releases the tunnel now: core resets its stream.
    fn abort(&self) {
        self.sender.release();
        self.mailbox.close();
    }
}
