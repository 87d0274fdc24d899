//! Datagram channels for Node: a thin class over the shared [`Endpoint`].

use napi::bindgen_prelude::{BufferSlice, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::{DatagramChannel, Error};
use tokio::runtime::Handle;

use crate::endpoint::Endpoint;

/// An open datagram channel.
#[napi(namespace = "native")]
pub struct NativeDatagramChannel(Endpoint);

impl NativeDatagramChannel {
    /// Wraps an open channel; its receives run on `handle`.
    pub(crate) fn start(ch: DatagramChannel, handle: &Handle) -> Result<Self, Error> {
        let (head, sender, receiver) = ch.split();
        Ok(NativeDatagramChannel(Endpoint::new(
            head,
            sender,
            receiver,
            handle,
            "the datagram channel",
        )))
    }
}

#[napi(namespace = "native")]
impl NativeDatagramChannel {
    /// The status code of the extended CONNECT's response.
    #[napi(getter)]
    pub fn status(&self) -> u32 {
        self.0.status()
    }

    /// The HTTP version (`3.0`).
    #[napi(getter)]
    pub fn version(&self) -> &'static str {
        self.0.version()
    }

    /// The response headers as a flat `[name, value, ...]` list.
    #[napi]
    pub fn headers(&self) -> Vec<String> {
        self.0.headers()
    }

    /// Sends one datagram (unreliable). Throws `datagram_too_large` when it does not fit the
    /// path, `datagram_error` once the channel is closed.
    #[napi]
    pub fn send(&self, payload: BufferSlice) -> napi::Result<()> {
        self.0.send(payload)
    }

    /// Resolves with the datagrams received (at least one, at most `max`), or `null` once the
    /// channel's stream has ended.
    #[napi(ts_return_type = "Promise<Buffer[] | null>")]
    pub fn recv<'env>(&self, env: &'env Env, max: Option<u32>) -> napi::Result<Object<'env>> {
        self.0.recv(env, max)
    }

    /// Resolves with the next piece of the stream's data, or `null` at its end.
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn recv_data<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.0.recv_data(env)
    }

    /// Ends our side of the stream; what the peer still sends can be received.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.0.close(env)
    }

    /// Drops the channel now: its stream is reset, waiting receives resolve with `null`.
    #[napi]
    pub fn destroy(&self) {
        self.0.destroy();
    }

    /// The largest datagram payload the path takes now; `null` when datagrams are unavailable.
    #[napi(getter)]
    pub fn max_datagram_size(&self) -> Option<u32> {
        self.0.max_payload()
    }

    /// True once the channel's stream has ended.
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        self.0.ended()
    }

    /// The stream's trailers as a flat list, once it has ended; `null` before or without.
    #[napi]
    pub fn trailers(&self) -> Option<Vec<String>> {
        self.0.trailers()
    }
}
