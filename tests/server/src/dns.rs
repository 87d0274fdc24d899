//! `dns`: a small DNS server on UDP 127.0.0.1 answering HTTPS resource record (RFC 9460) queries
//! for `quiver.test` origins (a name in the server certificate; resolvers answer `localhost`
//! themselves and never ask), so clients can find HTTP/3 before their first request:
//!
//! - `_{https}._https.quiver.test` (the `https` listener): `1 . alpn=h3,h2 port={h3}
//!   ipv4hint=127.0.0.1`, the HTTP/3 listener;
//! - `_{https_alt_blocked}._https.quiver.test`: the same pointing at the `udp_blackhole` port;
//! - anything else: an empty answer (NOERROR), like a zone without such records.
//!
//! Each answered query is counted in `dns_queries`.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, SvcParamKey, SvcParamValue, SVCB};
use hickory_proto::rr::rdata::{A, HTTPS};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::stats::Counters;

/// Which `_{port}._https.quiver.test` names answer, and with which QUIC port.
#[derive(Clone, Debug)]
pub(crate) struct Zone {
    /// `(origin port, HTTP/3 port)` pairs.
    pub(crate) services: Vec<(u16, u16)>,
}

impl Zone {
    /// The answer records for one question, if any.
    fn answer(&self, name: &Name, kind: RecordType) -> Vec<Record> {
        if kind != RecordType::HTTPS {
            return Vec::new();
        }
        let shown = name.to_ascii().to_ascii_lowercase();
        let shown = shown.trim_end_matches('.');
        let Some(port) = shown
            .strip_prefix('_')
            .and_then(|rest| rest.strip_suffix("._https.quiver.test"))
            .and_then(|p| p.parse::<u16>().ok())
        else {
            return Vec::new();
        };
        self.services
            .iter()
            .filter(|(origin, _)| *origin == port)
            .map(|(_, h3)| {
                let params = vec![
                    (
                        SvcParamKey::Alpn,
                        SvcParamValue::Alpn(Alpn(vec!["h3".into(), "h2".into()])),
                    ),
                    (SvcParamKey::Port, SvcParamValue::Port(*h3)),
                    (
                        SvcParamKey::Ipv4Hint,
                        SvcParamValue::Ipv4Hint(IpHint(vec![A(Ipv4Addr::LOCALHOST)])),
                    ),
                ];
                let svcb = SVCB::new(1, Name::root(), params);
                Record::from_rdata(name.clone(), 60, RData::HTTPS(HTTPS(svcb)))
            })
            .collect()
    }

    /// The response to one query datagram; `None` for one that does not parse.
    fn respond(&self, query: &[u8]) -> Option<Vec<u8>> {
        let query = Message::from_vec(query).ok()?;
        let mut response = Message::new();
        response
            .set_id(query.id())
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_authoritative(true)
            .set_recursion_desired(query.recursion_desired())
            .set_recursion_available(true)
            .set_response_code(ResponseCode::NoError);
        for q in query.queries() {
            response.add_query(q.clone());
            response.add_answers(self.answer(q.name(), q.query_type()));
        }
        response.to_vec().ok()
    }
}

/// Answers queries on `socket` for as long as the server runs.
pub(crate) async fn serve(socket: std::net::UdpSocket, zone: Zone, counters: Arc<Counters>) {
    let Some(socket) = crate::proxy::udp::into_tokio(socket) else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = zone.respond(&buf[..n]) {
            counters.on_dns_query();
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    #[test]
    fn answers_https_records_for_known_ports_only() {
        let zone = Zone {
            services: vec![(8443, 9443)],
        };
        let ask = |name: &str, kind| {
            let mut q = Message::new();
            q.set_id(7)
                .add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
            Message::from_vec(&zone.respond(&q.to_vec().unwrap()).unwrap()).unwrap()
        };
        let hit = ask("_8443._https.quiver.test.", RecordType::HTTPS);
        assert_eq!(hit.id(), 7);
        let RData::HTTPS(HTTPS(svcb)) = hit.answers()[0].data() else {
            panic!("an HTTPS record")
        };
        assert!(svcb
            .svc_params()
            .contains(&(SvcParamKey::Port, SvcParamValue::Port(9443))));
        assert!(ask("_8444._https.quiver.test.", RecordType::HTTPS)
            .answers()
            .is_empty());
        assert!(ask("_8443._https.quiver.test.", RecordType::A)
            .answers()
            .is_empty());
    }
}
