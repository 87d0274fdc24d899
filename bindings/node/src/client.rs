//! The native client: core's `Client` built from JavaScript options, and the calls that start
//! requests, datagram channels and UDP tunnels.

use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{BufferSlice, Function, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::{
    Client, ConnectProtocol, DatagramOptions, Error, ErrorKind, Protocol, Request, UdpTunnelOptions,
};

use crate::body::{self, RequestCall};
use crate::channel;
use crate::cookies::NativeCookieJar;
use crate::errors;
use crate::events::{self, EventBatch, EventQueue, NativeProgress};
use crate::headers;
use crate::layer::{self, NativeForm, RequestSettings};
use crate::options::{self, OptionEntry};
use crate::pending;
use crate::stats::ClientStats;
use crate::tunnel::NativeUdpTunnel;
use crate::upload::UploadSource;

/// A quiver client: pools per origin, on quiver's background runtime.
#[napi(namespace = "native")]
pub struct NativeClient {
    client: Option<Client>,
    /// The client's events on their way to JavaScript, when it asked for them.
    events: Option<EventQueue>,
}

#[napi(namespace = "native")]
impl NativeClient {
    /// Builds a client; every option is validated here (a bad one throws `invalid_config`).
    ///
    /// With `onEvents`, the client's events are kept for JavaScript while `setEventsWanted(true)`
    /// (core builds none otherwise); `onEvents` is called, on the JavaScript thread, when some
    /// wait to be taken with `takeEvents()`.
    #[napi(constructor)]
    pub fn new(
        options: Vec<OptionEntry>,
        on_events: Option<Function<u32, ()>>,
    ) -> napi::Result<NativeClient> {
        let mut builder = options::apply(Client::builder(), options);
        let mut queue = None;
        if let Some(wake) = on_events {
            let (q, listener) = EventQueue::new(wake)?;
            builder = builder.listener(listener);
            queue = Some(q);
        }
        let client = builder.build().map_err(|e| errors::to_js(&e))?;
        Ok(NativeClient {
            client: Some(client),
            events: queue,
        })
    }

    /// Whether anybody listens to this client's events now (core builds none while not).
    #[napi]
    pub fn set_events_wanted(&self, wanted: bool) {
        if let Some(q) = &self.events {
            q.set_wanted(wanted);
        }
    }

    /// Takes every event waiting, oldest first.
    #[napi]
    pub fn take_events(&self) -> EventBatch {
        events::batch(
            self.events
                .as_ref()
                .map(EventQueue::take)
                .unwrap_or_default(),
        )
    }

    fn client(&self) -> napi::Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| errors::encode(ErrorKind::Shutdown, "the client is closed"))
    }

    /// Sends a request; resolves with its response once the head arrives.
    ///
    /// `headers` is a flat `[name, value, ...]` list; the body is `body` (bytes, copied),
    /// `upload` (streamed) or `form` (`multipart/form-data`); `settings` holds the per-request
    /// options (timeouts, redirects, decoding, credentials, protocol, cookies; null: none).
    /// `progress` records how far the upload and download are; `tag` marks the request's
    /// `request_start` event (see `takeEvents()`).
    #[allow(clippy::too_many_arguments)]
    #[napi(ts_return_type = "Promise<NativeResponse>")]
    pub fn send<'env>(
        &self,
        env: &'env Env,
        method: String,
        url: String,
        headers: Vec<String>,
        settings: Option<RequestSettings>,
        body: Option<BufferSlice>,
        upload: Option<&mut UploadSource>,
        form: Option<&mut NativeForm>,
        call: Option<&RequestCall>,
        progress: Option<&NativeProgress>,
        tag: Option<u32>,
    ) -> napi::Result<Object<'env>> {
        let client = self.client()?.clone();
        let mut builder = Request::builder(&method, &url);
        if let Some(p) = progress {
            builder = builder.progress(p.inner.clone());
        }
        for (name, value) in headers::pairs(&headers) {
            builder = builder.header(name, value);
        }
        if let Some(body) = body {
            builder = builder.body(Bytes::copy_from_slice(&body));
        } else if let Some(upload) = upload {
            let Some(stream) = upload.take_body() else {
                return Err(errors::encode(
                    ErrorKind::InvalidBody,
                    "this request body stream was already used",
                ));
            };
            builder = builder.body(stream);
        } else if let Some(form) = form {
            let Some(form) = form.take() else {
                return Err(errors::encode(
                    ErrorKind::InvalidBody,
                    "this form was already sent",
                ));
            };
            builder = builder.multipart(form);
        }
        let builder = match settings {
            Some(settings) => layer::apply(builder, settings).map_err(|e| errors::to_js(&e))?,
            None => builder,
        };
        let req = builder.build().map_err(|e| errors::to_js(&e))?;
        body::send(env, client, req, call, tag)
    }

    /// The client's cookie jar; `null` unless the option `cookies` is on.
    #[napi]
    pub fn cookies(&self) -> napi::Result<Option<NativeCookieJar>> {
        Ok(self.client()?.cookies().map(NativeCookieJar::new))
    }

    /// Opens an RFC 9297 datagram channel (an extended CONNECT over HTTP/3).
    #[napi(ts_return_type = "Promise<NativeDatagramChannel>")]
    pub fn open_datagram_channel<'env>(
        &self,
        env: &'env Env,
        url: String,
        headers: Vec<String>,
        protocol: Option<String>,
        queue: Option<u32>,
    ) -> napi::Result<Object<'env>> {
        let client = self.client()?.clone();
        let mut options = DatagramOptions::default();
        let protocol = protocol.map(|p| p.parse::<ConnectProtocol>()).transpose();
        if let Some(q) = queue {
            options.queue = usize::try_from(q).unwrap_or(usize::MAX);
        }
        let pairs: Vec<(String, String)> = headers::pairs(&headers)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let runtime = client.runtime().clone();
        pending::spawn_promise(env, &runtime, async move {
            // An unknown protocol rejects the Promise, as core names it (`invalid_header`).
            if let Some(p) = protocol? {
                options.protocol = p;
            }
            let ch = client.open_datagram_channel(&url, pairs, options).await?;
            channel::NativeDatagramChannel::start(ch, client.runtime())
        })
    }

    /// Opens a MASQUE UDP tunnel (RFC 9298) to `host:port` through the proxy at `proxy`, over
    /// a pooled HTTP/3 (default) or HTTP/2 connection to the proxy.
    #[napi(ts_return_type = "Promise<NativeUdpTunnel>")]
    pub fn open_udp_tunnel<'env>(
        &self,
        env: &'env Env,
        proxy: String,
        host: String,
        port: u32,
        protocol: Option<String>,
        headers: Vec<String>,
    ) -> napi::Result<Object<'env>> {
        let client = self.client()?.clone();
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                errors::encode(
                    ErrorKind::InvalidUrl,
                    &format!("the target port must be from 1 to 65535, got {port}"),
                )
            })?;
        let mut options = UdpTunnelOptions::default().protocol(match protocol {
            Some(p) => tunnel_protocol(&p).map_err(|e| errors::to_js(&e))?,
            None => Protocol::Http3,
        });
        options.headers = headers::pairs(&headers)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let runtime = client.runtime().clone();
        pending::spawn_promise(env, &runtime, async move {
            let tunnel = client.open_udp_tunnel(&proxy, &host, port, options).await?;
            Ok(NativeUdpTunnel::start(tunnel, client.runtime()))
        })
    }

    /// Tears down every pooled connection to proxies: tunnels (and requests) in flight on them
    /// fail with `shutdown`; later ones open new connections.
    #[napi]
    pub fn close_all_tunnels(&self) -> napi::Result<()> {
        self.client()?.close_all_tunnels();
        Ok(())
    }

    /// Pool statistics per origin and in total, and the pooled proxy connections.
    #[napi]
    pub fn stats(&self) -> napi::Result<ClientStats> {
        Ok(self.client()?.stats().into())
    }

    /// Closes every pool (core's `Client::close`): idle connections close, HTTP/2 and HTTP/3
    /// streams in flight (bodies, datagram channels, tunnels) fail with `shutdown`, HTTP/1.1
    /// requests already on a connection finish. New calls throw `shutdown`.
    #[napi]
    pub fn close(&mut self) {
        if let Some(client) = self.client.take() {
            client.close();
        }
    }

    /// True once `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.client.is_none()
    }
}

/// The protocol of a UDP tunnel, by core's own parsing of protocol names.
fn tunnel_protocol(name: &str) -> Result<Protocol, Error> {
    name.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("the tunnel `protocol` must be http3, http2 or http1, got `{name}`"),
        )
    })
}

/// A non-negative number of milliseconds as a duration.
pub(crate) fn duration_ms(what: &str, ms: f64) -> Result<Duration, Error> {
    if ms.is_finite() && ms >= 0.0 && ms <= u64::MAX as f64 / 1000.0 {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("`{what}` must be a non-negative number of milliseconds, got {ms}"),
        ))
    }
}
