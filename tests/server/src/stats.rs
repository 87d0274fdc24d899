//! Connection, request and traffic counters shared by every listener.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// A snapshot of the server's counters, over every listener together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    /// Connections accepted (TCP accepts, before any TLS handshake; QUIC connection attempts
    /// taken from an HTTP/3 endpoint, before their handshake completes); not those of the proxy
    /// listeners (see `proxy_connections`).
    pub accepted: u64,
    /// Connections open now (not counting the proxy listeners').
    pub open: u64,
    /// The highest `open` seen since start or the last reset.
    pub max_open: u64,
    /// The most requests being handled at once (from the request head until the endpoint
    /// returned its response head) since start or the last reset. Unlike `max_open` it counts
    /// nothing a client has already let go: a closed connection may stay in `open` until its
    /// close arrives.
    pub max_in_flight: u64,
    /// Requests received (every request head handed to an endpoint, including the one
    /// `/drop-next` answers by closing the connection or resetting the stream, and raw-listener
    /// requests; not the HTTP/2 streams refused by `refuse_every`, nor the HTTP/2 and HTTP/3
    /// streams turned away by a GOAWAY).
    pub requests: u64,
    /// Response body bytes handed to the transport (body frames yielded to hyper on HTTP/1.1,
    /// bytes passed to `send_data` on HTTP/2, bytes quinn has taken on HTTP/3, counted as each
    /// `send_data` completes). The `raw` listener's bytes are not counted, nor what the proxy
    /// relays or forwards.
    pub bytes_sent: u64,
    /// Request body bytes read by the endpoints.
    pub bytes_received: u64,
    /// HTTP/2 connections accepted (`h2c` connections and TLS connections that negotiated `h2`).
    pub h2_connections: u64,
    /// The most streams open at once on one HTTP/2 connection (a stream is open from its
    /// acceptance until its response is finished).
    pub h2_max_streams_per_conn: u64,
    /// HTTP/2 and HTTP/3 connections the server started shutting down with GOAWAY
    /// (`goaway_after`, `/close`): one per connection.
    pub goaways: u64,
    /// HTTP/2 streams reset with `REFUSED_STREAM` before being processed.
    pub refused_streams: u64,
    /// HTTP/3 connections (QUIC connections on `h3` and `h3_reject_early` whose HTTP/3 layer
    /// was set up).
    pub h3_connections: u64,
    /// The most request streams open at once on one HTTP/3 connection (a stream is open from
    /// its acceptance until its response is finished; streams rejected after a GOAWAY are not
    /// counted).
    pub h3_max_streams_per_conn: u64,
    /// HTTP/3 requests that arrived as 0-RTT early data (their stream was accepted before the
    /// handshake completed).
    pub h3_early_requests: u64,
    /// HTTP/3 connections whose 0-RTT data was accepted (the server received a stream of the
    /// client, request or control stream, before the handshake completed).
    pub h3_zero_rtt_accepted: u64,
    /// HTTP/3 datagrams received (all of them, whether their stream echoes or not).
    pub datagrams_received: u64,
    /// HTTP/3 datagrams sent back by `/datagram-echo`.
    pub datagrams_sent: u64,
    /// Connections accepted by the proxy listeners (`proxy`, `proxy_tls`: TCP accepts, before
    /// any TLS handshake; `proxy_h3`: QUIC connections taken from the endpoint). They are not
    /// counted in `accepted`, `open` and `max_open`.
    pub proxy_connections: u64,
    /// Tunnels the proxy established: CONNECT (TCP) and CONNECT-UDP, over every proxy listener.
    pub proxy_tunnels: u64,
    /// Absolute-form requests the proxy forwarded to their target (counted once the connection
    /// to the target is made).
    pub proxy_forwarded: u64,
    /// Requests to the proxy that carried `proxy-authorization` (right or wrong).
    pub proxy_auth_seen: u64,
    /// Datagrams the `udp_echo` listener sent back.
    pub udp_echoed: u64,
    /// Datagrams the `udp_blackhole` listener received (and dropped without a word).
    pub udp_blackholed: u64,
    /// Queries the `dns` listener answered.
    pub dns_queries: u64,
    /// Connections accepted by the SOCKS5 listeners (`socks5`, `socks5_auth`). They are not
    /// counted in `accepted`, `open` and `max_open`.
    pub socks_connections: u64,
    /// SOCKS5 CONNECTs that reached their target (counted just before the success reply).
    pub socks_connects: u64,
    /// Requests `/count-and-drop` read in full, then answered by closing the connection.
    pub processed_then_dropped: u64,
    /// `/chaos` requests with an `x-request-id` that were processed (each id once or more).
    pub chaos_processed: u64,
    /// Of those, requests processed but then not answered in full (cut off, stalled).
    pub chaos_processed_failed: u64,
    /// `/chaos` request ids processed more than once (a request sent twice).
    pub chaos_duplicates: u64,
    /// Digest challenges sent (every 401 of `/digest-auth`, `stale=true` ones included).
    pub digest_challenges: u64,
    /// Requests `/digest-auth` authenticated (answered 200).
    pub digest_ok: u64,
}

/// The JSON of `/stats`: every [`Stats`] field, plus `socks_last_target` (kept out of
/// [`Stats`] so that it stays `Copy`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatsJson {
    #[serde(flatten)]
    stats: Stats,
    /// The target of the last SOCKS5 CONNECT request, whatever came of it (`domain
    /// localhost:1234`, `ipv4 127.0.0.1:1234`, `ipv6 [::1]:1234`); `null` when none was made
    /// since start or the last reset.
    socks_last_target: Option<String>,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    max_open: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    requests: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    h2_connections: AtomicU64,
    h2_max_streams_per_conn: AtomicU64,
    goaways: AtomicU64,
    refused_streams: AtomicU64,
    h3_connections: AtomicU64,
    h3_max_streams_per_conn: AtomicU64,
    h3_early_requests: AtomicU64,
    h3_zero_rtt_accepted: AtomicU64,
    datagrams_received: AtomicU64,
    datagrams_sent: AtomicU64,
    proxy_connections: AtomicU64,
    proxy_tunnels: AtomicU64,
    proxy_forwarded: AtomicU64,
    proxy_auth_seen: AtomicU64,
    udp_echoed: AtomicU64,
    udp_blackholed: AtomicU64,
    dns_queries: AtomicU64,
    socks_connections: AtomicU64,
    socks_connects: AtomicU64,
    /// The target of the last SOCKS5 CONNECT request (see [`StatsJson::socks_last_target`]).
    socks_last_target: std::sync::Mutex<Option<String>>,
    processed_then_dropped: AtomicU64,
    chaos_processed: AtomicU64,
    chaos_processed_failed: AtomicU64,
    chaos_duplicates: AtomicU64,
    digest_challenges: AtomicU64,
    digest_ok: AtomicU64,
    /// The nonces `/digest-auth` issued (not counters, but shared by every listener like
    /// them; not reset).
    pub(crate) digest_nonces: crate::auth::NonceStore,
    /// The `/chaos` request ids seen, and whether each was processed but failed.
    chaos_ids: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl Counters {
    /// Counts an accepted connection; the returned guard keeps it counted as open until dropped.
    pub(crate) fn on_accept(self: &Arc<Self>) -> OpenGuard {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_open.fetch_max(open, Ordering::SeqCst);
        OpenGuard {
            counters: Arc::clone(self),
        }
    }

    /// Counts a request being handled until the returned guard is dropped.
    pub(crate) fn on_handling(&self) -> HandlingGuard<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        HandlingGuard { counters: self }
    }

    /// Counts a request `/count-and-drop` processed, then dropped.
    pub(crate) fn on_processed_then_dropped(&self) {
        self.processed_then_dropped.fetch_add(1, Ordering::SeqCst);
    }

    /// Records that `/chaos` processed request `id`; `failed`: it then will not answer in full.
    pub(crate) fn on_chaos_processed(&self, id: &str, failed: bool) {
        let first = self
            .chaos_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), failed)
            .is_none();
        if first {
            self.chaos_processed.fetch_add(1, Ordering::SeqCst);
            if failed {
                self.chaos_processed_failed.fetch_add(1, Ordering::SeqCst);
            }
        } else {
            self.chaos_duplicates.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether `/chaos` processed request `id`, and if so whether it then failed.
    pub(crate) fn chaos_outcome(&self, id: &str) -> Option<bool> {
        self.chaos_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    /// Counts a Digest challenge sent.
    pub(crate) fn on_digest_challenge(&self) {
        self.digest_challenges.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a successful Digest authentication.
    pub(crate) fn on_digest_ok(&self) {
        self.digest_ok.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts one request.
    pub(crate) fn on_request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts response body bytes handed to the transport.
    pub(crate) fn on_sent(&self, n: usize) {
        self.bytes_sent.fetch_add(n as u64, Ordering::SeqCst);
    }

    /// Counts request body bytes read.
    pub(crate) fn on_received(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Ordering::SeqCst);
    }

    /// Counts a connection served as HTTP/2.
    pub(crate) fn on_h2_connection(&self) {
        self.h2_connections.fetch_add(1, Ordering::SeqCst);
    }

    /// Records that one HTTP/2 connection has `open` streams open at once.
    pub(crate) fn on_h2_streams_open(&self, open: u64) {
        self.h2_max_streams_per_conn
            .fetch_max(open, Ordering::SeqCst);
    }

    /// Counts a GOAWAY shutdown started by the server.
    pub(crate) fn on_goaway(&self) {
        self.goaways.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a stream reset with `REFUSED_STREAM`.
    pub(crate) fn on_refused(&self) {
        self.refused_streams.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a connection served as HTTP/3.
    pub(crate) fn on_h3_connection(&self) {
        self.h3_connections.fetch_add(1, Ordering::SeqCst);
    }

    /// Records that one HTTP/3 connection has `open` request streams open at once.
    pub(crate) fn on_h3_streams_open(&self, open: u64) {
        self.h3_max_streams_per_conn
            .fetch_max(open, Ordering::SeqCst);
    }

    /// Counts an HTTP/3 request that arrived as 0-RTT early data.
    pub(crate) fn on_h3_early_request(&self) {
        self.h3_early_requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts an HTTP/3 connection whose 0-RTT data was accepted.
    pub(crate) fn on_h3_zero_rtt_accepted(&self) {
        self.h3_zero_rtt_accepted.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a received HTTP/3 datagram.
    pub(crate) fn on_datagram_received(&self) {
        self.datagrams_received.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts an HTTP/3 datagram sent.
    pub(crate) fn on_datagram_sent(&self) {
        self.datagrams_sent.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a connection accepted by a proxy listener.
    pub(crate) fn on_proxy_connection(&self) {
        self.proxy_connections.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a tunnel the proxy established.
    pub(crate) fn on_proxy_tunnel(&self) {
        self.proxy_tunnels.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts an absolute-form request the proxy forwarded.
    pub(crate) fn on_proxy_forwarded(&self) {
        self.proxy_forwarded.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a proxy request carrying `proxy-authorization`.
    pub(crate) fn on_proxy_auth_seen(&self) {
        self.proxy_auth_seen.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a datagram sent back by `udp_echo`.
    pub(crate) fn on_udp_echoed(&self) {
        self.udp_echoed.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a datagram `udp_blackhole` dropped.
    pub(crate) fn on_udp_blackholed(&self) {
        self.udp_blackholed.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a query the `dns` listener answered.
    pub(crate) fn on_dns_query(&self) {
        self.dns_queries.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a connection accepted by a SOCKS5 listener.
    pub(crate) fn on_socks_connection(&self) {
        self.socks_connections.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a SOCKS5 CONNECT that reached its target.
    pub(crate) fn on_socks_connect(&self) {
        self.socks_connects.fetch_add(1, Ordering::SeqCst);
    }

    /// Records the target of a SOCKS5 CONNECT request (`domain NAME:PORT`, `ipv4 IP:PORT`,
    /// `ipv6 [IP]:PORT`), whatever comes of it.
    pub(crate) fn on_socks_target(&self, target: String) {
        *self
            .socks_last_target
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(target);
    }

    /// The target of the last SOCKS5 CONNECT request since start or the last reset.
    pub(crate) fn socks_last_target(&self) -> Option<String> {
        self.socks_last_target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What `/stats` answers: the counters and the last SOCKS5 target.
    pub(crate) fn report(&self) -> StatsJson {
        StatsJson {
            stats: self.snapshot(),
            socks_last_target: self.socks_last_target(),
        }
    }

    /// Reads the counters.
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        Stats {
            accepted: get(&self.accepted),
            open: get(&self.open),
            max_open: get(&self.max_open),
            max_in_flight: get(&self.max_in_flight),
            requests: get(&self.requests),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            h2_connections: get(&self.h2_connections),
            h2_max_streams_per_conn: get(&self.h2_max_streams_per_conn),
            goaways: get(&self.goaways),
            refused_streams: get(&self.refused_streams),
            h3_connections: get(&self.h3_connections),
            h3_max_streams_per_conn: get(&self.h3_max_streams_per_conn),
            h3_early_requests: get(&self.h3_early_requests),
            h3_zero_rtt_accepted: get(&self.h3_zero_rtt_accepted),
            datagrams_received: get(&self.datagrams_received),
            datagrams_sent: get(&self.datagrams_sent),
            proxy_connections: get(&self.proxy_connections),
            proxy_tunnels: get(&self.proxy_tunnels),
            proxy_forwarded: get(&self.proxy_forwarded),
            proxy_auth_seen: get(&self.proxy_auth_seen),
            udp_echoed: get(&self.udp_echoed),
            udp_blackholed: get(&self.udp_blackholed),
            dns_queries: get(&self.dns_queries),
            socks_connections: get(&self.socks_connections),
            socks_connects: get(&self.socks_connects),
            processed_then_dropped: get(&self.processed_then_dropped),
            chaos_processed: get(&self.chaos_processed),
            chaos_processed_failed: get(&self.chaos_processed_failed),
            chaos_duplicates: get(&self.chaos_duplicates),
            digest_challenges: get(&self.digest_challenges),
            digest_ok: get(&self.digest_ok),
        }
    }

    /// Sets the counters back to zero; `open` keeps its live value and `max_open` restarts from it.
    pub(crate) fn reset(&self) {
        for counter in [
            &self.accepted,
            &self.requests,
            &self.bytes_sent,
            &self.bytes_received,
            &self.h2_connections,
            &self.h2_max_streams_per_conn,
            &self.goaways,
            &self.refused_streams,
            &self.h3_connections,
            &self.h3_max_streams_per_conn,
            &self.h3_early_requests,
            &self.h3_zero_rtt_accepted,
            &self.datagrams_received,
            &self.datagrams_sent,
            &self.proxy_connections,
            &self.proxy_tunnels,
            &self.proxy_forwarded,
            &self.proxy_auth_seen,
            &self.udp_echoed,
            &self.udp_blackholed,
            &self.dns_queries,
            &self.socks_connections,
            &self.socks_connects,
            &self.processed_then_dropped,
            &self.chaos_processed,
            &self.chaos_processed_failed,
            &self.chaos_duplicates,
            &self.digest_challenges,
            &self.digest_ok,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        *self
            .socks_last_target
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        let open = self.open.load(Ordering::SeqCst);
        self.max_open.store(open, Ordering::SeqCst);
        // A connection opened between the two lines above must still be reflected.
        self.max_open
            .fetch_max(self.open.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Keeps one connection counted in `open`; decrements on drop.
#[derive(Debug)]
pub(crate) struct OpenGuard {
    counters: Arc<Counters>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps a request counted in `max_in_flight` while it is being handled.
pub(crate) struct HandlingGuard<'a> {
    counters: &'a Counters,
}

impl Drop for HandlingGuard<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let c = Arc::new(Counters::default());
        let a = c.on_accept();
        let b = c.on_accept();
        c.on_request();
        c.on_sent(10);
        c.on_received(7);
        c.on_h2_connection();
        c.on_h2_streams_open(3);
        c.on_h2_streams_open(2);
        c.on_goaway();
        c.on_refused();
        c.on_h3_connection();
        c.on_h3_streams_open(5);
        c.on_h3_streams_open(4);
        c.on_h3_early_request();
        c.on_h3_zero_rtt_accepted();
        c.on_datagram_received();
        c.on_datagram_received();
        c.on_datagram_sent();
        c.on_proxy_connection();
        c.on_proxy_tunnel();
        c.on_proxy_tunnel();
        c.on_proxy_forwarded();
        c.on_proxy_auth_seen();
        c.on_udp_echoed();
        c.on_udp_echoed();
        c.on_udp_echoed();
        c.on_udp_blackholed();
        c.on_dns_query();
        c.on_socks_connection();
        c.on_socks_connection();
        c.on_socks_connect();
        c.on_socks_target("domain localhost:1".to_owned());
        assert_eq!(
            serde_json::to_value(c.report()).unwrap()["socks_last_target"],
            "domain localhost:1"
        );
        c.on_processed_then_dropped();
        c.on_chaos_processed("a", false);
        c.on_chaos_processed("b", true);
        c.on_chaos_processed("a", false);
        c.on_digest_challenge();
        c.on_digest_challenge();
        c.on_digest_ok();
        assert_eq!(c.chaos_outcome("b"), Some(true));
        assert_eq!(c.chaos_outcome("c"), None);
        drop(a);
        assert_eq!(
            c.snapshot(),
            Stats {
                accepted: 2,
                open: 1,
                max_open: 2,
                max_in_flight: 0,
                requests: 1,
                bytes_sent: 10,
                bytes_received: 7,
                h2_connections: 1,
                h2_max_streams_per_conn: 3,
                goaways: 1,
                refused_streams: 1,
                h3_connections: 1,
                h3_max_streams_per_conn: 5,
                h3_early_requests: 1,
                h3_zero_rtt_accepted: 1,
                datagrams_received: 2,
                datagrams_sent: 1,
                proxy_connections: 1,
                proxy_tunnels: 2,
                proxy_forwarded: 1,
                proxy_auth_seen: 1,
                udp_echoed: 3,
                udp_blackholed: 1,
                dns_queries: 1,
                socks_connections: 2,
                socks_connects: 1,
                processed_then_dropped: 1,
                chaos_processed: 2,
                chaos_processed_failed: 1,
                chaos_duplicates: 1,
                digest_challenges: 2,
                digest_ok: 1,
            }
        );
        c.reset();
        assert_eq!(
            c.snapshot(),
            Stats {
                open: 1,
                max_open: 1,
                ..Stats::default()
            }
        );
        assert_eq!(c.socks_last_target(), None);
        assert!(serde_json::to_value(c.report()).unwrap()["socks_last_target"].is_null());
        drop(b);
        assert_eq!(c.snapshot().open, 0);
    }
}
