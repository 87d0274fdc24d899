//! HTTP/1.1 end to end against the loopback test server: requests, streaming, pooling,
//! retries, timeouts, TLS and bad input.

use std::time::Duration;

use futures_util::stream;
use quiver_core::{Body, Bytes, Client, ErrorClass, ErrorKind, Request, Version};
use quiver_testserver::{pattern, Options, TestServer};

async fn server() -> TestServer {
    TestServer::start(Options::default())
        .await
        .expect("test server starts")
}

/// A client for this file's subject, HTTP/1.1 (the test server's https also offers h2).
fn client_for(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder()
        .set("ca_file", server.ca_file().to_str().unwrap())
        .set("protocol", "http1")
}

fn conn_id(resp: &quiver_core::Response) -> String {
    resp.headers()["x-conn-id"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_over_http_https_ipv6_and_localhost() {
    let server = server().await;
    let client = client_for(&server).build().unwrap();
    for url in [
        server.http_url("/bytes/1000"),
        server.http_url_v6("/bytes/1000"),
        server.https_url("/bytes/1000"),
        format!("http://localhost:{}/bytes/1000", server.http_port()),
    ] {
        let resp = client
            .get(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(resp.version(), Version::HTTP_11);
        assert_eq!(&resp.body()[..], &pattern(1000)[..], "{url}");
    }
    // chunked responses are decoded
    let resp = client
        .get(&server.http_url("/bytes/70000?chunked=1&chunk_size=7000"))
        .await
        .unwrap();
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(&resp.body()[..], &pattern(70000)[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_headers_in_order_and_bodies() {
    let server = server().await;
    let client = client_for(&server).build().unwrap();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"] {
        let req = Request::builder(method, &server.http_url("/headers"))
            .header("x-b", "1")
            .header("x-a", "2")
            .header("x-b", "3")
            .build()
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(json["method"], method);
        let headers: Vec<(String, String)> = json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .filter(|(n, _)| n.starts_with("x-"))
            .collect();
        let xb: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n == "x-b")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(xb, ["1", "3"], "duplicates kept in order ({method})");
        assert!(headers.iter().any(|(n, v)| n == "x-a" && v == "2"));
        assert!(json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "host"));
    }

    let body = Bytes::from(pattern(300_000));
    let resp = client
        .request(
            Request::post(&server.https_url("/echo"))
                .header("content-type", "application/x-test")
                .body(body.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-test");
    assert_eq!(resp.headers()["x-echo-method"], "POST");
    assert_eq!(resp.body(), &body);

    // A streamed upload goes out chunked and arrives intact.
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..64)
        .map(|i| Ok(Bytes::from(vec![b'0' + (i % 10) as u8; 4096])))
        .collect();
    let expected: Vec<u8> = (0..64)
        .flat_map(|i| vec![b'0' + (i % 10) as u8; 4096])
        .collect();
    let resp = client
        .request(
            Request::put(&server.http_url("/echo"))
                .body(Body::from_stream(stream::iter(chunks)))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(&resp.body()[..], &expected[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodiless_responses_and_trailers() {
    let server = server().await;
    let client = client_for(&server).set("size", 1).build().unwrap();
    let head = client
        .request(
            Request::builder("HEAD", &server.http_url("/bytes/100"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(head.headers()["content-length"], "100");
    assert!(head.body().is_empty());
    for code in [204, 304] {
        let resp = client
            .get(&server.http_url(&format!("/status/{code}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), code);
        assert!(resp.body().is_empty());
    }
    let resp = client.get(&server.http_url("/status/418")).await.unwrap();
    assert_eq!(resp.status(), 418);
    assert_eq!(resp.text(), "status 418");
    // All of the above reused one keep-alive connection.
    assert_eq!(client.stats().connections_opened, 1);

    let resp = client
        .request(
            Request::get(&server.http_url("/trailers"))
                .header("te", "trailers")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.text(), "hello trailers");
    let trailers = resp.trailers().expect("trailers arrive");
    assert_eq!(trailers["x-trailer-one"], "1");
    assert_eq!(trailers["x-trailer-two"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_reuse_and_connection_close() {
    let server = server().await;
    let client = client_for(&server).build().unwrap();
    let a = client.get(&server.http_url("/health")).await.unwrap();
    let b = client.get(&server.http_url("/health")).await.unwrap();
    assert_eq!(
        conn_id(&a),
        conn_id(&b),
        "sequential requests reuse the connection"
    );
    let c = client.get(&server.http_url("/close")).await.unwrap();
    assert_eq!(c.text(), "bye");
    let d = client.get(&server.http_url("/health")).await.unwrap();
    assert_ne!(
        conn_id(&c),
        conn_id(&d),
        "a closed connection is not reused"
    );
    assert_eq!(client.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_pulls_chunks_and_early_drop_closes_the_connection() {
    let server = server().await;
    let client = client_for(&server).set("size", 1).build().unwrap();
    let mut resp = client
        .stream(
            Request::get(&server.http_url("/bytes/200000?chunk_size=10000&delay_ms=5"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, pattern(200_000));
    drop(resp);

    // Read one chunk of a slow body, then drop: the connection must not be reused.
    let first = client.get(&server.http_url("/conn")).await.unwrap();
    let mut resp = client
        .stream(
            Request::get(&server.http_url("/bytes/100000?chunk_size=1000&delay_ms=20"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let chunk = resp.chunk().await.unwrap().unwrap();
    assert!(!chunk.is_empty());
    drop(resp);
    let after = client.get(&server.http_url("/conn")).await.unwrap();
    assert_ne!(conn_id(&first), conn_id(&after));
    let stats = client.stats();
    assert_eq!(stats.connections, 1, "{stats:?}");
    // The server sees the abandoned connection closed.
    let mut open = server.stats().open;
    for _ in 0..100 {
        if open <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        open = server.stats().open;
    }
    assert_eq!(open, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_through_a_pool_of_four() {
    let server = server().await;
    let client = client_for(&server)
        .set("size", 4)
        .set("checkout_timeout", Duration::from_secs(60))
        .build()
        .unwrap();
    let url = server.http_url("/bytes/1024");
    let expected = Bytes::from(pattern(1024));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body(), &expected);
    }
    let seen = server.stats();
    assert!(
        seen.max_open <= 4,
        "server saw {} connections open at once",
        seen.max_open
    );
    assert!(
        seen.accepted <= 4,
        "server accepted {} connections",
        seen.accepted
    );
    assert_eq!(seen.requests, 1000);
    let stats = client.stats();
    assert_eq!(stats.requests, 1000);
    assert!(stats.connections_opened <= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_first_requests_share_one_pool() {
    let server = server().await;
    let client = client_for(&server).build().unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let client = client.clone();
            let url = server.http_url("/health");
            tokio::spawn(async move { client.get(&url).await.map(|r| r.status()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    assert_eq!(client.stats().origins.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_timeout_when_saturated_and_queued_callers_complete() {
    let server = server().await;
    let client = client_for(&server)
        .set("size", 1)
        .set("checkout_timeout", Duration::from_millis(300))
        .build()
        .unwrap();
    let holder = {
        let client = client.clone();
        let url = server.http_url("/slow/3000");
        tokio::spawn(async move { client.get(&url).await })
    };
    // Wait until the slow request holds the only connection.
    for _ in 0..200 {
        if client.stats().active == 1 && server.stats().requests == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = client.get(&server.http_url("/health")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CheckoutTimeout, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(holder.await.unwrap().is_ok());

    // Queued callers that do get the connection in time complete, in order: the server
    // numbers the requests on its one connection as they arrive.
    let client = client_for(&server)
        .set("size", 1)
        .set("checkout_timeout", Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let task_client = client.clone();
        let url = server.http_url("/slow/50");
        tasks.push(tokio::spawn(async move { task_client.get(&url).await }));
        // Stagger arrivals so FIFO order is observable: wait until this caller is in the
        // queue. `requests` only grows (it counts a request as its checkout starts, in the same
        // poll that queues it), where `queued + active` also shrinks as earlier callers finish.
        for _ in 0..1000 {
            if client.stats().requests > i as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let mut order = Vec::new();
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        let conn = resp.headers()["x-conn-id"].to_str().unwrap().to_owned();
        let nth: u64 = resp.headers()["x-conn-requests"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        order.push((conn, nth));
    }
    let first = order[0].clone();
    assert_eq!(
        order,
        (0..5)
            .map(|i| (first.0.clone(), first.1 + i))
            .collect::<Vec<_>>(),
        "callers are served first come, first served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_keep_alive_connections_are_retried_once() {
    let server = server().await;
    // The server closes the connection on the next request without answering: the classic race.
    let client = client_for(&server).set("size", 1).build().unwrap();
    let armed = client.get(&server.http_url("/drop-next")).await.unwrap();
    assert_eq!(armed.text(), "armed");
    let resp = client.get(&server.http_url("/conn")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_ne!(
        conn_id(&armed),
        conn_id(&resp),
        "the retry used a fresh connection"
    );
    assert_eq!(client.stats().retries, 1);
    assert_eq!(client.stats().errors, 0);

    // A streamed body cannot be replayed: the error surfaces.
    client.get(&server.http_url("/drop-next")).await.unwrap();
    let body = Body::from_stream(stream::iter(vec![Ok::<_, std::io::Error>(
        Bytes::from_static(b"x"),
    )]));
    let err = client
        .request(
            Request::post(&server.http_url("/echo"))
                .body(body)
                .build()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);

    // A server that closes idle keep-alive connections: the next request still succeeds.
    let client = client_for(&server).set("size", 1).build().unwrap();
    let a = client.get(&server.idle_close_url("/conn")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = client.get(&server.idle_close_url("/conn")).await.unwrap();
    assert_eq!(b.status(), 200);
    assert_ne!(conn_id(&a), conn_id(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_after_idle_timeout() {
    let server = server().await;
    let client = client_for(&server)
        .set("idle_timeout", Duration::from_millis(200))
        .build()
        .unwrap();
    client.get(&server.http_url("/health")).await.unwrap();
    assert_eq!(client.stats().idle, 1);
    let mut stats = client.stats();
    for _ in 0..100 {
        if stats.connections == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = client.stats();
    }
    assert_eq!(stats.connections, 0, "{stats:?}");
    for _ in 0..100 {
        if server.stats().open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.stats().open,
        0,
        "the server sees the idle connection closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts() {
    let server = server().await;
    let client = client_for(&server)
        .set("request_timeout", Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(&server.http_url("/slow/5000"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RequestTimeout, "{err}");
    assert!(err.is_timeout());

    // Per-request override.
    let err = client_for(&server)
        .build()
        .unwrap()
        .request(
            Request::get(&server.http_url("/slow/5000"))
                .timeout(Duration::from_millis(200))
                .build()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RequestTimeout, "{err}");

    // Idle between bytes: the head arrives, then the body stalls.
    let client = client_for(&server)
        .set("read_timeout", Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(&server.http_url("/bytes/100?chunk_size=10&delay_ms=3000"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadTimeout, "{err}");
    // A consumer that pauses longer than read_timeout is not the connection being idle.
    let mut resp = client
        .stream(
            Request::get(&server.http_url("/bytes/300000"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut got = resp.chunk().await.unwrap().unwrap().len();
    tokio::time::sleep(Duration::from_millis(900)).await;
    while let Some(c) = resp.chunk().await.unwrap() {
        got += c.len();
    }
    assert_eq!(got, 300_000);
    // A body that keeps moving does not trip the idle timer, however long it takes overall.

    let resp = client
        .get(&server.http_url("/bytes/100?chunk_size=10&delay_ms=100"))
        .await
        .unwrap();
    assert_eq!(resp.body().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_servers_fail_one_request_and_the_pool_keeps_serving() {
    let server = server().await;
    let client = client_for(&server).set("size", 2).build().unwrap();
    let err = client
        .get(&server.http_url("/close-mid-body/100000"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionClosed, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(
        client
            .get(&server.http_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );

    for path in [
        "/malformed",
        "/garbage",
        "/truncated-chunked",
        "/close-immediately",
    ] {
        let err = client.get(&server.raw_url(path)).await.unwrap_err();
        let expected = match path {
            "/malformed" | "/garbage" => ErrorKind::Protocol,
            _ => ErrorKind::ConnectionClosed,
        };
        assert_eq!(err.kind(), expected, "{path}: {err}");
        let ok = client.get(&server.raw_url("/ok")).await.unwrap();
        assert_eq!(ok.text(), "ok", "the pool keeps serving after {path}");
    }
    let err = client.get(&server.raw_url("/malformed")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unrecoverable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refused_and_dns_failures_are_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::new().unwrap();
    let err = client
        .get(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);

    let err = client
        .get("http://no-such-host.invalid/")
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Dns | ErrorKind::ConnectTimeout),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_and_nothing_is_sent() {
    let server = server().await;
    for build in [
        Request::get(&server.http_url("/"))
            .header("x-evil", "a\r\nx-injected: 1")
            .build(),
        Request::get(&server.http_url("/"))
            .header("x-nul", "a\0b")
            .build(),
        Request::post(&server.http_url("/"))
            .header("content-length", "184467440737095516150")
            .build(),
        Request::get("ftp://127.0.0.1/").build(),
        Request::get("http://exa mple.com/").build(),
    ] {
        let err = build.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    }
    assert_eq!(server.stats().accepted, 0);

    let err = Client::builder().set("size", 0).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let err = Client::builder()
        .set_for("https://*.example.com", "checkout_timeout", "soon")
        .build()
        .unwrap_err();
    assert!(
        err.message().contains("https://*.example.com")
            && err.message().contains("checkout_timeout"),
        "{err}"
    );
    let err = Client::builder()
        .set("ca_file", "/nonexistent/ca.pem")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.message().contains("ca_file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_custom_ca_and_mutual_tls() {
    let server = server().await;
    // Default roots do not trust the test CA.
    let err = Client::new()
        .unwrap()
        .get(&server.https_url("/health"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert_eq!(err.class(), ErrorClass::Unrecoverable);
    // Nor does an unrelated CA.
    let wrong = Client::builder()
        .set("ca_file", server.wrong_ca_file().to_str().unwrap())
        .build()
        .unwrap();
    let err = wrong.get(&server.https_url("/health")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    // The right CA works, by name and by IP address (SAN).
    let client = client_for(&server).build().unwrap();
    assert_eq!(
        client
            .get(&server.https_url("/health"))
            .await
            .unwrap()
            .text(),
        "ok"
    );
    let by_ip = format!("https://127.0.0.1:{}/health", server.https_port());
    assert_eq!(client.get(&by_ip).await.unwrap().text(), "ok");
    // Verification off, only through the explicitly dangerous option.
    let reckless = Client::builder()
        .set("danger_accept_invalid_certs", true)
        .build()
        .unwrap();
    assert_eq!(
        reckless
            .get(&server.https_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );

    // mTLS: refused without a client certificate, accepted with one. In TLS 1.3 the server
    // judges the client's certificate after the client already finished its handshake; its
    // alert usually arrives (kind `tls`), but the connection may also just close first.
    let err = client.get(&server.mtls_url("/health")).await.unwrap_err();
    assert!(
        err.kind() == ErrorKind::Tls || err.kind() == ErrorKind::ConnectionClosed,
        "{err}"
    );

    let with_cert = client_for(&server)
        .set("client_cert", server.client_cert().to_str().unwrap())
        .set("client_key", server.client_key().to_str().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        with_cert
            .get(&server.mtls_url("/health"))
            .await
            .unwrap()
            .text(),
        "ok"
    );
}

#[test]
fn works_without_a_caller_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(server());
    let client = client_for(&server).build().unwrap();
    let url = server.http_url("/bytes/10");
    let resp = futures_executor::block_on(client.get(&url)).unwrap();
    assert_eq!(&resp.body()[..], b"abcdefghij");
}
