//! Datagram channels for Python. Core's [`DatagramChannel`] receives through `&mut self` and
//! sends through `&self`; a task owns it so that Python can send while a receive is waiting.
//! Python talks to the task with commands; receives left waiting are answered in order.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use pyo3::exceptions::{PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList};
use quiver_core::{Bytes, DatagramChannel, Error, ErrorKind, HeaderMap, ResponseHead};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::bridge::{self, LoopBridge, Pending};
use crate::errors;
use crate::response::{header_list, version_str};
use crate::wait::{self, Process};

type Reply<T> = oneshot::Sender<Result<T, Error>>;

enum Command {
    Send(Bytes, Reply<()>),
    Recv(Reply<Option<Bytes>>),
    RecvData(Reply<Option<Bytes>>),
    Close(Reply<()>),
}

/// What Python reads without a round trip to the task.
#[derive(Default)]
struct Shared {
    ended: bool,
    trailers: Option<HeaderMap>,
    max_datagram_size: Option<usize>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

enum Event {
    Command(Option<Command>),
    Datagram(Result<Option<Bytes>, Error>),
    Data(Result<Option<Bytes>, Error>),
}

/// Answers the first waiter still listening; gives the value back if none is.
fn answer<T>(
    waiters: &mut VecDeque<Reply<T>>,
    mut value: Result<T, Error>,
) -> Option<Result<T, Error>> {
    while let Some(w) = waiters.pop_front() {
        match w.send(value) {
            Ok(()) => return None,
            Err(back) => value = back,
        }
    }
    Some(value)
}

/// Owns the channel until Python drops its handle (then core resets the stream).
async fn run(
    mut ch: DatagramChannel,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut datagram_waiters: VecDeque<Reply<Option<Bytes>>> = VecDeque::new();
    let mut data_waiters: VecDeque<Reply<Option<Bytes>>> = VecDeque::new();
    // Datagrams whose receiver gave up (cancelled) before they arrived: the next receive gets them.
    let mut unclaimed: VecDeque<Bytes> = VecDeque::new();
    loop {
        datagram_waiters.retain(|w| !w.is_closed());
        data_waiters.retain(|w| !w.is_closed());
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(c) = commands.poll_recv(cx) {
                return Poll::Ready(Event::Command(c));
            }
            // `recv` and `recv_data` only await core's event queue, so dropping them after one
            // poll loses nothing; both register this task's waker.
            if !datagram_waiters.is_empty() {
                if let Poll::Ready(r) = pin!(ch.recv()).poll(cx) {
                    return Poll::Ready(Event::Datagram(r));
                }
            }
            if !data_waiters.is_empty() {
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
            Event::Command(Some(Command::Send(payload, reply))) => {
                let _ = reply.send(ch.send(payload));
            }
            Event::Command(Some(Command::Recv(reply))) => match unclaimed.pop_front() {
                Some(d) => {
                    if let Err(Ok(Some(d))) = reply.send(Ok(Some(d))) {
                        unclaimed.push_front(d);
                    }
                }
                None => datagram_waiters.push_back(reply),
            },
            Event::Command(Some(Command::RecvData(reply))) => data_waiters.push_back(reply),
            Event::Command(Some(Command::Close(reply))) => {
                let _ = reply.send(ch.close().await);
            }
            Event::Datagram(r) => {
                let ended = matches!(r, Ok(None) | Err(_));
                if let Some(Ok(Some(d))) = answer(&mut datagram_waiters, r) {
                    unclaimed.push_back(d);
                }
                if ended {
                    for w in datagram_waiters.drain(..) {
                        let _ = w.send(Ok(None));
                    }
                }
            }
            Event::Data(r) => {
                let ended = matches!(r, Ok(None) | Err(_));
                answer(&mut data_waiters, r);
                if ended {
                    for w in data_waiters.drain(..) {
                        let _ = w.send(Ok(None));
                    }
                }
            }
        }
        publish(&ch, &shared);
    }
}

/// Copies what Python reads without a round trip.
fn publish(ch: &DatagramChannel, shared: &Mutex<Shared>) {
    let mut s = lock(shared);
    s.ended = ch.is_ended();
    s.max_datagram_size = ch.max_datagram_size();
    if s.trailers.is_none() {
        s.trailers = ch.trailers().cloned();
    }
}

/// An open RFC 9297 datagram channel (extended CONNECT on an HTTP/3 connection).
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeChannel {
    head: ResponseHead,
    commands: Mutex<Option<mpsc::UnboundedSender<Command>>>,
    shared: Arc<Mutex<Shared>>,
    handle: Handle,
    process: Process,
}

impl NativeChannel {
    /// Starts the task that owns `ch` on `handle`.
    pub(crate) fn start(ch: DatagramChannel, handle: Handle) -> NativeChannel {
        let head = ch.head().clone();
        let shared = Arc::new(Mutex::new(Shared {
            ended: ch.is_ended(),
            trailers: None,
            max_datagram_size: ch.max_datagram_size(),
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(run(ch, rx, shared.clone()));
        NativeChannel {
            head,
            commands: Mutex::new(Some(tx)),
            shared,
            handle,
            process: Process::current(),
        }
    }

    /// Sends a command; the reply comes on the returned receiver.
    fn command<T>(
        &self,
        py: Python<'_>,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> PyResult<oneshot::Receiver<Result<T, Error>>> {
        self.process.check(py)?;
        let (tx, rx) = oneshot::channel();
        let sent = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.send(make(tx)).is_ok());
        if sent != Some(true) {
            return Err(errors::new_py(
                py,
                ErrorKind::DatagramError,
                "the datagram channel is closed",
            ));
        }
        Ok(rx)
    }

    /// Blocks for a reply, the GIL released; `timeout` raises the builtin `TimeoutError`.
    fn wait<T: Send>(
        &self,
        py: Python<'_>,
        rx: oneshot::Receiver<Result<T, Error>>,
        timeout: Option<f64>,
    ) -> PyResult<T> {
        let reply = match timeout {
            None => wait::block_on(py, &self.handle, rx)?,
            Some(secs) => {
                let limit = seconds(secs)?;
                match wait::block_on(py, &self.handle, async move {
                    tokio::time::timeout(limit, rx).await
                })? {
                    Ok(reply) => reply,
                    Err(_) => {
                        return Err(PyTimeoutError::new_err(format!(
                            "nothing arrived within {secs} s"
                        )))
                    }
                }
            }
        };
        flatten(py, reply)
    }
}

fn seconds(secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| PyValueError::new_err("timeout must be a non-negative number of seconds"))
}

fn flatten<T>(
    py: Python<'_>,
    reply: Result<Result<T, Error>, oneshot::error::RecvError>,
) -> PyResult<T> {
    match reply {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(errors::to_py(py, &e)),
        Err(_) => Err(errors::new_py(
            py,
            ErrorKind::DatagramError,
            "the datagram channel is closed",
        )),
    }
}

fn to_bytes(py: Python<'_>, value: Option<Bytes>) -> Py<PyAny> {
    match value {
        Some(b) => PyBytes::new(py, &b).into_any().unbind(),
        None => py.None(),
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

    /// The largest datagram payload the path takes (as last seen), if datagrams are available.
    #[getter]
    fn max_datagram_size(&self) -> Option<usize> {
        lock(&self.shared).max_datagram_size
    }

    /// Sends one datagram (unreliable).
    fn send(&self, py: Python<'_>, payload: PyBackedBytes) -> PyResult<()> {
        let rx = self.command(py, |r| Command::Send(Bytes::from_owner(payload), r))?;
        self.wait(py, rx, None)
    }

    /// The next datagram; `None` once the stream has ended.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let rx = self.command(py, Command::Recv)?;
        let value = self.wait(py, rx, timeout)?;
        Ok(to_bytes(py, value))
    }

    /// The next piece of the stream's data; `None` at its end.
    #[pyo3(signature = (timeout = None))]
    fn recv_data(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let rx = self.command(py, Command::RecvData)?;
        let value = self.wait(py, rx, timeout)?;
        Ok(to_bytes(py, value))
    }

    /// Ends our side of the stream; what the peer still sends can be received.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let rx = self.command(py, Command::Close)?;
        self.wait(py, rx, None)
    }

    /// Like `send`, completing the asyncio future `fut`.
    fn send_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
        payload: PyBackedBytes,
    ) -> PyResult<Pending> {
        let rx = self.command(py, |r| Command::Send(Bytes::from_owner(payload), r))?;
        Ok(bridge::spawn(
            &self.handle,
            bridge.shared(),
            fut,
            rx,
            |py, r| flatten(py, r).map(|()| py.None()),
        ))
    }

    /// Like `recv`, completing the asyncio future `fut`.
    fn recv_async(&self, py: Python<'_>, bridge: &LoopBridge, fut: Py<PyAny>) -> PyResult<Pending> {
        let rx = self.command(py, Command::Recv)?;
        Ok(bridge::spawn(
            &self.handle,
            bridge.shared(),
            fut,
            rx,
            |py, r| flatten(py, r).map(|v| to_bytes(py, v)),
        ))
    }

    /// Like `recv_data`, completing the asyncio future `fut`.
    fn recv_data_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let rx = self.command(py, Command::RecvData)?;
        Ok(bridge::spawn(
            &self.handle,
            bridge.shared(),
            fut,
            rx,
            |py, r| flatten(py, r).map(|v| to_bytes(py, v)),
        ))
    }

    /// Like `close`, completing the asyncio future `fut`.
    fn close_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
    ) -> PyResult<Pending> {
        let rx = self.command(py, Command::Close)?;
        Ok(bridge::spawn(
            &self.handle,
            bridge.shared(),
            fut,
            rx,
            |py, r| flatten(py, r).map(|()| py.None()),
        ))
    }

    /// Releases the channel now: core resets its stream if it has not ended.
    fn abort(&self) {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_goes_to_the_first_waiter_still_listening() {
        let (gone, dropped) = oneshot::channel::<Result<Option<Bytes>, Error>>();
        drop(dropped);
        let (live, mut rx) = oneshot::channel();
        let mut waiters = VecDeque::from([gone, live]);
        assert!(answer(&mut waiters, Ok(Some(Bytes::from_static(b"d")))).is_none());
        assert_eq!(
            rx.try_recv().unwrap().unwrap(),
            Some(Bytes::from_static(b"d"))
        );
        // Nobody listening: the value comes back (kept for the next receive).
        let back = answer(&mut waiters, Ok(Some(Bytes::from_static(b"e"))));
        assert!(matches!(back, Some(Ok(Some(b))) if b == "e"));
    }
}
