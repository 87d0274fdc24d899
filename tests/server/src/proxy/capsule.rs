//! QUIC variable-length integers (RFC 9000, 16) and the capsule protocol (RFC 9297, 3): what
//! CONNECT-UDP carries over HTTP/2 (DATAGRAM capsules on the stream) and inside HTTP/3
//! datagrams (the context id).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The DATAGRAM capsule type (RFC 9297, 3.5).
pub(crate) const DATAGRAM: u64 = 0x00;

/// The largest capsule the proxy buffers: a UDP payload is at most 65,527 bytes, so anything
/// much larger is a broken peer.
pub(crate) const MAX_CAPSULE: u64 = 1 << 20;

/// The largest value a QUIC variable-length integer holds.
const VARINT_MAX: u64 = (1 << 62) - 1;

/// Appends `value` (at most 2^62-1; larger values are clamped) as a QUIC varint.
pub(crate) fn put_varint(out: &mut BytesMut, value: u64) {
    let value = value.min(VARINT_MAX);
    if value < 1 << 6 {
        out.put_u8(value as u8);
    } else if value < 1 << 14 {
        out.put_u16(0x4000 | value as u16);
    } else if value < 1 << 30 {
        out.put_u32(0x8000_0000 | value as u32);
    } else {
        out.put_u64(0xc000_0000_0000_0000 | value);
    }
}

/// Reads a QUIC varint at the start of `buf`: its value and length, `None` when `buf` holds
/// only part of it (or nothing).
pub(crate) fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut value = u64::from(first & 0x3f);
    for byte in &bytes[1..] {
        value = (value << 8) | u64::from(*byte);
    }
    Some((value, len))
}

/// The UDP payload of an HTTP datagram payload (a context id, then the payload): `Some` only
/// for context id 0 (a UDP payload, RFC 9298, 4); other context ids and malformed payloads are
/// `None` (dropped).
pub(crate) fn udp_payload(http_datagram: &[u8]) -> Option<&[u8]> {
    match get_varint(http_datagram)? {
        (0, len) => Some(&http_datagram[len..]),
        _ => None,
    }
}

/// The payload of an HTTP datagram carrying `udp` with context id 0.
pub(crate) fn http_datagram(udp: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + udp.len());
    put_varint(&mut out, 0);
    out.extend_from_slice(udp);
    out.freeze()
}

/// A DATAGRAM capsule carrying `udp` with context id 0: type, length, context id, payload.
pub(crate) fn datagram_capsule(udp: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(12 + udp.len());
    put_varint(&mut out, DATAGRAM);
    put_varint(&mut out, 1 + udp.len() as u64);
    put_varint(&mut out, 0);
    out.extend_from_slice(udp);
    out.freeze()
}

/// A capsule stream that cannot be parsed (a capsule longer than [`MAX_CAPSULE`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge;

/// Takes the next whole capsule off the front of `buf`: `Ok(Some((type, payload)))`, or
/// `Ok(None)` when `buf` does not hold a whole capsule yet.
pub(crate) fn next_capsule(buf: &mut BytesMut) -> Result<Option<(u64, Bytes)>, TooLarge> {
    let Some((kind, kind_len)) = get_varint(buf) else {
        return Ok(None);
    };
    let Some((len, len_len)) = get_varint(&buf[kind_len..]) else {
        return Ok(None);
    };
    if len > MAX_CAPSULE {
        return Err(TooLarge);
    }
    let head = kind_len + len_len;
    let len = len as usize;
    if buf.len() < head + len {
        return Ok(None);
    }
    buf.advance(head);
    Ok(Some((kind, buf.split_to(len).freeze())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [
            0u64,
            37,
            63,
            64,
            15_293,
            16_383,
            16_384,
            494_878_333,
            1 << 30,
            VARINT_MAX,
        ] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(get_varint(&out), Some((value, out.len())));
            assert_eq!(get_varint(&out[..out.len() - 1]), None);
        }
        // RFC 9000, A.1.
        assert_eq!(get_varint(&[0x7b, 0xbd]), Some((15_293, 2)));
        assert_eq!(get_varint(&[0x25]), Some((37, 1)));
        assert_eq!(get_varint(&[]), None);
    }

    #[test]
    fn capsules() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&datagram_capsule(b"hello"));
        // An unknown capsule type, then a second datagram split across reads.
        buf.extend_from_slice(&[0x40, 0x99, 3, b'x', b'y', b'z']);
        let second = datagram_capsule(&[7u8; 300]);
        buf.extend_from_slice(&second[..10]);
        let (kind, payload) = next_capsule(&mut buf).unwrap().unwrap();
        assert_eq!(kind, DATAGRAM);
        assert_eq!(udp_payload(&payload), Some(&b"hello"[..]));
        assert_eq!(
            next_capsule(&mut buf).unwrap(),
            Some((0x99, Bytes::from_static(b"xyz")))
        );
        assert_eq!(next_capsule(&mut buf).unwrap(), None);
        buf.extend_from_slice(&second[10..]);
        let (_, payload) = next_capsule(&mut buf).unwrap().unwrap();
        assert_eq!(udp_payload(&payload), Some(&[7u8; 300][..]));
        assert!(buf.is_empty());

        let mut huge = BytesMut::new();
        put_varint(&mut huge, DATAGRAM);
        put_varint(&mut huge, MAX_CAPSULE + 1);
        assert_eq!(next_capsule(&mut huge), Err(TooLarge));
    }

    #[test]
    fn context_ids() {
        assert_eq!(udp_payload(&http_datagram(b"abc")), Some(&b"abc"[..]));
        assert_eq!(udp_payload(&[0x02, b'a']), None);
        assert_eq!(udp_payload(&[0x40]), None);
        assert_eq!(udp_payload(&[0x40, 0x00, b'a']), Some(&b"a"[..]));
    }
}
