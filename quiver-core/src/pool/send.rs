//! The one send/retry loop of the multiplexed protocols (HTTP/2 and HTTP/3): the request's
//! timers, a stream slot from the coordinator, the stream opened and the body started, the
//! response head awaited; requests the peer provably never processed (and 0-RTT flights the
//! server refused) sent again. What differs per protocol sits behind [`Multiplexed`].

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::mux::Coordinator;
use super::retry::{Retries, Retry};
use super::BufferedBytes;
use crate::config::Protocol;
use crate::conn::{Activity, ConnRecord};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::origin::Origin;
use crate::proto::body::{MuxBody, RecvHalf};
use crate::proto::{UploadFailure, UploadGuard};
use crate::request::{Body, Request};
use crate::response::{ResponseBody, StreamResponse, Via};
use crate::timeout::Watchdog;

/// A request stream that failed, and what that means for sending the request again.
pub(crate) struct Failure {
    pub error: Error,
    /// The connection cannot take new streams (GOAWAY seen, or it broke).
    pub draining: bool,
    /// The server refused the request's 0-RTT flight: it was not processed.
    pub early_rejected: bool,
}

impl Failure {
    /// A failure with nothing more to say than its error.
    pub(crate) fn plain(error: Error) -> Failure {
        Failure {
            error,
            draining: false,
            early_rejected: false,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::plain(error)
    }
}

/// A stream that is open: the head was sent (possibly in a 0-RTT flight).
pub(crate) struct Opened<S> {
    pub stream: S,
    /// The head went out as 0-RTT early data.
    pub early: bool,
    /// The stream's id on its connection.
    pub id: Option<u64>,
}

/// What a request may do on this attempt.
pub(crate) struct Attempt {
    /// The request may go in a 0-RTT flight.
    #[cfg_attr(not(feature = "http3"), allow(dead_code))]
    pub early_ok: bool,
    /// The request was already replayed once after its early flight failed.
    pub early_replayed: bool,
}

/// A multiplexed protocol's connection handle, as the send loop drives it.
pub(crate) trait Multiplexed: Clone + Send + Sync + 'static {
    /// A stream whose head was sent, before its body started.
    type Stream: Send + 'static;

    /// How the connection was made (its id, dial timings).
    fn record(&self) -> &Arc<ConnRecord>;

    /// The protocol these connections speak.
    const PROTOCOL: Protocol;
    /// A stream whose body is under way, waiting for the response head.
    type Waiting: Send + 'static;
    /// The receive half of a response body.
    type Recv: RecvHalf;

    /// Opens a stream on this connection and sends the head (`req.body` only tells its length).
    fn open(
        &self,
        req: &Request,
        origin: &Origin,
        attempt: &Attempt,
    ) -> impl Future<Output = std::result::Result<Opened<Self::Stream>, Failure>> + Send;

    /// Starts sending `body` on the stream; a failing upload records its error in `error`;
    /// `on_sent` hears when it all went out.
    fn start(
        &self,
        opened: Opened<Self::Stream>,
        body: Body,
        activity: &Activity,
        runtime: &Handle,
        upload: (&Arc<UploadFailure>, Option<crate::request::SentHook>),
    ) -> (Self::Waiting, UploadGuard);

    /// Waits for the response head.
    fn response(
        &self,
        waiting: Self::Waiting,
    ) -> impl Future<Output = std::result::Result<(http::response::Parts, Self::Recv), Failure>> + Send;

    /// The body's buffered-bytes gauge for the pool's stats, if the protocol keeps one.
    fn gauge(_recv: &Self::Recv) -> Option<Arc<dyn BufferedBytes>> {
        None
    }

    /// Wraps a response body for [`ResponseBody`].
    fn body(body: MuxBody<Self::Recv>, watchdog: Watchdog) -> ResponseBody;
}

/// Whether a request may go in a 0-RTT flight by default (safe, idempotent methods).
fn early_by_default(method: &http::Method) -> bool {
    use http::Method;
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Sends `req` over the pool; returns once the response head arrived. Requests the peer never
/// processed are retried transparently (see [`Retries`]).
pub(crate) async fn send<H: Multiplexed>(
    pool: &Arc<Coordinator<H>>,
    mut req: Request,
) -> Result<StreamResponse> {
    let options = pool.options.clone();
    let mut watchdog = Watchdog::new(
        req.read_timeout.unwrap_or(options.read_timeout),
        req.timeout.or(options.request_timeout),
    );
    let replayable = req.body.try_clone().is_some();
    let mut attempt = Attempt {
        early_ok: req
            .early_data
            .unwrap_or_else(|| early_by_default(&req.method)),
        early_replayed: false,
    };
    let mut avoid = None;
    let mut retries = Retries::default();
    let trace = req.trace.clone();
    let emit = |conn: Option<u64>, stream: Option<u64>, kind: EventKind| {
        if let Some(t) = &trace {
            t.emit(&pool.origin, Some(H::PROTOCOL), conn, stream, kind);
        }
    };
    loop {
        let asked = std::time::Instant::now();
        let lease = watchdog
            .guard(
                &Activity::new(),
                pool.checkout(avoid, req.checkout_timeout, trace.as_ref()),
            )
            .await??;
        let queued = asked.elapsed();
        let record = lease.handle().record().clone();
        let conn_id = Some(record.info.id);
        let reused = record.start_request();
        emit(conn_id, None, EventKind::ConnectionAcquired { reused });
        let activity = Activity::new();
        let opened = watchdog
            .guard(&activity, lease.handle().open(&req, &pool.origin, &attempt))
            .await?;
        let opened = match opened {
            Ok(opened) => {
                emit(conn_id, opened.id, EventKind::HeadersSent);
                opened
            }
            Err(failure) => {
                // The stream was never opened: the body is untouched and the request can go again.
                if failure.draining {
                    pool.draining(lease.conn_id());
                }
                if failure.early_rejected && !attempt.early_replayed {
                    attempt.early_replayed = true;
                    continue;
                }
                if retries.before_open(failure.error.kind(), &pool.counters) == Retry::Again {
                    emit(
                        conn_id,
                        None,
                        EventKind::Retried {
                            reason: failure.error.kind(),
                        },
                    );
                    continue;
                }
                return Err(failure.error);
            }
        };
        let body = match req.body.try_clone() {
            Some(b) => b,
            None => std::mem::take(&mut req.body),
        };
        let upload_error = Arc::new(UploadFailure::default());
        let early = opened.early;
        let stream_id = opened.id;
        let handle = lease.handle();
        let on_sent = req.sent_hook(&pool.origin, H::PROTOCOL, conn_id, stream_id);
        let (waiting, upload) = handle.start(
            opened,
            body,
            &activity,
            pool.runtime(),
            (&upload_error, on_sent),
        );
        // A body that fails ends the request now: the stream is dropped with the wait (the
        // server may never answer a request whose body broke off).
        let answer = async {
            tokio::select! {
                biased;
                answer = handle.response(waiting) => Ok(answer),
                e = upload_error.failed() => Err(e),
            }
        };
        let failure = match watchdog.guard(&activity, answer).await?? {
            Ok((parts, _))
                if parts.status == http::StatusCode::TOO_EARLY
                    && early
                    && !attempt.early_replayed
                    && replayable =>
            {
                // 425: the server wants this request after the handshake.
                attempt.early_replayed = true;
                continue;
            }
            Ok((parts, recv)) => {
                let gauge = H::gauge(&recv).map(|g| pool.buffered.register(g));
                let body = MuxBody::new(
                    recv,
                    Box::new((lease, gauge)),
                    activity,
                    (upload, upload_error.clone()),
                );
                let body = H::body(body, watchdog).limited(options.max_response_body);
                emit(
                    conn_id,
                    stream_id,
                    EventKind::ResponseHeaders {
                        status: parts.status,
                    },
                );
                let mut resp = StreamResponse::new(parts, body);
                resp.via = Via {
                    queued,
                    record: Some(record),
                    reused,
                    stream: stream_id,
                };
                return Ok(resp);
            }
            Err(failure) => failure,
        };
        if let Some(upload) = upload_error.get() {
            return Err(upload.clone());
        }
        let conn = lease.conn_id();
        drop(lease);
        if early && failure.early_rejected && !attempt.early_replayed && replayable {
            attempt.early_replayed = true;
            continue;
        }
        if failure.draining || failure.error.kind() == crate::error::ErrorKind::Goaway {
            pool.draining(conn);
        }
        let retry = retries.after_send(failure.error.kind(), replayable, &pool.counters);
        if retry != Retry::No {
            emit(
                conn_id,
                stream_id,
                EventKind::Retried {
                    reason: failure.error.kind(),
                },
            );
        }
        match retry {
            Retry::No => return Err(failure.error),
            Retry::Again => continue,
            Retry::Elsewhere => {
                avoid = Some(conn);
                continue;
            }
        }
    }
}
