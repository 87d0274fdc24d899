//! Quiver's HTTP client engine: HTTP/1.1 (and, as they land, HTTP/2 and HTTP/3) with a
//! connection pool per origin, streamed bodies with backpressure, and one error model.
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
#![deny(missing_docs)]

mod client;
pub mod config;
mod datagram;
mod error;
mod origin;
mod pool;
mod proxy;

mod request;
mod response;
pub mod runtime;
mod stats;
mod timeout;
mod transport;

pub use client::{Client, ClientBuilder};
pub use config::{OptionKind, OptionValue, PoolOptions, PoolSettings, Protocol, TlsRoots};
pub use datagram::{DatagramChannel, DatagramOptions, DatagramSender};
pub use proxy::udp::{UdpTunnel, UdpTunnelOptions, UdpTunnelSender};

pub use error::{BoxError, Error, ErrorClass, ErrorKind, Result};
pub use origin::{Host, Origin, Scheme, Target};
pub use request::{Body, BodyStream, Request, RequestBuilder};
pub use response::{Response, ResponseBody, ResponseHead, StreamResponse};
pub use stats::{ClientStats, OriginStats};

pub use bytes::Bytes;
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
