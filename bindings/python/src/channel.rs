//! Datagram channels for Python. Core's [`DatagramChannel`] receives through `&mut self`, so a
//! task owns it ([`Mailbox`]) and Python's receives and `close()` are commands to that task;
//! sends go straight through the channel's [`DatagramSender`], without a round trip.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyList;
use quiver_core::{Bytes, DatagramChannel, DatagramSender, Error, HeaderMap, ResponseHead};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::bridge::{LoopBridge, Pending};
use crate::errors;
use crate::mailbox::{to_bytes, Mailbox, Receives, Reply, Sends};
use crate::response::{header_list, version_str};
use crate::wait::ForkGuard;

enum Command {
    Recv(Reply<Option<Bytes>>),
    RecvData(Reply<Option<Bytes>>),
    Close(Reply<()>),
}

/// What Python reads without a round trip to the task.
#[derive(Default)]
struct Shared {
    ended: bool,
    trailers: Option<HeaderMap>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

enum Event {
    Command(Option<Command>),
    Datagram(Result<Option<Bytes>, Error>),
    Data(Result<Option<Bytes>, Error>),
}

/// Owns the channel until Python closes its handle (then core resets the stream).
async fn run(
    mut ch: DatagramChannel,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut datagrams = Receives::default();
    let mut data = Receives::default();
    loop {
        let want_datagram = datagrams.waiting();
        let want_data = data.waiting();
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(c) = commands.poll_recv(cx) {
                return Poll::Ready(Event::Command(c));
            }
            // `recv` and `recv_data` only await core's event queue, so dropping them after one
            // poll loses nothing; both register this task's waker.
            if want_datagram {
                if let Poll::Ready(r) = pin!(ch.recv()).poll(cx) {
                    return Poll::Ready(Event::Datagram(r));
                }
            }
            if want_data {
                if let Poll::Ready(r) = pin!(ch.recv_data()).poll(cx) {
                    return Poll::Ready(Event::Data(r));
                }
            }
            Poll::Pending
        })
        .await;
        // Before any answer goes out: a caller told "ended" must see `is_ended` true.
        publish(&ch, &shared);
        match event {
            Event::Command(None) => return,
            Event::Command(Some(Command::Recv(reply))) => datagrams.want(reply),
            Event::Command(Some(Command::RecvData(reply))) => data.want(reply),
            Event::Command(Some(Command::Close(reply))) => {
                let _ = reply.send(ch.close().await);
            }
            Event::Datagram(r) => datagrams.deliver(r),
            Event::Data(r) => data.deliver(r),
        }
        publish(&ch, &shared);
    }
}

/// Copies what Python reads without a round trip.
fn publish(ch: &DatagramChannel, shared: &Mutex<Shared>) {
    let mut s = lock(shared);
    s.ended = ch.is_ended();
    if s.trailers.is_none() {
        s.trailers = ch.trailers().cloned();
    }
}

/// An open RFC 9297 datagram channel (extended CONNECT on an HTTP/3 connection).
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeChannel {
    head: ResponseHead,
    mailbox: Mailbox<Command>,
    sender: Sends<DatagramSender>,
    shared: Arc<Mutex<Shared>>,
}

impl NativeChannel {
    /// Starts the task that owns `ch` on `handle`.
    pub(crate) fn start(ch: DatagramChannel, handle: Handle, fork: ForkGuard) -> NativeChannel {
        let head = ch.head().clone();
        let sender = ch.sender();
        let shared = Arc::new(Mutex::new(Shared {
            ended: ch.is_ended(),
            trailers: None,
        }));
        let owned = shared.clone();
        NativeChannel {
            head,
            mailbox: Mailbox::start(handle, fork, "the datagram channel", |commands| {
                run(ch, commands, owned)
            }),
            sender: Sends::new(sender),
            shared,
        }
    }
}

#[pymethods]
impl NativeChannel {
    /// The status code of the extended CONNECT.
    #[getter]
    fn status(&self) -> u16 {
        self.head.status.as_u16()
    }

    /// `HTTP/3`.
    #[getter]
    fn http_version(&self) -> &'static str {
        version_str(self.head.version)
    }

    /// The response headers as `(name, value)` pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_list(py, &self.head.headers)
    }

    /// The stream's trailers, once it has ended.
    fn trailers<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        lock(&self.shared)
            .trailers
            .as_ref()
            .map(|t| header_list(py, t))
            .transpose()
    }

    /// True once the channel's stream has ended.
    #[getter]
    fn is_ended(&self) -> bool {
        lock(&self.shared).ended
    }

    /// The largest datagram payload the path takes now, if datagrams are available.
    #[getter]
    fn max_datagram_size(&self) -> Option<usize> {
        self.sender
            .with(DatagramSender::max_datagram_size)
            .flatten()
    }

    /// Sends one datagram (unreliable). Never waits: a datagram the path cannot take now is
    /// dropped, as UDP would.
    fn send(&self, py: Python<'_>, payload: PyBackedBytes) -> PyResult<()> {
        let sender = self.sender.get(py, &self.mailbox)?;
        let payload = Bytes::from_owner(payload);
        py.detach(|| sender.send(payload))
            .map_err(|e| errors::to_py(py, &e))
    }

    /// The next datagram; `None` once the stream has ended.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let rx = self.mailbox.command(py, Command::Recv)?;
        let value = self.mailbox.wait(py, rx, timeout)?;
        Ok(to_bytes(py, value))
    }

    /// The next piece of the stream's data; `None` at its end.
    #[pyo3(signature = (timeout = None))]
    fn recv_data(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let rx = self.mailbox.command(py, Command::RecvData)?;
        let value = self.mailbox.wait(py, rx, timeout)?;
        Ok(to_bytes(py, value))
    }

    /// Ends our side of the stream; what the peer still sends can be received.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let rx = self.mailbox.command(py, Command::Close)?;
        self.mailbox.wait(py, rx, None)
    }

    /// Like `recv`, completing the asyncio future `fut`.
    fn recv_async(&self, py: Python<'_>, bridge: &LoopBridge, fut: Py<PyAny>) -> PyResult<Pending> {
        let rx = self.mailbox.command(py, Command::Recv)?;
        Ok(self.mailbox.answer_async(bridge, fut, rx, to_bytes))
    }

    /// Like `recv_data`, completing the asyncio future `fut`.
    fn recv_data_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let rx = self.mailbox.command(py, Command::RecvData)?;
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

    /// Releases the channel now: core resets its stream if it has not ended.
    fn abort(&self) {
        self.sender.release();
        self.mailbox.close();
    }
}
