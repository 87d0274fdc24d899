//! MASQUE CONNECT-UDP tunnels for Node: a thin class over the shared [`Endpoint`].

use napi::bindgen_prelude::{BufferSlice, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::UdpTunnel;
use tokio::runtime::Handle;

use crate::endpoint::Endpoint;

/// An open UDP tunnel to one target through a MASQUE proxy.
#[napi(namespace = "native")]
pub struct NativeUdpTunnel {
    endpoint: Endpoint,
    target: String,
}

impl NativeUdpTunnel {
    /// Wraps an open tunnel; its receives run on `handle`.
    pub(crate) fn start(tunnel: UdpTunnel, handle: &Handle) -> NativeUdpTunnel {
        let target = tunnel.target().to_owned();
        let (head, sender, receiver) = tunnel.split();
        NativeUdpTunnel {
            endpoint: Endpoint::new(head, sender, receiver, handle, "the UDP tunnel"),
            target,
        }
    }
}

#[napi(namespace = "native")]
impl NativeUdpTunnel {
    /// The status code of the proxy's answer to the CONNECT-UDP.
    #[napi(getter)]
    pub fn status(&self) -> u32 {
        self.endpoint.status()
    }

    /// The HTTP version (`3.0` or `2.0`): how the tunnel reaches the proxy.
    #[napi(getter)]
    pub fn version(&self) -> &'static str {
        self.endpoint.version()
    }

    /// The proxy's response headers as a flat `[name, value, ...]` list.
    #[napi]
    pub fn headers(&self) -> Vec<String> {
        self.endpoint.headers()
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
        self.endpoint.send(payload)
    }

    /// Resolves with the payloads received (at least one, at most `max`), or `null` once the
    /// tunnel has ended.
    #[napi(ts_return_type = "Promise<Buffer[] | null>")]
    pub fn recv<'env>(&self, env: &'env Env, max: Option<u32>) -> napi::Result<Object<'env>> {
        self.endpoint.recv(env, max)
    }

    /// Ends our side of the tunnel; what the target still sends can be received until the
    /// proxy ends its side.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.endpoint.close(env)
    }

    /// Drops the tunnel now: its stream is reset, waiting receives resolve with `null`.
    #[napi]
    pub fn destroy(&self) {
        self.endpoint.destroy();
    }

    /// The largest UDP payload the tunnel carries now.
    #[napi(getter)]
    pub fn max_payload(&self) -> u32 {
        self.endpoint.max_payload().unwrap_or(0)
    }

    /// True once the tunnel has ended (its end was received, it failed, or it was destroyed).
    #[napi(getter)]
    pub fn ended(&self) -> bool {
        self.endpoint.ended()
    }
}
