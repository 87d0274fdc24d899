//! `quiver_queue`: the completion queue, for programs with their own event loop. A client built
//! with one (`quiver_config_set_queue`) queues its callbacks instead of running them on
//! quiver's threads; a file descriptor is readable while any is queued, and
//! `quiver_queue_dispatch` runs them on the caller's thread. [`Runner`] is where every callback
//! of a client goes through, queue or not.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::c_int;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use quiver_core::Error;

use crate::error::quiver_result;
use crate::ffi::{arc_castable, free_arc, to_arc_const_ptr, try_out_ptr, try_ref_from_ptr};
use crate::panic::ffi_panic_boundary;

/// A completion queue: callbacks of the clients built with it wait here until
/// `quiver_queue_dispatch` runs them, on the thread that calls it.
///
/// Thread-safe: any thread may dispatch (several at once, too) and read the descriptor. The
/// caller frees its reference once with `quiver_queue_free`; clients built with the queue keep
/// their own.
pub struct quiver_queue {
    _private: [u8; 0],
}

/// A queued callback.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The Rust value behind a `quiver_queue`.
pub(crate) struct Queue {
    state: Mutex<State>,
    wakeup: wakeup::Wakeup,
}

struct State {
    jobs: VecDeque<Job>,
    /// Whether the descriptor is readable now: set with the first job, cleared with the last,
    /// so it is readable exactly while jobs are queued.
    armed: bool,
}

arc_castable!(quiver_queue => Queue);

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("fd", &self.wakeup.fd())
            .finish_non_exhaustive()
    }
}

impl Queue {
    fn new() -> std::io::Result<Queue> {
        Ok(Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                armed: false,
            }),
            wakeup: wakeup::Wakeup::new()?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job (it runs on the thread that dispatches it).
    pub(crate) fn push(&self, job: Job) {
        let mut state = self.lock();
        state.jobs.push_back(job);
        if !state.armed {
            self.wakeup.set();
            state.armed = true;
        }
    }

    /// The next job; the descriptor is cleared when it was the last.
    fn pop(&self) -> Option<Job> {
        let mut state = self.lock();
        let job = state.jobs.pop_front();
        if state.jobs.is_empty() && state.armed {
            self.wakeup.clear();
            state.armed = false;
        }
        job
    }

    /// Runs up to `max` jobs on this thread, in order; no lock is held while one runs.
    fn dispatch(&self, max: usize) -> usize {
        let mut ran = 0;
        while ran < max {
            let Some(job) = self.pop() else {
                break;
            };
            let _dispatching = Dispatching::enter();
            job();
            ran += 1;
        }
        ran
    }
}

thread_local! {
    /// How deep this thread is in `quiver_queue_dispatch` (callbacks may dispatch, too).
    static DISPATCHING: Cell<usize> = const { Cell::new(0) };
}

/// Counts this thread as dispatching while it lives (also if a job unwinds).
struct Dispatching;

impl Dispatching {
    fn enter() -> Dispatching {
        DISPATCHING.set(DISPATCHING.get() + 1);
        Dispatching
    }
}

impl Drop for Dispatching {
    fn drop(&mut self) {
        DISPATCHING.set(DISPATCHING.get() - 1);
    }
}

/// True inside a callback run by `quiver_queue_dispatch`: like on a runtime thread, nothing
/// there may wait for a call to end (the call may be waiting for that very callback).
pub(crate) fn in_dispatched_callback() -> bool {
    DISPATCHING.get() > 0
}

/// A queued intermediate event: whether it is still waiting, running (or ran), or revoked.
const WAITING: u8 = 0;
const STARTED: u8 = 1;
const REVOKED: u8 = 2;

/// Where a client's callbacks run: inline, on the runtime thread that produced them, or queued
/// for `quiver_queue_dispatch`.
#[derive(Clone, Default)]
pub(crate) struct Runner {
    queue: Option<Arc<Queue>>,
}

impl Runner {
    pub(crate) fn new(queue: Option<Arc<Queue>>) -> Runner {
        Runner { queue }
    }

    /// Runs a call's last callback (the call is over once it is handed over): now, or queued
    /// without waiting for it, so that freeing a client never waits for the dispatching thread.
    pub(crate) fn last(&self, job: impl FnOnce() + Send + 'static) {
        match &self.queue {
            Some(queue) => queue.push(Box::new(job)),
            None => job(),
        }
    }

    /// Runs one of a call's intermediate callbacks (stream data, a datagram) and returns once it
    /// has run, so that callbacks of one call never overlap and nothing more is pulled from the
    /// connection meanwhile (backpressure).
    ///
    /// Queued, an interruption (cancel, client freed) revokes the callback if no dispatcher has
    /// started it (it is then skipped), or else waits for it to return: either way the call's
    /// last callback, queued after this returns, can neither overlap it nor come first, however
    /// many threads dispatch. The wait cannot deadlock: what runs in a dispatched callback never
    /// waits for a call to end (see [`in_dispatched_callback`]).
    pub(crate) async fn next(
        &self,
        job: impl FnOnce() + Send + 'static,
        interrupted: impl Future<Output = Error>,
    ) -> Result<(), Error> {
        let Some(queue) = &self.queue else {
            job();
            return Ok(());
        };
        let state = Arc::new(AtomicU8::new(WAITING));
        let (ran_tx, mut ran) = tokio::sync::oneshot::channel();
        let job_state = state.clone();
        queue.push(Box::new(move || {
            if job_state
                .compare_exchange(WAITING, STARTED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                job();
            }
            let _ = ran_tx.send(());
        }));
        tokio::select! {
            biased;
            e = interrupted => {
                let revoked = state
                    .compare_exchange(WAITING, REVOKED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if !revoked {
                    // Started on some thread: let it return first.
                    let _ = (&mut ran).await;
                }
                Err(e)
            }
            // Err: the job was dropped unrun, which only the queue's end can do; nobody waits.
            _ = &mut ran => Ok(()),
        }
    }
}

/// Makes a completion queue and writes it to `*queue_out` (free it with `quiver_queue_free`).
///
/// Attach it to clients with `quiver_config_set_queue`: their callbacks (response callbacks,
/// stream, channel and tunnel events) are then queued instead of run on quiver's threads, and
/// run when a thread calls `quiver_queue_dispatch`. `QUIVER_RESULT_SYSTEM` when the operating
/// system refuses the file descriptor (`errno` says why).
#[no_mangle]
pub extern "C" fn quiver_queue_new(queue_out: *mut *const quiver_queue) -> quiver_result {
    ffi_panic_boundary! {
        let queue_out = try_out_ptr!(queue_out);
        *queue_out = std::ptr::null();
        match Queue::new() {
            Ok(queue) => {
                *queue_out = to_arc_const_ptr::<quiver_queue>(Arc::new(queue));
                quiver_result::Ok
            }
            Err(_) => quiver_result::System,
        }
    }
}

/// The queue's file descriptor, for epoll / poll / select / libuv (`uv_poll_t`): readable
/// exactly while callbacks are queued (level-triggered: with `EPOLLET`, dispatch until
/// `quiver_queue_dispatch` returns less than `max`). An eventfd on Linux, a pipe elsewhere.
/// It belongs to the queue: never read, write or close it. NULL: -1.
#[no_mangle]
pub extern "C" fn quiver_queue_fd(queue: *const quiver_queue) -> c_int {
    ffi_panic_boundary! {
        match crate::ffi::try_from(queue) {
            Some(queue) => queue.wakeup.fd(),
            None => -1,
        }
    }
}

/// Runs up to `max` queued callbacks on the calling thread, oldest first, and returns how
/// many were dispatched (0 when none was queued; never waits). NULL: 0.
///
/// Any thread, several at once; callbacks of one request, stream or channel never overlap and
/// keep their order. A callback may call any quiver function, including this one and
/// `quiver_client_free` (which does not wait there). A stream or channel waits until its event
/// has been dispatched before it reads more from the connection, so a queue that is not
/// dispatched holds the servers back rather than filling memory. An event whose stream or
/// channel was cancelled (or whose client was freed) before it was dispatched is skipped: it
/// counts here, but its callback does not run; the `on_end` that follows does.
#[no_mangle]
pub extern "C" fn quiver_queue_dispatch(queue: *const quiver_queue, max: usize) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(queue).dispatch(max)
    }
}

/// How many callbacks are queued now. NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_queue_pending(queue: *const quiver_queue) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(queue).lock().jobs.len()
    }
}

/// Drops the caller's reference to the queue (clients built with it keep theirs). NULL is a
/// no-op. When the last reference goes, callbacks still queued are discarded without running
/// (what they would have received is freed): free the clients, dispatch until nothing is
/// pending, then free the queue.
#[no_mangle]
pub extern "C" fn quiver_queue_free(queue: *const quiver_queue) {
    ffi_panic_boundary! {
        free_arc(queue)
    }
}

/// The readable-while-queued descriptor: an eventfd on Linux, a pipe on other Unixes.
///
/// `set` and `clear` are called only on the transitions (the queue tracks `armed`), so a
/// clear never waits on an empty descriptor.
mod wakeup {
    use std::ffi::c_int;
    use std::io::{Read, Write};

    #[cfg(target_os = "linux")]
    mod imp {
        use std::ffi::c_int;
        use std::fs::File;
        use std::os::fd::{AsRawFd, FromRawFd};

        pub(super) struct Fd {
            file: File,
        }

        impl Fd {
            pub(super) fn new() -> std::io::Result<Fd> {
                // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor
                // that nothing else owns.
                let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: `fd` is open and owned by nobody else.
                Ok(Fd {
                    file: unsafe { File::from_raw_fd(fd) },
                })
            }

            pub(super) fn raw(&self) -> c_int {
                self.file.as_raw_fd()
            }

            pub(super) fn writer(&self) -> &File {
                &self.file
            }

            pub(super) fn reader(&self) -> &File {
                &self.file
            }
        }

        /// One eventfd counter value.
        pub(super) const TOKEN: &[u8] = &1u64.to_ne_bytes();
    }

    #[cfg(all(unix, not(target_os = "linux")))]
    mod imp {
        use std::ffi::c_int;
        use std::io::{PipeReader, PipeWriter};
        use std::os::fd::AsRawFd;

        pub(super) struct Fd {
            reader: PipeReader,
            writer: PipeWriter,
        }

        impl Fd {
            pub(super) fn new() -> std::io::Result<Fd> {
                let (reader, writer) = std::io::pipe()?;
                Ok(Fd { reader, writer })
            }

            pub(super) fn raw(&self) -> c_int {
                self.reader.as_raw_fd()
            }

            pub(super) fn writer(&self) -> &PipeWriter {
                &self.writer
            }

            pub(super) fn reader(&self) -> &PipeReader {
                &self.reader
            }
        }

        pub(super) const TOKEN: &[u8] = &[1];
    }

    #[cfg(unix)]
    pub(super) struct Wakeup(imp::Fd);

    #[cfg(unix)]
    impl Wakeup {
        pub(super) fn new() -> std::io::Result<Wakeup> {
            imp::Fd::new().map(Wakeup)
        }

        pub(super) fn fd(&self) -> c_int {
            self.0.raw()
        }

        pub(super) fn set(&self) {
            // Cannot fail short of a closed descriptor (which the queue owns): nothing to do.
            let _ = self.0.writer().write_all(imp::TOKEN);
        }

        pub(super) fn clear(&self) {
            let mut buf = [0u8; 8];
            let _ = self.0.reader().read(&mut buf[..imp::TOKEN.len()]);
        }
    }

    /// No descriptor outside Unix: poll `quiver_queue_pending` instead.
    #[cfg(not(unix))]
    pub(super) struct Wakeup;

    #[cfg(not(unix))]
    impl Wakeup {
        pub(super) fn new() -> std::io::Result<Wakeup> {
            Ok(Wakeup)
        }

        pub(super) fn fd(&self) -> c_int {
            -1
        }

        pub(super) fn set(&self) {}

        pub(super) fn clear(&self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An eventfd's counter, from /proc (a portable check would need poll(2)).
    #[cfg(target_os = "linux")]
    fn readable(fd: c_int) -> bool {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let count = info
            .lines()
            .find_map(|l| l.strip_prefix("eventfd-count:"))
            .expect("an eventfd");
        u64::from_str_radix(count.trim(), 16).unwrap() > 0
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_descriptor_is_readable_exactly_while_jobs_are_queued() {
        let queue = Arc::new(Queue::new().unwrap());
        let fd = queue.wakeup.fd();
        assert!(!readable(fd));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let ran = ran.clone();
            queue.push(Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }));
        }
        assert!(readable(fd));
        assert_eq!(queue.dispatch(2), 2);
        assert!(readable(fd));
        assert_eq!(queue.dispatch(10), 1);
        assert!(!readable(fd));
        assert_eq!(ran.load(Ordering::SeqCst), 3);
        assert_eq!(queue.dispatch(10), 0);
    }

    #[test]
    fn a_job_may_queue_more_and_unrun_jobs_are_dropped_with_the_queue() {
        let queue = Arc::new(Queue::new().unwrap());
        let inner = queue.clone();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        queue.push(Box::new(move || {
            let counter = counter.clone();
            inner.push(Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }));
        }));
        assert_eq!(queue.dispatch(1), 1);
        assert_eq!(queue.lock().jobs.len(), 1);
        assert_eq!(queue.dispatch(5), 1);
        assert_eq!(ran.load(Ordering::SeqCst), 1);

        let dropped = Arc::new(());
        let held = dropped.clone();
        queue.push(Box::new(move || drop(held)));
        drop(queue);
        assert_eq!(Arc::strong_count(&dropped), 1);
    }
}
