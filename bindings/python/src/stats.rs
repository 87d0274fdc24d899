//! Pool statistics as Python dicts.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use quiver_core::{ClientStats, OriginStats};

fn origin_dict<'py>(py: Python<'py>, o: &OriginStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("origin", &o.origin)?;
    d.set_item("protocol", o.protocol.as_str())?;
    d.set_item("idle", o.idle)?;
    d.set_item("active", o.active)?;
    d.set_item("queued", o.queued)?;
    d.set_item("connections", o.connections)?;
    d.set_item("connections_opened", o.connections_opened)?;
    d.set_item("requests", o.requests)?;
    d.set_item("errors", o.errors)?;
    d.set_item("retries", o.retries)?;
    d.set_item("buffered_bytes", o.buffered_bytes)?;
    d.set_item("connection_streams", &o.connection_streams)?;
    d.set_item("fallbacks", o.fallbacks)?;
    d.set_item("alt_svc", o.alt_svc.as_deref())?;
    d.set_item("alt_svc_broken", o.alt_svc_broken)?;
    Ok(d)
}

/// `{"connections": .., "idle": .., ..., "origins": {"https://host:443": {...}},
/// "other_protocols": [{...}], "proxies": [{...}]}`: the totals, one dict per origin (keyed by
/// `scheme://host:port`: the pool its rule makes), one per extra pool that a request asking for
/// another protocol opened for an origin, and one per pool of connections to a proxy (HTTP/2
/// and HTTP/3 proxy connections are pooled; not counted in the totals).
pub(crate) fn to_dict<'py>(py: Python<'py>, s: &ClientStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("connections", s.connections)?;
    d.set_item("idle", s.idle)?;
    d.set_item("active", s.active)?;
    d.set_item("queued", s.queued)?;
    d.set_item("connections_opened", s.connections_opened)?;
    d.set_item("requests", s.requests)?;
    d.set_item("errors", s.errors)?;
    d.set_item("retries", s.retries)?;
    d.set_item("buffered_bytes", s.buffered_bytes)?;
    d.set_item("fallbacks", s.fallbacks)?;
    let origins = PyDict::new(py);
    let mut others = Vec::new();
    for o in &s.origins {
        if o.per_request {
            others.push(origin_dict(py, o)?);
        } else {
            origins.set_item(&o.origin, origin_dict(py, o)?)?;
        }
    }
    d.set_item("origins", origins)?;
    d.set_item("other_protocols", others)?;
    let proxies = s
        .proxies
        .iter()
        .map(|o| origin_dict(py, o))
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("proxies", proxies)?;
    Ok(d)
}
