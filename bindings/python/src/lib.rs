//! Python bindings for Quiver: the native module `quiver._quiver` behind the `quiver` package.
//!
//! The Python layer (`python/quiver/`) gives the httpx-style API; this crate converts arguments
//! and results and runs core futures:
//!
//! - blocking calls wait with the GIL released, checking for signals between 50 ms slices; a
//!   request runs as a task on quiver's runtime meanwhile (`wait`);
//! - asyncio calls spawn the core future on quiver's runtime and complete an asyncio future on
//!   the caller's loop through a per-loop `LoopBridge` (`bridge`);
//!   cancelling the awaiting task aborts the core future;
//! - request bodies from Python iterators are pulled only when core polls for them (`body`);
//! - core events reach Python through a bounded queue that a Python thread drains (`events`);
//!   timings and progress records are core's, wrapped (`timings`);
//! - the client layer's per-request settings (redirects, decoding, credentials, cookies,
//!   multipart parts) map onto core's request builder (`layer`), and a client's cookie jar is
//!   shared with Python as it is (`cookies`).
//!
//! Nothing here holds the GIL while waiting on the network, and runtime worker threads do not
//! wait for the GIL to deliver a result (a sync body iterator runs on tokio's blocking pool; only
//! a loop without `add_reader` is woken from a worker, through `call_soon_threadsafe`).
#![deny(missing_docs)]

use pyo3::prelude::*;

mod body;
mod bridge;
mod channel;
mod client;
mod cookies;
mod endpoint;
mod errors;
mod events;
mod layer;
mod options;
mod response;
mod stats;
mod timings;
mod tunnel;
mod wait;

/// The native part of the `quiver` package.
///
/// Every Rust value reachable from Python is `Sync` and guarded by its own locks, so the module
/// does not rely on the GIL and declares free-threading support (`gil_used = false`). The abi3
/// wheel itself loads only on GIL-enabled CPython 3.9+.
#[pymodule(gil_used = false)]
fn _quiver(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("OPTION_NAMES", quiver_core::PoolSettings::NAMES.to_vec())?;
    m.add(
        "ERROR_KINDS",
        quiver_core::ErrorKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.class().as_str()))
            .collect::<Vec<_>>(),
    )?;
    m.add_class::<client::NativeClient>()?;
    m.add_class::<response::RawResponse>()?;
    m.add_class::<response::ResponseStream>()?;
    m.add_class::<channel::NativeChannel>()?;
    m.add_class::<cookies::NativeCookieJar>()?;
    m.add_class::<tunnel::NativeUdpTunnel>()?;
    m.add_class::<bridge::LoopBridge>()?;
    m.add_class::<bridge::Pending>()?;
    m.add_class::<events::NativeEvents>()?;
    m.add_class::<events::PyEvent>()?;
    m.add_class::<timings::PyTimings>()?;
    m.add_class::<timings::PyProgress>()?;
    m.add("LOG_DEBUG", events::LOG_DEBUG)?;
    m.add("LOG_WARNING", events::LOG_WARNING)?;
    Ok(())
}
