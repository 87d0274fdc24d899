//! Reads HTTP/2 frame headers as they pass on the read side of a connection, to learn what the
//! `h2` crate does not expose: the peer's SETTINGS_MAX_HEADER_LIST_SIZE and
//! SETTINGS_MAX_CONCURRENT_STREAMS as they arrive, and GOAWAY the moment it arrives (so the
//! coordinator stops routing to a draining connection before a request fails on it).
//!
//! Only the 9-byte frame headers are parsed, plus the payloads of SETTINGS and GOAWAY; DATA and
//! every other payload is skipped by length, so the cost does not grow with the bytes moved.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::watch;

const FRAME_SETTINGS: u8 = 0x4;
const FRAME_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// What the peer has told us, shared between the sniffer (on the I/O path) and the connection
/// worker and requests.
#[derive(Debug)]
pub(crate) struct H2Signals {
    /// The peer's SETTINGS_MAX_HEADER_LIST_SIZE (`u32::MAX` until stated).
    pub max_header_list_size: AtomicU32,
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (`u32::MAX` until stated).
    pub max_concurrent_streams: AtomicU32,
    /// Set once the first SETTINGS frame arrived.
    pub settings_seen: AtomicBool,
    /// Set once a GOAWAY arrived.
    pub goaway: AtomicBool,
    /// The last GOAWAY's last-stream-id.
    pub goaway_last_stream: AtomicU32,
    /// Bumped on every SETTINGS or GOAWAY; subscribe to be woken.
    pub changed: watch::Sender<u64>,
}

impl H2Signals {
    pub(crate) fn new() -> H2Signals {
        H2Signals {
            max_header_list_size: AtomicU32::new(u32::MAX),
            max_concurrent_streams: AtomicU32::new(u32::MAX),
            settings_seen: AtomicBool::new(false),
            goaway: AtomicBool::new(false),
            goaway_last_stream: AtomicU32::new(u32::MAX),
            changed: watch::Sender::new(0),
        }
    }
}

/// Incremental frame-header parser fed with every byte read from the peer.
pub(crate) struct FrameSniffer {
    signals: std::sync::Arc<H2Signals>,
    header: [u8; 9],
    header_len: usize,
    kind: u8,
    flags: u8,
    /// Payload bytes of the current frame still to come.
    remaining: usize,
    /// Payload kept for SETTINGS / GOAWAY (bounded).
    payload: Vec<u8>,
}

/// Longest payload prefix kept: SETTINGS frames are small; of a GOAWAY only 8 bytes matter.
const KEEP_MAX: usize = 512;

impl FrameSniffer {
    pub(crate) fn new(signals: std::sync::Arc<H2Signals>) -> FrameSniffer {
        FrameSniffer {
            signals,
            header: [0; 9],
            header_len: 0,
            kind: 0,
            flags: 0,
            remaining: 0,
            payload: Vec::new(),
        }
    }

    /// Feeds bytes just read from the peer.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.header_len < 9 {
                let take = (9 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == 9 {
                    let h = &self.header;
                    self.remaining =
                        (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    self.kind = h[3];
                    self.flags = h[4];
                    self.payload.clear();
                    if self.remaining == 0 {
                        self.frame_done();
                    }
                }
                continue;
            }
            let take = self.remaining.min(bytes.len());
            if self.wants_payload() {
                let keep = take.min(KEEP_MAX.saturating_sub(self.payload.len()));
                self.payload.extend_from_slice(&bytes[..keep]);
            }
            self.remaining -= take;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                self.frame_done();
            }
        }
    }

    fn wants_payload(&self) -> bool {
        (self.kind == FRAME_SETTINGS && self.flags & FLAG_ACK == 0) || self.kind == FRAME_GOAWAY
    }

    fn frame_done(&mut self) {
        let s = &self.signals;
        match self.kind {
            FRAME_SETTINGS if self.flags & FLAG_ACK == 0 => {
                for param in self.payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([param[0], param[1]]);
                    let value = u32::from_be_bytes([param[2], param[3], param[4], param[5]]);
                    match id {
                        SETTINGS_MAX_CONCURRENT_STREAMS => {
                            s.max_concurrent_streams.store(value, Ordering::Release)
                        }
                        SETTINGS_MAX_HEADER_LIST_SIZE => {
                            s.max_header_list_size.store(value, Ordering::Release)
                        }
                        _ => {}
                    }
                }
                s.settings_seen.store(true, Ordering::Release);
                s.changed.send_modify(|v| *v += 1);
            }
            FRAME_GOAWAY if self.payload.len() >= 8 => {
                let last = u32::from_be_bytes([
                    self.payload[0],
                    self.payload[1],
                    self.payload[2],
                    self.payload[3],
                ]) & 0x7fff_ffff;
                s.goaway_last_stream.fetch_min(last, Ordering::AcqRel);
                s.goaway.store(true, Ordering::Release);
                s.changed.send_modify(|v| *v += 1);
            }
            _ => {}
        }
        self.header_len = 0;
        self.payload.clear();
    }
}

impl crate::conn::ReadObserver for FrameSniffer {
    fn feed(&mut self, bytes: &[u8]) {
        FrameSniffer::feed(self, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_in_any_split_give_the_same_signals(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            split in 1usize..64,
        ) {
            let whole = Arc::new(H2Signals::new());
            FrameSniffer::new(whole.clone()).feed(&bytes);
            let pieces = Arc::new(H2Signals::new());
            let mut sniffer = FrameSniffer::new(pieces.clone());
            for piece in bytes.chunks(split) {
                sniffer.feed(piece);
            }
            let read = |s: &H2Signals| (
                s.max_concurrent_streams.load(Ordering::Relaxed),
                s.max_header_list_size.load(Ordering::Relaxed),
                s.goaway.load(Ordering::Relaxed),
                s.goaway_last_stream.load(Ordering::Relaxed),
            );
            proptest::prop_assert_eq!(read(&whole), read(&pieces));
        }
    }

    #[test]
    fn sees_settings_and_goaway_across_arbitrary_splits() {
        let mut wire = Vec::new();
        let mut settings = Vec::new();
        settings.extend_from_slice(&[0, 3, 0, 0, 0, 7]); // max concurrent streams 7
        settings.extend_from_slice(&[0, 6, 0, 0, 0x10, 0]); // max header list 4096
        wire.extend(frame(FRAME_SETTINGS, 0, &settings));
        wire.extend(frame(FRAME_SETTINGS, FLAG_ACK, &[]));
        wire.extend(frame(0x0, 0, &vec![b'x'; 70_000])); // DATA, skipped
        wire.extend(frame(
            FRAME_GOAWAY,
            0,
            &[0, 0, 0, 41, 0, 0, 0, 0, b'b', b'y', b'e'],
        ));
        for split in [1, 2, 5, 9, 10, 4096, wire.len()] {
            let signals = Arc::new(H2Signals::new());
            let mut sniffer = FrameSniffer::new(signals.clone());
            for piece in wire.chunks(split) {
                sniffer.feed(piece);
            }
            assert_eq!(
                signals.max_concurrent_streams.load(Ordering::Relaxed),
                7,
                "split {split}"
            );
            assert_eq!(signals.max_header_list_size.load(Ordering::Relaxed), 4096);
            assert!(signals.goaway.load(Ordering::Relaxed));
            assert_eq!(signals.goaway_last_stream.load(Ordering::Relaxed), 41);
        }
    }
}
