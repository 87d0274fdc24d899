//! Extended CONNECT streams with HTTP/3 datagrams (RFC 9297, RFC 9298): opening one on a
//! connection, registered for the connection's datagrams before the response arrives (a
//! datagram may precede the 200), and the task that reads the stream's data.

use std::sync::Arc;

use bytes::{Buf, BytesMut};

use super::errors::map_stream_error;
use super::{H3Conn, H3SendHalf};
use crate::conn::Activity;
use crate::error::{Error, ErrorKind, Result};
use crate::proto::codec::{put_varint, varint_len};
use crate::proto::endpoint::{queues, DatagramSink, Producers, Queues, StreamEvent};
use crate::timeout::Watchdog;

/// An open extended CONNECT stream with datagrams.
pub(crate) struct Channel {
    pub parts: http::response::Parts,
    pub stream_id: u64,
    pub send: H3SendHalf,
    pub queues: Queues,
    pub conn: Arc<H3Conn>,
    /// The task reading the stream's data.
    pub reader: tokio::task::AbortHandle,
}

/// How long to wait for the peer's SETTINGS before judging datagram support.
pub(crate) struct ChannelLimits {
    pub settings_wait: std::time::Duration,
    /// Datagrams kept for the receiver; more are dropped.
    pub queue: usize,
    /// Whether the stream's own data is kept for the receiver (channels) or discarded
    /// (UDP tunnels, whose stream carries nothing the caller reads).
    pub keep_stream_data: bool,
}

/// Sends `head` (an extended CONNECT) on `conn` and waits, under `watchdog`, for a 2xx answer
/// from a peer that enabled HTTP/3 datagrams.
pub(crate) async fn open(
    conn: &Arc<H3Conn>,
    mut head: http::Request<()>,
    protocol: h3::ext::Protocol,
    limits: ChannelLimits,
    watchdog: &mut Watchdog,
) -> Result<Channel> {
    let activity = Activity::new();
    watchdog.guard(&activity, conn.confirmed()).await?;
    head.extensions_mut().insert(protocol);
    head.headers_mut()
        .insert("capsule-protocol", http::HeaderValue::from_static("?1"));
    let mut sender = conn.sender();
    let stream = watchdog
        .guard(&activity, sender.send_request(head))
        .await?
        .map_err(|e| map_stream_error(&e, conn))?;
    let stream_id = stream.id().into_inner();
    let (producers, queues) = queues(limits.queue);
    let Producers {
        datagrams,
        stream: events,
        outcome,
    } = producers;
    conn.register(
        stream_id,
        DatagramSink {
            datagrams,
            outcome: outcome.clone(),
        },
    );
    let (send, mut recv) = stream.split();
    let answer = async {
        let response = watchdog
            .guard(&activity, recv.recv_response())
            .await?
            .map_err(|e| map_stream_error(&e, conn))?;
        if conn.peer_datagrams_within(limits.settings_wait).await != Some(true) {
            return Err(Error::new(
                ErrorKind::DatagramsDisabled,
                format!(
                    "{} did not enable HTTP/3 datagrams (SETTINGS_H3_DATAGRAM)",
                    conn.origin
                ),
            ));
        }
        if !response.status().is_success() {
            return Err(Error::new(
                ErrorKind::DatagramError,
                format!(
                    "{} answered the extended CONNECT with {}",
                    conn.origin,
                    response.status()
                ),
            ));
        }
        Ok(response)
    };
    let response = match answer.await {
        Ok(r) => r,
        Err(e) => {
            conn.unregister(stream_id);
            return Err(e);
        }
    };
    let reader_conn = conn.clone();
    let keep = limits.keep_stream_data;
    let reader = tokio::spawn(async move {
        let ended: std::result::Result<(), Error> = async {
            while let Some(mut buf) = recv
                .recv_data()
                .await
                .map_err(|e| map_stream_error(&e, &reader_conn))?
            {
                let data = buf.copy_to_bytes(buf.remaining());
                // A full queue makes this wait: QUIC flow control then holds the peer back.
                if keep && events.send(StreamEvent::Data(data)).await.is_err() {
                    return Ok(());
                }
            }
            if let Some(t) = recv
                .recv_trailers()
                .await
                .map_err(|e| map_stream_error(&e, &reader_conn))?
            {
                let _ = events.send(StreamEvent::Trailers(t)).await;
            }
            Ok(())
        }
        .await;
        match ended {
            Ok(()) => outcome.end(),
            Err(e) => outcome.fail(e),
        }
        // Ends the receiver's datagram queue once drained.
        reader_conn.unregister(stream_id);
    })
    .abort_handle();
    let (parts, ()) = response.into_parts();
    Ok(Channel {
        parts,
        stream_id,
        send,
        queues,
        conn: conn.clone(),
        reader,
    })
}

/// The largest datagram payload `conn`'s path takes now for stream `stream_id`.
pub(crate) fn max_datagram_size(conn: &H3Conn, stream_id: u64) -> Option<usize> {
    conn.quic
        .max_datagram_size()
        .map(|n| n.saturating_sub(varint_len(stream_id / 4)))
}

/// Sends one HTTP/3 datagram for stream `stream_id`: `prefix` (a context id, for CONNECT-UDP)
/// then `payload`. Unreliable: it may be lost.
pub(crate) fn send_datagram(
    conn: &H3Conn,
    stream_id: u64,
    prefix: &[u8],
    payload: &[u8],
) -> Result<()> {
    let Some(max) = max_datagram_size(conn, stream_id) else {
        return Err(Error::new(
            ErrorKind::DatagramsDisabled,
            "the peer does not accept datagrams on this connection",
        ));
    };
    if prefix.len() + payload.len() > max {
        return Err(Error::new(
            ErrorKind::DatagramTooLarge,
            format!(
                "a {}-byte datagram does not fit the path (at most {} bytes)",
                payload.len(),
                max.saturating_sub(prefix.len())
            ),
        ));
    }
    // RFC 9297 §2.1: quarter stream id (varint), then the payload. Encoded here because
    // h3-datagram 0.0.2's encoder writes the id wrongly (hyperium/h3#345).
    let mut bytes = BytesMut::with_capacity(8 + prefix.len() + payload.len());
    put_varint(&mut bytes, stream_id / 4);
    bytes.extend_from_slice(prefix);
    bytes.extend_from_slice(payload);
    conn.quic
        .send_datagram(bytes.freeze())
        .map_err(|e| match e {
            quinn::SendDatagramError::TooLarge => Error::new(
                ErrorKind::DatagramTooLarge,
                "the datagram does not fit the path",
            ),
            quinn::SendDatagramError::UnsupportedByPeer | quinn::SendDatagramError::Disabled => {
                Error::new(
                    ErrorKind::DatagramsDisabled,
                    "the peer does not accept datagrams",
                )
            }
            quinn::SendDatagramError::ConnectionLost(e) => Error::new(
                ErrorKind::DatagramError,
                format!("the connection is gone: {e}"),
            ),
        })
}
