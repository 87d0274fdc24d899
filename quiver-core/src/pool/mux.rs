//! The multiplexing coordinator for one origin (HTTP/2 and HTTP/3): hands callers stream slots
//! on connections, opens connections without blocking callers already served, drains and
//! closes them. Never in the data path: a caller gets a [`StreamLease`] and talks to the
//! connection directly. The decisions live in [`super::mux_state`]; this is the async shell.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::mux_state::{ConnId, MuxCheckout, MuxState, Phase, SlotLease};
use super::{Buffered, Counters};
use crate::config::{PoolOptions, Protocol};
use crate::conn::BoxFuture;
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::proto::{ConnControl, WorkerLink};
use crate::stats::OriginStats;

/// How the coordinator asks for a new connection: given the link the connection's worker
/// reports through, establish it and return its handle and stream limit.
pub(crate) type ConnectFn<H> =
    Box<dyn Fn(ConnLink<H>) -> BoxFuture<'static, Result<(H, usize)>> + Send + Sync>;

/// A connection worker's way back to its coordinator.
pub(crate) struct ConnLink<H: Clone + Send + Sync + 'static> {
    coordinator: Weak<Coordinator<H>>,
    id: ConnId,
    control: Arc<ConnControl>,
}

impl<H: Clone + Send + Sync + 'static> WorkerLink for ConnLink<H> {
    fn control(&self) -> &ConnControl {
        &self.control
    }

    fn draining(&self) {
        if let Some(c) = self.coordinator.upgrade() {
            c.draining(self.id);
        }
    }

    fn closed(&self) {
        if let Some(c) = self.coordinator.upgrade() {
            c.closed(self.id);
        }
    }

    fn set_max_streams(&self, n: usize) {
        if let Some(c) = self.coordinator.upgrade() {
            let wrap = c.wrap();
            c.lock().set_max_streams(self.id, n, &wrap);
        }
    }
}

/// One stream slot on one connection, held for a request's lifetime; dropping it frees the slot.
pub(crate) struct StreamLease<H: Clone + Send + Sync + 'static> {
    coordinator: Arc<Coordinator<H>>,
    id: ConnId,
    handle: Option<H>,
}

impl<H: Clone + Send + Sync + 'static> StreamLease<H> {
    /// The connection's handle.
    pub(crate) fn handle(&self) -> &H {
        self.handle
            .as_ref()
            .expect("a lease holds its handle until dropped")
    }

    /// The connection this slot is on.
    pub(crate) fn conn_id(&self) -> ConnId {
        self.id
    }
}

impl<H: Clone + Send + Sync + 'static> SlotLease<H> for StreamLease<H> {
    fn into_parts(mut self) -> (ConnId, H) {
        (
            self.id,
            self.handle
                .take()
                .expect("a lease holds its handle until consumed"),
        )
    }
}

impl<H: Clone + Send + Sync + 'static> Drop for StreamLease<H> {
    fn drop(&mut self) {
        if self.handle.take().is_some() {
            self.coordinator.release(self.id);
        }
    }
}

type State<H> = MuxState<H, StreamLease<H>, Arc<ConnControl>>;

/// The coordinator of one origin's multiplexed connections.
pub(crate) struct Coordinator<H: Clone + Send + Sync + 'static> {
    pub(crate) origin: Origin,
    pub(crate) options: Arc<PoolOptions>,
    protocol: Protocol,
    runtime: Handle,
    state: Mutex<State<H>>,
    connect: ConnectFn<H>,
    pub(crate) counters: Counters,
    pub(crate) buffered: Arc<Buffered>,
}

impl<H: Clone + Send + Sync + 'static> Coordinator<H> {
    pub(crate) fn new(
        origin: Origin,
        options: Arc<PoolOptions>,
        protocol: Protocol,
        runtime: Handle,
        connect: ConnectFn<H>,
    ) -> Arc<Self> {
        let state = MuxState::new(
            options.max_connections,
            options.initial_max_streams,
            options.idle_timeout,
        );
        let coordinator = Arc::new(Coordinator {
            origin,
            options,
            protocol,
            runtime,
            state: Mutex::new(state),
            connect,
            counters: Counters::default(),
            buffered: Arc::new(Buffered::default()),
        });
        coordinator.spawn_reaper();
        coordinator
    }

    fn lock(&self) -> MutexGuard<'_, State<H>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wrap(self: &Arc<Self>) -> impl Fn(ConnId, H) -> StreamLease<H> + '_ {
        move |id, handle| StreamLease {
            coordinator: self.clone(),
            id,
            handle: Some(handle),
        }
    }

    /// The runtime that runs this coordinator's connections.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Waits (up to `wait`: the request's `checkout_timeout`, else the pool's) for a stream
    /// slot, avoiding `avoid` when possible.
    pub(crate) async fn checkout(
        self: &Arc<Self>,
        avoid: Option<ConnId>,
        wait: Option<std::time::Duration>,
        trace: Option<&crate::events::Trace>,
    ) -> Result<StreamLease<H>> {
        let wait = wait.unwrap_or(self.options.checkout_timeout);
        let mut new_control = None;
        let decision = self.lock().checkout(avoid, || {
            let c = Arc::new(ConnControl::default());
            new_control = Some(c.clone());
            c
        });
        match decision {
            MuxCheckout::Ready(id, handle) => Ok(StreamLease {
                coordinator: self.clone(),
                id,
                handle: Some(handle),
            }),
            MuxCheckout::Wait { rx, connect } => {
                if let Some(t) = trace {
                    t.emit(
                        &self.origin,
                        Some(self.protocol),
                        None,
                        None,
                        crate::events::EventKind::Queued,
                    );
                }
                let mut deadline = tokio::time::Instant::now() + wait;
                if let (Some(id), Some(control)) = (connect, new_control) {
                    deadline = deadline.max(super::dial_deadline(&self.options));
                    self.start_connect(id, control, None);
                }
                match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(res)) => res,
                    Ok(Err(_)) => Err(Error::new(ErrorKind::Shutdown, "the pool was closed")),
                    Err(_) => Err(Error::new(
                        ErrorKind::CheckoutTimeout,
                        format!(
                            "no {} stream slot to {} became free within {} ms",
                            self.protocol.as_str(),
                            self.origin,
                            wait.as_millis()
                        ),
                    )),
                }
            }
        }
    }

    /// Adds a connection whose transport already exists (the one that decided an `auto`
    /// pool's protocol): `make` finishes setting it up.
    pub(crate) fn adopt(
        self: &Arc<Self>,
        make: impl FnOnce(ConnLink<H>) -> BoxFuture<'static, Result<(H, usize)>> + Send + 'static,
    ) {
        let control = Arc::new(ConnControl::default());
        let id = self.lock().open_slot(control.clone());
        self.start_connect(id, control, Some(Box::new(make)));
    }

    #[allow(clippy::type_complexity)]
    fn start_connect(
        self: &Arc<Self>,
        id: ConnId,
        control: Arc<ConnControl>,
        make: Option<Box<dyn FnOnce(ConnLink<H>) -> BoxFuture<'static, Result<(H, usize)>> + Send>>,
    ) {
        let link = ConnLink {
            coordinator: Arc::downgrade(self),
            id,
            control,
        };
        let fut = match make {
            Some(make) => make(link),
            None => (self.connect)(link),
        };
        let coordinator = self.clone();
        self.runtime.spawn(async move {
            match fut.await {
                Ok((handle, max_streams)) => {
                    coordinator.counters.connection_opened();
                    let wrap = coordinator.wrap();
                    coordinator.lock().connected(id, handle, max_streams, &wrap);
                }
                Err(e) => coordinator.lock().connect_failed(id, e),
            }
        });
    }

    fn release(self: &Arc<Self>, id: ConnId) {
        let wrap = self.wrap();
        let close = self.lock().release(id, Instant::now(), &wrap);
        if let Some(control) = close {
            control.close();
        }
    }

    /// Marks a connection draining (GOAWAY seen by the worker or by a request).
    pub(crate) fn draining(self: &Arc<Self>, id: ConnId) {
        let mut control = None;
        let (close, open) = self.lock().draining(id, || {
            let c = Arc::new(ConnControl::default());
            control = Some(c.clone());
            c
        });
        if let Some(c) = close {
            c.close();
        }
        if let (Some(id), Some(control)) = (open, control) {
            self.start_connect(id, control, None);
        }
    }

    fn closed(self: &Arc<Self>, id: ConnId) {
        let mut control = None;
        let open = self.lock().closed(id, || {
            let c = Arc::new(ConnControl::default());
            control = Some(c.clone());
            c
        });
        if let (Some(id), Some(control)) = (open, control) {
            self.start_connect(id, control, None);
        }
    }

    fn spawn_reaper(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let period = (self.options.idle_timeout / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(c) = weak.upgrade() else { break };
                let idle = c.lock().reap(Instant::now());
                for control in idle {
                    control.close();
                }
            }
        });
    }

    /// Whether some connection is ready, and whether one is being set up.
    #[cfg(feature = "http3")]
    pub(crate) fn readiness(&self) -> (bool, bool) {
        self.lock().readiness()
    }

    /// Closes the connection idle longest, if any; `true` if there was one.
    pub(crate) fn evict_idle(&self) -> bool {
        let control = self.lock().evict_one();
        control.map(|c| c.close()).is_some()
    }

    /// Closes every connection; callers waiting for a slot and streams in flight get a
    /// `shutdown` error.
    pub(crate) fn close_all(&self) {
        let (controls, waiters) = {
            let mut state = self.lock();
            (state.controls(), state.take_waiters())
        };
        for w in waiters {
            let _ = w.send(Err(Error::new(ErrorKind::Shutdown, "the pool was closed")));
        }
        for control in controls {
            control.close();
        }
    }

    pub(crate) fn stats(&self) -> OriginStats {
        let (view, queued) = {
            let state = self.lock();
            (state.view(), state.queued())
        };
        let mut stats = self.counters.snapshot(&self.origin, self.protocol);
        stats.connections = view.len();
        stats.active = view.iter().map(|c| c.in_flight).sum();
        stats.idle = view
            .iter()
            .filter(|c| c.phase == Phase::Ready)
            .map(|c| c.max_streams.saturating_sub(c.in_flight))
            .sum();
        stats.queued = queued;
        stats.connection_streams = view.iter().map(|c| c.in_flight).collect();
        stats.buffered_bytes = self.buffered.total();
        stats
    }
}

impl<H: Clone + Send + Sync + 'static> Drop for Coordinator<H> {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for control in state.controls() {
            control.close();
        }
    }
}
