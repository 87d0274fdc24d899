//! The HTTP/1 pool's decisions, as a plain struct driven without sockets: which caller gets
//! which connection, when to open one, when an idle one expires.
//!
//! Connections are counted against `size` from the moment a connect starts until they are
//! discarded. Idle connections are reused last-in first-out. Callers that find no idle
//! connection join a FIFO queue; a connection that becomes available (a finished connect or a
//! check-in) goes to the head of the queue.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::Error;

/// What a queued caller receives: a lease on a connection (wrapping it so that a lease
/// dropped unseen still returns the connection), or the error of a failed connect.
pub(crate) type Delivery<L> = Result<L, Error>;

/// A lease that can be turned back into its bare connection without side effects.
pub(crate) trait Lease<C> {
    /// Takes the connection out of the lease (its drop then does nothing).
    fn into_conn(self) -> C;
}

/// A connection's health as the pool sees it.
pub(crate) trait PooledConn {
    /// False once the connection can no longer carry a request.
    fn is_open(&self) -> bool;
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// What `checkout` decided.
pub(crate) enum Checkout<C, L> {
    /// An idle connection, ready now.
    Ready(C),
    /// Wait on the receiver; when `connect` is true the caller must start a connect.
    Wait {
        rx: oneshot::Receiver<Delivery<L>>,
        connect: bool,
    },
}

/// The pool's bookkeeping.
pub(crate) struct H1State<C, L> {
    size: usize,
    idle_timeout: Duration,
    /// Connections counted against `size`: idle, leased and connecting.
    open: usize,
    connecting: usize,
    idle: Vec<Idle<C>>,
    waiters: VecDeque<oneshot::Sender<Delivery<L>>>,
}

impl<C: PooledConn, L: Lease<C>> H1State<C, L> {
    pub(crate) fn new(size: usize, idle_timeout: Duration) -> Self {
        H1State {
            size,
            idle_timeout,
            open: 0,
            connecting: 0,
            idle: Vec::new(),
            waiters: VecDeque::new(),
        }
    }

    /// A caller wants a connection. Expired or closed idle connections met on the way are
    /// returned in `dropped` for the caller to close outside the lock.
    pub(crate) fn checkout(&mut self, now: Instant, dropped: &mut Vec<C>) -> Checkout<C, L> {
        while let Some(idle) = self.idle.pop() {
            if idle.conn.is_open() && now.saturating_duration_since(idle.since) < self.idle_timeout
            {
                return Checkout::Ready(idle.conn);
            }
            self.open -= 1;
            dropped.push(idle.conn);
        }
        self.enqueue(false)
    }

    /// A caller wants a connection that was not idle in the pool (a retry after a stale one).
    /// It goes to the head of the queue: it has waited already.
    pub(crate) fn checkout_fresh(&mut self) -> Checkout<C, L> {
        self.enqueue(true)
    }

    fn enqueue(&mut self, front: bool) -> Checkout<C, L> {
        let (tx, rx) = oneshot::channel();
        while self.waiters.front().is_some_and(|w| w.is_closed()) {
            self.waiters.pop_front();
        }
        if front {
            self.waiters.push_front(tx);
        } else {
            self.waiters.push_back(tx);
        }
        let connect = self.should_connect();
        Checkout::Wait { rx, connect }
    }

    /// Starts a connect when callers outnumber connects in flight and there is room.
    fn should_connect(&mut self) -> bool {
        if self.open < self.size && self.live_waiters() > self.connecting {
            self.open += 1;
            self.connecting += 1;
            true
        } else {
            false
        }
    }

    fn live_waiters(&self) -> usize {
        self.waiters.iter().filter(|w| !w.is_closed()).count()
    }

    /// A connect finished: the connection goes to the head of the queue, or idle.
    pub(crate) fn connected(&mut self, conn: C, now: Instant, wrap: impl Fn(C) -> L) {
        self.connecting -= 1;
        self.hand_off(conn, now, wrap);
    }

    /// A connection made outside the pool joins it (counted against `size`).
    pub(crate) fn adopt(&mut self, conn: C, now: Instant, wrap: impl Fn(C) -> L) {
        self.open += 1;
        self.hand_off(conn, now, wrap);
    }

    /// A connect failed: the head of the queue gets the error. Returns true when another
    /// connect should start for the callers still waiting.
    pub(crate) fn connect_failed(&mut self, err: Error) -> bool {
        self.connecting -= 1;
        self.open -= 1;
        let mut err = Some(err);
        while let Some(w) = self.waiters.pop_front() {
            match w.send(Err(err.take().expect("error present until delivered"))) {
                Ok(()) => break,
                Err(Err(back)) => err = Some(back),
                Err(Ok(_)) => unreachable!("an error was sent"),
            }
        }
        self.should_connect()
    }

    /// A connection finished a request and can carry another. One that closed meanwhile frees
    /// its slot: returns true when a connect should start for the callers waiting (they were
    /// queued for a connection to come back, and this one will not).
    pub(crate) fn checkin(&mut self, conn: C, now: Instant, wrap: impl Fn(C) -> L) -> bool {
        if conn.is_open() {
            self.hand_off(conn, now, wrap);
            false
        } else {
            self.discard()
        }
    }

    /// A leased connection was closed or is not reusable. Returns true when a connect should
    /// start for waiting callers.
    pub(crate) fn discard(&mut self) -> bool {
        self.open -= 1;
        self.should_connect()
    }

    fn hand_off(&mut self, conn: C, now: Instant, wrap: impl Fn(C) -> L) {
        let mut conn = conn;
        while let Some(w) = self.waiters.pop_front() {
            match w.send(Ok(wrap(conn))) {
                Ok(()) => return,
                Err(Ok(lease)) => conn = lease.into_conn(),
                Err(Err(_)) => unreachable!("a lease was sent"),
            }
        }
        self.idle.push(Idle { conn, since: now });
    }

    /// Removes idle connections past `idle_timeout` (or closed); returns them for closing.
    pub(crate) fn reap(&mut self, now: Instant) -> Vec<C> {
        let timeout = self.idle_timeout;
        let mut expired = Vec::new();
        let mut i = 0;
        while i < self.idle.len() {
            let idle = &self.idle[i];
            if !idle.conn.is_open() || now.saturating_duration_since(idle.since) >= timeout {
                expired.push(self.idle.remove(i).conn);
                self.open -= 1;
            } else {
                i += 1;
            }
        }
        expired
    }

    /// Takes the least recently used idle connection out (to close it and make room under
    /// the client-wide cap).
    pub(crate) fn evict_one(&mut self) -> Option<C> {
        if self.idle.is_empty() {
            return None;
        }
        self.open -= 1;
        Some(self.idle.remove(0).conn)
    }

    /// Shuts the pool down: waiting callers get `err`, idle connections are returned (to be
    /// closed), and nothing new is handed out; leased connections finish their requests.
    pub(crate) fn close_all(&mut self, err: &Error) -> Vec<C> {
        for w in self.waiters.drain(..) {
            let _ = w.send(Err(err.clone()));
        }
        let idle: Vec<C> = self.idle.drain(..).map(|i| i.conn).collect();
        self.open -= idle.len();
        self.size = 0;
        idle
    }

    /// Idle connections now.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.len()
    }

    /// Connections leased to callers or being connected.
    pub(crate) fn active_count(&self) -> usize {
        self.open - self.idle.len()
    }

    /// Callers waiting for a connection.
    pub(crate) fn queued_count(&self) -> usize {
        self.live_waiters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[derive(Debug, PartialEq)]
    struct Conn {
        id: u32,
        open: bool,
    }
    impl PooledConn for Conn {
        fn is_open(&self) -> bool {
            self.open
        }
    }
    #[derive(Debug)]
    struct L(Conn);
    impl Lease<Conn> for L {
        fn into_conn(self) -> Conn {
            self.0
        }
    }

    fn conn(id: u32) -> Conn {
        Conn { id, open: true }
    }

    fn state(size: usize) -> H1State<Conn, L> {
        H1State::new(size, Duration::from_secs(30))
    }

    fn wait(c: Checkout<Conn, L>) -> (oneshot::Receiver<Delivery<L>>, bool) {
        match c {
            Checkout::Wait { rx, connect } => (rx, connect),
            Checkout::Ready(c) => panic!("unexpected ready {c:?}"),
        }
    }

    /// A pool of one whose connection (id 1) is leased, with a second caller queued behind it:
    /// the state and that caller's receiver.
    fn full_with_a_waiter(now: Instant) -> (H1State<Conn, L>, oneshot::Receiver<Delivery<L>>) {
        let mut s = state(1);
        let mut dropped = vec![];
        let (_first, connect) = wait(s.checkout(now, &mut dropped));
        assert!(connect);
        s.connected(conn(1), now, L);
        let (queued, connect) = wait(s.checkout(now, &mut dropped));
        assert!(!connect, "pool is full");
        (s, queued)
    }

    #[test]
    fn opens_lazily_up_to_size_then_queues_fifo() {
        let now = Instant::now();
        let mut s = state(2);
        let mut dropped = vec![];
        let (mut rx1, c1) = wait(s.checkout(now, &mut dropped));
        let (mut rx2, c2) = wait(s.checkout(now, &mut dropped));
        let (mut rx3, c3) = wait(s.checkout(now, &mut dropped));
        assert_eq!(
            (c1, c2, c3),
            (true, true, false),
            "third caller must not open a third connection"
        );
        assert_eq!((s.active_count(), s.queued_count()), (2, 3));

        s.connected(conn(1), now, L);
        assert_eq!(
            rx1.try_recv().unwrap().unwrap().0.id,
            1,
            "first come, first served"
        );
        s.connected(conn(2), now, L);
        assert_eq!(rx2.try_recv().unwrap().unwrap().0.id, 2);
        assert!(rx3.try_recv().is_err());

        // Checking a connection in serves the queue before going idle.
        s.checkin(conn(1), now, L);
        assert_eq!(rx3.try_recv().unwrap().unwrap().0.id, 1);
        assert_eq!(s.idle_count(), 0);
        s.checkin(conn(1), now, L);
        s.checkin(conn(2), now, L);
        assert_eq!(
            (s.idle_count(), s.active_count(), s.queued_count()),
            (2, 0, 0)
        );
    }

    #[test]
    fn idle_is_lifo_and_expires() {
        let t0 = Instant::now();
        let mut s = state(3);
        let mut dropped = vec![];
        let rxs: Vec<_> = (0..3).map(|_| wait(s.checkout(t0, &mut dropped))).collect();
        assert!(rxs.iter().all(|(_, connect)| *connect));
        drop(rxs); // the callers gave up: the connections go idle
        for id in 1..=3 {
            s.connected(conn(id), t0, L);
        }
        // No live waiters (receivers dropped): all three went idle, in order 1, 2, 3.
        assert_eq!(s.idle_count(), 3);
        match s.checkout(t0, &mut dropped) {
            Checkout::Ready(c) => assert_eq!(c.id, 3, "most recently used first"),
            _ => panic!(),
        }
        s.checkin(conn(3), t0 + Duration::from_secs(20), L);
        let expired = s.reap(t0 + Duration::from_secs(31));
        assert_eq!(expired.iter().map(|c| c.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(s.idle_count(), 1);
        // Expired connections met at checkout are dropped, and a new connect starts.
        let (_rx, connect) = wait(s.checkout(t0 + Duration::from_secs(60), &mut dropped));
        assert!(connect);
        assert_eq!(dropped.len(), 1);
    }

    #[test]
    fn closed_connections_are_not_reused() {
        let now = Instant::now();
        let mut s = state(1);
        let mut dropped = vec![];
        let (_rx, _) = wait(s.checkout(now, &mut dropped));
        s.connected(conn(1), now, L);
        assert!(!s.checkin(Conn { id: 1, open: false }, now, L));
        assert_eq!((s.idle_count(), s.active_count()), (0, 0));
    }

    /// Finding: a connection that closed while leased freed its slot at checkin without
    /// starting a connect, so callers queued behind a full pool waited for a connection that
    /// would never come back, until their checkout timeout.
    #[test]
    fn a_closed_checkin_starts_a_connect_for_waiters() {
        let now = Instant::now();
        let (mut s, _queued) = full_with_a_waiter(now);
        assert!(
            s.checkin(Conn { id: 1, open: false }, now, L),
            "the freed slot serves the waiter"
        );
        assert_eq!(s.active_count(), 1);
    }

    #[test]
    fn failed_connect_goes_to_head_and_retries_for_the_rest() {
        let now = Instant::now();
        let mut s = state(1);
        let mut dropped = vec![];
        let (mut rx1, c1) = wait(s.checkout(now, &mut dropped));
        let (mut rx2, c2) = wait(s.checkout(now, &mut dropped));
        assert!(c1 && !c2);
        let again = s.connect_failed(Error::new(ErrorKind::ConnectRefused, "refused"));
        assert_eq!(
            rx1.try_recv().unwrap().unwrap_err().kind(),
            ErrorKind::ConnectRefused
        );
        assert!(again, "the second caller still needs a connection");
        s.connected(conn(7), now, L);
        assert_eq!(rx2.try_recv().unwrap().unwrap().0.id, 7);
    }

    #[test]
    fn abandoned_waiters_are_skipped() {
        let now = Instant::now();
        let mut s = state(1);
        let mut dropped = vec![];
        let (rx1, _) = wait(s.checkout(now, &mut dropped));
        let (mut rx2, _) = wait(s.checkout(now, &mut dropped));
        drop(rx1); // timed out
        assert_eq!(s.queued_count(), 1);
        s.connected(conn(1), now, L);
        assert_eq!(rx2.try_recv().unwrap().unwrap().0.id, 1);
    }

    #[test]
    fn discard_frees_a_slot_for_waiters() {
        let now = Instant::now();
        let (mut s, _queued) = full_with_a_waiter(now);
        assert!(s.discard(), "the freed slot serves the waiter");
        assert_eq!(s.active_count(), 1);
    }

    #[test]
    fn fresh_checkout_jumps_the_queue() {
        let now = Instant::now();
        let (mut s, mut rx_other) = full_with_a_waiter(now);
        // The holder of conn 1 found it stale: discard and ask for a fresh one.
        assert!(
            s.discard(),
            "the freed slot starts a connect for the other waiter"
        );
        let (mut rx_retry, _) = wait(s.checkout_fresh());
        s.connected(conn(2), now, L);
        assert_eq!(rx_retry.try_recv().unwrap().unwrap().0.id, 2);
        assert!(rx_other.try_recv().is_err());
    }
}
