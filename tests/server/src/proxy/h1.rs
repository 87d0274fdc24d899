//! The proxy over HTTP/1.1 (the `proxy` listener, and `proxy_tls` connections that did not
//! negotiate `h2`), served by hyper.
//!
//! `CONNECT host:port` dials the target and answers 200 with `x-proxy-relay-addr`; hyper then
//! hands the connection over (an upgrade), and the connection's task relays bytes both ways
//! between it and the target (`copy_bidirectional`) until both sides are done. Absolute-form
//! requests are forwarded ([`ProxyCtx::forward`]); the connection stays keep-alive.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{tunnel_head, ProxyCtx, Refusal};
use crate::body::{self, BoxBody};

/// The tunnel a CONNECT set up: the client's side (once hyper hands it over) and the target.
type Pending = Arc<Mutex<Option<(OnUpgrade, TcpStream)>>>;

/// Serves the proxy over HTTP/1.1 on `io` until the connection ends (or its tunnel does).
pub(crate) async fn serve<I>(io: I, ctx: Arc<ProxyCtx>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let pending: Pending = Arc::default();
    let service = {
        let pending = Arc::clone(&pending);
        service_fn(move |req: Request<Incoming>| {
            let ctx = Arc::clone(&ctx);
            let pending = Arc::clone(&pending);
            async move { Ok::<_, Infallible>(handle(req, &ctx, &pending).await) }
        })
    };
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    // Ends when the client goes away, or right after the 200 of a CONNECT has been written
    // (the upgrade): the tunnel then runs here.
    let _ = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
    let tunnel = pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some((upgrade, mut target)) = tunnel {
        if let Ok(upgraded) = upgrade.await {
            let mut client = TokioIo::new(upgraded);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut target).await;
        }
    }
}

async fn handle(
    mut req: Request<Incoming>,
    ctx: &ProxyCtx,
    pending: &Pending,
) -> Response<BoxBody> {
    if let Err(refusal) = ctx.check_auth(req.headers()) {
        return refusal.response();
    }
    if req.method() == Method::CONNECT {
        return match ctx.open_tcp(req.uri().authority()).await {
            Ok(target) => {
                let relay = target.local_addr().ok();
                let upgrade = hyper::upgrade::on(&mut req);
                *pending.lock().unwrap_or_else(PoisonError::into_inner) = Some((upgrade, target));
                let (parts, ()) = tunnel_head(relay).into_parts();
                let mut response = Response::from_parts(parts, body::empty());
                *response.status_mut() = StatusCode::OK;
                response
            }
            Err(refusal) => refusal.response(),
        };
    }
    if req.uri().scheme().is_some() {
        return ctx.forward(req).await;
    }
    Refusal::bad_request(format!(
        "{} {} is not a proxy request: use CONNECT host:port or an absolute URI",
        req.method(),
        req.uri()
    ))
    .response()
}
