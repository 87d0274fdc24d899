//! The native client: core's `Client` built from JavaScript options, and the calls that start
//! requests and datagram channels.

use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{BufferSlice, Object};
use napi::Env;
use napi_derive::napi;
use quiver_core::{Client, DatagramOptions, Error, ErrorKind, Request};

use crate::body::{self, RequestCall};
use crate::channel;
use crate::errors;
use crate::headers;
use crate::options::{self, OptionEntry};
use crate::pending;
use crate::stats::ClientStats;
use crate::upload::UploadSource;

/// A quiver client: pools per origin, on quiver's background runtime.
#[napi(namespace = "native")]
pub struct NativeClient {
    client: Option<Client>,
}

#[napi(namespace = "native")]
impl NativeClient {
    /// Builds a client; every option is validated here (a bad one throws `invalid_config`).
    #[napi(constructor)]
    pub fn new(options: Vec<OptionEntry>) -> napi::Result<NativeClient> {
        let builder = options::apply(Client::builder(), options);
        let client = builder.build().map_err(|e| errors::to_js(&e))?;
        Ok(NativeClient {
            client: Some(client),
        })
    }

    fn client(&self) -> napi::Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| errors::encode(ErrorKind::Shutdown, "the client is closed"))
    }

    /// Sends a request; resolves with its response once the head arrives.
    ///
    /// `headers` is a flat `[name, value, ...]` list; the body is `body` (bytes, copied) or
    /// `upload` (streamed); `timeoutMs` limits the whole request, body included.
    #[allow(clippy::too_many_arguments)]
    #[napi(ts_return_type = "Promise<NativeResponse>")]
    pub fn send<'env>(
        &self,
        env: &'env Env,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Option<BufferSlice>,
        upload: Option<&mut UploadSource>,
        timeout_ms: Option<f64>,
        early_data: Option<bool>,
        call: Option<&RequestCall>,
    ) -> napi::Result<Object<'env>> {
        let client = self.client()?.clone();
        let mut builder = Request::builder(&method, &url);
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
        }
        // 0 and Infinity: no per-request limit (the pool's `request_timeout` applies).
        if let Some(ms) = timeout_ms.filter(|ms| *ms != 0.0 && *ms != f64::INFINITY) {
            builder = builder.timeout(duration_ms("timeout", ms)?);
        }
        if let Some(early) = early_data {
            builder = builder.early_data(early);
        }
        let req = builder.build().map_err(|e| errors::to_js(&e))?;
        body::send(env, client, req, call)
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
        if let Some(p) = protocol {
            options.protocol = p;
        }
        if let Some(q) = queue {
            options.queue = usize::try_from(q).unwrap_or(usize::MAX);
        }
        let pairs: Vec<(String, String)> = headers::pairs(&headers)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let runtime = client.runtime().clone();
        pending::spawn_promise(env, &runtime, async move {
            let ch = client.open_datagram_channel(&url, pairs, options).await?;
            channel::NativeDatagramChannel::start(ch, client.runtime())
        })
    }

    /// Pool statistics per origin and in total.
    #[napi]
    pub fn stats(&self) -> napi::Result<ClientStats> {
        Ok(self.client()?.stats().into())
    }

    /// Drops this handle's client: new calls throw `shutdown`; requests and bodies in flight
    /// keep their connections until they end, idle connections close with the pools.
    #[napi]
    pub fn close(&mut self) {
        self.client = None;
    }

    /// True once `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.client.is_none()
    }
}

/// A non-negative number of milliseconds as a duration.
fn duration_ms(what: &str, ms: f64) -> napi::Result<Duration> {
    if ms.is_finite() && ms >= 0.0 && ms <= u64::MAX as f64 / 1000.0 {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(errors::to_js(&Error::new(
            ErrorKind::InvalidConfig,
            format!("`{what}` must be a non-negative number of milliseconds, got {ms}"),
        )))
    }
}
