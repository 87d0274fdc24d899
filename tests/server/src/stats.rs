//! Connection and request counters shared by every listener.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// A snapshot of the server's counters, over every listener together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    /// Connections accepted (TCP accepts, before any TLS handshake).
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// The highest `open` seen since start or the last reset.
    pub max_open: u64,
    /// Requests received (every request head handed to an endpoint, including the one
    /// `/drop-next` answers by closing the connection, and raw-listener requests).
    pub requests: u64,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    max_open: AtomicU64,
    requests: AtomicU64,
}

impl Counters {
    /// Counts an accepted connection; the returned guard keeps it counted as open until dropped.
    pub(crate) fn on_accept(self: &Arc<Self>) -> OpenGuard {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_open.fetch_max(open, Ordering::SeqCst);
        OpenGuard {
            counters: Arc::clone(self),
        }
    }

    /// Counts one request.
    pub(crate) fn on_request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Reads the counters.
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            accepted: self.accepted.load(Ordering::SeqCst),
            open: self.open.load(Ordering::SeqCst),
            max_open: self.max_open.load(Ordering::SeqCst),
            requests: self.requests.load(Ordering::SeqCst),
        }
    }

    /// Sets the counters back to zero; `open` keeps its live value and `max_open` restarts from it.
    pub(crate) fn reset(&self) {
        self.accepted.store(0, Ordering::SeqCst);
        self.requests.store(0, Ordering::SeqCst);
        let open = self.open.load(Ordering::SeqCst);
        self.max_open.store(open, Ordering::SeqCst);
        // A connection opened between the two lines above must still be reflected.
        self.max_open
            .fetch_max(self.open.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Keeps one connection counted in `open`; decrements on drop.
#[derive(Debug)]
pub(crate) struct OpenGuard {
    counters: Arc<Counters>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let c = Arc::new(Counters::default());
        let a = c.on_accept();
        let b = c.on_accept();
        c.on_request();
        drop(a);
        assert_eq!(
            c.snapshot(),
            Stats {
                accepted: 2,
                open: 1,
                max_open: 2,
                requests: 1
            }
        );
        c.reset();
        assert_eq!(
            c.snapshot(),
            Stats {
                accepted: 0,
                open: 1,
                max_open: 1,
                requests: 0
            }
        );
        drop(b);
        assert_eq!(c.snapshot().open, 0);
    }
}
