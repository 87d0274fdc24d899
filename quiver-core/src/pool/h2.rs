//! The HTTP/2 pool of one origin: the coordinator with connections set up by `proto::h2`, and
//! HTTP/2 as the send loop drives it.

use std::sync::Arc;

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use tokio::runtime::Handle;

use super::mux::{ConnLink, Coordinator, StreamLease};
use super::send::{Attempt, Failure, Multiplexed, Opened};
use super::BufferedBytes;
use crate::config::{PoolOptions, Protocol};
use crate::conn::tls::ALPN_H2;
use crate::conn::{Activity, BoxFuture, Connector};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::{Origin, Scheme};
use crate::proto::body::MuxBody;
use crate::proto::h2::body::{check_header_list_size, pump, send_held, H2Buffered, H2Recv};
use crate::proto::h2::tunnel::open_connect_stream;
use crate::proto::h2::H2Handle;
use crate::proto::head::request_head;
use crate::proto::{UploadFailure, UploadGuard};
use crate::request::{Body, Request};
use crate::response::ResponseBody;
use crate::timeout::Watchdog;

/// The HTTP/2 pool of one origin.
pub(crate) type H2Pool = Coordinator<H2Handle>;

/// Held bodies up to this size are handed to h2 whole (they fit a default stream window).
const HELD_AT_ONCE: usize = 64 * 1024;

/// Makes the HTTP/2 pool for `origin`; `connector` carries the TLS config (ALPN h2) for https
/// or none for h2c.
pub(crate) fn new_pool(
    origin: Origin,
    options: Arc<PoolOptions>,
    connector: Connector,
    runtime: Handle,
) -> Arc<H2Pool> {
    let connect_origin = origin.clone();
    let connect_options = options.clone();
    let connect = Box::new(
        move |link: ConnLink<H2Handle>| -> BoxFuture<'static, Result<(H2Handle, usize)>> {
            let origin = connect_origin.clone();
            let options = connect_options.clone();
            let connector = connector.clone();
            Box::pin(async move {
                let connected = connector.connect(&origin).await?;
                if origin.scheme() == Scheme::Https && connected.alpn.as_deref() != Some(ALPN_H2) {
                    let chose = connected
                        .alpn
                        .as_deref()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .unwrap_or_else(|| "no protocol".into());
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("{origin} does not speak HTTP/2 (ALPN chose {chose}); use protocol `auto` or `http1`"),
                    ));
                }
                crate::proto::h2::setup(
                    link,
                    connected.stream,
                    origin,
                    options,
                    connected.info,
                    connector.events.clone(),
                )
                .await
            })
        },
    );
    Coordinator::new(origin, options, Protocol::Http2, runtime, connect)
}

impl BufferedBytes for H2Buffered {
    fn buffered(&self) -> u64 {
        H2Buffered::buffered(self)
    }
}

impl Multiplexed for H2Handle {
    type Stream = (h2::client::ResponseFuture, SendStream<Bytes>);

    const PROTOCOL: Protocol = Protocol::Http2;

    fn record(&self) -> &Arc<crate::conn::ConnRecord> {
        &self.record
    }
    type Waiting = h2::client::ResponseFuture;
    type Recv = H2Recv;

    fn open(
        &self,
        req: &Request,
        origin: &Origin,
        _attempt: &Attempt,
    ) -> impl std::future::Future<Output = std::result::Result<Opened<Self::Stream>, Failure>> + Send
    {
        // The head is built before the future, which then holds nothing of the request.
        let head = request_head(req, origin, http::Version::HTTP_2)
            .and_then(|head| check_header_list_size(&head, &self.shared).map(|()| head));
        let end = req.body.exact_len() == Some(0);
        async move {
            let head = head?;
            let opened = async {
                let mut send = self.send.clone().ready().await?;
                send.send_request(head, end)
            }
            .await;
            match opened {
                Ok(stream) => Ok(Opened {
                    id: Some(u64::from(u32::from(stream.1.stream_id()))),
                    stream,
                    early: false,
                }),
                Err(e) => Err(Failure {
                    error: self.shared.error(&e),
                    draining: e.is_go_away() || e.is_io(),
                    early_rejected: false,
                }),
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
        let (response, stream) = opened.stream;
        let mut upload = UploadGuard::none();
        let sent_now = |bytes: u64, on_sent: Option<crate::request::SentHook>| {
            if let Some(hook) = on_sent {
                hook(bytes);
            }
        };
        match body {
            Body::Empty => sent_now(0, on_sent),
            Body::Bytes(b) if b.is_empty() => sent_now(0, on_sent),
            // A small body the caller already holds goes to h2 at once, which sends it as the
            // window allows. A large one goes through the pump, which hands it over as capacity
            // is granted and so records that bytes are moving (`read_timeout`).
            Body::Bytes(b) if b.len() <= HELD_AT_ONCE => {
                let len = b.len() as u64;
                send_held(stream, b);
                sent_now(len, on_sent);
            }
            Body::Bytes(b) => {
                let once: crate::request::BodyStream =
                    Box::pin(futures_util::stream::once(async move { Ok(b) }));
                upload = UploadGuard::spawn(
                    runtime,
                    pump(once, stream, activity.clone(), error.clone(), on_sent),
                );
            }
            Body::Stream(s) => {
                upload = UploadGuard::spawn(
                    runtime,
                    pump(s, stream, activity.clone(), error.clone(), on_sent),
                );
            }
        }
        (response, upload)
    }

    async fn response(
        &self,
        response: Self::Waiting,
    ) -> std::result::Result<(http::response::Parts, H2Recv), Failure> {
        let id = response.stream_id().as_u32();
        match response.await {
            Ok(resp) => {
                let (parts, recv) = resp.into_parts();
                crate::proto::head::check_response_headers(
                    &parts.headers,
                    self.shared.max_response_headers,
                    &self.shared.origin,
                )?;
                let threshold = self.shared.window_threshold;
                Ok((parts, H2Recv::new(recv, self.shared.clone(), threshold)))
            }
            Err(_) if self.shared.left_out_by_goaway(id) => Err(Failure {
                error: Error::new(
                    ErrorKind::Goaway,
                    format!(
                        "{} sent GOAWAY and did not process the request",
                        self.shared.origin
                    ),
                ),
                draining: true,
                early_rejected: false,
            }),
            Err(e) => Err(Failure::plain(self.shared.error(&e))),
        }
    }

    fn gauge(recv: &H2Recv) -> Option<Arc<dyn BufferedBytes>> {
        Some(recv.buffered())
    }

    fn body(body: MuxBody<H2Recv>, watchdog: Watchdog) -> ResponseBody {
        ResponseBody::http2(body, watchdog)
    }
}

/// Opens a stream for a tunnel (CONNECT, or extended CONNECT with `:protocol`) on a pooled
/// connection and waits for the response head, all within `limit`. The stream stays open both
/// ways; the returned lease keeps its slot.
pub(crate) async fn open_tunnel_stream(
    pool: &Arc<H2Pool>,
    head: http::Request<()>,
    limit: std::time::Duration,
) -> Result<(
    StreamLease<H2Handle>,
    http::response::Parts,
    SendStream<Bytes>,
    RecvStream,
)> {
    let run = async {
        let lease = pool.checkout(None, None, None).await?;
        let (parts, send, recv) = open_connect_stream(lease.handle(), head).await?;
        Ok((lease, parts, send, recv))
    };
    match tokio::time::timeout(limit, run).await {
        Ok(res) => res,
        Err(_) => Err(Error::new(
            ErrorKind::ConnectTimeout,
            format!(
                "opening a tunnel through {} took longer than {} ms",
                pool.origin,
                limit.as_millis()
            ),
        )),
    }
}
