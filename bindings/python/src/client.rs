//! The native client behind `quiver.Client` and `quiver.AsyncClient`: builds core requests from
//! Python arguments and runs them, blocking (GIL released) or completing an asyncio future.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyString};
use quiver_core::embed::on_first_poll;
use quiver_core::{
    Client, ConnectProtocol, DatagramOptions, Error, ErrorKind, Protocol, Request, RequestBuilder,
    UdpTunnelOptions,
};
use tokio::runtime::Handle;

use crate::body::{to_body, BodyFailure};
use crate::bridge::{self, LoopBridge, Pending};
use crate::channel::NativeChannel;
use crate::cookies::NativeCookieJar;
use crate::events::{Hub, NativeEvents, Tap};
use crate::response::{RawResponse, ResponseStream};
use crate::tunnel::NativeUdpTunnel;
use crate::wait::{self, ForkGuard};
use crate::{errors, layer, options, stats};

/// A core client with its pools; shared by every thread (and event loop) that uses it.
#[pyclass(frozen, module = "quiver._quiver")]
pub struct NativeClient {
    client: Client,
    closed: AtomicBool,
    /// Where the client's events wait for the Python listener thread.
    events: Arc<Hub>,
}

/// Header fields given by Python: an iterable of `(name, value)` pairs of str or bytes.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn text_or_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    Ok(obj.cast::<PyString>()?.to_cow()?.as_bytes().to_vec())
}

fn fields(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Fields> {
    let mut out = Vec::new();
    let Some(headers) = headers.filter(|h| !h.is_none()) else {
        return Ok(out);
    };
    for pair in headers.try_iter()? {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
        out.push((text_or_bytes(&name)?, text_or_bytes(&value)?));
    }
    Ok(out)
}

/// A per-request timeout in seconds (`what` names it); negative, NaN or infinite ones are
/// `invalid_config` (core refuses those over a year, and zero read and checkout timeouts).
fn seconds(py: Python<'_>, what: &str, timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|t| {
            Duration::try_from_secs_f64(t).map_err(|_| {
                errors::new_py(
                    py,
                    ErrorKind::InvalidConfig,
                    format!("{what} must be a non-negative number of seconds, got {t}"),
                )
            })
        })
        .transpose()
}

/// A request's own timeouts, in seconds (None: the pool's).
#[derive(Clone, Copy)]
struct Timeouts {
    /// The whole request (`timeout=`), overriding `request_timeout`.
    total: Option<f64>,
    /// Idle between bytes (`read_timeout=`), overriding the pool's `read_timeout`.
    read: Option<f64>,
    /// Waiting for a connection or stream slot (`checkout_timeout=`), overriding the pool's.
    checkout: Option<f64>,
}

impl Timeouts {
    fn apply(self, py: Python<'_>, mut builder: RequestBuilder) -> PyResult<RequestBuilder> {
        if let Some(t) = seconds(py, "timeout", self.total)? {
            builder = builder.timeout(t);
        }
        if let Some(t) = seconds(py, "read_timeout", self.read)? {
            builder = builder.read_timeout(t);
        }
        if let Some(t) = seconds(py, "checkout_timeout", self.checkout)? {
            builder = builder.checkout_timeout(t);
        }
        Ok(builder)
    }
}

/// One request, converted while attached, and where its body iterator reports an exception.
struct Call {
    request: Result<Request, Error>,
    failure: BodyFailure,
}

impl Call {
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        content: Option<&Bound<'_, PyAny>>,
        timeouts: Timeouts,
        early_data: Option<bool>,
        layer: Option<&Bound<'_, PyDict>>,
        handle: &Handle,
        bridge: Option<&std::sync::Arc<bridge::Bridge>>,
    ) -> PyResult<Call> {
        let fields = fields(headers)?;
        let failure = BodyFailure::default();
        let body = to_body(content, handle, bridge, &failure)?;
        let mut builder = Request::builder(method, url).body(body);
        let streams = layer::Streams {
            handle,
            bridge,
            failure: &failure,
        };
        builder = layer::apply(py, builder, layer, &streams)?;
        for (name, value) in fields {
            builder = builder.header(name, value);
        }
        builder = timeouts.apply(py, builder)?;
        if let Some(e) = early_data {
            builder = builder.early_data(e);
        }
        Ok(Call {
            request: builder.build(),
            failure,
        })
    }

    fn into_parts(self, py: Python<'_>) -> PyResult<(Request, BodyFailure)> {
        match self.request {
            Ok(req) => Ok((req, self.failure)),
            Err(e) => Err(errors::to_py(py, &e)),
        }
    }
}

impl NativeClient {
    /// The core client, unless `close()` was called (`shutdown`).
    fn client(&self, py: Python<'_>) -> PyResult<Client> {
        if self.closed.load(Ordering::Acquire) {
            return Err(errors::new_py(
                py,
                ErrorKind::Shutdown,
                "the client was closed",
            ));
        }
        Ok(self.client.clone())
    }

    /// `Ok` unless this is a child forked after the client was made (`forked`).
    fn check_fork(&self, py: Python<'_>) -> PyResult<()> {
        if self.client.is_forked() {
            return Err(errors::to_py(py, &errors::forked()));
        }
        Ok(())
    }

    /// The runtime to run on. In a forked child the client's own runtime has no threads, so
    /// its calls go to the child's fresh background runtime, where core refuses them (`forked`)
    /// instead of hanging.
    fn runtime(&self, client: &Client) -> Handle {
        if client.is_forked() {
            if let Ok(handle) = quiver_core::embed::background() {
                return handle;
            }
        }
        client.runtime().clone()
    }
}

/// A UDP tunnel's options: the protocol by the pool option's names (`http3`, `http2`; `h3`
/// and the other spellings `protocol=` takes), and header fields as text.
fn tunnel_options(
    py: Python<'_>,
    protocol: Option<&str>,
    headers: Option<&Bound<'_, PyAny>>,
) -> PyResult<UdpTunnelOptions> {
    let mut options = UdpTunnelOptions::default();
    if let Some(name) = protocol {
        options.protocol = name.parse::<Protocol>().map_err(|_| {
            errors::new_py(
                py,
                ErrorKind::InvalidConfig,
                format!("a UDP tunnel's protocol is http3 or http2, got {name:?}"),
            )
        })?;
    }
    for (name, value) in fields(headers)? {
        let (Ok(name), Ok(value)) = (String::from_utf8(name), String::from_utf8(value)) else {
            return Err(errors::new_py(
                py,
                ErrorKind::InvalidHeader,
                "a UDP tunnel's header fields must be UTF-8 text",
            ));
        };
        options.headers.push((name, value));
    }
    Ok(options)
}

/// Core's defaults, with what Python gave (an unknown protocol: `invalid_header`, as core
/// names it).
fn channel_options(
    py: Python<'_>,
    protocol: Option<String>,
    queue: usize,
) -> PyResult<DatagramOptions> {
    let mut options = DatagramOptions::default().queue(queue);
    if let Some(p) = protocol {
        options.protocol = p
            .parse::<ConnectProtocol>()
            .map_err(|e| errors::to_py(py, &e))?;
    }
    Ok(options)
}

#[pymethods]
impl NativeClient {
    /// Builds a client: `options` are client-wide pool options, `pools` maps origin patterns to
    /// per-origin options. Every option is validated here (`InvalidError`, kind
    /// `invalid_config`).
    #[new]
    #[pyo3(signature = (options = None, pools = None))]
    fn new(
        py: Python<'_>,
        options: Option<&Bound<'_, PyDict>>,
        pools: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let events = Hub::new();
        let client = options::build(py, options, pools, Tap(events.clone()))?;
        Ok(NativeClient {
            client,
            closed: AtomicBool::new(false),
            events,
        })
    }

    /// Sends a request and blocks (GIL released) for the whole response, or only for its head
    /// when `stream` is true.
    /// `layer`: the client layer's per-request settings (see `layer::apply`); `timeout`,
    /// `read_timeout` and `checkout_timeout` (seconds) override the pool's for this request.
    #[pyo3(signature = (method, url, headers = None, content = None, timeout = None, early_data = None, stream = false, layer = None, read_timeout = None, checkout_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        py: Python<'_>,
        method: PyBackedStr,
        url: PyBackedStr,
        headers: Option<&Bound<'_, PyAny>>,
        content: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        early_data: Option<bool>,
        stream: bool,
        layer: Option<&Bound<'_, PyDict>>,
        read_timeout: Option<f64>,
        checkout_timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let client = self.client(py)?;
        let handle = self.runtime(&client);
        let timeouts = Timeouts {
            total: timeout,
            read: read_timeout,
            checkout: checkout_timeout,
        };
        let (req, failure) = Call::new(
            py, &method, &url, headers, content, timeouts, early_data, layer, &handle, None,
        )?
        .into_parts(py)?;
        if stream {
            let fork = ForkGuard::new(&client);
            let work = on_first_poll(move || async move { client.stream(req).await });
            let out = wait::run(py, &handle, work)?;
            let resp = out.map_err(|e| errors::request_error(py, &e, &failure))?;
            Ok(Py::new(py, ResponseStream::new(resp, handle, fork))?.into_any())
        } else {
            let work = on_first_poll(move || async move { client.request(req).await });
            let out = wait::run(py, &handle, work)?;
            let resp = out.map_err(|e| errors::request_error(py, &e, &failure))?;
            Ok(Py::new(py, RawResponse::new(resp))?.into_any())
        }
    }

    /// Like `send`, for asyncio: completes `fut` (on the loop of `bridge`) with the response.
    #[pyo3(signature = (bridge, fut, method, url, headers = None, content = None, timeout = None, early_data = None, stream = false, layer = None, read_timeout = None, checkout_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn send_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
        method: PyBackedStr,
        url: PyBackedStr,
        headers: Option<&Bound<'_, PyAny>>,
        content: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        early_data: Option<bool>,
        stream: bool,
        layer: Option<&Bound<'_, PyDict>>,
        read_timeout: Option<f64>,
        checkout_timeout: Option<f64>,
    ) -> PyResult<Pending> {
        let client = self.client(py)?;
        let handle = self.runtime(&client);
        let shared = bridge.shared();
        let timeouts = Timeouts {
            total: timeout,
            read: read_timeout,
            checkout: checkout_timeout,
        };
        let (req, failure) = Call::new(
            py,
            &method,
            &url,
            headers,
            content,
            timeouts,
            early_data,
            layer,
            &handle,
            Some(&shared),
        )?
        .into_parts(py)?;
        if stream {
            let reads_on = handle.clone();
            let fork = ForkGuard::new(&client);
            Ok(bridge::spawn(
                &handle,
                shared,
                fut,
                on_first_poll(move || async move { client.stream(req).await }),
                move |py, out| match out {
                    Ok(resp) => {
                        Ok(Py::new(py, ResponseStream::new(resp, reads_on, fork))?.into_any())
                    }
                    Err(e) => Err(errors::request_error(py, &e, &failure)),
                },
            ))
        } else {
            Ok(bridge::spawn(
                &handle,
                shared,
                fut,
                on_first_poll(move || async move { client.request(req).await }),
                move |py, out| match out {
                    Ok(resp) => Ok(Py::new(py, RawResponse::new(resp))?.into_any()),
                    Err(e) => Err(errors::request_error(py, &e, &failure)),
                },
            ))
        }
    }

    /// Opens an RFC 9297 datagram channel (extended CONNECT, HTTP/3), blocking for its head.
    #[pyo3(signature = (url, headers = None, protocol = None, queue = 1024))]
    fn open_channel(
        &self,
        py: Python<'_>,
        url: PyBackedStr,
        headers: Option<&Bound<'_, PyAny>>,
        protocol: Option<String>,
        queue: usize,
    ) -> PyResult<NativeChannel> {
        let client = self.client(py)?;
        let handle = self.runtime(&client);
        let fields = fields(headers)?;
        let url = url.to_string();
        let options = channel_options(py, protocol, queue)?;
        let fork = ForkGuard::new(&client);
        let out = wait::block_on(py, &handle, async move {
            client.open_datagram_channel(&url, fields, options).await
        })?;
        let ch = out.map_err(|e| errors::to_py(py, &e))?;
        Ok(NativeChannel::start(ch, handle, fork))
    }

    /// Like `open_channel`, for asyncio: completes `fut` with the channel.
    #[pyo3(signature = (bridge, fut, url, headers = None, protocol = None, queue = 1024))]
    #[allow(clippy::too_many_arguments)]
    fn open_channel_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
        url: PyBackedStr,
        headers: Option<&Bound<'_, PyAny>>,
        protocol: Option<String>,
        queue: usize,
    ) -> PyResult<Pending> {
        let client = self.client(py)?;
        let handle = self.runtime(&client);
        let fields = fields(headers)?;
        let url = url.to_string();
        let options = channel_options(py, protocol, queue)?;
        let runs_on = handle.clone();
        let fork = ForkGuard::new(&client);
        Ok(bridge::spawn(
            &handle,
            bridge.shared(),
            fut,
            async move { client.open_datagram_channel(&url, fields, options).await },
            move |py, out| match out {
                Ok(ch) => Ok(Py::new(py, NativeChannel::start(ch, runs_on, fork))?.into_any()),
                Err(e) => Err(errors::to_py(py, &e)),
            },
        ))
    }

    /// Opens a MASQUE CONNECT-UDP tunnel to `host:port` through the proxy at `proxy`, blocking
    /// for the proxy's answer.
    #[pyo3(signature = (proxy, host, port, protocol = None, headers = None))]
    fn open_udp_tunnel(
        &self,
        py: Python<'_>,
        proxy: PyBackedStr,
        host: PyBackedStr,
        port: u16,
        protocol: Option<PyBackedStr>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<NativeUdpTunnel> {
        let client = self.client(py)?;
        let handle = self.runtime(&client);
        let options = tunnel_options(py, protocol.as_deref(), headers)?;
        let fork = ForkGuard::new(&client);
        let (proxy, host) = (proxy.to_string(), host.to_string());
        let out = wait::block_on(py, &handle, async move {
            client.open_udp_tunnel(&proxy, &host, port, options).await
        })?;
        let tunnel = out.map_err(|e| errors::to_py(py, &e))?;
        Ok(NativeUdpTunnel::start(tunnel, handle, fork))
    }

    /// Like `open_udp_tunnel`, for asyncio: completes `fut` with the tunnel.
    #[pyo3(signature = (bridge, fut, proxy, host, port, protocol = None, headers = None))]
    #[allow(clippy::too_many_arguments)]
    fn open_udp_tunnel_async(
        &self,
        py: Python<'_>,
        bridge: &LoopBridge,
        fut: Py<PyAny>,
        proxy: PyBackedStr,
        host: PyBackedStr,
        port: u16,
        protocol: Option<PyBackedStr>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let client = self.client(py)?;
        let handle = self.runtime(&client);
        let options = tunnel_options(py, protocol.as_deref(), headers)?;
        let fork = ForkGuard::new(&client);
        let (proxy, host) = (proxy.to_string(), host.to_string());
        let runs_on = handle.clone();
        Ok(bridge::spawn(
            &handle,
            bridge.shared(),
            fut,
            async move { client.open_udp_tunnel(&proxy, &host, port, options).await },
            move |py, out| match out {
                Ok(t) => Ok(Py::new(py, NativeUdpTunnel::start(t, runs_on, fork))?.into_any()),
                Err(e) => Err(errors::to_py(py, &e)),
            },
        ))
    }

    /// Tears down every pooled connection to proxies: tunnels on them (and callers waiting
    /// for them) get a `shutdown` error.
    fn close_all_tunnels(&self, py: Python<'_>) -> PyResult<()> {
        self.check_fork(py)?;
        py.detach(|| self.client.close_all_tunnels());
        Ok(())
    }

    /// Pool statistics: totals, one dict per origin, and the pooled proxy connections.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.check_fork(py)?;
        stats::to_dict(py, &self.client.stats())
    }

    /// Closes the client (core's `Client::close`): every connection closes and everything in
    /// flight on it (requests, bodies being read, channels, tunnels) ends with `shutdown`;
    /// later requests raise (kind `shutdown`). In a forked child it only marks the client
    /// closed (its pools belong to the parent).
    fn close(&self, py: Python<'_>) {
        if !self.closed.swap(true, Ordering::AcqRel) && !self.client.is_forked() {
            py.detach(|| self.client.close());
        }
        self.events.close();
    }

    /// The client's event queue: what the Python layer wants of it, and the events for its
    /// listener thread.
    fn events(&self) -> NativeEvents {
        NativeEvents::new(self.events.clone())
    }

    /// The client's cookie jar (option `cookies`), or None when it keeps none.
    fn cookies(&self) -> Option<NativeCookieJar> {
        self.client.cookies().map(NativeCookieJar::new)
    }

    /// True once `close()` was called.
    #[getter]
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
