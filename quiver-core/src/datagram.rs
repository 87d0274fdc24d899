//! Datagram endpoints: RFC 9297 datagram channels (an extended CONNECT on a pooled HTTP/3
//! connection) and, sharing their two halves, MASQUE UDP tunnels (`proxy`). A
//! [`DatagramSender`] sends (cheap to clone, any thread); a [`DatagramReceiver`] receives with
//! `&self` methods that are cancel-safe, so any task may wait on it and a receive given up on
//! loses nothing.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::proto::endpoint::{Outcome, Queues, StreamEvent};
use crate::proto::Hold;
use crate::response::ResponseHead;

/// The extended CONNECT protocol of a datagram channel (`:protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ConnectProtocol {
    /// `connect-udp` (RFC 9298).
    #[default]
    ConnectUdp,
    /// `webtransport`.
    WebTransport,
}

impl ConnectProtocol {
    /// The protocol's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectProtocol::ConnectUdp => "connect-udp",
            ConnectProtocol::WebTransport => "webtransport",
        }
    }
}

impl FromStr for ConnectProtocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<ConnectProtocol> {
        match s.to_ascii_lowercase().as_str() {
            "connect-udp" => Ok(ConnectProtocol::ConnectUdp),
            "webtransport" => Ok(ConnectProtocol::WebTransport),
            _ => Err(Error::new(
                ErrorKind::InvalidHeader,
                format!(
                    "extended CONNECT protocol `{s}` is not supported over HTTP/3 (connect-udp, webtransport)"
                ),
            )),
        }
    }
}

impl fmt::Display for ConnectProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to open a datagram channel.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DatagramOptions {
    /// The extended CONNECT `:protocol`. Default `connect-udp`.
    pub protocol: ConnectProtocol,
    /// Datagrams received and not yet taken that the channel keeps; more are dropped
    /// (datagrams are unreliable). Default 1024.
    pub queue: usize,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions {
            protocol: ConnectProtocol::ConnectUdp,
            queue: 1024,
        }
    }
}

impl DatagramOptions {
    /// Sets the extended CONNECT protocol.
    pub fn protocol(mut self, protocol: ConnectProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets how many received datagrams are kept for the caller.
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// The datagram queue's capacity as the channel uses it.
    pub(crate) fn queue_capacity(&self) -> usize {
        self.queue.clamp(1, 65_536)
    }
}

/// How a sender's datagrams travel.
pub(crate) enum Path {
    /// HTTP/3 datagrams on a request stream, each payload after `prefix` (CONNECT-UDP's
    /// context id 0 for tunnels, nothing for channels).
    #[cfg(feature = "http3")]
    Http3 {
        conn: Arc<crate::proto::h3::H3Conn>,
        stream_id: u64,
        prefix: &'static [u8],
        finish: Box<tokio::sync::Mutex<Option<crate::proto::h3::H3SendHalf>>>,
    },
    /// DATAGRAM capsules on an HTTP/2 stream (MASQUE over HTTP/2).
    #[cfg(feature = "masque")]
    Capsules(Mutex<h2::SendStream<Bytes>>),
}

struct SendInner {
    path: Path,
    /// Cleared by `close()`.
    open: AtomicBool,
    outcome: Arc<Outcome>,
    /// The largest payload accepted regardless of the path (UDP's limit for tunnels).
    max_payload: usize,
    _hold: Arc<Hold>,
}

/// Sends on a datagram channel or UDP tunnel; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct DatagramSender(Arc<SendInner>);

impl fmt::Debug for DatagramSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramSender")
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl DatagramSender {
    pub(crate) fn new(
        path: Path,
        outcome: Arc<Outcome>,
        max_payload: usize,
        hold: Arc<Hold>,
    ) -> DatagramSender {
        DatagramSender(Arc::new(SendInner {
            path,
            open: AtomicBool::new(true),
            outcome,
            max_payload,
            _hold: hold,
        }))
    }

    fn is_open(&self) -> bool {
        self.0.open.load(Ordering::Acquire) && self.0.outcome.get().is_none()
    }

    /// The largest payload the path takes now, if datagrams are available.
    pub fn max_payload(&self) -> Option<usize> {
        match &self.0.path {
            #[cfg(feature = "http3")]
            Path::Http3 {
                conn,
                stream_id,
                prefix,
                ..
            } => crate::proto::h3::channel::max_datagram_size(conn, *stream_id)
                .map(|n| n.saturating_sub(prefix.len()).min(self.0.max_payload)),
            #[cfg(feature = "masque")]
            Path::Capsules(_) => Some(self.0.max_payload),
        }
    }

    /// Sends one datagram. Unreliable: it may be lost. A payload larger than the path allows is
    /// a `datagram_too_large` (invalid) error; after `close()` or the end of the stream, a
    /// `datagram_error`.
    pub fn send(&self, payload: impl AsRef<[u8]>) -> Result<()> {
        let payload = payload.as_ref();
        if !self.is_open() {
            return Err(Error::new(
                ErrorKind::DatagramError,
                "the endpoint is closed",
            ));
        }
        if payload.len() > self.0.max_payload {
            return Err(Error::new(
                ErrorKind::DatagramTooLarge,
                format!(
                    "a {}-byte payload is larger than the endpoint carries ({} bytes)",
                    payload.len(),
                    self.0.max_payload
                ),
            ));
        }
        match &self.0.path {
            #[cfg(feature = "http3")]
            Path::Http3 {
                conn,
                stream_id,
                prefix,
                ..
            } => crate::proto::h3::channel::send_datagram(conn, *stream_id, prefix, payload),
            #[cfg(feature = "masque")]
            Path::Capsules(stream) => stream
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send_data(crate::proto::codec::udp_datagram_capsule(payload), false)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::DatagramError,
                        format!("the tunnel stream failed: {e}"),
                    )
                }),
        }
    }

    /// Ends our side of the stream: nothing more can be sent; what the peer still sends can
    /// be received until its side ends. Idempotent.
    pub async fn close(&self) -> Result<()> {
        self.0.open.store(false, Ordering::Release);
        match &self.0.path {
            #[cfg(feature = "http3")]
            Path::Http3 { finish, conn, .. } => {
                let taken = finish.lock().await.take();
                if let Some(mut send) = taken {
                    send.finish()
                        .await
                        .map_err(|e| crate::proto::h3::errors::map_stream_error(&e, conn))?;
                }
                Ok(())
            }
            #[cfg(feature = "masque")]
            Path::Capsules(stream) => {
                let _ = stream
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .send_data(Bytes::new(), true);
                Ok(())
            }
        }
    }
}

/// Receives from a datagram channel or UDP tunnel. Every method takes `&self` and is
/// cancel-safe: receives may wait from several tasks, and one given up on loses nothing.
pub struct DatagramReceiver {
    datagrams: tokio::sync::Mutex<mpsc::Receiver<Bytes>>,
    stream: tokio::sync::Mutex<mpsc::Receiver<StreamEvent>>,
    outcome: Arc<Outcome>,
    /// Set once a failure was returned (it is returned once, then the end).
    failure_reported: AtomicBool,
    trailers: Mutex<Option<HeaderMap>>,
    /// Stops the task reading the stream when the receiver goes away.
    reader: Option<AbortHandle>,
    /// Datagrams carry a CONNECT-UDP context id: keep context 0 (UDP payloads), stripped.
    udp: bool,
    _hold: Arc<Hold>,
}

impl fmt::Debug for DatagramReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramReceiver")
            .field("ended", &self.is_ended())
            .finish_non_exhaustive()
    }
}

impl DatagramReceiver {
    pub(crate) fn new(
        queues: Queues,
        reader: Option<AbortHandle>,
        udp: bool,
        hold: Arc<Hold>,
    ) -> Self {
        DatagramReceiver {
            datagrams: tokio::sync::Mutex::new(queues.datagrams),
            stream: tokio::sync::Mutex::new(queues.stream),
            outcome: queues.outcome,
            failure_reported: AtomicBool::new(false),
            trailers: Mutex::new(None),
            reader,
            udp,
            _hold: hold,
        }
    }

    /// At the end of a queue: the failure (once), else `None`.
    fn ended<T>(&self) -> Result<Option<T>> {
        match self.outcome.get() {
            Some(Err(e)) if !self.failure_reported.swap(true, Ordering::AcqRel) => Err(e.clone()),
            _ => Ok(None),
        }
    }

    /// What the caller gets of a received datagram (`None`: skip it).
    fn accept(&self, datagram: Bytes) -> Option<Bytes> {
        if self.udp {
            crate::proto::codec::udp_payload(datagram)
        } else {
            Some(datagram)
        }
    }

    /// The next datagram; `None` once the stream has ended and every datagram was taken.
    pub async fn recv(&self) -> Result<Option<Bytes>> {
        let mut queue = self.datagrams.lock().await;
        loop {
            match queue.recv().await {
                Some(d) => {
                    if let Some(d) = self.accept(d) {
                        return Ok(Some(d));
                    }
                }
                None => return self.ended(),
            }
        }
    }

    /// Up to `max` datagrams: waits for the first, then takes what is already queued. Empty
    /// once the stream has ended and every datagram was taken.
    pub async fn recv_batch(&self, max: usize) -> Result<Vec<Bytes>> {
        let mut queue = self.datagrams.lock().await;
        let mut batch = Vec::new();
        while batch.is_empty() {
            let Some(first) = queue.recv().await else {
                return self.ended().map(|_: Option<()>| Vec::new());
            };
            batch.extend(self.accept(first));
        }
        while batch.len() < max {
            match queue.try_recv() {
                Ok(d) => batch.extend(self.accept(d)),
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    /// The next piece of the stream's own data (capsules, for protocols that use them); `None`
    /// at the end of the stream.
    pub async fn recv_data(&self) -> Result<Option<Bytes>> {
        let mut queue = self.stream.lock().await;
        loop {
            match queue.recv().await {
                Some(StreamEvent::Data(d)) => return Ok(Some(d)),
                Some(StreamEvent::Trailers(t)) => {
                    *self.trailers.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
                }
                None => return self.ended(),
            }
        }
    }

    /// The stream's trailers, once they were received (by `recv_data`, or at the end).
    pub fn trailers(&self) -> Option<HeaderMap> {
        let kept = self
            .trailers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if kept.is_some() {
            return kept;
        }
        // The stream ended with its trailers still queued behind data nobody read.
        let mut queue = self.stream.try_lock().ok()?;
        let mut found = None;
        while let Ok(event) = queue.try_recv() {
            if let StreamEvent::Trailers(t) = event {
                found = Some(t);
            }
        }
        *self.trailers.lock().unwrap_or_else(|p| p.into_inner()) = found.clone();
        found
    }

    /// True once the stream has ended (queued datagrams may still be taken).
    pub fn is_ended(&self) -> bool {
        self.outcome.get().is_some()
    }

    /// Completes if the stream fails (never, while it lives or once it ended cleanly): for a
    /// caller that stopped receiving for a while but must still learn of a failure.
    pub async fn failed(&self) -> Error {
        match self.outcome.settled().await {
            Err(e) => e.clone(),
            Ok(()) => std::future::pending().await,
        }
    }
}

impl Drop for DatagramReceiver {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

/// An open datagram channel: the response head and its two halves. Dropping it (both halves)
/// ends its stream and frees its stream slot.
pub struct DatagramChannel {
    head: ResponseHead,
    sender: DatagramSender,
    receiver: DatagramReceiver,
}

impl fmt::Debug for DatagramChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramChannel")
            .field("status", &self.head.status)
            .field("ended", &self.receiver.is_ended())
            .finish_non_exhaustive()
    }
}

impl DatagramChannel {
    pub(crate) fn new(
        head: ResponseHead,
        sender: DatagramSender,
        receiver: DatagramReceiver,
    ) -> DatagramChannel {
        DatagramChannel {
            head,
            sender,
            receiver,
        }
    }

    /// The response head of the extended CONNECT.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The largest datagram payload the path takes now, if datagrams are available.
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.sender.max_payload()
    }

    /// Sends one datagram (see [`DatagramSender::send`]).
    pub fn send(&self, payload: impl AsRef<[u8]>) -> Result<()> {
        self.sender.send(payload)
    }

    /// A handle that sends on this channel from elsewhere.
    pub fn sender(&self) -> DatagramSender {
        self.sender.clone()
    }

    /// The next datagram; `None` once the channel's stream has ended.
    pub async fn recv(&self) -> Result<Option<Bytes>> {
        self.receiver.recv().await
    }

    /// The next piece of the stream's data; `None` at the end of the stream.
    pub async fn recv_data(&self) -> Result<Option<Bytes>> {
        self.receiver.recv_data().await
    }

    /// The stream's trailers, once it has ended.
    pub fn trailers(&self) -> Option<HeaderMap> {
        self.receiver.trailers()
    }

    /// True once the channel's stream has ended.
    pub fn is_ended(&self) -> bool {
        self.receiver.is_ended()
    }

    /// Ends our side of the stream (see [`DatagramSender::close`]).
    pub async fn close(&self) -> Result<()> {
        self.sender.close().await
    }

    /// Splits into the head, the send half and the receive half.
    pub fn split(self) -> (ResponseHead, DatagramSender, DatagramReceiver) {
        (self.head, self.sender, self.receiver)
    }
}
