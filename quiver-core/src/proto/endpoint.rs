//! The receive plumbing of long-lived streams that carry datagrams (HTTP/3 datagram channels,
//! CONNECT-UDP tunnels over HTTP/3 or HTTP/2): two bounded queues filled by the protocol's
//! tasks, one for datagrams (dropped when full: datagrams are unreliable) and one for the
//! stream's own data (its producer waits when full, so flow control reaches the peer), and one
//! cell that says how the stream ended. The public receiver in `datagram` reads them.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::{mpsc, Notify};

use crate::error::{Error, Result};

/// What a stream carried besides datagrams, in order.
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// A piece of the stream's data (capsules, for protocols that use them).
    Data(Bytes),
    /// The stream's trailers (its last event before the end).
    Trailers(HeaderMap),
}

/// How an endpoint's stream ended, set once by whoever sees the end first.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    cell: OnceLock<Result<(), Error>>,
    set: Notify,
}

impl Outcome {
    /// The stream ended cleanly.
    pub(crate) fn end(&self) {
        self.settle(Ok(()));
    }

    /// The stream (or its connection) failed.
    pub(crate) fn fail(&self, e: Error) {
        self.settle(Err(e));
    }

    fn settle(&self, outcome: Result<(), Error>) {
        if self.cell.set(outcome).is_ok() {
            self.set.notify_waiters();
        }
    }

    /// How it ended, once it has.
    pub(crate) fn get(&self) -> Option<&Result<(), Error>> {
        self.cell.get()
    }

    /// Completes once the stream has ended, with how it ended.
    pub(crate) async fn settled(&self) -> &Result<(), Error> {
        loop {
            let set = self.set.notified();
            if let Some(outcome) = self.cell.get() {
                return outcome;
            }
            set.await;
        }
    }
}

/// The producing side of an endpoint: where a connection's worker puts datagrams and a reader
/// task puts stream events. Dropping every datagram sender (and the stream sender) ends the
/// receiver's queues once drained.
pub(crate) struct Producers {
    pub datagrams: mpsc::Sender<Bytes>,
    pub stream: mpsc::Sender<StreamEvent>,
    pub outcome: Arc<Outcome>,
}

/// The consuming side, for the receiver.
pub(crate) struct Queues {
    pub datagrams: mpsc::Receiver<Bytes>,
    pub stream: mpsc::Receiver<StreamEvent>,
    pub outcome: Arc<Outcome>,
}

/// Stream events a receiver holds before the stream's reader waits for it.
const STREAM_QUEUE: usize = 16;

/// A pair of bounded queues: `datagram_queue` datagrams (at least 1), and a few stream events.
pub(crate) fn queues(datagram_queue: usize) -> (Producers, Queues) {
    let (dtx, drx) = mpsc::channel(datagram_queue.max(1));
    let (stx, srx) = mpsc::channel(STREAM_QUEUE);
    let outcome = Arc::new(Outcome::default());
    (
        Producers {
            datagrams: dtx,
            stream: stx,
            outcome: outcome.clone(),
        },
        Queues {
            datagrams: drx,
            stream: srx,
            outcome,
        },
    )
}

/// Where a connection's worker delivers one stream's datagrams.
#[derive(Clone)]
pub(crate) struct DatagramSink {
    pub datagrams: mpsc::Sender<Bytes>,
    pub outcome: Arc<Outcome>,
}

impl DatagramSink {
    /// Delivers a datagram; a full queue drops it (datagrams are unreliable by contract).
    pub(crate) fn deliver(&self, datagram: Bytes) {
        let _ = self.datagrams.try_send(datagram);
    }
}
