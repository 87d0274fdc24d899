//! HTTP/3 against Hypercorn + aioquic (a server nobody here wrote).
#![cfg(feature = "http3")]

use std::time::Duration;

use quiver_core::{Bytes, Client, Request, Version};
use quiver_testserver::hypercorn::{hypercorn_binary, Hypercorn};
use quiver_testserver::{pattern, Options, TestServer};

/// Hypercorn is installed into the project's venv by `make setup`.
fn require_hypercorn() -> bool {
    if hypercorn_binary().is_some() {
        return true;
    }
    if std::env::var_os("QUIVER_ALLOW_MISSING_PEERS").is_some() {
        eprintln!("hypercorn is not installed: skipping (QUIVER_ALLOW_MISSING_PEERS is set)");
        return false;
    }
    panic!("hypercorn is not installed in .venv: run `make setup` (or set QUIVER_ALLOW_MISSING_PEERS=1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_suite_against_hypercorn() {
    if !require_hypercorn() {
        return;
    }
    let certs = TestServer::start(Options::default()).await.unwrap();
    let server = Hypercorn::start(certs.dir()).unwrap();
    let client = Client::builder()
        .set("protocol", "http3")
        .set("ca_file", certs.ca_file().to_str().unwrap())
        .set("checkout_timeout", Duration::from_secs(30))
        .build()
        .unwrap();
    // aioquic may still be binding its UDP socket right after the TCP listener is up.
    let mut first = client.get(&server.url("/health")).await;
    for _ in 0..20 {
        if first.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        first = client.get(&server.url("/health")).await;
    }
    let first = first.unwrap();
    assert_eq!(first.version(), Version::HTTP_3);
    assert_eq!(first.text(), "ok");

    for n in [0usize, 1, 1024, 100_000, 1_048_576] {
        let resp = client
            .get(&server.url(&format!("/bytes/{n}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(&resp.body()[..], &pattern(n)[..], "/bytes/{n}");
    }
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let resp = client
            .request(
                Request::builder(method, &server.url("/headers"))
                    .header("x-quiver", "1")
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(json["method"], method);
        assert_eq!(json["http_version"], "3");
        assert!(json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "x-quiver" && h[1] == "1"));
    }
    let body = Bytes::from(pattern(500_000));
    let echo = client
        .request(
            Request::post(&server.url("/echo"))
                .body(body.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(echo.body(), &body);
    assert_eq!(
        client
            .get(&server.url("/status/404"))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client
            .get(&server.url("/status/204"))
            .await
            .unwrap()
            .status(),
        204
    );

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), server.url("/bytes/10000"));
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().body().len(), 10_000);
    }
    let mut stream = client
        .stream(Request::get(&server.url("/bytes/2000000")).build().unwrap())
        .await
        .unwrap();
    let mut n = 0;
    while let Some(c) = stream.chunk().await.unwrap() {
        n += c.len();
    }
    assert_eq!(n, 2_000_000);
    assert_eq!(client.stats().errors, 0, "{:?}", client.stats());
}
