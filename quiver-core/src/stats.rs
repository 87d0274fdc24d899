//! Pool statistics as the caller sees them: per origin and in total.

/// Statistics of one origin's pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginStats {
    /// The origin, as `scheme://host:port`.
    pub origin: String,
    /// The protocol the pool speaks (`Auto` until ALPN decided an `auto` pool's protocol; an
    /// `auto` pool with an HTTP/3 alternative: the protocol of its latest request).
    pub protocol: crate::config::Protocol,
    /// Idle connections (HTTP/1) or free stream slots (HTTP/2, HTTP/3).
    pub idle: usize,
    /// Connections leased or being set up (HTTP/1), streams in flight (HTTP/2, HTTP/3).
    pub active: usize,
    /// Callers waiting for a connection or stream slot.
    pub queued: usize,
    /// Connections open or being opened now.
    pub connections: usize,
    /// Connections opened since the pool was created.
    pub connections_opened: u64,
    /// Requests started.
    pub requests: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Requests retried transparently (stale connection, GOAWAY, refused stream).
    pub retries: u64,
    /// Response bytes received and not yet taken by the caller (HTTP/2, HTTP/3).
    pub buffered_bytes: u64,
    /// Streams in flight on each connection (HTTP/2, HTTP/3).
    pub connection_streams: Vec<usize>,
    /// `auto` pools: requests meant for the origin's HTTP/3 alternative that went over TCP
    /// (QUIC lost the race, failed, or was still connecting).
    pub fallbacks: u64,
    /// `auto` pools: the origin's fresh HTTP/3 alternatives, written as an `alt-svc` value
    /// (`ma` is the time left), or `None`.
    pub alt_svc: Option<String>,
    /// `auto` pools: whether the HTTP/3 alternative is marked broken (a QUIC connection to it
    /// failed lately), so requests go over TCP.
    pub alt_svc_broken: bool,
    /// True for a pool opened for requests that asked for another protocol than their
    /// origin's rule (`protocol` per request); the rule's own pool has `false`.
    pub per_request: bool,
}

impl OriginStats {
    /// Adds another pool's counters and gauges for the same origin into these.
    #[cfg(feature = "http3")]
    pub(crate) fn add(&mut self, other: &OriginStats) {
        self.idle += other.idle;
        self.active += other.active;
        self.queued += other.queued;
        self.connections += other.connections;
        self.connections_opened += other.connections_opened;
        self.requests += other.requests;
        self.errors += other.errors;
        self.retries += other.retries;
        self.buffered_bytes += other.buffered_bytes;
        self.connection_streams
            .extend_from_slice(&other.connection_streams);
    }
}

/// Statistics of a whole client: every origin's pool plus totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// One entry per origin that has a pool, sorted by origin.
    pub origins: Vec<OriginStats>,
    /// Sum of `connections` over origins.
    pub connections: usize,
    /// Sum of `idle` over origins.
    pub idle: usize,
    /// Sum of `active` over origins.
    pub active: usize,
    /// Sum of `queued` over origins.
    pub queued: usize,
    /// Sum of `connections_opened` over origins.
    pub connections_opened: u64,
    /// Sum of `requests` over origins.
    pub requests: u64,
    /// Sum of `errors` over origins.
    pub errors: u64,
    /// Sum of `retries` over origins.
    pub retries: u64,
    /// Sum of `buffered_bytes` over origins.
    pub buffered_bytes: u64,
    /// Sum of `fallbacks` over origins.
    pub fallbacks: u64,
    /// Pooled connections to proxies (the upstream pool), one entry per proxy and settings.
    pub proxies: Vec<OriginStats>,
}

impl ClientStats {
    pub(crate) fn from_origins(mut origins: Vec<OriginStats>) -> ClientStats {
        origins.sort_by(|a, b| (&a.origin, a.per_request).cmp(&(&b.origin, b.per_request)));
        let mut total = ClientStats::default();
        for o in &origins {
            total.connections += o.connections;
            total.idle += o.idle;
            total.active += o.active;
            total.queued += o.queued;
            total.connections_opened += o.connections_opened;
            total.requests += o.requests;
            total.errors += o.errors;
            total.retries += o.retries;
            total.buffered_bytes += o.buffered_bytes;
            total.fallbacks += o.fallbacks;
        }
        total.origins = origins;
        total
    }

    /// The stats of one origin's pool (`scheme://host:port`; the pool its rule makes, not one
    /// opened for requests asking for another protocol), if it has one.
    pub fn origin(&self, origin: &str) -> Option<&OriginStats> {
        self.origins
            .iter()
            .find(|o| o.origin == origin && !o.per_request)
    }
}
