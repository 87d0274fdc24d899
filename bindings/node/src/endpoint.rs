//! What datagram channels and UDP tunnels share in Node: core's send half (`send()` stays
//! synchronous on the JavaScript thread) and receive half (cancel-safe receives with `&self`,
//! batched: one Promise carries every payload already queued, up to the caller's limit), the
//! response head, and `destroy()`.

use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{Buffer, BufferSlice, Object};
use napi::Env;
use quiver_core::embed::Signal;
use quiver_core::{DatagramReceiver, DatagramSender, Error, ErrorKind, ResponseHead};
use tokio::runtime::Handle;

use crate::errors;
use crate::headers;
use crate::pending::spawn_promise;

/// A batch of received payloads, or `None` at the end.
pub(crate) type Datagrams = Option<Vec<Buffer>>;

/// The halves of an open channel or tunnel; dropped by `destroy()`.
struct Halves {
    sender: DatagramSender,
    receiver: Arc<DatagramReceiver>,
}

/// An open channel or tunnel as JavaScript sees it.
pub(crate) struct Endpoint {
    head: ResponseHead,
    halves: Mutex<Option<Halves>>,
    /// Fired by `destroy()`: receives still waiting resolve with `null`.
    destroyed: Arc<Signal>,
    handle: Handle,
    /// What it is, for "… is closed" errors (`the UDP tunnel`).
    what: &'static str,
}

impl Endpoint {
    pub(crate) fn new(
        head: ResponseHead,
        sender: DatagramSender,
        receiver: DatagramReceiver,
        handle: &Handle,
        what: &'static str,
    ) -> Endpoint {
        Endpoint {
            head,
            halves: Mutex::new(Some(Halves {
                sender,
                receiver: Arc::new(receiver),
            })),
            destroyed: Arc::new(Signal::new()),
            handle: handle.clone(),
            what,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Halves>> {
        self.halves.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn receiver(&self) -> Option<Arc<DatagramReceiver>> {
        self.lock().as_ref().map(|h| h.receiver.clone())
    }

    /// The status code of the CONNECT's answer.
    pub(crate) fn status(&self) -> u32 {
        u32::from(self.head.status.as_u16())
    }

    /// The HTTP version (`3.0`, `2.0`).
    pub(crate) fn version(&self) -> &'static str {
        headers::version(self.head.version)
    }

    /// The response headers as a flat `[name, value, ...]` list.
    pub(crate) fn headers(&self) -> Vec<String> {
        headers::flatten(&self.head.headers)
    }

    /// Sends one payload (unreliable). Throws `datagram_too_large` when it does not fit,
    /// `datagram_error` once closed or destroyed.
    pub(crate) fn send(&self, payload: BufferSlice) -> napi::Result<()> {
        let sender = self.lock().as_ref().map(|h| h.sender.clone());
        let Some(sender) = sender else {
            return Err(errors::encode(
                ErrorKind::DatagramError,
                &format!("{} is closed", self.what),
            ));
        };
        sender.send(&*payload).map_err(|e| errors::to_js(&e))
    }

    /// Resolves with the payloads received (at least one, at most `max`), or `null` once the
    /// stream has ended (or the endpoint was destroyed).
    pub(crate) fn recv<'env>(
        &self,
        env: &'env Env,
        max: Option<u32>,
    ) -> napi::Result<Object<'env>> {
        let max = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let receiver = self.receiver();
        let destroyed = self.destroyed.clone();
        spawn_promise(env, &self.handle, async move {
            let Some(receiver) = receiver else {
                return Ok::<Datagrams, Error>(None);
            };
            tokio::select! {
                biased;
                () = destroyed.fired() => Ok(None),
                batch = receiver.recv_batch(max.max(1)) => {
                    let batch = batch?;
                    Ok((!batch.is_empty()).then(|| batch.into_iter().map(to_buffer).collect()))
                }
            }
        })
    }

    /// Resolves with the next piece of the stream's data, or `null` at its end.
    pub(crate) fn recv_data<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let receiver = self.receiver();
        let destroyed = self.destroyed.clone();
        spawn_promise(env, &self.handle, async move {
            let Some(receiver) = receiver else {
                return Ok::<Option<Buffer>, Error>(None);
            };
            tokio::select! {
                biased;
                () = destroyed.fired() => Ok(None),
                data = receiver.recv_data() => Ok(data?.map(to_buffer)),
            }
        })
    }

    /// Ends our side of the stream; what the peer still sends can be received.
    pub(crate) fn close<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let sender = self.lock().as_ref().map(|h| h.sender.clone());
        spawn_promise(env, &self.handle, async move {
            match sender {
                Some(sender) => sender.close().await,
                None => Ok::<(), Error>(()),
            }
        })
    }

    /// Drops both halves now: the stream is reset, waiting receives resolve with `null`.
    pub(crate) fn destroy(&self) {
        self.destroyed.fire();
        self.lock().take();
    }

    /// The largest payload the path takes now; `None` once destroyed or without datagrams.
    pub(crate) fn max_payload(&self) -> Option<u32> {
        self.lock()
            .as_ref()
            .and_then(|h| h.sender.max_payload())
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// True once the stream has ended, failed, or the endpoint was destroyed.
    pub(crate) fn ended(&self) -> bool {
        self.lock().as_ref().is_none_or(|h| h.receiver.is_ended())
    }

    /// The stream's trailers as a flat list, once received; `null` before or without.
    pub(crate) fn trailers(&self) -> Option<Vec<String>> {
        self.lock()
            .as_ref()
            .and_then(|h| h.receiver.trailers())
            .map(|t| headers::flatten(&t))
    }
}

/// A payload as a JavaScript Buffer.
fn to_buffer(b: quiver_core::Bytes) -> Buffer {
    Buffer::from(Vec::from(b))
}
