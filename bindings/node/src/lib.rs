//! Node bindings for Quiver: the native addon behind the `quiver-http` npm package.
//!
//! The addon is thin: conversion and idiom only. The package's JavaScript (`index.js`) wraps
//! these classes into the public API (`Client`, `request()`, bodies as async iterables,
//! `QuiverError`).
//!
//! Threading. Every wait runs on quiver's background runtime
//! ([`quiver_core::runtime::background`]), the same one that owns the connections: napi's own
//! tokio runtime is not enabled (it would be a second thread pool, started at module load).
//! A call that waits returns a Promise whose settlement a runtime task queues (`pending.rs`):
//! every Promise of a JavaScript thread is settled through one threadsafe function, which wakes
//! JavaScript once per batch and holds the event loop only while some Promise is pending. So a
//! pending request keeps the loop alive (as a socket would) and nothing else does: idle
//! connections live on runtime threads, which never hold the loop, and the stored threadsafe
//! functions (an upload body's `pull`, the events' wake-up) are weak.
//!
//! Errors cross as JavaScript `Error`s whose message starts with `[quiver:<kind>:<class>] `;
//! the JavaScript layer turns them into `QuiverError { code, class }`.
#![deny(missing_docs)]

mod body;
mod channel;
mod client;
mod cookies;
mod endpoint;
mod errors;
mod events;
mod headers;
mod layer;
mod options;
mod pending;
mod stats;
mod tunnel;
mod upload;

pub use body::{NativeResponse, RequestCall};
pub use channel::NativeDatagramChannel;
pub use client::NativeClient;
pub use cookies::{CookieEntry, NativeCookieJar};
pub use events::{EventBatch, EventRecord, NativeProgress, NativeTimings, TimingsRecord};
pub use layer::{AuthSpec, NativeForm, RedirectEntry, RequestSettings};
pub use options::OptionEntry;
pub use stats::{ClientStats, OriginStats};
pub use tunnel::NativeUdpTunnel;
pub use upload::UploadSource;

use napi_derive::napi;

/// The library version.
#[napi(namespace = "native")]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Every error kind with its class, as `[kind, class]` pairs (for the JavaScript layer and
/// its documentation).
#[napi(namespace = "native")]
pub fn error_kinds() -> Vec<Vec<String>> {
    quiver_core::ErrorKind::ALL
        .iter()
        .map(|k| vec![k.as_str().to_owned(), k.class().as_str().to_owned()])
        .collect()
}
