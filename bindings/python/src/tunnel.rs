//! MASQUE CONNECT-UDP tunnels for Python. Core's [`UdpTunnel`] sends through `&self` and
//! receives through `&mut self`; a task owns it ([`Mailbox`]) and Python's sends, receives and
//! `close()` are commands to that task, so one thread (or task) can send while another waits in
//! `recv()`.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyList;
use quiver_core::{Bytes, Error, ResponseHead, UdpTunnel};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::bridge::{LoopBridge, Pending};
use crate::mailbox::{to_bytes, Mailbox, Receives, Reply};
use crate::response::{header_list, version_str};
use crate::wait::ForkGuard;

enum Command {
    Send(Bytes, Reply<()>),
    Recv(Reply<Option<Bytes>>),
    Close(Reply<()>),
}

/// What Python reads without a round trip to the task.
struct Shared {
    ended: bool,
    max_payload: usize,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

enum Event {
    Command(Option<Command>),
    Payload(Result<Option<Bytes>, Error>),
}

/// Owns the tunnel until Python closes its handle (then core resets the tunnel's stream).
async fn run(
    mut tunnel: UdpTunnel,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Mutex<Shared>>,
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
            Event::Command(Some(Command::Send(payload, reply))) => {
                let _ = reply.send(tunnel.send(&payload));
            }
            Event::Command(Some(Command::Recv(reply))) => payloads.want(reply),
            Event::Command(Some(Command::Close(reply))) => {
                let _ = reply.send(tunnel.close().await);
            }
            Event::Payload(r) => {
                // Before the answer goes out: a caller told "ended" must see `is_ended` true.
                if matches!(r, Ok(None) | Err(_)) {
                    lock(&shared).ended = true;
                }
                payloads.deliver(r);
            }
        }
        lock(&shared).max_payload = tunnel.max_payload();
    }
}

/// An open UDP tunnel to one target through a MASQUE proxy.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeUdpTunnel {
    head: ResponseHead,
    target: String,
    mailbox: Mailbox<Command>,
    shared: Arc<Mutex<Shared>>,
}

impl NativeUdpTunnel {
    /// Starts the task that owns `tunnel` on `handle`.
    pub(crate) fn start(tunnel: UdpTunnel, handle: Handle, fork: ForkGuard) -> NativeUdpTunnel {
        let head = tunnel.head().clone();
        let target = tunnel.target().to_owned();
        let shared = Arc::new(Mutex::new(Shared {
            ended: false,
            max_payload: tunnel.max_payload(),
        }));
        let owned = shared.clone();
        NativeUdpTunnel {
            head,
            target,
            mailbox: Mailbox::start(handle, fork, "the UDP tunnel", |commands| {
                run(tunnel, commands, owned)
            }),
            shared,
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

    /// The largest UDP payload the tunnel carries (as last seen).
    #[getter]
    fn max_payload(&self) -> usize {
        lock(&self.shared).max_payload
    }

    /// True once the tunnel has ended (a receive returned `None` or failed).
    #[getter]
    fn is_ended(&self) -> bool {
        lock(&self.shared).ended
    }

    /// Sends one UDP payload to the target (unreliable, like UDP).
    fn send(&self, py: Python<'_>, payload: PyBackedBytes) -> PyResult<()> {
        let rx = self
            .mailbox
            .command(py, |r| Command::Send(Bytes::from_owner(payload), r))?;
        self.mailbox.wait(py, rx, None)
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

    /// Like `send`, completing the asyncio future `fut`.
    fn send_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
        payload: PyBackedBytes,
    ) -> PyResult<Pending> {
        let rx = self
            .mailbox
            .command(py, |r| Command::Send(Bytes::from_owner(payload), r))?;
        Ok(self
            .mailbox
            .answer_async(bridge, fut, rx, |py, ()| py.None()))
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
        self.mailbox.close();
    }
}
