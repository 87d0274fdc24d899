//! HTTP/1.1 connections over hyper's client connection API: the handshake that spawns a
//! connection's task, the error mapping, and the response body that hands its connection back
//! when it ends.

use std::sync::Arc;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::runtime::Handle;

use crate::conn::{io_error, Activity, Stream, Tracked};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::request::WireBody;
use crate::signal::Signal;

/// Sends requests on one HTTP/1.1 connection.
pub(crate) type H1Sender = http1::SendRequest<WireBody>;

/// Who hears about a connection's life (its client's listeners), and which connection it is.
pub(crate) struct Lifecycle {
    pub events: crate::events::Events,
    pub origin: Origin,
    pub id: u64,
}

impl Lifecycle {
    pub(crate) fn emit(&self, kind: crate::events::EventKind) {
        self.events.connection(
            &self.origin,
            Some(crate::config::Protocol::Http1),
            Some(self.id),
            kind,
        );
    }
}

/// Runs the HTTP/1.1 handshake over `stream` and spawns the connection's task on `runtime`.
/// The connection's task ends when the peer closes the connection, or when `closing` fires
/// (requests in flight on it then fail with `shutdown`).
pub(crate) async fn handshake(
    stream: Stream,
    origin: &Origin,
    runtime: &Handle,
    closing: Arc<Signal>,
    max_response_headers: usize,
    watch: Option<Lifecycle>,
) -> Result<(H1Sender, Activity)> {
    let activity = Activity::new();
    let io = TokioIo::new(Tracked::new(stream, activity.clone()));
    // The read buffer bounds what a response head can make us hold; `check_head` then
    // applies the exact limit. Never below hyper's default, which its throughput relies on.
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(max_response_headers.max(HYPER_DEFAULT_MAX_BUF))
        .handshake(io)
        .await
        .map_err(|e| map_hyper_error(e, origin, &closing))?;
    if let Some(w) = &watch {
        w.emit(crate::events::EventKind::ConnectionOpened);
    }
    runtime.spawn(async move {
        // Errors surface on requests.
        let end = tokio::select! {
            end = conn => Some(end),
            _ = closing.fired() => None,
        };
        if let Some(w) = watch.filter(|w| w.events.enabled()) {
            let reason = match end {
                Some(Ok(())) => "closed".to_owned(),
                Some(Err(e)) => e.to_string(),
                None => "shutdown".to_owned(),
            };
            w.emit(crate::events::EventKind::ConnectionClosed { reason });
        }
    });
    Ok((sender, activity))
}

/// hyper's default largest read buffer (8 KiB + 100 × 4 KiB).
const HYPER_DEFAULT_MAX_BUF: usize = 8192 + 4096 * 100;

/// True when the error shows the connection died before the response started: the classic
/// race with a server closing an idle keep-alive connection.
pub(crate) fn is_stale_connection(e: &hyper::Error) -> bool {
    if e.is_canceled() || e.is_incomplete_message() {
        return true;
    }
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    matches!(
        io.map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
    )
}

/// Maps a hyper error to a quiver error, unwrapping errors that came from the caller's body;
/// once `closing` fired, the connection was closed by quiver (`shutdown`).
pub(crate) fn map_hyper_error(e: hyper::Error, origin: &Origin, closing: &Signal) -> Error {
    if closing.is_fired() {
        return Error::new(
            ErrorKind::Shutdown,
            format!("{origin}: the connection was closed by the pool"),
        );
    }
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(ours) = s.downcast_ref::<Error>() {
            return ours.clone();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_error(io, &format!("connection to {origin}"));
        }
        source = s.source();
    }
    // hyper names this case only with its `server` feature: its message says it.
    if e.is_parse() && e.to_string().contains("too large") {
        return Error::with_source(
            ErrorKind::ResponseHeadersTooLarge,
            format!("{origin} sent a response head larger than quiver reads ({e})"),
            e,
        );
    }
    if e.is_parse() || e.is_parse_status() {
        return Error::with_source(
            ErrorKind::Protocol,
            format!("malformed response from {origin}: {e}"),
            e,
        );
    }
    if e.is_timeout() {
        return Error::with_source(ErrorKind::ReadTimeout, format!("{origin}: {e}"), e);
    }
    Error::with_source(
        ErrorKind::ConnectionClosed,
        format!("connection to {origin} closed before the response was complete"),
        e,
    )
}

/// Where an HTTP/1.1 response body gives its connection back.
pub(crate) trait ConnReturn: Send + Sync + 'static {
    /// The body ended: `reusable` when it was read to its end, so the connection can carry
    /// another request; otherwise the connection is closed.
    fn give_back(self: Box<Self>, reusable: bool);
}

/// An HTTP/1.1 response body: hyper's body plus its connection, given back when the body ends
/// cleanly and closed otherwise.
pub(crate) struct H1Body {
    incoming: hyper::body::Incoming,
    conn: Option<Box<dyn ConnReturn>>,
    activity: Activity,
    origin: Origin,
    closing: Arc<Signal>,
}

impl H1Body {
    pub(crate) fn new(
        incoming: hyper::body::Incoming,
        conn: Box<dyn ConnReturn>,
        activity: Activity,
        origin: Origin,
        closing: Arc<Signal>,
    ) -> H1Body {
        let mut body = H1Body {
            incoming,
            conn: Some(conn),
            activity,
            origin,
            closing,
        };
        body.release_if_ended();
        body
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// When hyper already knows the body has ended, give the connection back right away.
    pub(crate) fn release_if_ended(&mut self) {
        use http_body::Body as _;
        if self.incoming.is_end_stream() {
            if let Some(conn) = self.conn.take() {
                conn.give_back(true);
            }
        }
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>>>> {
        use http_body::Body as _;
        std::pin::Pin::new(&mut self.incoming)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(|e| map_hyper_error(e, &self.origin, &self.closing))))
    }

    pub(crate) fn finish(mut self, clean: bool) {
        if let Some(conn) = self.conn.take() {
            conn.give_back(clean);
        }
    }
}
