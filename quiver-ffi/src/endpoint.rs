//! What datagram handles (`quiver_channel`, `quiver_udp_tunnel`) share: the state a handle
//! and its task share, and the one delivery loop that hands core's datagram receiver to C
//! callbacks. Core's sender and receiver halves do the work; this file only adds the C side
//! (pause, close before open, cancellation, callbacks in order).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;
use quiver_core::embed::Signal;
use quiver_core::{DatagramReceiver, DatagramSender, Error, ErrorKind, HeaderMap, ResponseHead};

use crate::queue::Runner;
use crate::response::Response;
use crate::stream::Pause;

/// The state a datagram handle shares with its task.
#[derive(Default)]
pub(crate) struct Endpoint {
    /// Set once open.
    sender: OnceLock<DatagramSender>,
    /// Set by the C close function: sends fail from then on.
    closed: AtomicBool,
    /// Fired with `closed`: the task finishes our side of the stream.
    close: Signal,
    /// Set when the task has ended (its `on_end` is on its way).
    pub(crate) ended: AtomicBool,
    pub(crate) cancel: Signal,
    pub(crate) pause: Pause,
    pub(crate) head: OnceLock<Response>,
}

impl Endpoint {
    /// Publishes the head and the send handle once open; sending works from here on.
    pub(crate) fn opened(&self, head: &ResponseHead, sender: DatagramSender) -> &Response {
        let head = self.head.get_or_init(|| Response::from_response_head(head));
        let _ = self.sender.set(sender);
        head
    }

    /// The send handle while open: after `on_open`, before close and the end. `what` names
    /// the handle in errors, `close_fn` the C function that closes it.
    pub(crate) fn open_sender(&self, what: &str, close_fn: &str) -> Result<&DatagramSender, Error> {
        let failed = |message: String| Err(Error::new(ErrorKind::DatagramError, message));
        if self.closed.load(Ordering::SeqCst) {
            return failed(format!("{what} is closed ({close_fn})"));
        }
        if self.ended.load(Ordering::SeqCst) {
            return failed(format!("{what} has ended"));
        }
        match self.sender.get() {
            Some(sender) => Ok(sender),
            None => failed(format!("{what} is not open yet (wait for on_open)")),
        }
    }

    /// The largest payload the open endpoint takes now (0 when it cannot send).
    pub(crate) fn max_payload(&self, what: &str, close_fn: &str) -> usize {
        self.open_sender(what, close_fn)
            .ok()
            .and_then(DatagramSender::max_payload)
            .unwrap_or(0)
    }

    /// Closes our side: sends fail from now on and the task finishes the stream.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.close.fire();
    }
}

/// What the delivery loop hands to C: a datagram, or a piece of the stream's data.
pub(crate) enum Delivery {
    Datagram(Bytes),
    Data(Bytes),
}

/// Delivers what `receiver` gets to C, one callback at a time through `runner` (`job` makes
/// the callback for a delivery, `None` when C registered none for its kind), until the stream
/// ends (its trailers are returned) or `interrupted` completes. Datagrams go first; stream
/// data is read only when `with_data`.
pub(crate) async fn deliver<J>(
    endpoint: &Endpoint,
    receiver: &DatagramReceiver,
    with_data: bool,
    runner: &Runner,
    mut interrupted: Pin<&mut impl Future<Output = Error>>,
    job: impl Fn(Delivery) -> Option<J>,
) -> Result<Option<HeaderMap>, Error>
where
    J: FnOnce() + Send + 'static,
{
    let mut closing = false;
    let mut datagrams_done = false;
    let mut data_done = !with_data;
    while !(datagrams_done && data_done) {
        // While paused nothing is read: datagrams beyond the queue are dropped (they are
        // unreliable), stream data is held back by flow control. A failure still ends it.
        {
            let mut failed = std::pin::pin!(receiver.failed());
            endpoint
                .pause
                .wait(std::future::poll_fn(|cx| {
                    match interrupted.as_mut().poll(cx) {
                        std::task::Poll::Ready(e) => std::task::Poll::Ready(e),
                        std::task::Poll::Pending => failed.as_mut().poll(cx),
                    }
                }))
                .await?;
        }
        let delivery = tokio::select! {
            biased;
            e = &mut interrupted => return Err(e),
            () = endpoint.close.fired(), if !closing => {
                closing = true;
                if let Some(sender) = endpoint.sender.get() {
                    tokio::select! {
                        biased;
                        e = &mut interrupted => return Err(e),
                        r = sender.close() => r?,
                    }
                }
                continue;
            }
            // Both receives are cancel-safe: what one read stays for the next.
            r = receiver.recv(), if !datagrams_done => match r? {
                Some(d) => Delivery::Datagram(d),
                None => {
                    datagrams_done = true;
                    continue;
                }
            },
            r = receiver.recv_data(), if !data_done => match r? {
                Some(d) => Delivery::Data(d),
                None => {
                    data_done = true;
                    continue;
                }
            },
        };
        if let Some(job) = job(delivery) {
            runner.next(job, interrupted.as_mut()).await?;
        }
    }
    Ok(receiver.trailers())
}
