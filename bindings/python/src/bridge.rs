//! The asyncio bridge: work posted from quiver's runtime threads runs on one event loop's
//! thread, and core futures complete asyncio futures.
//!
//! Runtime threads never take the GIL to deliver a result: they queue a job and, if the loop
//! was not already woken, write one byte to a socket the loop watches (`loop.add_reader`).
//! The loop then drains every queued job at once, with the GIL it already holds. Loops without
//! `add_reader` (the Windows proactor) fall back to a Python waker that calls
//! `loop.call_soon_threadsafe` (that path attaches to the interpreter on the runtime thread).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::errors;

/// Work to run on the event loop's thread, attached to the interpreter.
pub(crate) type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// Delivers jobs from quiver's runtime threads to one asyncio event loop.
///
/// Made by `quiver._client` once per loop: it registers [`LoopBridge::drain`] as the reader
/// of [`LoopBridge::fileno`], or, where the loop has no readers, installs a waker.
#[pyclass(frozen, weakref, module = "quiver._quiver")]
pub struct LoopBridge {
    inner: Arc<Bridge>,
}

/// The shared part of a [`LoopBridge`], held by tasks that post to it.
pub(crate) struct Bridge {
    queue: Mutex<Queue>,
    #[cfg(unix)]
    socket: Option<(
        std::os::unix::net::UnixStream,
        std::os::unix::net::UnixStream,
    )>,
    waker: PyOnceLock<Py<PyAny>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A wake-up is on its way; later jobs ride along with it.
    armed: bool,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Bridge {
    /// Queues `job` for the loop's thread and wakes the loop if it is not already woken.
    pub(crate) fn post(&self, job: Job) {
        let wake = {
            let mut q = lock(&self.queue);
            q.jobs.push(job);
            !std::mem::replace(&mut q.armed, true)
        };
        if wake {
            self.wake();
        }
    }

    fn wake(&self) {
        #[cfg(unix)]
        if let Some((_, writer)) = &self.socket {
            use std::io::Write;
            // A full socket buffer already guarantees a wake-up; nothing else can fail here.
            let _ = (&*writer).write(&[1]);
            return;
        }
        Python::attach(|py| match self.waker.get(py) {
            Some(waker) => {
                if let Err(e) = waker.call0(py) {
                    e.write_unraisable(py, None);
                }
            }
            // Not set up yet (`quiver._client` sets the waker before any use): keep the jobs
            // queued and let the next post try again.
            None => lock(&self.queue).armed = false,
        });
    }

    fn run_jobs(&self, py: Python<'_>) {
        let jobs = {
            let mut q = lock(&self.queue);
            q.armed = false;
            std::mem::take(&mut q.jobs)
        };
        for job in jobs {
            job(py);
        }
    }
}

#[pymethods]
impl LoopBridge {
    /// `socket=False` makes a bridge that wakes its loop only through [`LoopBridge::use_waker`].
    #[new]
    #[pyo3(signature = (socket = true))]
    fn new(socket: bool) -> PyResult<Self> {
        #[cfg(unix)]
        let socket = if socket {
            let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
            reader.set_nonblocking(true)?;
            writer.set_nonblocking(true)?;
            Some((reader, writer))
        } else {
            None
        };
        #[cfg(not(unix))]
        let _ = socket;
        Ok(LoopBridge {
            inner: Arc::new(Bridge {
                queue: Mutex::new(Queue::default()),
                #[cfg(unix)]
                socket,
                waker: PyOnceLock::new(),
            }),
        })
    }

    /// The descriptor the loop should watch for reading (`-1` where there is none).
    fn fileno(&self) -> i64 {
        #[cfg(unix)]
        if let Some((reader, _)) = &self.inner.socket {
            use std::os::fd::AsRawFd;
            return i64::from(reader.as_raw_fd());
        }
        -1
    }

    /// Wakes the loop by calling `waker()` (from a runtime thread) instead of the socket.
    fn use_waker(&self, py: Python<'_>, waker: Py<PyAny>) -> PyResult<()> {
        #[cfg(unix)]
        if self.inner.socket.is_some() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this bridge wakes its loop through its socket",
            ));
        }
        self.inner
            .waker
            .set(py, waker)
            .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("waker already set"))
    }

    /// Runs every queued job; the loop calls it when the socket is readable (or the waker ran).
    fn drain(&self, py: Python<'_>) {
        #[cfg(unix)]
        if let Some((reader, _)) = &self.inner.socket {
            use std::io::Read;
            let mut buf = [0u8; 256];
            while let Ok(n) = (&*reader).read(&mut buf) {
                if n < buf.len() {
                    break;
                }
            }
        }
        self.inner.run_jobs(py);
    }
}

impl LoopBridge {
    /// The part tasks hold to post jobs.
    pub(crate) fn shared(&self) -> Arc<Bridge> {
        self.inner.clone()
    }
}

/// A running operation started for an asyncio caller; `cancel()` aborts it in core.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct Pending {
    cancel: Cancel,
}

/// What `Pending::cancel` does.
enum Cancel {
    /// Nothing: the operation finished.
    Nothing,
    /// Aborts the operation's task.
    Task(AbortHandle),
    /// Calls back an operation that waits without a task of its own.
    Call(Box<dyn Fn() + Send + Sync>),
}

#[pymethods]
impl Pending {
    /// Aborts the operation: its core future is dropped, which cancels the request.
    fn cancel(&self) {
        match &self.cancel {
            Cancel::Nothing => {}
            Cancel::Task(abort) => abort.abort(),
            Cancel::Call(on_cancel) => on_cancel(),
        }
    }
}

impl Pending {
    /// A `Pending` for an operation that already finished.
    pub(crate) fn done() -> Pending {
        Pending {
            cancel: Cancel::Nothing,
        }
    }

    /// A `Pending` whose `cancel()` calls `on_cancel` (an operation that waits on a callback
    /// rather than a task).
    pub(crate) fn on_cancel(on_cancel: impl Fn() + Send + Sync + 'static) -> Pending {
        Pending {
            cancel: Cancel::Call(Box::new(on_cancel)),
        }
    }
}

/// True when the asyncio future is done already (cancelled by its awaiting task).
pub(crate) fn is_done(py: Python<'_>, fut: &Bound<'_, PyAny>) -> bool {
    match fut
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
    {
        Ok(done) => done,
        Err(e) => {
            e.write_unraisable(py, Some(fut));
            true
        }
    }
}

/// Sets an asyncio future's result or exception, unless it is already done (cancelled).
pub(crate) fn resolve(py: Python<'_>, fut: &Py<PyAny>, result: PyResult<Py<PyAny>>) {
    let fut = fut.bind(py);
    if is_done(py, fut) {
        return;
    }
    let set = match result {
        Ok(value) => fut.call_method1(intern!(py, "set_result"), (value,)),
        Err(err) => fut.call_method1(intern!(py, "set_exception"), (err.into_value(py),)),
    };
    if let Err(e) = set {
        e.write_unraisable(py, Some(fut));
    }
}

/// Runs `work` on quiver's runtime and completes the asyncio future `fut` with
/// `convert(output)` on the loop's thread. A panic in `work` becomes an `internal` error.
pub(crate) fn spawn<T, F, C>(
    handle: &Handle,
    bridge: Arc<Bridge>,
    fut: Py<PyAny>,
    work: F,
    convert: C,
) -> Pending
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    // A combinator rather than an `async` block, which would hold `work` twice (as what it
    // captured and as what it awaits): the task is as large as `work`, and made on this thread.
    let task = handle.spawn(AssertUnwindSafe(work).catch_unwind().map(move |out| {
        bridge.post(Box::new(move |py| {
            if is_done(py, fut.bind(py)) {
                return; // cancelled: nobody wants the result (dropping it releases it)
            }
            let result = match out {
                Ok(out) => convert(py, out),
                Err(_) => Err(errors::to_py(
                    py,
                    &errors::internal("a quiver task panicked"),
                )),
            };
            resolve(py, &fut, result);
        }));
    }));
    Pending {
        cancel: Cancel::Task(task.abort_handle()),
    }
}
