//! Python bindings for Quiver: the native module `quiver._quiver` behind the `quiver` package.
#![deny(missing_docs)]

use pyo3::prelude::*;

/// The native part of the `quiver` package.
#[pymodule]
fn _quiver(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
