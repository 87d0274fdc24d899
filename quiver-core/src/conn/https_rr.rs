//! HTTPS resource records (RFC 9460), asked through hickory-resolver: an `https` origin whose
//! record lists `alpn=h3` has an HTTP/3 alternative before any response could advertise one,
//! so an `auto` client's *first* request can race QUIC against TCP.
//!
//! Only ServiceMode records are used (AliasMode ones are skipped), lowest `SvcPriority` first;
//! the record's target (`.`: the origin's own name), `port` and `ipv4hint`/`ipv6hint` become the
//! alternative, alive for the record's TTL. Addresses for TCP still come from the system
//! resolver (`/etc/hosts`, `resolve` overrides and the DNS cache keep working); only the HTTPS
//! query goes to the system's nameservers (`/etc/resolv.conf`) or `https_rr_nameserver`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::rdata::svcb::{SvcParamKey, SvcParamValue};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol as DnsProtocol;
use hickory_resolver::TokioResolver;

use super::altsvc::Alternative;
use crate::origin::{Host, Origin};

/// The client's HTTPS-record resolvers, one per nameserver setting, made on first use.
#[derive(Default)]
pub(crate) struct HttpsRecords {
    resolvers: Mutex<HashMap<Option<SocketAddr>, Arc<TokioResolver>>>,
}

impl HttpsRecords {
    fn resolver(
        &self,
        nameserver: Option<SocketAddr>,
        timeout: Duration,
    ) -> Option<Arc<TokioResolver>> {
        let mut resolvers = self.resolvers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = resolvers.get(&nameserver) {
            return Some(r.clone());
        }
        let provider = TokioConnectionProvider::default();
        let mut builder = match nameserver {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, DnsProtocol::Udp));
                TokioResolver::builder_with_config(config, provider)
            }
            // No readable system configuration: no HTTPS records, nothing else changes.
            None => TokioResolver::builder(provider).ok()?,
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 1;
        let resolver = Arc::new(builder.build());
        resolvers.insert(nameserver, resolver.clone());
        Some(resolver)
    }

    /// The HTTP/3 alternatives `origin`'s HTTPS records name, best first; empty without any
    /// (no record, no `h3`, or the lookup failed or took longer than `timeout`).
    pub(crate) async fn h3_alternatives(
        &self,
        origin: &Origin,
        nameserver: Option<SocketAddr>,
        timeout: Duration,
    ) -> Vec<Alternative> {
        let Host::Name(name) = origin.host() else {
            return Vec::new();
        };
        let Some(resolver) = self.resolver(nameserver, timeout) else {
            return Vec::new();
        };
        // RFC 9460 §9.1: the default port asks for the name itself, others for `_port._https`.
        let query = match origin.port() {
            443 => format!("{name}."),
            port => format!("_{port}._https.{name}."),
        };
        let lookup = tokio::time::timeout(timeout, resolver.lookup(query, RecordType::HTTPS));
        let Ok(Ok(lookup)) = lookup.await else {
            return Vec::new();
        };
        let mut found: Vec<(u16, Alternative)> = lookup
            .records()
            .iter()
            .filter_map(|record| {
                let RData::HTTPS(https) = record.data() else {
                    return None;
                };
                let svcb = &https.0;
                if svcb.svc_priority() == 0 {
                    return None;
                }
                let mut alt = Alternative {
                    host: None,
                    port: origin.port(),
                    max_age: Duration::from_secs(u64::from(record.ttl())),
                    persist: false,
                    hints: Vec::new(),
                };
                let mut h3 = false;
                for (key, value) in svcb.svc_params() {
                    match (key, value) {
                        (SvcParamKey::Alpn, SvcParamValue::Alpn(alpn)) => {
                            h3 = alpn.0.iter().any(|p| p == "h3");
                        }
                        (SvcParamKey::Port, SvcParamValue::Port(port)) => alt.port = *port,
                        (SvcParamKey::Ipv4Hint, SvcParamValue::Ipv4Hint(ips)) => {
                            alt.hints.extend(ips.0.iter().map(|a| IpAddr::V4(a.0)))
                        }
                        (SvcParamKey::Ipv6Hint, SvcParamValue::Ipv6Hint(ips)) => {
                            alt.hints.extend(ips.0.iter().map(|a| IpAddr::V6(a.0)))
                        }
                        _ => {}
                    }
                }
                let target = svcb.target_name();
                if !target.is_root() {
                    let shown = target.to_ascii();
                    alt.host = Some(Host::parse(shown.trim_end_matches('.')).ok()?);
                }
                (h3 && alt.port != 0).then_some((svcb.svc_priority(), alt))
            })
            .collect();
        found.sort_by_key(|(priority, _)| *priority);
        found.into_iter().map(|(_, alt)| alt).collect()
    }
}
