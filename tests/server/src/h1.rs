//! HTTP/1.1 transport: serves one connection (plain or TLS) with hyper, dispatching every
//! request to [`crate::endpoints::handle`].

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::{Counted, Direction};
use crate::endpoints::{self, ConnCtx};
use crate::stats::Counters;

/// Serves HTTP/1.1 on `io` until the connection ends.
///
/// With `idle_timeout`, a connection that waits longer than that for the next request head
/// (no request in flight) is closed without a byte written.
pub(crate) async fn serve<I>(
    io: I,
    conn: Arc<ConnCtx>,
    counters: Arc<Counters>,
    idle_timeout: Option<Duration>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    if let Some(timeout) = idle_timeout {
        // hyper starts this timer whenever it waits for a request head: on a new connection and
        // after each response has been written, i.e. exactly when the connection is idle.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(timeout);
    }
    let service = service_fn(move |req: Request<Incoming>| {
        let conn = Arc::clone(&conn);
        let counters = Arc::clone(&counters);
        async move {
            let req =
                req.map(|body| Counted::new(body, Arc::clone(&counters), Direction::Received));
            let resp = endpoints::handle(req, &conn, &counters).await?;
            Ok::<_, endpoints::DropConnection>(
                resp.map(|body| Counted::new(body, counters, Direction::Sent)),
            )
        }
    });
    // Errors here are expected (aborted bodies, dropped connections, idle timeouts, clients
    // going away); the connection is closed either way.
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}
