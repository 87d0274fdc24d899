//! The process-wide background runtime that owns every pool task and connection, and fork
//! detection.
//!
//! C, Python and Node callers never see this runtime. After `fork()` only the forking thread
//! survives in the child, so the parent's runtime is unusable there: the child gets a fresh
//! runtime on first use, and clients made before the fork refuse to work (`forked`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use tokio::runtime::{Handle, Runtime};

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn on_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// A number that changes in a child process after every `fork()`: compare it with the value
/// seen when something was made to tell whether this is a forked child.
pub fn fork_generation() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: registering a handler that only touches an atomic is async-signal-safe.
        unsafe {
            libc::pthread_atfork(None, None, Some(on_fork_in_child));
        }
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

thread_local! {
    static ON_RUNTIME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True on a thread of quiver's background runtime (where blocking on quiver would deadlock);
/// false on any other thread, those of other tokio runtimes included.
pub fn is_runtime_thread() -> bool {
    ON_RUNTIME.with(|c| c.get())
}

struct Shared {
    generation: u64,
    runtime: Runtime,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// Worker threads for the background runtime: `QUIVER_WORKER_THREADS`, else the core count.
fn worker_threads() -> usize {
    std::env::var("QUIVER_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
}

/// A handle to the background runtime, started on first use (and again in a forked child).
pub fn background() -> crate::error::Result<Handle> {
    let generation = fork_generation();
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = shared.as_ref() {
        if s.generation == generation {
            return Ok(s.runtime.handle().clone());
        }
    }
    if let Some(stale) = shared.take() {
        // Inherited from the parent: its threads do not exist here, and dropping it would
        // wait on them forever. Leak it.
        std::mem::forget(stale);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .thread_name("quiver-worker")
        .on_thread_start(|| {
            ON_RUNTIME.with(|c| c.set(true));
            block_sigpipe();
        })
        .enable_all()
        .build()
        .map_err(|e| {
            crate::error::Error::with_source(
                crate::error::ErrorKind::Internal,
                "cannot start the background runtime",
                e,
            )
        })?;
    let handle = runtime.handle().clone();
    *shared = Some(Shared {
        generation,
        runtime,
    });
    Ok(handle)
}

/// Blocks SIGPIPE on the calling (runtime) thread: a write to a connection the peer closed then
/// fails with `EPIPE` (an error quiver reports) instead of raising a signal whose default action
/// kills the process — C programs do not ignore it the way Rust, Python and Node do.
fn block_sigpipe() {
    #[cfg(unix)]
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask and accepts a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding: C's `quiver_client_free` asked `Handle::try_current()`, true on any tokio
    /// thread of the host program; only quiver's own threads must count.
    #[test]
    fn only_quivers_own_threads_are_runtime_threads() {
        assert!(!is_runtime_thread());
        let foreign = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let on_foreign =
            foreign.block_on(async { tokio::spawn(async { is_runtime_thread() }).await.unwrap() });
        assert!(!on_foreign, "a host program's tokio thread is not quiver's");
        let (tx, rx) = std::sync::mpsc::channel();
        background().unwrap().spawn(async move {
            let _ = tx.send(is_runtime_thread());
        });
        assert!(rx.recv().unwrap());
    }

    /// Finding (C tests): a write to a connection the server closed raised SIGPIPE on a runtime
    /// thread and killed C programs, which do not ignore it.
    #[cfg(unix)]
    #[test]
    fn runtime_threads_block_sigpipe() {
        let (tx, rx) = std::sync::mpsc::channel();
        background().unwrap().spawn(async move {
            // SAFETY: reads this thread's signal mask into a zeroed local set.
            let blocked = unsafe {
                let mut old: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut old);
                libc::sigismember(&old, libc::SIGPIPE) == 1
            };
            let _ = tx.send(blocked);
        });
        assert!(
            rx.recv().unwrap(),
            "SIGPIPE is not blocked on a runtime thread"
        );
    }
}
