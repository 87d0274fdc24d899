//! A task that owns a core object whose receives take `&mut self` (a datagram channel, a UDP
//! tunnel), and the handle Python talks to it through: commands, each answered on a oneshot.
//! The task keeps polling the object's receive only while someone waits, so Python can send or
//! close while a receive is pending, and receives left waiting are answered in order.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use quiver_core::{Bytes, Error, ErrorKind};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::bridge::{self, LoopBridge, Pending};
use crate::errors;
use crate::wait::{self, ForkGuard};

/// Where the owner task answers a command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;
/// Where Python waits for the answer.
pub(crate) type Answer<T> = oneshot::Receiver<Result<T, Error>>;

/// The Python side of an owner task: sends it commands and waits for answers.
pub(crate) struct Mailbox<C> {
    commands: Mutex<Option<mpsc::UnboundedSender<C>>>,
    handle: Handle,
    fork: ForkGuard,
    /// What the object is, for "… is closed" errors (`the UDP tunnel`).
    what: &'static str,
}

impl<C: Send + 'static> Mailbox<C> {
    /// Spawns `run(commands)` on `handle`; the task ends when the mailbox is closed (or dropped)
    /// and its commands are drained, and dropping the object it owns releases it in core.
    pub(crate) fn start<F>(
        handle: Handle,
        fork: ForkGuard,
        what: &'static str,
        run: impl FnOnce(mpsc::UnboundedReceiver<C>) -> F,
    ) -> Mailbox<C>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(run(rx));
        Mailbox {
            commands: Mutex::new(Some(tx)),
            handle,
            fork,
            what,
        }
    }

    /// The fork check of the client the object came from.
    pub(crate) fn fork(&self) -> &ForkGuard {
        &self.fork
    }

    /// The error for an object whose task is gone (closed by `abort()`).
    pub(crate) fn closed(&self, py: Python<'_>) -> PyErr {
        errors::new_py(
            py,
            ErrorKind::DatagramError,
            format!("{} is closed", self.what),
        )
    }

    /// Sends a command; the answer comes on the returned receiver.
    pub(crate) fn command<T>(
        &self,
        py: Python<'_>,
        make: impl FnOnce(Reply<T>) -> C,
    ) -> PyResult<Answer<T>> {
        self.fork.check(py)?;
        let (tx, rx) = oneshot::channel();
        let sent = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.send(make(tx)).is_ok());
        if sent != Some(true) {
            return Err(self.closed(py));
        }
        Ok(rx)
    }

    /// Blocks for an answer, the GIL released; `timeout` (seconds) raises the builtin
    /// `TimeoutError` (a receive given up on loses nothing: what arrives goes to the next).
    pub(crate) fn wait<T: Send>(
        &self,
        py: Python<'_>,
        rx: Answer<T>,
        timeout: Option<f64>,
    ) -> PyResult<T> {
        let answer = match timeout {
            None => wait::block_on(py, &self.handle, rx)?,
            Some(secs) => {
                let limit = Duration::try_from_secs_f64(secs).map_err(|_| {
                    PyValueError::new_err("timeout must be a non-negative number of seconds")
                })?;
                match wait::block_on(py, &self.handle, async move {
                    tokio::time::timeout(limit, rx).await
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
        self.flatten(py, answer)
    }

    /// Completes the asyncio future `fut` with `convert(answer)`; cancelling it gives up the
    /// wait (a receive given up on loses nothing: what arrives goes to the next).
    pub(crate) fn answer_async<T: Send + 'static>(
        &self,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
        rx: Answer<T>,
        convert: impl FnOnce(Python<'_>, T) -> Py<PyAny> + Send + 'static,
    ) -> Pending {
        let what = self.what;
        bridge::spawn(&self.handle, bridge.shared(), fut, rx, move |py, r| {
            flatten(py, r, what).map(|v| convert(py, v))
        })
    }

    fn flatten<T>(
        &self,
        py: Python<'_>,
        answer: Result<Result<T, Error>, oneshot::error::RecvError>,
    ) -> PyResult<T> {
        flatten(py, answer, self.what)
    }

    /// Ends the task: the object it owns is dropped once the commands already sent are done.
    pub(crate) fn close(&self) {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

/// The object's send handle, beside its mailbox: sends go straight to core without a round trip
/// to the task. `release()` (on `abort()`) drops it, so a released object sends nothing.
pub(crate) struct Sends<S>(Mutex<Option<S>>);

impl<S: Clone> Sends<S> {
    pub(crate) fn new(sender: S) -> Sends<S> {
        Sends(Mutex::new(Some(sender)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<S>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handle, unless the object was released (or this is a forked child).
    pub(crate) fn get<C: Send + 'static>(
        &self,
        py: Python<'_>,
        mailbox: &Mailbox<C>,
    ) -> PyResult<S> {
        mailbox.fork().check(py)?;
        self.lock().clone().ok_or_else(|| mailbox.closed(py))
    }

    /// Reads from the handle, while there is one.
    pub(crate) fn with<R>(&self, read: impl FnOnce(&S) -> R) -> Option<R> {
        self.lock().as_ref().map(read)
    }

    /// Drops the handle.
    pub(crate) fn release(&self) {
        self.lock().take();
    }
}

fn flatten<T>(
    py: Python<'_>,
    answer: Result<Result<T, Error>, oneshot::error::RecvError>,
    what: &str,
) -> PyResult<T> {
    match answer {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(errors::to_py(py, &e)),
        Err(_) => Err(errors::new_py(
            py,
            ErrorKind::DatagramError,
            format!("{what} is closed"),
        )),
    }
}

/// `bytes`, or `None`.
pub(crate) fn to_bytes(py: Python<'_>, value: Option<Bytes>) -> Py<PyAny> {
    match value {
        Some(b) => PyBytes::new(py, &b).into_any().unbind(),
        None => py.None(),
    }
}

/// Receives waiting in an owner task for one kind of item (datagrams, stream data), and items
/// that arrived for a receiver that gave up (cancelled, timed out) before they did.
#[derive(Default)]
pub(crate) struct Receives {
    waiters: VecDeque<Reply<Option<Bytes>>>,
    unclaimed: VecDeque<Bytes>,
}

impl Receives {
    /// A receive: answered at once from what is unclaimed, else queued.
    pub(crate) fn want(&mut self, reply: Reply<Option<Bytes>>) {
        match self.unclaimed.pop_front() {
            Some(item) => {
                if let Err(Ok(Some(item))) = reply.send(Ok(Some(item))) {
                    self.unclaimed.push_front(item);
                }
            }
            None => self.waiters.push_back(reply),
        }
    }

    /// True while some receive still waits (receives given up on are forgotten).
    pub(crate) fn waiting(&mut self) -> bool {
        self.waiters.retain(|w| !w.is_closed());
        !self.waiters.is_empty()
    }

    /// What the object's receive returned: to the first receive still waiting, else kept. At
    /// the end (or on an error, which goes to one receive) every other receive gets `None`.
    pub(crate) fn deliver(&mut self, received: Result<Option<Bytes>, Error>) {
        let ended = matches!(received, Ok(None) | Err(_));
        if let Some(Ok(Some(item))) = answer(&mut self.waiters, received) {
            self.unclaimed.push_back(item);
        }
        if ended {
            for w in self.waiters.drain(..) {
                let _ = w.send(Ok(None));
            }
        }
    }
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

    #[test]
    fn items_nobody_took_go_to_the_next_receive() {
        let mut r = Receives::default();
        let (gave_up, dropped) = oneshot::channel();
        r.want(gave_up);
        drop(dropped);
        assert!(!r.waiting());
        r.deliver(Ok(Some(Bytes::from_static(b"kept"))));
        let (next, mut rx) = oneshot::channel();
        r.want(next);
        assert_eq!(
            rx.try_recv().unwrap().unwrap(),
            Some(Bytes::from_static(b"kept"))
        );
        // The end: every receive still waiting gets `None`.
        let (a, mut ra) = oneshot::channel();
        let (b, mut rb) = oneshot::channel();
        r.want(a);
        r.want(b);
        assert!(r.waiting());
        r.deliver(Err(Error::new(ErrorKind::Shutdown, "gone")));
        assert_eq!(
            ra.try_recv().unwrap().unwrap_err().kind(),
            ErrorKind::Shutdown
        );
        assert_eq!(rb.try_recv().unwrap().unwrap(), None);
    }
}
