//! The QUIC connection as h3 sees it: quinn through `h3-quinn`, plus what the server needs to
//! know about each stream as it is accepted.
//!
//! [`QuicConn`] implements h3's QUIC traits by delegating to [`h3_quinn::Connection`], except
//! that the client's streams are accepted eagerly, by a task of their own started as soon as
//! the QUIC connection exists (before the HTTP/3 set-up), which:
//!
//! - notes whether each stream was accepted before the TLS handshake completed, i.e. arrived as
//!   0-RTT early data (the same test as quinn's `RecvStream::is_0rtt`, which h3-quinn hides).
//!   Accepting in a task that does nothing else keeps that test right even on a multi-threaded
//!   runtime, where the handshake may complete while the connection task is busy;
//! - after a GOAWAY, resets and stops every request stream at or beyond the GOAWAY's stream id
//!   with `H3_REQUEST_REJECTED`, so that h3 never sees them (h3 0.0.8 itself only rejects the
//!   streams *beyond* the id, while RFC 9114, 5.2, says the id itself is the first one not
//!   processed).

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h3::error::Code;
use h3::quic::{self, ConnectionErrorIncoming, StreamErrorIncoming};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::AbortOnDrop;
use crate::stats::Counters;

/// A request stream h3 was handed, waiting for the accept loop to claim it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// The QUIC stream id.
    pub(crate) id: u64,
    /// Whether it was accepted before the handshake completed (0-RTT early data).
    pub(crate) early: bool,
}

/// What the connection task shares with its [`QuicConn`].
#[derive(Debug)]
pub(crate) struct AcceptState {
    /// Request streams handed to h3, in order, until the accept loop claims them.
    accepted: Mutex<VecDeque<Accepted>>,
    /// Request streams with this id or a higher one are rejected; `u64::MAX`: none.
    reject_from: AtomicU64,
    /// The id after the last request stream accepted (0: none yet).
    next_id: AtomicU64,
    /// Whether a stream arrived before the handshake completed.
    zero_rtt: AtomicBool,
}

impl Default for AcceptState {
    fn default() -> Self {
        AcceptState {
            accepted: Mutex::new(VecDeque::new()),
            reject_from: AtomicU64::new(u64::MAX),
            next_id: AtomicU64::new(0),
            zero_rtt: AtomicBool::new(false),
        }
    }
}

impl AcceptState {
    /// The oldest request stream h3 was handed and nobody claimed yet.
    pub(crate) fn claim(&self) -> Option<Accepted> {
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// The stream id a GOAWAY sent now must carry: the one after the last accepted stream
    /// (0 when none was accepted).
    pub(crate) fn goaway_id(&self) -> u64 {
        self.next_id.load(Ordering::SeqCst)
    }

    /// From now on, reject every request stream whose id is `id` or higher.
    pub(crate) fn reject_from(&self, id: u64) {
        self.reject_from.fetch_min(id, Ordering::SeqCst);
    }
}

type Bidi = h3_quinn::BidiStream<Bytes>;
type Incoming<S> = Result<(S, bool), ConnectionErrorIncoming>;

/// h3's view of one quinn connection; see the module documentation.
pub(crate) struct QuicConn {
    /// Opens the server's streams (control, QPACK) and closes the connection.
    inner: h3_quinn::Connection,
    bidi: UnboundedReceiver<Incoming<Bidi>>,
    uni: UnboundedReceiver<Incoming<h3_quinn::RecvStream>>,
    /// The last accept error, repeated once the acceptor has ended.
    error: Option<ConnectionErrorIncoming>,
    state: Arc<AcceptState>,
    counters: Arc<Counters>,
    _acceptor: AbortOnDrop,
}

impl QuicConn {
    /// Wraps `conn` and starts accepting its streams; `handshake` is the server side's
    /// [`quinn::ZeroRttAccepted`] (it resolves when the handshake completes), `None` if it has
    /// completed already.
    pub(crate) fn new(
        conn: quinn::Connection,
        handshake: Option<quinn::ZeroRttAccepted>,
        state: Arc<AcceptState>,
        counters: Arc<Counters>,
    ) -> Self {
        let (bidi_tx, bidi) = mpsc::unbounded_channel();
        let (uni_tx, uni) = mpsc::unbounded_channel();
        let mut acceptor = Acceptor {
            conn: h3_quinn::Connection::new(conn.clone()),
            handshake,
            bidi: Some(bidi_tx),
            uni: Some(uni_tx),
        };
        // The streams that came with the first flight (0-RTT packets quinn buffered until the
        // connection was accepted) are there already: take them now, before the spawned task
        // gets to run, by which time the handshake may have completed.
        let _ = acceptor.poll_accept(&mut Context::from_waker(std::task::Waker::noop()));
        QuicConn {
            inner: h3_quinn::Connection::new(conn),
            bidi,
            uni,
            error: None,
            state,
            counters,
            _acceptor: AbortOnDrop(tokio::spawn(acceptor.run())),
        }
    }

    /// Takes the next accepted stream of `rx`, noting 0-RTT.
    fn poll_next<S>(
        &mut self,
        cx: &mut Context<'_>,
        bidi: bool,
    ) -> Poll<Result<(S, bool), ConnectionErrorIncoming>>
    where
        Self: Channel<S>,
    {
        let next = ready!(self.channel().poll_recv(cx));
        let (stream, early) = match next {
            Some(Ok(accepted)) => accepted,
            Some(Err(e)) => {
                self.error = Some(e.clone());
                return Poll::Ready(Err(e));
            }
            None => {
                return Poll::Ready(Err(self.error.clone().unwrap_or_else(|| {
                    ConnectionErrorIncoming::InternalError(format!(
                        "the {} stream acceptor ended",
                        if bidi {
                            "bidirectional"
                        } else {
                            "unidirectional"
                        }
                    ))
                })))
            }
        };
        if early && !self.state.zero_rtt.swap(true, Ordering::SeqCst) {
            self.counters.on_h3_zero_rtt_accepted();
        }
        Poll::Ready(Ok((stream, early)))
    }
}

/// Picks the channel of one stream kind.
trait Channel<S> {
    fn channel(&mut self) -> &mut UnboundedReceiver<Incoming<S>>;
}

impl Channel<Bidi> for QuicConn {
    fn channel(&mut self) -> &mut UnboundedReceiver<Incoming<Bidi>> {
        &mut self.bidi
    }
}

impl Channel<h3_quinn::RecvStream> for QuicConn {
    fn channel(&mut self) -> &mut UnboundedReceiver<Incoming<h3_quinn::RecvStream>> {
        &mut self.uni
    }
}

/// Accepts the client's streams as soon as quinn has them, noting whether the handshake was
/// still in progress then.
struct Acceptor {
    conn: h3_quinn::Connection,
    handshake: Option<quinn::ZeroRttAccepted>,
    bidi: Option<UnboundedSender<Incoming<Bidi>>>,
    uni: Option<UnboundedSender<Incoming<h3_quinn::RecvStream>>>,
}

impl Acceptor {
    /// Whether the handshake is still in progress.
    fn handshaking(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(handshake) = self.handshake.as_mut() else {
            return false;
        };
        if Pin::new(handshake).poll(cx).is_ready() {
            self.handshake = None;
            return false;
        }
        true
    }

    /// Forwards what `polled` produced (if anything) to `tx`; drops `tx` after an error or
    /// once nobody listens.
    fn forward<S>(
        tx: &mut Option<UnboundedSender<Incoming<S>>>,
        polled: Poll<Result<S, ConnectionErrorIncoming>>,
        early: bool,
    ) -> bool {
        let Poll::Ready(result) = polled else {
            return false;
        };
        let failed = result.is_err();
        let sent = tx
            .as_ref()
            .is_some_and(|tx| tx.send(result.map(|s| (s, early))).is_ok());
        if failed || !sent {
            *tx = None;
        }
        true
    }

    /// Accepts every stream quinn has now; ready once nothing more can come.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let mut progressed = false;
            if self.bidi.is_some() {
                let polled = quic::Connection::<Bytes>::poll_accept_bidi(&mut self.conn, cx);
                let early = polled.is_ready() && self.handshaking(cx);
                progressed |= Self::forward(&mut self.bidi, polled, early);
            }
            if self.uni.is_some() {
                let polled = quic::Connection::<Bytes>::poll_accept_recv(&mut self.conn, cx);
                let early = polled.is_ready() && self.handshaking(cx);
                progressed |= Self::forward(&mut self.uni, polled, early);
            }
            if self.bidi.is_none() && self.uni.is_none() {
                return Poll::Ready(());
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }

    async fn run(mut self) {
        poll_fn(|cx| self.poll_accept(cx)).await;
    }
}

impl quic::OpenStreams<Bytes> for QuicConn {
    type BidiStream = Bidi;
    type SendStream = h3_quinn::SendStream<Bytes>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        quic::OpenStreams::<Bytes>::poll_open_bidi(&mut self.inner, cx)
    }

    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        quic::OpenStreams::<Bytes>::poll_open_send(&mut self.inner, cx)
    }

    fn close(&mut self, code: Code, reason: &[u8]) {
        quic::OpenStreams::<Bytes>::close(&mut self.inner, code, reason);
    }
}

impl quic::Connection<Bytes> for QuicConn {
    type RecvStream = h3_quinn::RecvStream;
    type OpenStreams = h3_quinn::OpenStreams;

    fn poll_accept_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::RecvStream, ConnectionErrorIncoming>> {
        self.poll_next(cx, false).map_ok(|(stream, _)| stream)
    }

    fn poll_accept_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, ConnectionErrorIncoming>> {
        loop {
            let (mut stream, early) = ready!(self.poll_next::<Bidi>(cx, true))?;
            let id = quic::SendStream::<Bytes>::send_id(&stream).into_inner();
            if id >= self.state.reject_from.load(Ordering::SeqCst) {
                let rejected = Code::H3_REQUEST_REJECTED.value();
                quic::RecvStream::stop_sending(&mut stream, rejected);
                quic::SendStream::<Bytes>::reset(&mut stream, rejected);
                continue;
            }
            self.state.next_id.fetch_max(id + 4, Ordering::SeqCst);
            self.state
                .accepted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(Accepted { id, early });
            return Poll::Ready(Ok(stream));
        }
    }

    fn opener(&self) -> Self::OpenStreams {
        quic::Connection::<Bytes>::opener(&self.inner)
    }
}
