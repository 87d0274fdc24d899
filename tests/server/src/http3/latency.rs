//! Simulated network latency on the receiving side of the HTTP/3 listeners
//! ([`H3Options::latency`](crate::H3Options::latency)).
//!
//! [`DelayedRecv`] wraps the socket quinn would use: every datagram it receives is taken from
//! the socket at once, stamped with its arrival time and queued; quinn gets it only once
//! `latency` has passed since then, in arrival order. Nothing is dropped, and sends go straight
//! to the socket.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::time::{Instant, Sleep};

/// The most batches one `poll_recv` takes from the socket before handing out what is due (it
/// then wakes its task to go on), so that a flood cannot hold the endpoint driver in one call.
const MAX_BATCHES: usize = 64;

/// A UDP socket for quinn whose received datagrams reach quinn `latency` after they arrived.
pub(crate) struct DelayedRecv {
    inner: Arc<dyn AsyncUdpSocket>,
    latency: Duration,
    /// Only quinn's endpoint driver receives, so this is never contended.
    state: Mutex<State>,
}

/// What arrived and is not due yet, and the timer for the head of the queue.
#[derive(Default)]
struct State {
    queue: VecDeque<Arrived>,
    /// Created on first use (it needs the runtime), then reset for each new head.
    timer: Option<Pin<Box<Sleep>>>,
}

/// One received buffer (one datagram, or several of `meta.stride` bytes with GRO), unchanged.
struct Arrived {
    due: Instant,
    meta: RecvMeta,
    data: Vec<u8>,
}

impl DelayedRecv {
    /// Wraps `inner` (a socket from quinn's runtime) with `latency` on receive.
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>, latency: Duration) -> Self {
        DelayedRecv {
            inner,
            latency,
            state: Mutex::new(State::default()),
        }
    }
}

impl fmt::Debug for DelayedRecv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queued = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queue
            .len();
        f.debug_struct("DelayedRecv")
            .field("inner", &self.inner)
            .field("latency", &self.latency)
            .field("queued", &queued)
            .finish()
    }
}

impl AsyncUdpSocket for DelayedRecv {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Arc::clone(&self.inner).create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        metas: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Everything the socket holds now goes to the queue (the caller's buffers serve as
        // scratch space), until the socket is empty, which registers the task for more.
        for batch in 0.. {
            if batch == MAX_BATCHES {
                cx.waker().wake_by_ref();
                break;
            }
            match self.inner.poll_recv(cx, bufs, metas) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(received)) => {
                    let due = Instant::now() + self.latency;
                    for (buf, meta) in bufs.iter().zip(metas.iter()).take(received) {
                        state.queue.push_back(Arrived {
                            due,
                            meta: *meta,
                            data: buf[..meta.len].to_vec(),
                        });
                    }
                }
            }
        }
        // Then hand out what is due, or arm the timer for the head of the queue.
        let mut now = Instant::now();
        loop {
            let mut filled = 0;
            while filled < bufs.len().min(metas.len())
                && state.queue.front().is_some_and(|head| head.due <= now)
            {
                let Some(arrived) = state.queue.pop_front() else {
                    break;
                };
                // quinn's buffers are as large as the socket's (the same segment counts), so
                // this never truncates.
                let len = arrived.data.len().min(bufs[filled].len());
                bufs[filled][..len].copy_from_slice(&arrived.data[..len]);
                let mut meta = arrived.meta;
                meta.len = len;
                metas[filled] = meta;
                filled += 1;
            }
            if filled > 0 {
                return Poll::Ready(Ok(filled));
            }
            let Some(due) = state.queue.front().map(|head| head.due) else {
                return Poll::Pending;
            };
            let timer = state
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            timer.as_mut().reset(due);
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The timer fired: the head is due.
            now = now.max(due);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}
