//! Blocking waits for the sync API, and the `fork()` check of objects made from a client.
//!
//! A blocking call waits with the GIL released, in slices: between slices it re-attaches and
//! runs Python's signal handlers, so Ctrl-C interrupts a long request promptly (the wait is
//! dropped, which cancels the request in core). A request runs as a task on the runtime's
//! workers and the caller waits for its end ([`run`]); a short wait (a body read) runs its
//! future on the calling thread ([`block_on`]).

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;
use quiver_core::Client;
use tokio::runtime::Handle;

use crate::errors;

/// How long a blocking call waits before it checks for signals again.
const SLICE: Duration = Duration::from_millis(50);

/// Runs `fut` to completion on the calling thread (I/O and timers are driven by the runtime's
/// workers), the GIL released; a pending signal (KeyboardInterrupt) drops `fut` and is raised.
pub(crate) fn block_on<F>(py: Python<'_>, handle: &Handle, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let mut fut = std::pin::pin!(fut);
    loop {
        let done = py.detach(|| {
            handle.block_on(async { tokio::time::timeout(SLICE, fut.as_mut()).await.ok() })
        });
        if let Some(out) = done {
            return Ok(out);
        }
        py.check_signals()?;
    }
}

/// Like [`block_on`], but `fut` runs as a task on the runtime's workers and the calling thread
/// waits only for its output: woken once, when it is done, rather than at each step of `fut`
/// (an HTTP/2 or HTTP/3 request is woken several times on its way). The task is aborted if
/// the wait ends early (a signal).
pub(crate) fn run<F>(py: Python<'_>, handle: &Handle, fut: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(handle.spawn(fut));
    let joined = block_on(py, handle, async { (&mut task.0).await })?;
    joined.map_err(|_| errors::to_py(py, &errors::internal("a quiver task panicked")))
}

/// Refuses work in a child process forked after a client was made: the runtime threads an
/// object relies on do not exist there, so waiting on them would hang. Core tells (its fork
/// generation, bumped by a `pthread_atfork` handler), not a pid comparison.
#[derive(Clone, Debug)]
pub(crate) struct ForkGuard(Client);

impl ForkGuard {
    /// Guards objects made from `client`.
    pub(crate) fn new(client: &Client) -> ForkGuard {
        ForkGuard(client.clone())
    }

    /// True in a child forked after the client was made.
    pub(crate) fn is_forked(&self) -> bool {
        self.0.is_forked()
    }

    /// `Ok` in the process the client was made in, else the `forked` error.
    pub(crate) fn check(&self, py: Python<'_>) -> PyResult<()> {
        if self.is_forked() {
            return Err(errors::to_py(py, &errors::forked()));
        }
        Ok(())
    }
}
