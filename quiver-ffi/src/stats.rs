//! `quiver_stats`: a snapshot of a client's pools, per origin and in total, and of its pooled
//! proxy connections.

use std::ffi::{c_char, CString};
use std::ptr::null;

use quiver_core::{ClientStats, OriginStats};

use crate::client::quiver_client;
use crate::error::{c_string, quiver_result};
use crate::ffi::{
    box_castable, free_box, set_optional_out, to_boxed_mut_ptr, try_cstr_bytes, try_out_ptr,
    try_ref_from_ptr,
};
use crate::panic::ffi_panic_boundary;

/// A counter or gauge of a pool. Values are never renumbered; new ones are appended.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum quiver_stat {
    /// Idle connections (HTTP/1) or free stream slots (HTTP/2, HTTP/3).
    Idle = 0,
    /// Connections leased or being set up (HTTP/1), streams in flight (HTTP/2, HTTP/3).
    Active = 1,
    /// Callers waiting for a connection or stream slot.
    Queued = 2,
    /// Connections open or being opened now.
    Connections = 3,
    /// Connections opened since the pool was created.
    ConnectionsOpened = 4,
    /// Requests started.
    Requests = 5,
    /// Requests that ended in an error.
    Errors = 6,
    /// Requests retried transparently (stale connection, GOAWAY, refused stream).
    Retries = 7,
    /// Response bytes received and not yet taken by the caller (HTTP/2, HTTP/3).
    BufferedBytes = 8,
    /// `auto` pools: requests meant for the origin's HTTP/3 alternative that went over TCP
    /// (QUIC lost the race, failed, or was still connecting).
    Fallbacks = 9,
    /// `auto` pools: 1 while the HTTP/3 alternative is marked broken (a QUIC connection to it
    /// failed lately, so requests go over TCP), else 0.
    AltSvcBroken = 10,
    /// 1 for a pool opened for requests that asked for another protocol than their origin's
    /// rule (`quiver_request_set_protocol`), else 0.
    PerRequest = 11,
}

/// A snapshot of a client's pools (from `quiver_client_stats`). Immutable: any thread may read
/// it; free it once with `quiver_stats_free`.
pub struct quiver_stats {
    _private: [u8; 0],
}

/// The Rust value behind a `quiver_stats`.
pub(crate) struct Stats {
    core: ClientStats,
    /// NUL-terminated copies of each origin's name and protocol.
    names: Vec<(CString, CString)>,
    /// NUL-terminated copies of each origin's `alt_svc`, where it has one.
    alt_svc: Vec<Option<CString>>,
    /// The same for each pooled proxy connection set.
    proxy_names: Vec<(CString, CString)>,
}

fn names(pools: &[OriginStats]) -> Vec<(CString, CString)> {
    pools
        .iter()
        .map(|o| (c_string(&o.origin), c_string(o.protocol.as_str())))
        .collect()
}

box_castable!(quiver_stats => Stats);

/// Writes a pool's streams per connection (pointer and length) for the `_connection_streams`
/// getters; `NOT_FOUND` without a pool.
fn write_connection_streams(
    pool: Option<&OriginStats>,
    counts_out: *mut *const usize,
    len_out: *mut usize,
) -> quiver_result {
    let Some(pool) = pool else {
        return quiver_result::NotFound;
    };
    set_optional_out(counts_out, pool.connection_streams.as_ptr());
    set_optional_out(len_out, pool.connection_streams.len());
    quiver_result::Ok
}

fn origin_value(o: &OriginStats, stat: u32) -> Option<u64> {
    let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Some(match stat {
        0 => wide(o.idle),
        1 => wide(o.active),
        2 => wide(o.queued),
        3 => wide(o.connections),
        4 => o.connections_opened,
        5 => o.requests,
        6 => o.errors,
        7 => o.retries,
        8 => o.buffered_bytes,
        9 => o.fallbacks,
        10 => u64::from(o.alt_svc_broken),
        11 => u64::from(o.per_request),
        _ => return None,
    })
}

/// Takes a snapshot of the client's pools into `*stats_out` (free it with
/// `quiver_stats_free`). Any thread.
#[no_mangle]
pub extern "C" fn quiver_client_stats(
    client: *const quiver_client,
    stats_out: *mut *mut quiver_stats,
) -> quiver_result {
    ffi_panic_boundary! {
        let stats_out = try_out_ptr!(stats_out);
        *stats_out = std::ptr::null_mut();
        let client = try_ref_from_ptr!(client);
        let core = client.core().stats();
        let (names, proxy_names) = (names(&core.origins), names(&core.proxies));
        let alt_svc = core.origins.iter().map(|o| o.alt_svc.as_deref().map(c_string)).collect();
        *stats_out =
            to_boxed_mut_ptr::<quiver_stats>(Stats { core, names, alt_svc, proxy_names });
        quiver_result::Ok
    }
}

/// How many origins have a pool. NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_stats_origin_count(stats: *const quiver_stats) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stats).core.origins.len()
    }
}

/// The origin at `index` (sorted by name) as `scheme://host:port`, NUL-terminated, valid until
/// the stats are freed; NULL when `index` is out of range.
#[no_mangle]
pub extern "C" fn quiver_stats_origin(stats: *const quiver_stats, index: usize) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stats).names.get(index).map_or(null(), |n| n.0.as_ptr())
    }
}

/// The protocol the pool at `index` speaks (`http1`, `http2`, `http3`), like `quiver_stats_origin`.
#[no_mangle]
pub extern "C" fn quiver_stats_origin_protocol(
    stats: *const quiver_stats,
    index: usize,
) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stats).names.get(index).map_or(null(), |n| n.1.as_ptr())
    }
}

/// The fresh HTTP/3 alternatives of the `auto` pool at `index`, written as an `alt-svc` value
/// (`h3=":443"; ma=86399`, `ma` being the time left), NUL-terminated, valid until the stats are
/// freed; NULL when it has none or `index` is out of range.
#[no_mangle]
pub extern "C" fn quiver_stats_origin_alt_svc(
    stats: *const quiver_stats,
    index: usize,
) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stats)
            .alt_svc
            .get(index)
            .and_then(Option::as_ref)
            .map_or(null(), |v| v.as_ptr())
    }
}

/// Finds an origin (`scheme://host:port`) and writes its index to `*index_out` (may be NULL).
/// `QUIVER_RESULT_NOT_FOUND` when it has no pool.
#[no_mangle]
pub extern "C" fn quiver_stats_find_origin(
    stats: *const quiver_stats,
    origin: *const c_char,
    index_out: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let stats = try_ref_from_ptr!(stats);
        let origin = try_cstr_bytes!(origin);
        match stats.core.origins.iter().position(|o| o.origin.as_bytes() == origin) {
            Some(i) => {
                set_optional_out(index_out, i);
                quiver_result::Ok
            }
            None => quiver_result::NotFound,
        }
    }
}

/// One counter (a `quiver_stat` value) of the pool at `index`; 0 when `index` or `stat` is out
/// of range.
#[no_mangle]
pub extern "C" fn quiver_stats_origin_get(
    stats: *const quiver_stats,
    index: usize,
    stat: u32,
) -> u64 {
    ffi_panic_boundary! {
        let stats = try_ref_from_ptr!(stats);
        stats.core.origins.get(index).and_then(|o| origin_value(o, stat)).unwrap_or(0)
    }
}

/// Streams in flight on each connection of the pool at `index` (HTTP/2, HTTP/3): writes a pointer to
/// `*counts_out` (valid until the stats are freed) and the number of connections to
/// `*len_out`. `QUIVER_RESULT_NOT_FOUND` when `index` is out of range.
#[no_mangle]
pub extern "C" fn quiver_stats_origin_connection_streams(
    stats: *const quiver_stats,
    index: usize,
    counts_out: *mut *const usize,
    len_out: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let pool = try_ref_from_ptr!(stats).core.origins.get(index);
        write_connection_streams(pool, counts_out, len_out)
    }
}

/// How many sets of pooled proxy connections the client has: one per proxy (and protocol and
/// trust settings) that carries pooled HTTP/2 or HTTP/3 connections (`proxy_protocol` `http2`
/// or `http3`, UDP tunnels). Proxies reached over HTTP/1.1 (a connection per tunnel) are not
/// pooled and not counted; `quiver_client_close_all_tunnels` empties the list. NULL: 0.
#[no_mangle]
pub extern "C" fn quiver_stats_proxy_count(stats: *const quiver_stats) -> usize {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stats).core.proxies.len()
    }
}

/// The proxy of the pooled proxy connections at `index` as `scheme://host:port`,
/// NUL-terminated, valid until the stats are freed; NULL when `index` is out of range.
#[no_mangle]
pub extern "C" fn quiver_stats_proxy(stats: *const quiver_stats, index: usize) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stats).proxy_names.get(index).map_or(null(), |n| n.0.as_ptr())
    }
}

/// The protocol of the pooled proxy connections at `index` (`http2`, `http3`), like
/// `quiver_stats_proxy`.
#[no_mangle]
pub extern "C" fn quiver_stats_proxy_protocol(
    stats: *const quiver_stats,
    index: usize,
) -> *const c_char {
    ffi_panic_boundary! {
        try_ref_from_ptr!(stats).proxy_names.get(index).map_or(null(), |n| n.1.as_ptr())
    }
}

/// One counter (a `quiver_stat` value) of the pooled proxy connections at `index` (streams
/// are tunnels and CONNECT streams: `active` counts those open, `requests` those opened); 0
/// when `index` or `stat` is out of range. Not included in `quiver_stats_total`.
#[no_mangle]
pub extern "C" fn quiver_stats_proxy_get(
    stats: *const quiver_stats,
    index: usize,
    stat: u32,
) -> u64 {
    ffi_panic_boundary! {
        let stats = try_ref_from_ptr!(stats);
        stats.core.proxies.get(index).and_then(|o| origin_value(o, stat)).unwrap_or(0)
    }
}

/// Streams (tunnels) in flight on each pooled connection to the proxy at `index`, like
/// `quiver_stats_origin_connection_streams`. `QUIVER_RESULT_NOT_FOUND` when `index` is out of
/// range.
#[no_mangle]
pub extern "C" fn quiver_stats_proxy_connection_streams(
    stats: *const quiver_stats,
    index: usize,
    counts_out: *mut *const usize,
    len_out: *mut usize,
) -> quiver_result {
    ffi_panic_boundary! {
        let pool = try_ref_from_ptr!(stats).core.proxies.get(index);
        write_connection_streams(pool, counts_out, len_out)
    }
}

/// One counter (a `quiver_stat` value) summed over every origin (pooled proxy connections are
/// not included); 0 when `stat` is out of range.
#[no_mangle]
pub extern "C" fn quiver_stats_total(stats: *const quiver_stats, stat: u32) -> u64 {
    ffi_panic_boundary! {
        let stats = try_ref_from_ptr!(stats);
        stats
            .core
            .origins
            .iter()
            .filter_map(|o| origin_value(o, stat))
            .fold(0u64, u64::saturating_add)
    }
}

/// Frees a stats snapshot. NULL is a no-op. Any thread.
#[no_mangle]
pub extern "C" fn quiver_stats_free(stats: *mut quiver_stats) {
    ffi_panic_boundary! {
        free_box(stats)
    }
}
