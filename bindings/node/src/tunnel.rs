//! MASQUE UDP tunnels (RFC 9298) for Node.
//!
//! Core's [`UdpTunnel`] receives through `&mut self`; sending goes through its
//! [`UdpTunnelSender`], a cloneable handle. A task on quiver's runtime owns the tunnel and polls
//! `recv` only while JavaScript has a receive waiting; `send()` stays synchronous on the
//! JavaScript thread through the sender, with no lock shared with the task. Received payloads
//! cross in batches, as a channel's datagrams do.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use napi::bindgen_prelude::{BufferSlice, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::{ErrorKind, ResponseHead, UdpTunnel, UdpTunnelSender};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::channel::{answer, poll_batch, Batch, Datagrams, Waiters};
use crate::errors;
use crate::headers;
use crate::pending::Pending;

enum Command {
    Recv(Pending<Datagrams>, usize),
    Close(Pending<()>),
    Destroy,
}

struct Shared {
    /// True once `recv` saw the end (or an error), or the tunnel was dropped.
    ended: AtomicBool,
    /// Set (before the tunnel is dropped) once the task has ended: sends fail from then on.
    gone: AtomicBool,
}

enum Event {
    Command(Option<Command>),
    Payloads(Batch),
}

async fn run(
    mut tunnel: UdpTunnel,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut waiters = Waiters::new();
    // An error that arrived behind a batch of payloads: the next receive gets it.
    let mut stashed = None;
    loop {
        // A plain value: the closure below must not borrow the waiters (their Promises are
        // `Send` but not `Sync`).
        let want = waiters.front().map(|(_, max)| *max);
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(c) = commands.poll_recv(cx) {
                return Poll::Ready(Event::Command(c));
            }
            match want {
                Some(max) => poll_batch(cx, max, &mut stashed, |cx| pin!(tunnel.recv()).poll(cx))
                    .map(Event::Payloads),
                None => Poll::Pending,
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
            Event::Command(Some(Command::Close(p))) => match tunnel.close().await {
                Ok(()) => p.resolve(()),
                Err(e) => p.reject(&e),
            },
            Event::Payloads(batch) => {
                if matches!(batch, Batch::End(_)) {
                    shared.ended.store(true, Ordering::Release);
                }
                answer(&mut waiters, batch);
            }
        }
    }
    // Dropping the tunnel resets its stream and frees its stream slot.
    shared.gone.store(true, Ordering::Release);
    shared.ended.store(true, Ordering::Release);
    drop(tunnel);
    answer(&mut waiters, Batch::End(Ok(())));
}

/// An open UDP tunnel to one target through a MASQUE proxy.
#[napi(namespace = "native")]
pub struct NativeUdpTunnel {
    head: ResponseHead,
    target: String,
    sender: UdpTunnelSender,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl NativeUdpTunnel {
    /// Hands `tunnel` to its task on `handle`.
    pub(crate) fn start(tunnel: UdpTunnel, handle: &Handle) -> NativeUdpTunnel {
        let head = tunnel.head().clone();
        let target = tunnel.target().to_owned();
        let sender = tunnel.sender();
        let shared = Arc::new(Shared {
            ended: AtomicBool::new(false),
            gone: AtomicBool::new(false),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        handle.spawn(run(tunnel, shared.clone(), rx));
        NativeUdpTunnel {
            head,
            target,
            sender,
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
        if self.shared.gone.load(Ordering::Acquire) {
            return Err(errors::encode(
                ErrorKind::DatagramError,
                "the UDP tunnel is closed",
            ));
        }
        self.sender.send(&payload).map_err(|e| errors::to_js(&e))
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
        u32::try_from(self.sender.max_payload()).unwrap_or(u32::MAX)
    }

    /// True once the tunnel has ended (its end was received, it failed, or it was destroyed).
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }
}
