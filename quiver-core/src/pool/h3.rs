//! The HTTP/3 pool of one origin: the coordinator with connections set up by `proto::h3` over
//! a UDP path from the dialing layer, HTTP/3 as the send loop drives it (0-RTT included), and
//! datagram channels on pooled connections.

use std::sync::Arc;

use h3::error::StreamError;
use tokio::runtime::Handle;

use super::mux::{ConnLink, Coordinator, StreamLease};
use super::send::{Attempt, Failure, Multiplexed, Opened};
use crate::config::{PoolOptions, Protocol};
use crate::conn::limit::Cap;
use crate::conn::udp::QuicPath;
use crate::conn::{Activity, BoxFuture};
use crate::datagram::{DatagramChannel, DatagramOptions, DatagramReceiver, DatagramSender, Path};
use crate::error::Result;
use crate::origin::Origin;
use crate::proto::body::MuxBody;
use crate::proto::h3::body::{upload, H3Recv};
use crate::proto::h3::channel::{self, ChannelLimits};
use crate::proto::h3::errors::{map_stream_error, zero_rtt_rejected};
use crate::proto::h3::{H3Handle, H3Stream, Handshake};
use crate::proto::head::request_head;
use crate::proto::{UploadFailure, UploadGuard};
use crate::request::{Body, Request};
use crate::response::ResponseBody;
use crate::timeout::Watchdog;

/// The HTTP/3 pool of one origin.
pub(crate) type H3Pool = Coordinator<H3Handle>;

/// Makes the HTTP/3 pool for `origin` with the rule's TLS config (ALPN h3); its connections
/// go over `path`.
pub(crate) fn new_pool(
    origin: Origin,
    options: Arc<PoolOptions>,
    tls: Arc<rustls::ClientConfig>,
    runtime: Handle,
    path: Arc<dyn QuicPath>,
    cap: Option<Cap>,
    events: Option<crate::events::Events>,
) -> Result<Arc<H3Pool>> {
    let quic = crate::proto::h3::client_config(tls, &options, path.as_ref())?;
    let connect_origin = origin.clone();
    let connect_options = options.clone();
    let connect = Box::new(
        move |link: ConnLink<H3Handle>| -> BoxFuture<'static, Result<(H3Handle, usize)>> {
            let (origin, options, quic, path, cap, events) = (
                connect_origin.clone(),
                connect_options.clone(),
                quic.clone(),
                path.clone(),
                cap.clone(),
                events.clone(),
            );
            // Bounded as a whole: a server that never completes the HTTP/3 setup (it grants
            // too few unidirectional streams, say) must not leave the slot connecting.
            Box::pin(async move {
                // Room under the client-wide cap first, held until the QUIC connection closes.
                let permit = match &cap {
                    Some(cap) => Some(cap.acquire(&origin).await?),
                    None => None,
                };
                let limit = options.connect_timeout;
                let shown = origin.to_string();
                match tokio::time::timeout(
                    limit,
                    crate::proto::h3::connect(link, origin, options, quic, path, events),
                )
                .await
                {
                    Ok(Ok(connected)) => {
                        if let Some(permit) = permit {
                            let quic = connected.0.conn.quic.clone();
                            tokio::spawn(async move {
                                quic.closed().await;
                                drop(permit);
                            });
                        }
                        Ok(connected)
                    }
                    Ok(res) => res,
                    Err(_) => Err(crate::error::Error::new(
                        crate::error::ErrorKind::ConnectTimeout,
                        format!(
                            "setting up HTTP/3 with {shown} took longer than {} ms",
                            limit.as_millis()
                        ),
                    )),
                }
            })
        },
    );
    Ok(Coordinator::new(
        origin,
        options,
        Protocol::Http3,
        runtime,
        connect,
    ))
}

/// The body length a response announces with `content-length`, when it has a body at all
/// (RFC 9110 §6.4.1: none for HEAD, 1xx, 204 and 304). HTTP/3 leaves checking it to us.
fn declared_length(parts: &http::response::Parts, is_head: bool) -> Result<Option<u64>> {
    let status = parts.status.as_u16();
    if is_head || status < 200 || status == 204 || status == 304 {
        return Ok(None);
    }
    let mut declared = None;
    for value in parts.headers.get_all(http::header::CONTENT_LENGTH) {
        let n = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|n| declared.is_none_or(|d| d == *n));
        match n {
            Some(n) => declared = Some(n),
            None => {
                return Err(crate::error::Error::new(
                    crate::error::ErrorKind::Protocol,
                    "the response's content-length is malformed or contradictory",
                ))
            }
        }
    }
    Ok(declared)
}

fn stream_failure(e: &StreamError, handle: &H3Handle, early: bool) -> Failure {
    Failure {
        error: map_stream_error(e, &handle.conn),
        draining: matches!(e, StreamError::RemoteClosing),
        early_rejected: early && zero_rtt_rejected(e),
    }
}

impl Multiplexed for H3Handle {
    /// The stream, and whether the request is a HEAD (its answer has no body).
    type Stream = (H3Stream, bool);

    const PROTOCOL: Protocol = Protocol::Http3;

    fn record(&self) -> &Arc<crate::conn::ConnRecord> {
        &self.record
    }
    /// The receive half, whether the head went as early data, whether the request is a HEAD.
    type Waiting = (crate::proto::h3::H3RecvStream, bool, bool);
    type Recv = H3Recv;

    fn open(
        &self,
        req: &Request,
        origin: &Origin,
        attempt: &Attempt,
    ) -> impl std::future::Future<Output = std::result::Result<Opened<Self::Stream>, Failure>> + Send
    {
        // The head is built before the future, which then holds nothing of the request.
        let head = request_head(req, origin, http::Version::HTTP_3);
        let must_confirm = !attempt.early_ok || attempt.early_replayed;
        let is_head = req.method == http::Method::HEAD;
        async move {
            let mut head = head?;
            let conn = &self.conn;
            if conn.handshake() == Handshake::Early && must_confirm {
                conn.confirmed().await;
            }
            let early = conn.handshake() == Handshake::Early;
            if early {
                head.headers_mut()
                    .insert("early-data", http::HeaderValue::from_static("1"));
            }
            match conn.sender().send_request(head).await {
                Ok(stream) => Ok(Opened {
                    id: Some(stream.id().into_inner()),
                    stream: (stream, is_head),
                    early,
                }),
                Err(e) => Err(stream_failure(&e, self, early)),
            }
        }
    }

    fn start(
        &self,
        opened: Opened<Self::Stream>,
        body: Body,
        activity: &Activity,
        runtime: &Handle,
        (error, on_sent): (&Arc<UploadFailure>, Option<crate::request::SentHook>),
    ) -> (Self::Waiting, UploadGuard) {
        let early = opened.early;
        let (stream, is_head) = opened.stream;
        let (send_half, recv) = stream.split();
        // An empty body is sent once the head is: told now, as HTTP/2 does, rather than when
        // the task below has finished the stream (which may be after the response).
        let on_sent = match on_sent {
            Some(hook) if body.exact_len() == Some(0) => {
                hook(0);
                None
            }
            other => other,
        };
        let guard = UploadGuard::spawn(
            runtime,
            upload(body, send_half, activity.clone(), error.clone(), on_sent),
        );
        ((recv, early, is_head), guard)
    }

    async fn response(
        &self,
        (mut recv, early, is_head): Self::Waiting,
    ) -> std::result::Result<(http::response::Parts, H3Recv), Failure> {
        match recv.recv_response().await {
            Ok(resp) => {
                let (parts, ()) = resp.into_parts();
                if let Err(error) = crate::proto::head::check_response_headers(
                    &parts.headers,
                    self.conn.max_response_headers,
                    &self.conn.origin,
                ) {
                    return Err(error.into());
                }
                let declared = declared_length(&parts, is_head).map_err(Failure::plain)?;
                Ok((parts, H3Recv::new(recv, self.conn.clone(), declared)))
            }
            Err(e) => Err(stream_failure(&e, self, early)),
        }
    }

    fn body(body: MuxBody<H3Recv>, watchdog: Watchdog) -> ResponseBody {
        ResponseBody::http3(body, watchdog)
    }
}

/// What a channel's datagrams carry before the caller's payload: nothing for a plain channel,
/// the context id for a CONNECT-UDP tunnel.
pub(crate) struct ChannelKind {
    /// Prepended to every payload sent, stripped from every datagram received.
    pub prefix: &'static [u8],
    /// The largest payload accepted regardless of the path.
    pub max_payload: usize,
    /// Whether the stream's data is kept for `recv_data`.
    pub keep_stream_data: bool,
}

/// Opens a datagram channel: an extended CONNECT on a pooled connection.
pub(crate) async fn open_channel(
    pool: &Arc<H3Pool>,
    req: Request,
    options: &DatagramOptions,
    kind: ChannelKind,
) -> Result<DatagramChannel> {
    let protocol = match options.protocol {
        crate::datagram::ConnectProtocol::ConnectUdp => h3::ext::Protocol::CONNECT_UDP,
        crate::datagram::ConnectProtocol::WebTransport => h3::ext::Protocol::WEB_TRANSPORT,
    };
    let limits = pool.options.clone();
    let mut watchdog = Watchdog::new(
        limits.read_timeout,
        req.timeout
            .or(Some(limits.connect_timeout + limits.read_timeout)),
    );
    let lease: StreamLease<H3Handle> = watchdog
        .guard(&Activity::new(), pool.checkout(None, None, None))
        .await??;
    let conn = lease.handle().conn.clone();
    let head = request_head(&req, &pool.origin, http::Version::HTTP_3)?;
    let opened = channel::open(
        &conn,
        head,
        protocol,
        ChannelLimits {
            settings_wait: limits.read_timeout,
            queue: options.queue_capacity(),
            keep_stream_data: kind.keep_stream_data,
        },
        &mut watchdog,
    )
    .await?;
    let hold: Arc<crate::proto::Hold> = Arc::new(Box::new(lease));
    let outcome = opened.queues.outcome.clone();
    let sender = DatagramSender::new(
        Path::Http3 {
            conn: opened.conn.clone(),
            stream_id: opened.stream_id,
            prefix: kind.prefix,
            finish: Box::new(tokio::sync::Mutex::new(Some(opened.send))),
        },
        outcome,
        kind.max_payload,
        hold.clone(),
    );
    let receiver = DatagramReceiver::new(
        opened.queues,
        Some(opened.reader),
        !kind.prefix.is_empty(),
        hold,
    );
    Ok(DatagramChannel::new(opened.parts.into(), sender, receiver))
}
