//! RFC 9297 datagram channels: an extended CONNECT (such as `connect-udp`) on a pooled HTTP/3
//! connection with HTTP/3 datagrams, tied to that request stream. The channel carries the
//! response head, datagrams both ways, the stream's data and trailers; it ends when its
//! stream ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use http::HeaderMap;
use tokio::sync::mpsc;

use crate::error::{Error, ErrorKind, Result};
use crate::pool::h3::{map_stream_error, ChannelEvent, H3Conn, H3Handle, H3SendHalf};
use crate::pool::mux::StreamLease;
use crate::response::ResponseHead;

/// How to open a datagram channel.
#[derive(Clone, Debug)]
pub struct DatagramOptions {
    /// The extended CONNECT `:protocol`. Default `connect-udp` (the one h3 supports besides
    /// `webtransport`).
    pub protocol: String,
    /// Datagrams received and not yet taken that the channel keeps; more are dropped
    /// (datagrams are unreliable). Default 1024.
    pub queue: usize,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions {
            protocol: "connect-udp".into(),
            queue: 1024,
        }
    }
}

/// An open datagram channel. Dropping it resets its stream and frees its stream slot.
pub struct DatagramChannel {
    head: ResponseHead,
    conn: Arc<H3Conn>,
    stream_id: u64,
    send: Option<H3SendHalf>,
    sender: DatagramSender,
    events: mpsc::Receiver<ChannelEvent>,
    datagrams: VecDeque<Bytes>,
    data: VecDeque<Bytes>,
    queue: usize,
    trailers: Option<HeaderMap>,
    ended: bool,
    _lease: StreamLease<H3Handle>,
}

impl std::fmt::Debug for DatagramChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramChannel")
            .field("status", &self.head.status)
            .field("stream_id", &self.stream_id)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl DatagramChannel {
    pub(crate) fn new(
        head: ResponseHead,
        conn: Arc<H3Conn>,
        stream_id: u64,
        send: H3SendHalf,
        events: mpsc::Receiver<ChannelEvent>,
        queue: usize,
        lease: StreamLease<H3Handle>,
    ) -> DatagramChannel {
        let sender = DatagramSender {
            conn: conn.clone(),
            stream_id,
            open: Arc::new(AtomicBool::new(true)),
        };
        DatagramChannel {
            head,
            conn,
            stream_id,
            send: Some(send),
            sender,
            events,
            datagrams: VecDeque::new(),
            data: VecDeque::new(),
            queue,
            trailers: None,
            ended: false,
            _lease: lease,
        }
    }

    /// The response head of the extended CONNECT.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The largest datagram payload the path takes now, if datagrams are available.
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.sender.max_datagram_size()
    }

    /// Sends one datagram on this channel. Unreliable: it may be lost. A payload larger than
    /// the path allows is a `datagram_too_large` (invalid) error.
    pub fn send(&self, payload: Bytes) -> Result<()> {
        self.sender.send(payload)
    }

    /// A handle that sends on this channel from elsewhere (it fails once the channel closed).
    pub fn sender(&self) -> DatagramSender {
        self.sender.clone()
    }

    /// The next datagram; `None` once the channel's stream has ended.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(d) = self.datagrams.pop_front() {
                return Ok(Some(d));
            }
            if self.ended {
                return Ok(None);
            }
            self.next_event().await?;
        }
    }

    /// The next piece of the stream's data (capsules, for protocols that use them); `None` at
    /// the end of the stream.
    pub async fn recv_data(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(d) = self.data.pop_front() {
                return Ok(Some(d));
            }
            if self.ended {
                return Ok(None);
            }
            self.next_event().await?;
        }
    }

    async fn next_event(&mut self) -> Result<()> {
        match self.events.recv().await {
            Some(ChannelEvent::Datagram(d)) => {
                if self.datagrams.len() < self.queue {
                    self.datagrams.push_back(d);
                }
            }
            Some(ChannelEvent::Data(d)) => self.data.push_back(d),
            Some(ChannelEvent::Trailers(t)) => self.trailers = Some(t),
            Some(ChannelEvent::End) | None => {
                self.ended = true;
                self.sender.open.store(false, Ordering::Release);
            }
            Some(ChannelEvent::Failed(e)) => {
                self.ended = true;
                self.sender.open.store(false, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The stream's trailers, once it has ended.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// True once the channel's stream has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Ends our side of the stream (no more datagrams can be sent); what the peer still sends
    /// can be received until its side ends.
    pub async fn close(&mut self) -> Result<()> {
        self.sender.open.store(false, Ordering::Release);
        if let Some(mut send) = self.send.take() {
            send.finish()
                .await
                .map_err(|e| map_stream_error(&e, &self.conn, &self.conn.origin))?;
        }
        Ok(())
    }
}

/// Sends datagrams on a channel; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct DatagramSender {
    conn: Arc<H3Conn>,
    stream_id: u64,
    open: Arc<AtomicBool>,
}

impl std::fmt::Debug for DatagramSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramSender")
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

impl DatagramSender {
    /// The largest datagram payload the path takes now, if datagrams are available.
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.conn
            .quic
            .max_datagram_size()
            .map(|n| n.saturating_sub(varint_len(self.stream_id / 4)))
    }

    /// Sends one datagram on this channel. Unreliable: it may be lost. A payload larger than
    /// the path allows is a `datagram_too_large` (invalid) error.
    pub fn send(&self, payload: Bytes) -> Result<()> {
        if !self.open.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::DatagramError,
                "the datagram channel is closed",
            ));
        }
        let Some(max) = self.max_datagram_size() else {
            return Err(Error::new(
                ErrorKind::DatagramsDisabled,
                "the peer does not accept datagrams on this connection",
            ));
        };
        if payload.len() > max {
            return Err(Error::new(
                ErrorKind::DatagramTooLarge,
                format!(
                    "a {}-byte datagram does not fit the path (at most {max} bytes)",
                    payload.len()
                ),
            ));
        }
        // RFC 9297 §2.1: quarter stream id (varint), then the payload. Encoded here because
        // h3-datagram 0.0.2's encoder writes the id wrongly (hyperium/h3#345).
        let mut bytes = bytes::BytesMut::with_capacity(8 + payload.len());
        put_varint(&mut bytes, self.stream_id / 4);
        bytes.extend_from_slice(&payload);
        self.conn
            .quic
            .send_datagram(bytes.freeze())
            .map_err(|e| match e {
                quinn::SendDatagramError::TooLarge => Error::new(
                    ErrorKind::DatagramTooLarge,
                    "the datagram does not fit the path",
                ),
                quinn::SendDatagramError::UnsupportedByPeer
                | quinn::SendDatagramError::Disabled => Error::new(
                    ErrorKind::DatagramsDisabled,
                    "the peer does not accept datagrams",
                ),
                quinn::SendDatagramError::ConnectionLost(e) => Error::new(
                    ErrorKind::DatagramError,
                    format!("the connection is gone: {e}"),
                ),
            })
    }
}

impl Drop for DatagramChannel {
    fn drop(&mut self) {
        self.conn
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.stream_id);
    }
}

/// Appends a QUIC variable-length integer (RFC 9000 §16).
fn put_varint(buf: &mut bytes::BytesMut, v: u64) {
    use bytes::BufMut;
    match v {
        0..=63 => buf.put_u8(v as u8),
        64..=16_383 => buf.put_u16(0x4000 | v as u16),
        16_384..=1_073_741_823 => buf.put_u32(0x8000_0000 | v as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | v),
    }
}

fn varint_len(v: u64) -> usize {
    match v {
        0..=63 => 1,
        64..=16_383 => 2,
        16_384..=1_073_741_823 => 4,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_through_h3_datagram_decode() {
        for stream_id in [0u64, 4, 252, 256, 65_536, 4_000_000_000] {
            let mut buf = bytes::BytesMut::new();
            put_varint(&mut buf, stream_id / 4);
            assert_eq!(buf.len(), varint_len(stream_id / 4));
            buf.extend_from_slice(b"payload");
            let d = h3_datagram::datagram::Datagram::decode(buf.freeze()).unwrap();
            assert_eq!(d.stream_id().into_inner(), stream_id);
            assert_eq!(&d.into_payload()[..], b"payload");
        }
    }
}
