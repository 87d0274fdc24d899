//! A response body pulled ahead into a bounded buffer by a task of its own, and taken from it
//! in batches: what a binding needs to cross into another language once per batch of chunks
//! instead of once per chunk, without reading further ahead than `high_water` bytes (so a slow
//! consumer still slows the server).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::HeaderMap;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::error::{Error, ErrorKind};
use crate::response::ResponseBody;

/// What [`Prefetch::collect`] hands over: the rest of the body in one buffer with the
/// trailers, or the body's error.
pub type Collected = Result<(Bytes, Option<HeaderMap>), Error>;

type Collector = Box<dyn FnOnce(Collected) + Send>;

type Waiter = Box<dyn FnOnce() + Send>;

/// What a take found.
#[derive(Debug)]
pub enum Taken {
    /// Every chunk buffered so far, in order (never empty).
    Data(Vec<Bytes>),
    /// Nothing buffered yet; the body goes on.
    Empty,
    /// The body ended; its trailers, if any.
    End(Option<HeaderMap>),
    /// The body failed (after every chunk before the failure was taken).
    Failed(Error),
}

#[derive(Default)]
struct State {
    /// The body, while it is being read (taken out, and dropped, by `cancel`).
    body: Option<ResponseBody>,
    chunks: VecDeque<Bytes>,
    buffered: usize,
    end: Option<Result<(), Error>>,
    trailers: Option<HeaderMap>,
    /// Read to the end regardless of `high_water` (someone collects the whole body).
    unlimited: bool,
    /// Called with the whole body when it ends (`collect`).
    collector: Option<Collector>,
    /// Called once when a take would next find something (`when_ready`).
    waiter: Option<Waiter>,
    cancelled: bool,
}

impl State {
    /// What a collector gets now that the body ended: every chunk left, joined, or the error.
    fn collected(&mut self) -> Collected {
        if self.cancelled {
            return Err(cancelled());
        }
        let chunks: Vec<Bytes> = self.chunks.drain(..).collect();
        self.buffered = 0;
        match &self.end {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok((join(chunks), self.trailers.clone())),
        }
    }
}

fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "the response body was cancelled")
}

/// One buffer of `chunks` (no copy for a single chunk).
fn join(chunks: Vec<Bytes>) -> Bytes {
    match <[Bytes; 1]>::try_from(chunks) {
        Ok([one]) => one,
        Err(chunks) => {
            let mut all = bytes::BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when data, the end or an error arrives.
    arrived: Notify,
    /// Signalled when a take made room.
    room: Notify,
    high_water: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells readers that a take would find something: wakes the tasks waiting and calls the
    /// waiting callback, taken from `st` (the lock, released first: the callback may call into
    /// another language).
    fn tell(&self, mut st: MutexGuard<'_, State>) {
        let waiter = st.waiter.take();
        drop(st);
        self.arrived.notify_waiters();
        if let Some(waiter) = waiter {
            waiter();
        }
    }
}

/// A response body read ahead, up to a bound, by a task on quiver's runtime. Dropping it (or
/// [`Prefetch::cancel`]) stops the reading and drops the body, which cancels the request.
pub struct Prefetch {
    shared: Arc<Shared>,
    task: Option<AbortHandle>,
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetch")
            .field("high_water", &self.shared.high_water)
            .finish_non_exhaustive()
    }
}

impl Prefetch {
    /// The read-ahead bound the bindings use: enough to cross into another language in big
    /// batches and to keep an HTTP/2 stream's credit flowing while the reader is away (at
    /// 256 KiB an asyncio reader of an h2c stream got ~1.4 GB/s, at 1 MiB ~2.0), small enough
    /// that a stalled consumer holds little.
    pub const DEFAULT_HIGH_WATER: usize = 1024 * 1024;

    /// Starts reading `body` on `runtime`; reading pauses while `high_water` bytes (at least
    /// one chunk) wait to be taken.
    pub fn start(body: ResponseBody, runtime: &Handle, high_water: usize) -> Prefetch {
        let (mut prefetch, pump) = Prefetch::new(body, high_water);
        prefetch.task = Some(runtime.spawn(pump).abort_handle());
        prefetch
    }

    /// Like [`Prefetch::start`], for a caller that drives the reading itself: the returned
    /// future reads the body (it ends at the body's end, or soon after a cancel or a drop).
    pub fn new(
        body: ResponseBody,
        high_water: usize,
    ) -> (
        Prefetch,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                body: Some(body),
                ..State::default()
            }),
            arrived: Notify::new(),
            room: Notify::new(),
            high_water: high_water.max(1),
        });
        let pump = pump(shared.clone());
        (Prefetch { shared, task: None }, pump)
    }

    /// Takes what is buffered now, without waiting.
    pub fn try_take(&self) -> Taken {
        let taken = {
            let mut st = self.shared.lock();
            if !st.chunks.is_empty() {
                st.buffered = 0;
                Taken::Data(st.chunks.drain(..).collect())
            } else {
                match &st.end {
                    None => Taken::Empty,
                    Some(Ok(())) => Taken::End(st.trailers.clone()),
                    Some(Err(e)) => Taken::Failed(e.clone()),
                }
            }
        };
        if matches!(taken, Taken::Data(_)) {
            self.shared.room.notify_one();
        }
        taken
    }

    /// Takes what is buffered, waiting until there is something (data, the end or an error).
    /// Cancel-safe: nothing is lost if the wait is given up.
    pub async fn take(&self) -> Taken {
        loop {
            let arrived = self.shared.arrived.notified();
            match self.try_take() {
                Taken::Empty => arrived.await,
                other => return other,
            }
        }
    }

    /// Reads the rest of the body, without the bound, and calls `done` once with all of it:
    /// right away on this thread when the body has already ended, else on the reading task as
    /// it ends (no extra task, no wake-up per chunk). A cancel calls it with `cancelled`. The
    /// collector owns what is not yet taken: take nothing else meanwhile.
    pub fn collect(&self, done: impl FnOnce(Collected) + Send + 'static) {
        let mut st = self.shared.lock();
        if st.end.is_some() || st.cancelled {
            let all = st.collected();
            drop(st);
            done(all);
            return;
        }
        st.unlimited = true;
        st.collector = Some(Box::new(done));
        drop(st);
        self.shared.room.notify_one();
    }

    /// Reads the rest of the body, without the bound, into one buffer; returns it with the
    /// trailers. Dropping the future before it completes gives the body up.
    pub async fn take_all(&self) -> Collected {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.collect(move |all| {
            let _ = tx.send(all);
        });
        rx.await.unwrap_or_else(|_| Err(cancelled()))
    }

    /// Calls `ready` once a take would find something (data, the end or an error): at once on
    /// this thread when it already would, else on the reading task as it happens (no task of
    /// the caller's, no wake-up in between), or when the body is cancelled. One callback at a
    /// time: a second replaces the first, which is dropped uncalled.
    pub fn when_ready(&self, ready: impl FnOnce() + Send + 'static) {
        let mut st = self.shared.lock();
        if !st.chunks.is_empty() || st.end.is_some() {
            drop(st);
            ready();
            return;
        }
        st.waiter = Some(Box::new(ready));
    }

    /// Drops the callback `when_ready` left, uncalled (its reader gave up).
    pub fn forget_when_ready(&self) {
        let waiter = self.shared.lock().waiter.take();
        drop(waiter);
    }

    /// Waits until a take would find something (data, the end or an error), taking nothing.
    pub async fn ready(&self) {
        loop {
            let arrived = self.shared.arrived.notified();
            {
                let st = self.shared.lock();
                if !st.chunks.is_empty() || st.end.is_some() {
                    return;
                }
            }
            arrived.await;
        }
    }

    /// True once the body has ended (or failed) and every chunk was taken.
    pub fn is_done(&self) -> bool {
        let st = self.shared.lock();
        st.end.is_some() && st.chunks.is_empty()
    }

    /// True once the body has ended (or failed), whether or not its chunks were taken.
    pub fn has_ended(&self) -> bool {
        self.shared.lock().end.is_some()
    }

    /// True once the body ended cleanly and every chunk was taken.
    pub fn is_complete(&self) -> bool {
        let st = self.shared.lock();
        matches!(st.end, Some(Ok(()))) && st.chunks.is_empty()
    }

    /// The trailers, once the body has ended cleanly with some.
    pub fn trailers(&self) -> Option<HeaderMap> {
        self.shared.lock().trailers.clone()
    }

    /// Stops reading and drops the body now (the request is cancelled: an HTTP/1.1
    /// connection closes, an HTTP/2 or HTTP/3 stream is reset); later takes find the end.
    pub fn cancel(&self) {
        let (body, collector) = {
            let mut st = self.shared.lock();
            st.cancelled = true;
            st.chunks.clear();
            st.buffered = 0;
            st.end.get_or_insert(Ok(()));
            (st.body.take(), st.collector.take())
        };
        drop(body);
        if let Some(done) = collector {
            done(Err(cancelled()));
        }
        if let Some(task) = &self.task {
            task.abort();
        }
        self.shared.tell(self.shared.lock());
        self.shared.room.notify_one();
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.cancel();
    }
}

async fn pump(shared: Arc<Shared>) {
    // Chunks pushed since readers were last told: they are told when the pump is about to wait
    // (or the body ended), so every chunk the body already has in hand goes in one wake-up
    // rather than one per chunk (an HTTP/2 read of 64 KiB is four DATA frames).
    let mut untold = false;
    loop {
        loop {
            // Created before the check, so a take in between still wakes it.
            let room = shared.room.notified();
            {
                let st = shared.lock();
                if st.cancelled {
                    return;
                }
                if st.buffered < shared.high_water || st.unlimited {
                    break;
                }
                if std::mem::take(&mut untold) {
                    shared.tell(st);
                }
            }
            room.await;
        }
        // The body stays in the shared state, polled under the lock (never held across a
        // wait), so that `cancel` can drop it at once.
        let next = std::future::poll_fn(|cx| {
            let mut st = shared.lock();
            let polled = match st.body.as_mut() {
                Some(body) => body.poll_chunk(cx).map(Some),
                None => std::task::Poll::Ready(None),
            };
            if polled.is_pending() && std::mem::take(&mut untold) {
                shared.tell(st);
            }
            polled
        })
        .await;
        let mut st = shared.lock();
        let Some(next) = next.filter(|_| !st.cancelled) else {
            shared.tell(st);
            return;
        };
        match next {
            Ok(Some(chunk)) => {
                st.buffered += chunk.len();
                st.chunks.push_back(chunk);
                drop(st);
                untold = true;
                continue;
            }
            Ok(None) => {
                st.trailers = st.body.take().and_then(|b| b.trailers().cloned());
                st.end = Some(Ok(()));
            }
            Err(e) => {
                st.body = None;
                st.end = Some(Err(e));
            }
        }
        // The end: a collector gets everything (with no lock held: it may call into another
        // language), then readers are told.
        match st.collector.take() {
            Some(done) => {
                let all = st.collected();
                drop(st);
                done(all);
                shared.tell(shared.lock());
            }
            None => shared.tell(st),
        }
        return;
    }
}
