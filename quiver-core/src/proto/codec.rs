//! QUIC variable-length integers (RFC 9000 §16) and HTTP capsules (RFC 9297 §3), the one
//! encoder and decoder of both.

// Capsules are MASQUE's (over HTTP/2); an HTTP/3-only build uses the varints alone.
#![cfg_attr(not(feature = "masque"), allow(dead_code))]

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The capsule type of HTTP datagrams (RFC 9297 §3.5).
pub(crate) const DATAGRAM_CAPSULE: u64 = 0x00;

/// Appends a varint. Values above 2^62-1 cannot be encoded and are clamped to it.
pub(crate) fn put_varint(buf: &mut BytesMut, v: u64) {
    match v {
        0..=63 => buf.put_u8(v as u8),
        64..=16_383 => buf.put_u16(0x4000 | v as u16),
        16_384..=1_073_741_823 => buf.put_u32(0x8000_0000 | v as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | v.min((1 << 62) - 1)),
    }
}

/// How many bytes `put_varint` writes for `v`.
pub(crate) fn varint_len(v: u64) -> usize {
    match v {
        0..=63 => 1,
        64..=16_383 => 2,
        16_384..=1_073_741_823 => 4,
        _ => 8,
    }
}

/// Reads a varint from the front of `buf`: the value and its length, `None` if incomplete.
pub(crate) fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    if buf.len() < len {
        return None;
    }
    let mut v = u64::from(first & 0x3f);
    for b in &buf[1..len] {
        v = (v << 8) | u64::from(*b);
    }
    Some((v, len))
}

/// Appends one capsule: type, length, payload.
#[cfg(test)]
pub(crate) fn put_capsule(buf: &mut BytesMut, kind: u64, payload: &[u8]) {
    put_varint(buf, kind);
    put_varint(buf, payload.len() as u64);
    buf.extend_from_slice(payload);
}

/// A DATAGRAM capsule carrying a UDP payload (context id 0, RFC 9298 §5).
pub(crate) fn udp_datagram_capsule(payload: &[u8]) -> Bytes {
    let mut c = BytesMut::with_capacity(16 + payload.len());
    put_varint(&mut c, DATAGRAM_CAPSULE);
    put_varint(&mut c, 1 + payload.len() as u64);
    c.put_u8(0);
    c.extend_from_slice(payload);
    c.freeze()
}

/// What [`take_capsule`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Capsule {
    /// A whole capsule: its type and payload.
    Whole(u64, Bytes),
    /// Not enough bytes buffered yet.
    Incomplete,
    /// A capsule longer than the limit: the stream cannot be trusted further.
    TooLarge(u64),
}

/// Takes the next capsule out of `buf` when it is complete. A declared length above `limit`
/// is reported at once, before its payload is buffered.
pub(crate) fn take_capsule(buf: &mut BytesMut, limit: usize) -> Capsule {
    let Some((kind, a)) = get_varint(buf) else {
        return Capsule::Incomplete;
    };
    let Some((len, b)) = get_varint(&buf[a..]) else {
        return Capsule::Incomplete;
    };
    if len > limit as u64 {
        return Capsule::TooLarge(len);
    }
    let len = len as usize;
    if buf.len() < a + b + len {
        return Capsule::Incomplete;
    }
    buf.advance(a + b);
    Capsule::Whole(kind, buf.split_to(len).freeze())
}

/// The UDP payload of a DATAGRAM capsule's payload (context id 0); `None` for other contexts.
pub(crate) fn udp_payload(mut datagram: Bytes) -> Option<Bytes> {
    let (context, c) = get_varint(&datagram)?;
    if context != 0 {
        return None;
    }
    datagram.advance(c);
    Some(datagram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            1,
            63,
            64,
            16_383,
            16_384,
            1_073_741_823,
            1_073_741_824,
            (1 << 62) - 1,
        ] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v));
            assert_eq!(get_varint(&buf), Some((v, buf.len())), "{v}");
            assert_eq!(get_varint(&buf[..buf.len() - 1]), None);
        }
    }

    #[test]
    fn capsules_parse_across_splits_and_skip_other_types() {
        let mut wire = BytesMut::new();
        put_capsule(&mut wire, DATAGRAM_CAPSULE, b"\x00one");
        put_capsule(&mut wire, 0x29, b"ignored");
        wire.extend_from_slice(&udp_datagram_capsule(b"two"));
        let wire = wire.freeze();
        for split in [1, 2, 3, wire.len()] {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(split) {
                buf.extend_from_slice(piece);
                while let Capsule::Whole(kind, payload) = take_capsule(&mut buf, 1 << 16) {
                    if kind == DATAGRAM_CAPSULE {
                        out.extend(udp_payload(payload));
                    }
                }
            }
            assert_eq!(
                out,
                vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")],
                "split {split}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_varint_round_trips(v in 0u64..(1 << 62)) {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            proptest::prop_assert_eq!(get_varint(&buf), Some((v, varint_len(v))));
        }

        #[test]
        fn any_bytes_parse_as_capsules_without_panicking(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            limit in 0usize..2048,
        ) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Capsule::Whole(_, payload) = take_capsule(&mut buf, limit) {
                proptest::prop_assert!(payload.len() <= limit);
                let _ = udp_payload(payload);
            }
        }
    }

    #[test]
    fn an_oversized_capsule_is_refused_before_its_payload() {
        let mut buf = BytesMut::new();
        put_varint(&mut buf, DATAGRAM_CAPSULE);
        put_varint(&mut buf, 1 << 40);
        assert_eq!(take_capsule(&mut buf, 65_536), Capsule::TooLarge(1 << 40));
    }
}
