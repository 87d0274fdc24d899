//! MASQUE UDP tunnels (RFC 9298) for Node.
//!
//! Core's [`UdpTunnel`] sends through `&self` and receives through `&mut self`, and has no
//! separate send handle. A task on quiver's runtime does the receiving: it polls `recv` under
//! a lock held for one poll, and only while JavaScript has a receive waiting, so `send()` stays
//! synchronous on the JavaScript thread (it takes the same lock for the instant of the send).
//! Received payloads cross in batches: one Promise carries every payload already queued, up to
//! the caller's limit.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::Bytes;
use napi::bindgen_prelude::{BufferSlice, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::{Error, ErrorKind, ResponseHead, UdpTunnel};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::channel::{lock, to_buffers, Datagrams};
use crate::errors;
use crate::headers;
use crate::pending::Pending;

enum Command {
    Recv(Pending<Datagrams>, usize),
    Close(Pending<()>),
    Destroy,
}

struct Shared {
    /// `None` while the task closes our side (it owns the tunnel then) and once destroyed.
    tunnel: Mutex<Option<UdpTunnel>>,
    /// True once `recv` saw the end (or an error), or the tunnel was dropped.
    ended: AtomicBool,
    /// The last `max_payload` seen, for when the tunnel is busy or gone.
    max_payload: AtomicUsize,
}

enum Event {
    Command(Option<Command>),
    Payloads(Vec<Bytes>),
    End(Result<(), Error>),
}

async fn run(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut waiters: VecDeque<(Pending<Datagrams>, usize)> = VecDeque::new();
    // An error that arrived behind a batch of payloads: the next receive gets it.
    let mut stashed: Option<Error> = None;
    loop {
        // A plain value: the closure below must not borrow the waiters (their Promises are
        // `Send` but not `Sync`).
        let want = waiters.front().map(|(_, max)| *max);
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(c) = commands.poll_recv(cx) {
                return Poll::Ready(Event::Command(c));
            }
            let Some(max) = want else {
                return Poll::Pending;
            };
            let mut guard = lock(&shared.tunnel);
            let Some(tunnel) = guard.as_mut() else {
                return Poll::Pending;
            };
            // `recv` keeps its state in the tunnel (buffered capsule bytes, core's datagram
            // queue), so a future dropped after one poll loses nothing; each poll registers
            // this task's waker.
            let mut batch = Vec::new();
            while batch.len() < max {
                match pin!(tunnel.recv()).poll(cx) {
                    Poll::Ready(Ok(Some(d))) => batch.push(d),
                    Poll::Ready(Ok(None)) if batch.is_empty() => {
                        return Poll::Ready(Event::End(Ok(())))
                    }
                    Poll::Ready(Err(e)) if batch.is_empty() => {
                        return Poll::Ready(Event::End(Err(e)))
                    }
                    Poll::Ready(Err(e)) => {
                        stashed = Some(e);
                        break;
                    }
                    Poll::Ready(Ok(None)) | Poll::Pending => break,
                }
            }
            if batch.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(Event::Payloads(batch))
            }
        })
        .await;
        match event {
            Event::Command(None | Some(Command::Destroy)) => break,
            Event::Command(Some(Command::Recv(p, max))) => match stashed.take() {
                Some(e) => p.reject(&e),
                None if shared.ended.load(Ordering::Acquire) => p.resolve(None),
                None => waiters.push_back((p, max.max(1))),
            },
            Event::Command(Some(Command::Close(p))) => {
                let taken = lock(&shared.tunnel).take();
                match taken {
                    Some(mut tunnel) => {
                        let result = tunnel.close().await;
                        shared
                            .max_payload
                            .store(tunnel.max_payload(), Ordering::Relaxed);
                        *lock(&shared.tunnel) = Some(tunnel);
                        match result {
                            Ok(()) => p.resolve(()),
                            Err(e) => p.reject(&e),
                        }
                    }
                    None => p.resolve(()),
                }
            }
            Event::Payloads(batch) => {
                if let Some((p, _)) = waiters.pop_front() {
                    p.resolve(Some(to_buffers(batch)));
                }
            }
            Event::End(result) => {
                shared.ended.store(true, Ordering::Release);
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
    // Dropping the tunnel resets its stream and frees its stream slot.
    let tunnel = lock(&shared.tunnel).take();
    shared.ended.store(true, Ordering::Release);
    drop(tunnel);
    for (p, _) in waiters.drain(..) {
        p.resolve(None);
    }
}

/// An open UDP tunnel to one target through a MASQUE proxy.
#[napi(namespace = "native")]
pub struct NativeUdpTunnel {
    head: ResponseHead,
    target: String,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl NativeUdpTunnel {
    /// Hands `tunnel` to its task on `handle`.
    pub(crate) fn start(tunnel: UdpTunnel, handle: &Handle) -> NativeUdpTunnel {
        let head = tunnel.head().clone();
        let target = tunnel.target().to_owned();
        let shared = Arc::new(Shared {
            max_payload: AtomicUsize::new(tunnel.max_payload()),
            tunnel: Mutex::new(Some(tunnel)),
            ended: AtomicBool::new(false),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        handle.spawn(run(shared.clone(), rx));
        NativeUdpTunnel {
            head,
            target,
            shared,
            commands,
        }
    }

    fn command(&self, command: Command) {
        if let Err(mpsc::error::SendError(command)) = self.commands.send(command) {
            // The task is gone (destroyed): receives see the end, a close has nothing to do.
            match command {
                Command::Recv(p, _) => p.resolve(None),
                Command::Close(p) => p.resolve(()),
                Command::Destroy => {}
            }
        }
    }
}

#[napi(namespace = "native")]
impl NativeUdpTunnel {
    /// The status code of the proxy's answer to the CONNECT-UDP.
    #[napi(getter)]
    pub fn status(&self) -> u32 {
        u32::from(self.head.status.as_u16())
    }

    /// The HTTP version spoken to the proxy (`2.0` or `3.0`).
    #[napi(getter)]
    pub fn version(&self) -> &'static str {
        headers::version(self.head.version)
    }

    /// The proxy's response headers as a flat `[name, value, ...]` list.
    #[napi]
    pub fn headers(&self) -> Vec<String> {
        headers::flatten(&self.head.headers)
    }

    /// `host:port` of the target.
    #[napi(getter)]
    pub fn target(&self) -> String {
        self.target.clone()
    }

    /// Sends one UDP payload to the target (unreliable, like UDP). Throws when it does not fit
    /// the tunnel (`datagram_too_large`) or once the tunnel is closed.
    #[napi]
    pub fn send(&self, payload: BufferSlice) -> napi::Result<()> {
        let guard = lock(&self.shared.tunnel);
        match guard.as_ref() {
            Some(tunnel) => tunnel.send(&payload).map_err(|e| errors::to_js(&e)),
            None => Err(errors::encode(
                ErrorKind::DatagramError,
                "the UDP tunnel is closed",
            )),
        }
    }

    /// Resolves with the payloads received (at least one, at most `max`), or `null` once the
    /// tunnel has ended.
    #[napi(ts_return_type = "Promise<Buffer[] | null>")]
    pub fn recv<'env>(&self, env: &'env Env, max: Option<u32>) -> napi::Result<Object<'env>> {
        let (p, promise) = Pending::<Datagrams>::new(env)?;
        let max = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        self.command(Command::Recv(p, max));
        Ok(promise)
    }

    /// Ends our side of the tunnel; what the target still sends can be received until the
    /// proxy ends its side.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let (p, promise) = Pending::<()>::new(env)?;
        self.command(Command::Close(p));
        Ok(promise)
    }

    /// Drops the tunnel now: its stream is reset, waiting receives resolve with `null`.
    #[napi]
    pub fn destroy(&self) {
        self.command(Command::Destroy);
    }

    /// The largest UDP payload the tunnel carries now.
    #[napi(getter)]
    pub fn max_payload(&self) -> u32 {
        let size = match lock(&self.shared.tunnel).as_ref() {
            Some(tunnel) => {
                let size = tunnel.max_payload();
                self.shared.max_payload.store(size, Ordering::Relaxed);
                size
            }
            None => self.shared.max_payload.load(Ordering::Relaxed),
        };
        u32::try_from(size).unwrap_or(u32::MAX)
    }

    /// True once the tunnel has ended (its end was received, it failed, or it was destroyed).
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }
}
