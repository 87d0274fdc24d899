//! The decisions of a multiplexing coordinator (HTTP/2 and HTTP/3 share it), as a plain struct
//! driven without sockets: which connection gets a caller, when to open another, when to drain
//! and close.
//!
//! A connection starts `Connecting` (its stream slots assumed, so callers arriving during the
//! handshake wait for it rather than opening more), becomes `Ready` with the peer's stream
//! limit, and `Draining` after GOAWAY (no new streams; closed when its last stream ends).
//! Callers take the least-loaded ready connection with a free slot; when none has one they
//! queue FIFO, and a connection opens when the queue outgrows the slots in sight, up to
//! `max_connections`.
//!
//! Longer than most files: the scenario tests of these decisions (no sockets needed) live here,
//! beside the code they drive.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::Error;

/// Identifies a connection within one coordinator.
pub(crate) type ConnId = u64;

/// A lease on one stream slot that can be turned back into its parts without side effects.
pub(crate) trait SlotLease<H> {
    /// Takes the slot out of the lease (its drop then does nothing).
    fn into_parts(self) -> (ConnId, H);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    Ready,
    Draining,
}

struct Slot<H, C> {
    id: ConnId,
    phase: Phase,
    handle: Option<H>,
    control: C,
    in_flight: usize,
    max_streams: usize,
    idle_since: Instant,
}

struct Waiter<L> {
    tx: oneshot::Sender<Result<L, Error>>,
    avoid: Option<ConnId>,
}

/// What `checkout` decided.
pub(crate) enum MuxCheckout<H, L> {
    /// A stream slot on this connection is yours.
    Ready(ConnId, H),
    /// Wait on `rx`; if `connect` is set, start connecting that (new) connection.
    Wait {
        rx: oneshot::Receiver<Result<L, Error>>,
        connect: Option<ConnId>,
    },
}

/// Per-connection view for stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnView {
    pub phase: Phase,
    pub in_flight: usize,
    pub max_streams: usize,
}

/// The coordinator's bookkeeping. `C` is what it keeps per connection to close it.
pub(crate) struct MuxState<H, L, C> {
    max_connections: usize,
    assumed_streams: usize,
    idle_timeout: Duration,
    next_id: ConnId,
    slots: Vec<Slot<H, C>>,
    waiters: VecDeque<Waiter<L>>,
}

impl<H: Clone, L: SlotLease<H>, C: Clone> MuxState<H, L, C> {
    pub(crate) fn new(
        max_connections: usize,
        assumed_streams: usize,
        idle_timeout: Duration,
    ) -> Self {
        MuxState {
            max_connections,
            assumed_streams,
            idle_timeout,
            next_id: 1,
            slots: Vec::new(),
            waiters: VecDeque::new(),
        }
    }

    fn index(&self, id: ConnId) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id)
    }

    /// Counts one more stream on the ready connection at `i` (from `pick`) and hands out its
    /// handle.
    fn take_stream(&mut self, i: usize) -> (ConnId, H) {
        let slot = &mut self.slots[i];
        slot.in_flight += 1;
        let handle = slot
            .handle
            .clone()
            .expect("a ready connection has a handle");
        (slot.id, handle)
    }

    /// The least-loaded ready connection with a free slot, avoiding `avoid` unless nothing else
    /// can ever serve the caller.
    fn pick(&self, avoid: Option<ConnId>) -> Option<usize> {
        let free = |s: &Slot<H, C>| s.phase == Phase::Ready && s.in_flight < s.max_streams;
        let best = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| free(s) && Some(s.id) != avoid)
            .min_by_key(|(_, s)| s.in_flight)
            .map(|(i, _)| i);
        if best.is_some() || avoid.is_none() {
            return best;
        }
        let others_coming = self
            .slots
            .iter()
            .any(|s| Some(s.id) != avoid && s.phase != Phase::Draining);
        if others_coming || self.slots.len() < self.max_connections {
            return None;
        }
        self.slots
            .iter()
            .position(|s| Some(s.id) == avoid && free(s))
    }

    /// A caller wants a stream slot (`avoid`: a connection that just refused this request).
    pub(crate) fn checkout(
        &mut self,
        avoid: Option<ConnId>,
        control: impl FnOnce() -> C,
    ) -> MuxCheckout<H, L> {
        if self.waiters.is_empty() {
            if let Some(i) = self.pick(avoid) {
                let (id, handle) = self.take_stream(i);
                return MuxCheckout::Ready(id, handle);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push_back(Waiter { tx, avoid });
        let connect = if avoid.is_some() && self.slots.len() < self.max_connections {
            Some(self.add_slot(control()))
        } else {
            self.maybe_open(control)
        };
        MuxCheckout::Wait { rx, connect }
    }

    /// Adds a connection unconditionally (one whose transport already exists).
    pub(crate) fn open_slot(&mut self, control: C) -> ConnId {
        self.add_slot(control)
    }

    fn add_slot(&mut self, control: C) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        self.slots.push(Slot {
            id,
            phase: Phase::Connecting,
            handle: None,
            control,
            in_flight: 0,
            max_streams: self.assumed_streams,
            idle_since: Instant::now(),
        });
        id
    }

    /// Opens a connection when the callers waiting outnumber the free slots in sight
    /// (ready or still connecting) and there is room.
    fn maybe_open(&mut self, control: impl FnOnce() -> C) -> Option<ConnId> {
        self.waiters.retain(|w| !w.tx.is_closed());
        let waiting = self.waiters.len();
        let in_sight: usize = self
            .slots
            .iter()
            .filter(|s| s.phase != Phase::Draining)
            .map(|s| s.max_streams.saturating_sub(s.in_flight))
            .sum();
        if waiting > in_sight && self.slots.len() < self.max_connections {
            Some(self.add_slot(control()))
        } else {
            None
        }
    }

    /// Hands free slots to waiting callers, first come first served.
    fn serve(&mut self, wrap: &impl Fn(ConnId, H) -> L) {
        while let Some(waiter) = self.waiters.front() {
            if waiter.tx.is_closed() {
                self.waiters.pop_front();
                continue;
            }
            let Some(i) = self.pick(waiter.avoid) else {
                break;
            };
            let waiter = self.waiters.pop_front().expect("front exists");
            let (id, handle) = self.take_stream(i);
            if let Err(Ok(lease)) = waiter.tx.send(Ok(wrap(id, handle))) {
                // The caller gave up meanwhile: take the slot back.
                let _ = lease.into_parts();
                self.slots[i].in_flight -= 1;
            }
        }
    }

    /// A connection finished its handshake and may open `max_streams` streams.
    pub(crate) fn connected(
        &mut self,
        id: ConnId,
        handle: H,
        max_streams: usize,
        wrap: &impl Fn(ConnId, H) -> L,
    ) {
        if let Some(i) = self.index(id) {
            let slot = &mut self.slots[i];
            slot.phase = Phase::Ready;
            slot.handle = Some(handle);
            slot.max_streams = max_streams.max(1);
            slot.idle_since = Instant::now();
            self.serve(wrap);
        }
    }

    /// A connect failed. When no other connection is up or coming, every waiting caller gets
    /// the error; otherwise they keep waiting for the others. No replacement is opened here, so
    /// an unreachable origin is not hammered with connects.
    pub(crate) fn connect_failed(&mut self, id: ConnId, err: Error) {
        if let Some(i) = self.index(id) {
            self.slots.remove(i);
        }
        if !self.slots.iter().any(|s| s.phase != Phase::Draining) {
            for w in self.waiters.drain(..) {
                let _ = w.tx.send(Err(err.clone()));
            }
        }
    }

    /// A stream ended. Returns the control of a draining connection that just became empty
    /// (to close it).
    pub(crate) fn release(
        &mut self,
        id: ConnId,
        now: Instant,
        wrap: &impl Fn(ConnId, H) -> L,
    ) -> Option<C> {
        let i = self.index(id)?;
        let slot = &mut self.slots[i];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if slot.in_flight == 0 {
            slot.idle_since = now;
            if slot.phase == Phase::Draining {
                return Some(self.slots.remove(i).control);
            }
        }
        self.serve(wrap);
        None
    }

    /// The peer sent GOAWAY: no new streams on `id`. Returns its control if it can close now,
    /// and a connection to open for waiting callers, if any.
    pub(crate) fn draining(
        &mut self,
        id: ConnId,
        control: impl FnOnce() -> C,
    ) -> (Option<C>, Option<ConnId>) {
        let mut close = None;
        if let Some(i) = self.index(id) {
            self.slots[i].phase = Phase::Draining;
            if self.slots[i].in_flight == 0 {
                close = Some(self.slots.remove(i).control);
            }
        }
        (close, self.maybe_open(control))
    }

    /// The connection is gone. Returns a connection to open for waiting callers, if any.
    pub(crate) fn closed(&mut self, id: ConnId, control: impl FnOnce() -> C) -> Option<ConnId> {
        if let Some(i) = self.index(id) {
            self.slots.remove(i);
        }
        self.maybe_open(control)
    }

    /// The peer changed its stream limit.
    pub(crate) fn set_max_streams(
        &mut self,
        id: ConnId,
        max_streams: usize,
        wrap: &impl Fn(ConnId, H) -> L,
    ) {
        if let Some(i) = self.index(id) {
            self.slots[i].max_streams = max_streams.max(1);
            self.serve(wrap);
        }
    }

    /// Removes ready connections idle for `idle_timeout`; returns their controls to close.
    pub(crate) fn reap(&mut self, now: Instant) -> Vec<C> {
        let timeout = self.idle_timeout;
        let mut closed = Vec::new();
        self.slots.retain(|s| {
            let idle = s.phase == Phase::Ready
                && s.in_flight == 0
                && now.saturating_duration_since(s.idle_since) >= timeout;
            if idle {
                closed.push(s.control.clone());
            }
            !idle
        });
        closed
    }

    /// Takes the connection idle longest (ready, no stream in flight) out, to close it and make
    /// room under the client-wide cap.
    pub(crate) fn evict_one(&mut self) -> Option<C> {
        let i = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.phase == Phase::Ready && s.in_flight == 0)
            .min_by_key(|(_, s)| s.idle_since)
            .map(|(i, _)| i)?;
        Some(self.slots.remove(i).control)
    }

    /// Takes every waiting caller out of the queue (to fail them when the pool shuts down).
    pub(crate) fn take_waiters(&mut self) -> Vec<oneshot::Sender<Result<L, Error>>> {
        self.waiters.drain(..).map(|w| w.tx).collect()
    }

    /// Every connection's control (to close them all).
    pub(crate) fn controls(&self) -> Vec<C> {
        self.slots.iter().map(|s| s.control.clone()).collect()
    }

    /// Whether some connection is ready, and whether one is being set up.
    #[cfg(feature = "http3")]
    pub(crate) fn readiness(&self) -> (bool, bool) {
        let has = |phase| self.slots.iter().any(|s| s.phase == phase);
        (has(Phase::Ready), has(Phase::Connecting))
    }

    pub(crate) fn queued(&self) -> usize {
        self.waiters.iter().filter(|w| !w.tx.is_closed()).count()
    }

    pub(crate) fn view(&self) -> Vec<ConnView> {
        self.slots
            .iter()
            .map(|s| ConnView {
                phase: s.phase,
                in_flight: s.in_flight,
                max_streams: s.max_streams,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[derive(Debug)]
    struct L(ConnId, &'static str);
    impl SlotLease<&'static str> for L {
        fn into_parts(self) -> (ConnId, &'static str) {
            (self.0, self.1)
        }
    }
    type S = MuxState<&'static str, L, ()>;

    fn wrap(id: ConnId, h: &'static str) -> L {
        L(id, h)
    }

    fn wait(
        c: MuxCheckout<&'static str, L>,
    ) -> (oneshot::Receiver<Result<L, Error>>, Option<ConnId>) {
        match c {
            MuxCheckout::Wait { rx, connect } => (rx, connect),
            MuxCheckout::Ready(id, h) => panic!("unexpected ready {id} {h}"),
        }
    }

    fn ready(c: MuxCheckout<&'static str, L>) -> ConnId {
        match c {
            MuxCheckout::Ready(id, _) => id,
            MuxCheckout::Wait { .. } => panic!("expected a ready slot"),
        }
    }

    #[test]
    fn callers_during_the_handshake_wait_for_it() {
        let mut s = S::new(4, 100, Duration::from_secs(30));
        let (_rx0, connect) = wait(s.checkout(None, || ()));
        assert_eq!(connect, Some(1));
        let mut rxs = Vec::new();
        for _ in 0..99 {
            let (rx, connect) = wait(s.checkout(None, || ()));
            assert_eq!(
                connect, None,
                "100 assumed slots cover 100 callers: no second connection"
            );
            rxs.push(rx);
        }
        // The 101st caller outgrows the assumed slots: a second connection opens.
        let (_rx, connect) = wait(s.checkout(None, || ()));
        assert_eq!(connect, Some(2));
        s.connected(1, "c1", 100, &wrap);
        for mut rx in rxs {
            assert_eq!(rx.try_recv().unwrap().unwrap().0, 1);
        }
    }

    #[test]
    fn least_loaded_pick_and_limits() {
        let mut s = S::new(2, 100, Duration::from_secs(30));
        let (mut rx, c) = wait(s.checkout(None, || ()));
        s.connected(c.unwrap(), "c1", 2, &wrap);
        assert_eq!(rx.try_recv().unwrap().unwrap().0, 1);
        assert_eq!(ready(s.checkout(None, || ())), 1);
        // Connection 1 is full (2 streams): the next caller opens connection 2.
        let (mut rx, c) = wait(s.checkout(None, || ()));
        assert_eq!(c, Some(2));
        s.connected(2, "c2", 2, &wrap);
        assert_eq!(rx.try_recv().unwrap().unwrap().0, 2);
        // Release one on connection 1: it is now the least loaded (1 vs 1 -> either), then 0 vs 1.
        assert!(s.release(1, Instant::now(), &wrap).is_none());
        assert!(s.release(1, Instant::now(), &wrap).is_none());
        assert_eq!(ready(s.checkout(None, || ())), 1);
        // All four slots busy and max_connections reached: callers queue, none opens.
        assert_eq!(ready(s.checkout(None, || ())), 1);
        assert_eq!(ready(s.checkout(None, || ())), 2);
        let (mut rx, c) = wait(s.checkout(None, || ()));
        assert_eq!(c, None);
        assert_eq!(s.queued(), 1);
        s.release(2, Instant::now(), &wrap);
        assert_eq!(
            rx.try_recv().unwrap().unwrap().0,
            2,
            "a freed slot goes to the head of the queue"
        );
    }

    #[test]
    fn goaway_drains_then_closes_and_opens_a_replacement() {
        let mut s = S::new(1, 100, Duration::from_secs(30));
        let (_rx, c) = wait(s.checkout(None, || ()));
        s.connected(c.unwrap(), "c1", 10, &wrap);
        assert_eq!(ready(s.checkout(None, || ())), 1);
        let (close, open) = s.draining(1, || ());
        assert!(close.is_none(), "streams still in flight");
        assert!(open.is_none(), "nobody waiting");
        // No new streams on a draining connection; at max_connections the caller waits.
        let (mut rx, c) = wait(s.checkout(None, || ()));
        assert_eq!(c, None);
        assert!(s.release(1, Instant::now(), &wrap).is_none());
        assert!(
            s.release(1, Instant::now(), &wrap).is_some(),
            "the last stream closes it"
        );
        let open = s.closed(1, || ());
        assert_eq!(open, Some(2), "the waiting caller gets a new connection");
        s.connected(2, "c2", 10, &wrap);
        assert_eq!(rx.try_recv().unwrap().unwrap().0, 2);
    }

    #[test]
    fn failed_connect_fails_waiters_only_when_nothing_else_can_serve() {
        let mut s = S::new(2, 1, Duration::from_secs(30));
        let (mut rx1, c1) = wait(s.checkout(None, || ()));
        let (mut rx2, c2) = wait(s.checkout(None, || ()));
        assert_eq!((c1, c2), (Some(1), Some(2)));
        s.connect_failed(1, Error::new(ErrorKind::ConnectRefused, "no"));
        assert!(rx1.try_recv().is_err(), "connection 2 may still serve");
        s.connect_failed(2, Error::new(ErrorKind::ConnectRefused, "no"));
        assert_eq!(
            rx1.try_recv().unwrap().unwrap_err().kind(),
            ErrorKind::ConnectRefused
        );
        assert_eq!(
            rx2.try_recv().unwrap().unwrap_err().kind(),
            ErrorKind::ConnectRefused
        );
    }

    #[test]
    fn avoid_prefers_another_connection() {
        let mut s = S::new(2, 100, Duration::from_secs(30));
        let (_rx, c) = wait(s.checkout(None, || ()));
        s.connected(c.unwrap(), "c1", 10, &wrap);
        s.release(1, Instant::now(), &wrap);
        let (mut rx, c) = wait(s.checkout(Some(1), || ()));
        assert_eq!(c, Some(2), "a refused request opens another connection");
        s.connected(2, "c2", 10, &wrap);
        assert_eq!(rx.try_recv().unwrap().unwrap().0, 2);
        // At max_connections with the other connection draining, the avoided one is used.
        let mut s = S::new(1, 100, Duration::from_secs(30));
        let (_rx, c) = wait(s.checkout(None, || ()));
        s.connected(c.unwrap(), "c1", 10, &wrap);
        s.release(1, Instant::now(), &wrap);
        assert_eq!(ready(s.checkout(Some(1), || ())), 1);
    }

    #[test]
    fn idle_connections_are_reaped_and_abandoned_waiters_skipped() {
        let t0 = Instant::now();
        let mut s = S::new(1, 1, Duration::from_secs(30));
        let (rx, c) = wait(s.checkout(None, || ()));
        drop(rx);
        s.connected(c.unwrap(), "c1", 1, &wrap);
        assert_eq!(
            s.view()[0].in_flight,
            0,
            "the abandoned caller's slot was taken back"
        );
        assert_eq!(s.reap(t0 + Duration::from_secs(60)).len(), 1);
        assert!(s.view().is_empty());
    }
}
