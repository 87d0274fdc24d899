//! The HTTP/1.1 request suite against nginx (a server nobody here wrote), over http and https.

use std::time::Duration;

use futures_util::stream;
use quiver_core::{Body, Bytes, Client, Protocol, Request, Version};
use quiver_testserver::nginx::{nginx_binary, Nginx};
use quiver_testserver::{pattern, Options, TestServer};

/// nginx is a Debian package that `make setup` installs; without it this suite cannot run.
fn require_nginx() -> bool {
    if nginx_binary().is_some() {
        return true;
    }
    if std::env::var_os("QUIVER_ALLOW_MISSING_PEERS").is_some() {
        eprintln!("nginx is not installed: skipping (QUIVER_ALLOW_MISSING_PEERS is set)");
        return false;
    }
    panic!("nginx is not installed: run `make setup` (or set QUIVER_ALLOW_MISSING_PEERS=1)");
}

async fn suite(client: &Client, base: &dyn Fn(&str) -> String, version: Version) {
    for (name, size) in quiver_testserver::nginx::FILES {
        let resp = client.get(&base(&format!("/{name}"))).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), version);
        assert_eq!(resp.headers()["content-length"], size.to_string().as_str());
        assert_eq!(&resp.body()[..], &pattern(*size)[..], "{name}");
    }
    let head = client
        .request(Request::head(&base("/100k.bin")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(head.headers()["content-length"], "102400");
    assert!(head.body().is_empty());

    let body = Bytes::from(pattern(3_000_000));
    let echo = client
        .request(
            Request::post(&base("/echo"))
                .body(body.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(echo.body(), &body);

    // Chunked upload (no content-length), chunked response.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..50).map(|_| Ok(Bytes::from(pattern(4000)))).collect();
    let echo = client
        .request(
            Request::post(&base("/echo"))
                .body(Body::from_stream(stream::iter(chunks)))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(echo.body().len(), 200_000);
    assert_eq!(&echo.body()[..4000], &pattern(4000)[..]);
    let chunked = client.get(&base("/chunked")).await.unwrap();
    if version == Version::HTTP_11 {
        assert_eq!(chunked.headers()["transfer-encoding"], "chunked");
    }
    assert_eq!(chunked.text(), "hello\nworld\n");

    assert_eq!(
        client.get(&base("/status/204")).await.unwrap().status(),
        204
    );
    assert_eq!(
        client.get(&base("/status/500")).await.unwrap().status(),
        500
    );
    assert_eq!(client.get(&base("/nope")).await.unwrap().status(), 404);
    let sink = client
        .request(
            Request::put(&base("/sink"))
                .body(Bytes::from(pattern(5_000_000)))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(sink.status(), 200);

    // Many concurrent requests, all correct.
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            let url = base("/100k.bin");
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(&t.await.unwrap().unwrap().body()[..], &pattern(102_400)[..]);
    }

    // Streamed download read chunk by chunk.
    let mut resp = client
        .stream(Request::get(&base("/1m.bin")).build().unwrap())
        .await
        .unwrap();
    let mut n = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        n += chunk.len();
    }
    assert_eq!(n, 1_048_576);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_suite_against_nginx_over_http_and_https() {
    if !require_nginx() {
        return;
    }
    let certs = TestServer::start(Options::default()).await.unwrap();
    let nginx = Nginx::start(certs.dir()).unwrap();
    let client = Client::builder()
        .set("ca_file", certs.ca_file().to_str().unwrap())
        .set("protocol", "http1")
        .build()
        .unwrap();
    suite(&client, &|p| nginx.http_url(p), Version::HTTP_11).await;
    suite(&client, &|p| nginx.https_url(p), Version::HTTP_11).await;
    suite(&client, &|p| nginx.http_url_v6(p), Version::HTTP_11).await;

    // `Connection: close` from the server: the next request opens a new connection and succeeds.
    let client = Client::builder().set("size", 1).build().unwrap();
    assert_eq!(
        client.get(&nginx.http_url("/health")).await.unwrap().text(),
        "ok"
    );
    let before = nginx.status().unwrap().accepts;
    assert_eq!(
        client.get(&nginx.http_url("/close")).await.unwrap().text(),
        "bye"
    );
    assert_eq!(
        client.get(&nginx.http_url("/health")).await.unwrap().text(),
        "ok"
    );
    let after = nginx.status().unwrap().accepts;
    // one new connection for us, one for each status probe
    assert_eq!(
        after - before,
        2,
        "exactly one reconnect after Connection: close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_suite_against_nginx_over_tls_and_h2c() {
    if !require_nginx() {
        return;
    }
    let certs = TestServer::start(Options::default()).await.unwrap();
    let nginx = Nginx::start(certs.dir()).unwrap();
    // auto: ALPN picks h2 on https.
    let auto = Client::builder()
        .set("ca_file", certs.ca_file().to_str().unwrap())
        .build()
        .unwrap();
    suite(&auto, &|p| nginx.https_url(p), Version::HTTP_2).await;
    let stats = auto.stats();
    assert_eq!(stats.origins[0].protocol, Protocol::Http2, "{stats:?}");
    assert!(stats.connections_opened <= 4, "{stats:?}");
    // h2c with prior knowledge.
    let h2c = Client::builder().set("protocol", "http2").build().unwrap();
    suite(&h2c, &|p| nginx.h2c_url(p), Version::HTTP_2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_concurrency_against_nginx_is_bounded() {
    if !require_nginx() {
        return;
    }
    let certs = TestServer::start(Options::default()).await.unwrap();
    let nginx = Nginx::start(certs.dir()).unwrap();
    let client = Client::builder()
        .set("size", 4)
        .set("checkout_timeout", Duration::from_secs(60))
        .build()
        .unwrap();
    let before = nginx.status().unwrap();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let client = client.clone();
            let url = nginx.http_url("/1k.bin");
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        assert_eq!(resp.body().len(), 1024);
    }
    let after = nginx.status().unwrap();
    // accepts: our <= 4 connections plus the second status probe's
    assert!(
        after.accepts - before.accepts <= 5,
        "{before:?} -> {after:?}"
    );
    // requests: ours plus the second status probe
    assert_eq!(
        after.requests - before.requests,
        501,
        "{before:?} -> {after:?}"
    );
}
