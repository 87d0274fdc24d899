//! Datagram channels for Node.
//!
//! Core's [`DatagramChannel`] receives through `&mut self`; sending goes through its
//! [`DatagramSender`], a cloneable handle. A task on quiver's runtime owns the channel and
//! polls `recv` / `recv_data` only while JavaScript has a receive waiting; `send()` stays
//! synchronous on the JavaScript thread through the sender, with no lock shared with the task.
//! Received datagrams cross in batches: one Promise carries every datagram already queued, up
//! to the caller's limit.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, BufferSlice, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::{DatagramChannel, DatagramSender, Error, ErrorKind, HeaderMap, ResponseHead};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::errors;
use crate::headers;
use crate::pending::Pending;

/// A batch of received payloads, or `None` at the end.
pub(crate) type Datagrams = Option<Vec<Buffer>>;

enum Command {
    Recv(Pending<Datagrams>, usize),
    RecvData(Pending<Option<Buffer>>),
    Close(Pending<()>),
    Destroy,
}

/// What JavaScript reads of the channel's state, published by its task after each event.
#[derive(Default)]
struct Info {
    ended: bool,
    trailers: Option<HeaderMap>,
    max_datagram_size: Option<usize>,
}

struct Shared {
    info: Mutex<Info>,
    /// Set (before the channel is dropped) once the task has ended: sends fail from then on.
    gone: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn publish(&self, ch: &DatagramChannel) {
        let mut info = lock(&self.info);
        info.ended = ch.is_ended();
        info.max_datagram_size = ch.max_datagram_size();
        if info.trailers.is_none() {
            info.trailers = ch.trailers().cloned();
        }
    }
}

enum Event {
    Command(Option<Command>),
    Datagrams(Batch),
    Data(Result<Option<Bytes>, Error>),
}

/// What a poll for received payloads found.
pub(crate) enum Batch {
    /// At least one payload.
    Payloads(Vec<Bytes>),
    /// The end (`Ok`) or the error that ended receiving, with nothing before it.
    End(Result<(), Error>),
}

/// Polls `recv` for the payloads already there, at most `max`. An error behind a batch is kept
/// in `stashed` for the next receive. `recv` must lose nothing when its future is dropped after
/// one poll (core's channel and tunnel receives keep their state in the object).
pub(crate) fn poll_batch(
    cx: &mut std::task::Context<'_>,
    max: usize,
    stashed: &mut Option<Error>,
    mut recv: impl FnMut(&mut std::task::Context<'_>) -> Poll<Result<Option<Bytes>, Error>>,
) -> Poll<Batch> {
    let mut batch = Vec::new();
    while batch.len() < max {
        match recv(cx) {
            Poll::Ready(Ok(Some(d))) => batch.push(d),
            Poll::Ready(Ok(None)) if batch.is_empty() => return Poll::Ready(Batch::End(Ok(()))),
            Poll::Ready(Err(e)) if batch.is_empty() => return Poll::Ready(Batch::End(Err(e))),
            Poll::Ready(Err(e)) => {
                *stashed = Some(e);
                break;
            }
            Poll::Ready(Ok(None)) | Poll::Pending => break,
        }
    }
    if batch.is_empty() {
        Poll::Pending
    } else {
        Poll::Ready(Batch::Payloads(batch))
    }
}

/// Receives waiting for payloads, each with its limit, answered in order.
pub(crate) type Waiters = VecDeque<(Pending<Datagrams>, usize)>;

/// Answers the first waiting receive with what `poll_batch` found; at the end, every other
/// waiting receive gets `null`.
pub(crate) fn answer(waiters: &mut Waiters, batch: Batch) {
    match batch {
        Batch::Payloads(payloads) => {
            if let Some((p, _)) = waiters.pop_front() {
                p.resolve(Some(to_buffers(payloads)));
            }
        }
        Batch::End(result) => {
            if let Err(e) = &result {
                if let Some((p, _)) = waiters.pop_front() {
                    p.reject(e);
                }
            }
            for (p, _) in waiters.drain(..) {
                p.resolve(None);
            }
        }
    }
}

/// Payloads as JavaScript Buffers.
pub(crate) fn to_buffers(batch: Vec<Bytes>) -> Vec<Buffer> {
    batch
        .into_iter()
        .map(|b| Buffer::from(Vec::from(b)))
        .collect()
}

async fn run(
    mut ch: DatagramChannel,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut datagram_waiters = Waiters::new();
    let mut data_waiters: VecDeque<Pending<Option<Buffer>>> = VecDeque::new();
    // An error that arrived behind a batch of datagrams: the next receive gets it.
    let mut stashed: Option<Error> = None;
    loop {
        // Plain values: the closure below must not borrow the waiters (their Promises are
        // `Send` but not `Sync`).
        let want_datagrams = datagram_waiters.front().map(|(_, max)| *max);
        let want_data = !data_waiters.is_empty();
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(c) = commands.poll_recv(cx) {
                return Poll::Ready(Event::Command(c));
            }
            // `recv` and `recv_data` only await core's event queue, so a future dropped after
            // one poll loses nothing; each poll registers this task's waker there.
            if let Some(max) = want_datagrams {
                if let Poll::Ready(batch) =
                    poll_batch(cx, max, &mut stashed, |cx| pin!(ch.recv()).poll(cx))
                {
                    return Poll::Ready(Event::Datagrams(batch));
                }
            }
            if want_data {
                if let Poll::Ready(r) = pin!(ch.recv_data()).poll(cx) {
                    return Poll::Ready(Event::Data(r));
                }
            }
            Poll::Pending
        })
        .await;
        shared.publish(&ch);
        match event {
            Event::Command(None | Some(Command::Destroy)) => break,
            Event::Command(Some(Command::Recv(p, max))) => match stashed.take() {
                Some(e) => p.reject(&e),
                None => datagram_waiters.push_back((p, max.max(1))),
            },
            Event::Command(Some(Command::RecvData(p))) => data_waiters.push_back(p),
            Event::Command(Some(Command::Close(p))) => {
                let result = ch.close().await;
                shared.publish(&ch);
                match result {
                    Ok(()) => p.resolve(()),
                    Err(e) => p.reject(&e),
                }
            }
            Event::Datagrams(batch) => answer(&mut datagram_waiters, batch),
            Event::Data(result) => {
                let ended = !matches!(result, Ok(Some(_)));
                if let Some(p) = data_waiters.pop_front() {
                    match result {
                        Ok(d) => p.resolve(d.map(|b| Buffer::from(Vec::from(b)))),
                        Err(e) => p.reject(&e),
                    }
                }
                if ended {
                    for p in data_waiters.drain(..) {
                        p.resolve(None);
                    }
                }
            }
        }
    }
    // Dropping the channel resets its stream and frees its stream slot.
    shared.gone.store(true, Ordering::Release);
    lock(&shared.info).ended = true;
    drop(ch);
    for (p, _) in datagram_waiters.drain(..) {
        p.resolve(None);
    }
    for p in data_waiters.drain(..) {
        p.resolve(None);
    }
}

/// An open datagram channel.
#[napi(namespace = "native")]
pub struct NativeDatagramChannel {
    head: ResponseHead,
    sender: DatagramSender,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl NativeDatagramChannel {
    /// Hands `ch` to its task on `handle`.
    pub(crate) fn start(ch: DatagramChannel, handle: &Handle) -> Result<Self, Error> {
        let head = ch.head().clone();
        let sender = ch.sender();
        let shared = Arc::new(Shared {
            info: Mutex::default(),
            gone: AtomicBool::new(false),
        });
        shared.publish(&ch);
        let (commands, rx) = mpsc::unbounded_channel();
        handle.spawn(run(ch, shared.clone(), rx));
        Ok(NativeDatagramChannel {
            head,
            sender,
            shared,
            commands,
        })
    }

    fn command(&self, command: Command) {
        if let Err(mpsc::error::SendError(command)) = self.commands.send(command) {
            // The task is gone (destroyed): receives see the end, a close has nothing to do.
            match command {
                Command::Recv(p, _) => p.resolve(None),
                Command::RecvData(p) => p.resolve(None),
                Command::Close(p) => p.resolve(()),
                Command::Destroy => {}
            }
        }
    }
}

#[napi(namespace = "native")]
impl NativeDatagramChannel {
    /// The status code of the extended CONNECT's response.
    #[napi(getter)]
    pub fn status(&self) -> u32 {
        u32::from(self.head.status.as_u16())
    }

    /// The HTTP version (`3.0`).
    #[napi(getter)]
    pub fn version(&self) -> &'static str {
        headers::version(self.head.version)
    }

    /// The response headers as a flat `[name, value, ...]` list.
    #[napi]
    pub fn headers(&self) -> Vec<String> {
        headers::flatten(&self.head.headers)
    }

    /// Sends one datagram (unreliable). Throws `datagram_too_large` when it does not fit the
    /// path, `datagram_error` once the channel is closed.
    #[napi]
    pub fn send(&self, payload: BufferSlice) -> napi::Result<()> {
        if self.shared.gone.load(Ordering::Acquire) {
            return Err(errors::encode(
                ErrorKind::DatagramError,
                "the datagram channel is closed",
            ));
        }
        self.sender
            .send(Bytes::copy_from_slice(&payload))
            .map_err(|e| errors::to_js(&e))
    }

    /// Resolves with the datagrams received (at least one, at most `max`), or `null` once the
    /// channel's stream has ended.
    #[napi(ts_return_type = "Promise<Buffer[] | null>")]
    pub fn recv<'env>(&self, env: &'env Env, max: Option<u32>) -> napi::Result<Object<'env>> {
        let (p, promise) = Pending::<Datagrams>::new(env)?;
        let max = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        self.command(Command::Recv(p, max));
        Ok(promise)
    }

    /// Resolves with the next piece of the stream's data, or `null` at its end.
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn recv_data<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (p, promise) = Pending::<Option<Buffer>>::new(env)?;
        self.command(Command::RecvData(p));
        Ok(promise)
    }

    /// Ends our side of the stream; what the peer still sends can be received.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (p, promise) = Pending::<()>::new(env)?;
        self.command(Command::Close(p));
        Ok(promise)
    }

    /// Drops the channel now: its stream is reset, waiting receives resolve with `null`.
    #[napi]
    pub fn destroy(&self) {
        self.command(Command::Destroy);
    }

    /// The largest datagram payload the path takes now; `null` when datagrams are unavailable.
    #[napi(getter)]
    pub fn max_datagram_size(&self) -> Option<u32> {
        let size = if self.shared.gone.load(Ordering::Acquire) {
            lock(&self.shared.info).max_datagram_size
        } else {
            self.sender.max_datagram_size()
        };
        size.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// True once the channel's stream has ended.
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        lock(&self.shared.info).ended
    }

    /// The stream's trailers as a flat list, once it has ended; `null` before or without.
    #[napi]
    pub fn trailers(&self) -> Option<Vec<String>> {
        lock(&self.shared.info)
            .trailers
            .as_ref()
            .map(headers::flatten)
    }
}
