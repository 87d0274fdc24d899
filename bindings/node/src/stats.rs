//! Client statistics as plain JavaScript objects (camelCase fields).

use napi_derive::napi;

/// Statistics of one origin's pool.
#[napi(object, namespace = "native")]
pub struct OriginStats {
    /// The origin, as `scheme://host:port`.
    pub origin: String,
    /// The protocol the pool speaks (`http1`, `http2`, `http3`).
    pub protocol: String,
    /// Idle connections (HTTP/1) or free stream slots (HTTP/2, HTTP/3).
    pub idle: u32,
    /// Connections leased or being set up (HTTP/1), streams in flight (HTTP/2, HTTP/3).
    pub active: u32,
    /// Callers waiting for a connection or stream slot.
    pub queued: u32,
    /// Connections open or being opened now.
    pub connections: u32,
    /// Connections opened since the pool was created.
    pub connections_opened: f64,
    /// Requests started.
    pub requests: f64,
    /// Requests that ended in an error.
    pub errors: f64,
    /// Requests retried transparently (stale connection, GOAWAY, refused stream).
    pub retries: f64,
    /// Response bytes received and not yet taken by the caller (HTTP/2, HTTP/3).
    pub buffered_bytes: f64,
    /// Streams in flight on each connection (HTTP/2, HTTP/3).
    pub connection_streams: Vec<u32>,
    /// `auto` pools: requests meant for the HTTP/3 alternative that went over TCP.
    pub fallbacks: f64,
    /// `auto` pools: the fresh HTTP/3 alternatives as an `alt-svc` value; absent without any.
    pub alt_svc: Option<String>,
    /// `auto` pools: whether the HTTP/3 alternative is marked broken.
    pub alt_svc_broken: bool,
    /// True for a pool opened for requests that asked for another `protocol` than their
    /// origin's rule.
    pub per_request: bool,
}

/// Statistics of a whole client: every origin's pool plus totals.
#[napi(object, namespace = "native")]
pub struct ClientStats {
    /// One entry per origin that has a pool, sorted by origin.
    pub origins: Vec<OriginStats>,
    /// Sum of `connections` over origins.
    pub connections: u32,
    /// Sum of `idle` over origins.
    pub idle: u32,
    /// Sum of `active` over origins.
    pub active: u32,
    /// Sum of `queued` over origins.
    pub queued: u32,
    /// Sum of `connectionsOpened` over origins.
    pub connections_opened: f64,
    /// Sum of `requests` over origins.
    pub requests: f64,
    /// Sum of `errors` over origins.
    pub errors: f64,
    /// Sum of `retries` over origins.
    pub retries: f64,
    /// Sum of `bufferedBytes` over origins.
    pub buffered_bytes: f64,
    /// Sum of `fallbacks` over origins.
    pub fallbacks: f64,
    /// Pooled connections to proxies (HTTP/2 and HTTP/3 proxy connections, shared by tunnels),
    /// one entry per proxy and trust settings; `origin` is the proxy's. Not in the totals.
    pub proxies: Vec<OriginStats>,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[allow(clippy::cast_precision_loss)] // counters stay far below 2^53
fn total(n: u64) -> f64 {
    n as f64
}

impl From<quiver_core::OriginStats> for OriginStats {
    fn from(o: quiver_core::OriginStats) -> Self {
        OriginStats {
            origin: o.origin,
            protocol: o.protocol.as_str().to_owned(),
            idle: count(o.idle),
            active: count(o.active),
            queued: count(o.queued),
            connections: count(o.connections),
            connections_opened: total(o.connections_opened),
            requests: total(o.requests),
            errors: total(o.errors),
            retries: total(o.retries),
            buffered_bytes: total(o.buffered_bytes),
            connection_streams: o.connection_streams.into_iter().map(count).collect(),
            fallbacks: total(o.fallbacks),
            alt_svc: o.alt_svc,
            alt_svc_broken: o.alt_svc_broken,
            per_request: o.per_request,
        }
    }
}

impl From<quiver_core::ClientStats> for ClientStats {
    fn from(s: quiver_core::ClientStats) -> Self {
        ClientStats {
            origins: s.origins.into_iter().map(OriginStats::from).collect(),
            connections: count(s.connections),
            idle: count(s.idle),
            active: count(s.active),
            queued: count(s.queued),
            connections_opened: total(s.connections_opened),
            requests: total(s.requests),
            errors: total(s.errors),
            retries: total(s.retries),
            buffered_bytes: total(s.buffered_bytes),
            fallbacks: total(s.fallbacks),
            proxies: s.proxies.into_iter().map(OriginStats::from).collect(),
        }
    }
}
