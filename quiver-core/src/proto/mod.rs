//! Protocol connections: HTTP/1.1 (hyper), HTTP/2 (h2) and HTTP/3 (h3 + quinn), each with its
//! connection worker and its response body, plus what they share: request heads, the varint and
//! capsule codec, the worker's link back to whoever pools the connection, the reason a
//! connection was closed, and the body skeleton of the multiplexed protocols.
//!
//! Protocols run over what the dialing layer (`conn`) hands them; they do not know pools or
//! proxies. A pool reaches its connection's worker only through [`WorkerLink`].

pub(crate) mod body;
#[cfg(feature = "http3")]
pub(crate) mod codec;
#[cfg(feature = "http3")]
pub(crate) mod endpoint;
pub(crate) mod h1;
pub(crate) mod h2;
#[cfg(feature = "http3")]
pub(crate) mod h3;
pub(crate) mod head;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::error::{Error, ErrorKind};
use crate::origin::Origin;

/// Lets the owner of a connection tell its worker to close.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    closing: AtomicBool,
    notify: Notify,
}

impl ConnControl {
    /// Asks the worker to close the connection.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Resolves once `close` was called.
    pub(crate) async fn closed(&self) {
        while !self.closing.load(Ordering::Acquire) {
            self.notify.notified().await;
        }
    }
}

/// A connection worker's way back to whoever pools its connection.
pub(crate) trait WorkerLink: Send + Sync + 'static {
    /// The signal the worker waits on to close.
    fn control(&self) -> &ConnControl;
    /// The peer sent GOAWAY: route nothing new here.
    fn draining(&self);
    /// The connection is gone.
    fn closed(&self);
    /// The peer changed its concurrent stream limit.
    fn set_max_streams(&self, n: usize);
}

/// Why quiver closed a connection, when it did (PING timeout, idle, the pool closed): requests
/// that fail on it report this instead of a bare "broken pipe".
#[derive(Debug, Default)]
pub(crate) struct CloseReason(OnceLock<(ErrorKind, String)>);

impl CloseReason {
    /// Records the reason (the first one stays).
    pub(crate) fn set(&self, kind: ErrorKind, message: impl Into<String>) {
        let _ = self.0.set((kind, message.into()));
    }

    /// The reason as an error for a request to `origin`, when one was recorded.
    pub(crate) fn error(&self, origin: &Origin) -> Option<Error> {
        self.0
            .get()
            .map(|(kind, message)| Error::new(*kind, format!("{origin}: {message}")))
    }

    /// The recorded reason, or `fallback`.
    #[cfg(feature = "http3")]
    pub(crate) fn or(&self, fallback: (ErrorKind, String)) -> (ErrorKind, String) {
        self.0.get().cloned().unwrap_or(fallback)
    }
}

/// Whatever keeps a request's stream slot (and its stats registration) taken while its body
/// is read; dropped when the stream ends.
pub(crate) type Hold = Box<dyn Send + Sync + 'static>;

/// Why a request's upload stopped, when the caller's body failed (its stream gave an error or
/// broke its content-length): set once by the upload task, awaited by the request so that it
/// ends at once instead of waiting for an answer the server may never send.
#[derive(Default)]
pub(crate) struct UploadFailure {
    error: std::sync::OnceLock<Error>,
    set: tokio::sync::Notify,
}

impl UploadFailure {
    /// Records the body's error (the first one counts) and wakes the request.
    pub(crate) fn fail(&self, error: Error) {
        if self.error.set(error).is_ok() {
            self.set.notify_waiters();
        }
    }

    /// The body's error, if it failed.
    pub(crate) fn get(&self) -> Option<&Error> {
        self.error.get()
    }

    /// Waits until the body fails (forever, if it does not).
    pub(crate) async fn failed(&self) -> Error {
        loop {
            let notified = self.set.notified();
            if let Some(e) = self.error.get() {
                return e.clone();
            }
            notified.await;
        }
    }
}

/// Keeps a request's upload task alive; dropping it (the request or its response body went
/// away) stops the task, which drops the stream it writes to, so the stream is reset and the
/// caller's body is no longer pulled.
pub(crate) struct UploadGuard(#[allow(dead_code)] Option<tokio::sync::oneshot::Sender<()>>);

impl UploadGuard {
    /// A guard for a request with no upload task.
    pub(crate) fn none() -> UploadGuard {
        UploadGuard(None)
    }

    /// Spawns `upload` on `runtime`, to run until it ends or the guard is dropped.
    pub(crate) fn spawn(
        runtime: &Handle,
        upload: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> UploadGuard {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            // The upload first: a task that first runs after its request has ended still
            // sends what it can at once (an HTTP/3 stream's FIN) before it sees the guard gone.
            tokio::select! {
                biased;
                _ = upload => {}
                _ = rx => {}
            }
        });
        UploadGuard(Some(tx))
    }
}
