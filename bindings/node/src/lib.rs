//! Node bindings for Quiver: the native addon behind the `quiver-http` npm package.
#![deny(missing_docs)]

use napi_derive::napi;

/// The library version.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
