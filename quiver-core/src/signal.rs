//! A one-shot signal: fired once, observed by any number of tasks and threads.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A one-shot signal: `fire` once, then every `fired().await` completes. Firing wakes tasks;
/// it never runs code of its own.
#[derive(Debug, Default)]
pub struct Signal {
    fired: AtomicBool,
    notify: Notify,
}

impl Signal {
    /// A signal that has not fired.
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Fires the signal; true the first time.
    pub fn fire(&self) -> bool {
        let first = !self.fired.swap(true, Ordering::SeqCst);
        if first {
            self.notify.notify_waiters();
        }
        first
    }

    /// Whether the signal has fired.
    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Completes once the signal has fired.
    pub async fn fired(&self) {
        loop {
            // Created before the check, so a `fire` between the check and the await still
            // wakes it.
            let notified = self.notify.notified();
            if self.is_fired() {
                return;
            }
            notified.await;
        }
    }
}
