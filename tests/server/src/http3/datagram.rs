//! HTTP/3 datagrams (RFC 9297) for `/datagram-echo`.
//!
//! One task per connection reads the QUIC datagrams, decodes their quarter stream id and, when
//! that stream is an open `/datagram-echo` stream, sends the payload back tagged with the same
//! stream. Datagrams of any other stream (not an echo stream, not opened yet, or already
//! finished) are dropped, as RFC 9297 allows.
//!
//! Outgoing datagrams are encoded here rather than with `h3-datagram` 0.0.2, whose
//! `Datagram::encode` writes zero bytes in place of the quarter stream id (hyperium/h3#345): with
//! it every datagram would claim stream 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use h3::error::Code;

use super::Freeze;
use crate::stats::Counters;

/// The open `/datagram-echo` streams of one connection, by stream id, with how many datagrams
/// each has echoed.
#[derive(Debug, Default)]
pub(crate) struct EchoRegistry {
    streams: Mutex<HashMap<u64, Arc<AtomicU64>>>,
}

impl EchoRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<AtomicU64>>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, stream_id: u64) -> Option<Arc<AtomicU64>> {
        self.lock().get(&stream_id).cloned()
    }
}

/// What a request stream may register as an echo stream (handed to the endpoint).
#[derive(Debug, Clone)]
pub(crate) struct EchoSlot {
    registry: Arc<EchoRegistry>,
    stream_id: u64,
}

impl EchoSlot {
    /// The slot of stream `stream_id` in `registry`.
    pub(crate) fn new(registry: Arc<EchoRegistry>, stream_id: u64) -> Self {
        EchoSlot {
            registry,
            stream_id,
        }
    }

    /// Starts echoing the datagrams of this stream, until the registration is dropped.
    pub(crate) fn register(self) -> EchoRegistration {
        let echoed = Arc::new(AtomicU64::new(0));
        self.registry
            .lock()
            .insert(self.stream_id, Arc::clone(&echoed));
        EchoRegistration { slot: self, echoed }
    }
}

/// An echo stream; dropping it stops the echo.
#[derive(Debug)]
pub(crate) struct EchoRegistration {
    slot: EchoSlot,
    echoed: Arc<AtomicU64>,
}

impl EchoRegistration {
    /// Stops the echo and says how many datagrams were sent back.
    pub(crate) fn finish(self) -> u64 {
        let echoed = Arc::clone(&self.echoed);
        drop(self);
        echoed.load(Ordering::SeqCst)
    }
}

impl Drop for EchoRegistration {
    fn drop(&mut self) {
        let mut streams = self.slot.registry.lock();
        if streams
            .get(&self.slot.stream_id)
            .is_some_and(|e| Arc::ptr_eq(e, &self.echoed))
        {
            streams.remove(&self.slot.stream_id);
        }
    }
}

/// Encodes an HTTP/3 datagram: the quarter stream id (a QUIC varint), then the payload.
pub(crate) fn encode(stream_id: u64, payload: &[u8]) -> Bytes {
    let quarter = stream_id / 4;
    let mut out = BytesMut::with_capacity(8 + payload.len());
    if quarter < 1 << 6 {
        out.put_u8(quarter as u8);
    } else if quarter < 1 << 14 {
        out.put_u16(0x4000 | quarter as u16);
    } else if quarter < 1 << 30 {
        out.put_u32(0x8000_0000 | quarter as u32);
    } else {
        out.put_u64(0xc000_0000_0000_0000 | (quarter & ((1 << 62) - 1)));
    }
    out.extend_from_slice(payload);
    out.freeze()
}

/// Decodes an HTTP/3 datagram into (stream id, payload); `None` when malformed.
pub(crate) fn decode(datagram: Bytes) -> Option<(u64, Bytes)> {
    let decoded = h3_datagram::datagram::Datagram::decode(datagram).ok()?;
    Some((decoded.stream_id().into_inner(), decoded.into_payload()))
}

/// Reads the connection's datagrams until it closes, echoing those of registered streams.
/// A datagram that cannot be decoded closes the connection with `H3_DATAGRAM_ERROR`
/// (RFC 9297, 2.1).
pub(crate) async fn echo(
    conn: quinn::Connection,
    registry: Arc<EchoRegistry>,
    counters: Arc<Counters>,
    freeze: Arc<Freeze>,
) {
    while let Ok(datagram) = conn.read_datagram().await {
        freeze.wait().await;
        counters.on_datagram_received();
        let Some((stream_id, payload)) = decode(datagram) else {
            let code = quinn::VarInt::from_u64(Code::H3_DATAGRAM_ERROR.value())
                .unwrap_or(quinn::VarInt::from_u32(0x33));
            conn.close(code, b"malformed HTTP/3 datagram");
            return;
        };
        let Some(echoed) = registry.get(stream_id) else {
            continue;
        };
        if conn.send_datagram(encode(stream_id, &payload)).is_ok() {
            counters.on_datagram_sent();
            echoed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_stream_ids_round_trip() {
        for id in [0u64, 4, 252, 256, 65_532, 65_536, (1 << 32) - 4, 1 << 40] {
            let encoded = encode(id, b"payload");
            assert_eq!(decode(encoded), Some((id, Bytes::from_static(b"payload"))));
        }
        assert_eq!(&encode(4, b"x")[..], &[1, b'x']);
        assert_eq!(&encode(256, b"")[..], &[0x40, 64]);
        assert_eq!(decode(Bytes::new()), None);
    }

    #[test]
    fn registrations() {
        let registry = Arc::new(EchoRegistry::default());
        let reg = EchoSlot::new(Arc::clone(&registry), 8).register();
        registry.get(8).unwrap().fetch_add(2, Ordering::SeqCst);
        assert!(registry.get(4).is_none());
        assert_eq!(reg.finish(), 2);
        assert!(registry.get(8).is_none());
    }
}
