//! Quiver's HTTP client engine: HTTP/1.1, HTTP/2 and HTTP/3 with a connection pool per origin,
//! streamed bodies with backpressure, datagram channels, proxies, and one error model.
//!
//! ```no_run
//! # async fn demo() -> quiver_core::Result<()> {
//! let client = quiver_core::Client::builder()
//!     .set("size", 4)
//!     .set_for("https://api.example.com", "checkout_timeout", std::time::Duration::from_secs(1))
//!     .build()?;
//! let response = client.get("https://api.example.com/health").await?;
//! println!("{} {:?}", response.status(), response.body());
//! # Ok(()) }
//! ```
//!
//! Inside, one dependency direction, each layer naming only those below it: the client
//! (`client`) hands each request to the client layer (`layer`: redirects, decoding, cookies,
//! credentials), which asks the manager (`manager`) for the origin's pool (`pool`), pools run protocol
//! connections (`proto`), and connections reach their origin through the dialing layer
//! (`conn`). Proxies (`proxy`) are dialers: they implement the dialing layer's traits with
//! pools and protocols of their own. `config`, `error`, `origin`, `request`, `response` and
//! `timeout` are the vocabulary every layer shares; `embed` is the toolkit for bindings.
#![deny(missing_docs)]

mod client;
mod config;
mod conn;
#[cfg(feature = "http3")]
mod datagram;
pub mod embed;
mod error;
mod events;
mod layer;
mod manager;
mod origin;
mod pool;
mod proto;
mod proxy;
mod request;
mod response;
mod signal;
mod stats;
mod timeout;

pub use client::{Client, ClientBuilder};
#[doc(hidden)]
pub use config::options_markdown;
pub use config::{
    OptionInfo, OptionKind, OptionValue, PoolOptions, PoolSettings, Protocol, TlsRoots,
};
pub use conn::resolve::{Resolve, Resolving, SystemResolver};
pub use conn::ConnectionInfo;
#[cfg(feature = "http3")]
pub use datagram::{
    ConnectProtocol, DatagramChannel, DatagramOptions, DatagramReceiver, DatagramSender,
};
pub use events::{Event, EventKind, Listener};
#[cfg(feature = "masque")]
pub use proxy::masque::{UdpTunnel, UdpTunnelOptions, UdpTunnelSender};

pub use error::{BoxError, Error, ErrorClass, ErrorKind, Result};
#[cfg(feature = "cookies")]
pub use layer::cookies::{CookieInfo, CookieJar};
pub use origin::{Host, Origin, Scheme, Target};
pub use request::{
    Auth, Body, BodyStream, Multipart, Part, Progress, RedirectMode, Request, RequestBuilder,
    Secret,
};
pub use response::{Redirect, Response, ResponseBody, ResponseHead, StreamResponse, Timings};
pub use stats::{ClientStats, OriginStats};

pub use bytes::Bytes;
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
