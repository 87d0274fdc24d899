//! Per-request timeouts that override the pool's: `read_timeout` (httpx's read timeout) and
//! `checkout_timeout` (httpx's pool timeout), (read: HTTP/1.1 and HTTP/2; checkout: HTTP/1.1, where the pool size makes callers wait).

use std::time::Duration;

use quiver_core::{Client, ErrorKind, Request};
use quiver_testserver::{Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sets_its_own_read_and_checkout_timeouts() {
    let server = TestServer::start(Options::default()).await.unwrap();
    for (protocol, base) in [
        ("http1", server.http_url("")),
        ("http2", server.h2c_url("")),
    ] {
        let base = base.trim_end_matches('/').to_owned();
        let client = Client::builder()
            .set("proxy_from_env", false)
            .set("protocol", protocol)
            .set("size", 1)
            .build()
            .unwrap();
        // read_timeout: the pool's is 30 s, this request's 200 ms.
        let req = Request::get(&format!("{base}/slow/3000"))
            .read_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let err = client.request(req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ReadTimeout, "{protocol}: {err}");
        if protocol != "http1" {
            // HTTP/2 slots come from the server's SETTINGS (100 here): no waiting to provoke.
            continue;
        }
        // checkout_timeout: the one connection is busy for 1.5 s.
        let busy = client.clone();
        let url = format!("{base}/slow/1500");
        let holder = tokio::spawn(async move { busy.get(&url).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let req = Request::get(&format!("{base}/health"))
            .checkout_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let err = client.request(req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CheckoutTimeout, "{protocol}: {err}");
        assert!(err.message().contains("100 ms"), "{err}");
        assert!(holder.await.unwrap().is_ok());
    }
    let bad = Request::get("http://x.test/")
        .read_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidConfig);
}
