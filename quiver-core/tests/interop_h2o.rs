//! HTTP/2 against h2o (a server nobody here wrote): TLS with ALPN and h2c prior knowledge.

use std::time::Duration;

use quiver_core::{Client, Protocol, Request, Version};
use quiver_testserver::h2o::{h2o_binary, H2o};
use quiver_testserver::nginx::FILES;
use quiver_testserver::{pattern, Options, TestServer};

/// h2o is a Debian package that `make setup` installs; without it this suite cannot run.
fn require_h2o() -> bool {
    if h2o_binary().is_some() {
        return true;
    }
    if std::env::var_os("QUIVER_ALLOW_MISSING_PEERS").is_some() {
        eprintln!("h2o is not installed: skipping (QUIVER_ALLOW_MISSING_PEERS is set)");
        return false;
    }
    panic!("h2o is not installed: run `make setup` (or set QUIVER_ALLOW_MISSING_PEERS=1)");
}

async fn suite(client: &Client, base: &dyn Fn(&str) -> String) {
    for (name, size) in FILES {
        let resp = client.get(&base(&format!("/{name}"))).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(&resp.body()[..], &pattern(*size)[..], "{name}");
    }
    let head = client
        .request(Request::head(&base("/1m.bin")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(head.headers()["content-length"], "1048576");
    assert!(head.body().is_empty());
    assert_eq!(client.get(&base("/missing")).await.unwrap().status(), 404);

    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let client = client.clone();
            let url = base("/100k.bin");
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(&t.await.unwrap().unwrap().body()[..], &pattern(102_400)[..]);
    }
    let mut resp = client
        .stream(Request::get(&base("/1m.bin")).build().unwrap())
        .await
        .unwrap();
    let mut n = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        n += chunk.len();
    }
    assert_eq!(n, 1_048_576);
    let stats = client.stats();
    assert!(stats.connections_opened <= 2, "{stats:?}");
    assert_eq!(stats.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_suite_against_h2o() {
    if !require_h2o() {
        return;
    }
    let certs = TestServer::start(Options::default()).await.unwrap();
    let h2o = H2o::start(certs.dir()).unwrap();
    let tls = Client::builder()
        .set("ca_file", certs.ca_file().to_str().unwrap())
        .set("max_connections", 2)
        .set("checkout_timeout", Duration::from_secs(30))
        .build()
        .unwrap();
    suite(&tls, &|p| h2o.https_url(p)).await;
    assert_eq!(tls.stats().origins[0].protocol, Protocol::Http2);
    let h2c = Client::builder()
        .set("protocol", "http2")
        .set("max_connections", 2)
        .set("checkout_timeout", Duration::from_secs(30))
        .build()
        .unwrap();
    suite(&h2c, &|p| h2o.plain_url(p)).await;
}
