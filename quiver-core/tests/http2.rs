//! HTTP/2 end to end against the test server's h2 side (the `h2` crate's server with fault
//! modes): multiplexing limits, GOAWAY, REFUSED_STREAM, flow control in both directions,
//! PING keep-alive, header list limits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream;
use quiver_core::{Body, Bytes, Client, ErrorClass, ErrorKind, Protocol, Request, Version};
use quiver_testserver::{pattern, H2Options, Options, TestServer};

async fn server_with(h2: H2Options) -> TestServer {
    TestServer::start(Options {
        h2,
        ..Options::default()
    })
    .await
    .expect("test server starts")
}

fn h2_client(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder()
        .set("ca_file", server.ca_file().to_str().unwrap())
        .set("checkout_timeout", Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_h2_by_alpn_and_h2c_works_with_prior_knowledge() {
    let server = server_with(H2Options::default()).await;
    let client = h2_client(&server).build().unwrap();
    let resp = client.get(&server.https_url("/bytes/5000")).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(&resp.body()[..], &pattern(5000)[..]);
    assert_eq!(client.stats().origins[0].protocol, Protocol::Http2);

    let h2c = h2_client(&server).set("protocol", "http2").build().unwrap();
    let resp = h2c.get(&server.h2c_url("/headers")).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["version"], "HTTP/2.0");

    // Methods, bodies, trailers.
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let resp = h2c
            .request(
                Request::builder(method, &server.h2c_url("/headers"))
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(json["method"], method);
    }
    let body = Bytes::from(pattern(1_500_000));
    let echo = h2c
        .request(
            Request::post(&server.h2c_url("/echo"))
                .body(body.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(echo.body(), &body);
    let resp = client.get(&server.https_url("/trailers")).await.unwrap();
    assert_eq!(resp.text(), "hello trailers");
    assert_eq!(resp.trailers().unwrap()["x-trailer-two"], "2");
    let head = client
        .request(
            Request::head(&server.https_url("/bytes/100"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(head.body().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_stay_within_streams_and_connections() {
    let server = server_with(H2Options {
        max_concurrent_streams: 100,
        ..H2Options::default()
    })
    .await;
    let client = h2_client(&server)
        .set("max_connections", 4)
        .build()
        .unwrap();
    let url = server.https_url("/bytes/1024");
    let next = Arc::new(AtomicU64::new(0));
    let expected = Bytes::from(pattern(1024));
    let callers: Vec<_> = (0..256)
        .map(|_| {
            let (client, url, next, expected) =
                (client.clone(), url.clone(), next.clone(), expected.clone());
            tokio::spawn(async move {
                let mut done = 0;
                while next.fetch_add(1, Ordering::Relaxed) < 10_000 {
                    let resp = client.get(&url).await.expect("request succeeds");
                    assert_eq!(resp.version(), Version::HTTP_2);
                    assert_eq!(resp.body(), &expected);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for c in callers {
        total += c.await.unwrap();
    }
    assert_eq!(total, 10_000);
    let seen = server.stats();
    assert!(
        seen.h2_connections <= 4,
        "server saw {} HTTP/2 connections",
        seen.h2_connections
    );
    assert!(
        seen.h2_max_streams_per_conn <= 100,
        "server saw {} streams on one connection",
        seen.h2_max_streams_per_conn
    );
    let stats = client.stats();
    assert_eq!(stats.requests, 10_000);
    assert_eq!(stats.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_arriving_during_the_handshake_share_the_first_connection() {
    let server = server_with(H2Options::default()).await;
    let client = h2_client(&server).build().unwrap();
    let url = server.https_url("/slow/50");
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(
        server.stats().h2_connections,
        1,
        "one connection served everyone"
    );
    assert_eq!(client.stats().connections_opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_mid_load_loses_nothing() {
    let server = server_with(H2Options {
        goaway_after: Some(300),
        ..H2Options::default()
    })
    .await;
    let url = server.h2c_url("/bytes/2048");
    let client = Client::builder()
        .set("protocol", "http2")
        .set("max_connections", 2)
        .set("checkout_timeout", Duration::from_secs(60))
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..128)
        .map(|_| {
            let (client, url, next, outcomes) =
                (client.clone(), url.clone(), next.clone(), outcomes.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < 3_000 {
                    let resp = client.get(&url).await;
                    outcomes.fetch_add(1, Ordering::Relaxed);
                    let resp = resp.expect("GOAWAY-unprocessed requests are retried and succeed");
                    assert_eq!(resp.body().len(), 2048);
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(
        outcomes.load(Ordering::Relaxed),
        3_000,
        "every caller got exactly one outcome"
    );
    let seen = server.stats();
    assert!(
        seen.goaways >= 5,
        "the server sent GOAWAY {} times",
        seen.goaways
    );
    let stats = client.stats();
    assert_eq!(stats.errors, 0, "{stats:?}");
    assert!(
        stats.retries > 0,
        "some requests were unprocessed and retried: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_streams_are_retried_once() {
    let server = server_with(H2Options {
        refuse_every: Some(5),
        ..H2Options::default()
    })
    .await;
    let client = Client::builder().set("protocol", "http2").build().unwrap();
    // Every 5th stream of a connection is refused; each refused request is retried once, on
    // another connection.
    for _ in 0..20 {
        let resp = client.get(&server.h2c_url("/health")).await.unwrap();
        assert_eq!(resp.text(), "ok");
    }
    assert_eq!(server.stats().refused_streams, 4);
    assert_eq!(client.stats().retries, 4, "{:?}", client.stats());
    assert_eq!(
        server.stats().h2_connections,
        2,
        "retries went to a second connection"
    );
    // A streamed body cannot be replayed: a refusal surfaces as a transient error.
    let mut failures = 0;
    for _ in 0..6 {
        let body = Body::from_stream(stream::iter(vec![Ok::<_, std::io::Error>(
            Bytes::from_static(b"hi"),
        )]));
        match client
            .request(
                Request::post(&server.h2c_url("/echo"))
                    .body(body)
                    .build()
                    .unwrap(),
            )
            .await
        {
            Ok(r) => assert_eq!(r.text(), "hi"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::RefusedStream, "{e}");
                assert_eq!(e.class(), ErrorClass::Transient);
                failures += 1;
            }
        }
    }
    assert!(failures >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_stalls_the_server_and_memory_stays_within_the_window() {
    const WINDOW: u32 = 256 * 1024;
    const TOTAL: usize = 256 << 20;
    let server = server_with(H2Options::default()).await;
    let client = Client::builder()
        .set("protocol", "http2")
        .set("stream_window", WINDOW)
        .set("connection_window", 4 * WINDOW)
        .build()
        .unwrap();
    let mut resp = client
        .stream(
            Request::get(&server.h2c_url(&format!("/bytes/{TOTAL}?chunk_size=16384")))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut consumed = 0usize;
    let mut max_chunk = 0usize;
    for pause in 0..4 {
        // Take a little, then stop reading for a while.
        let target = consumed + (1 << 20);
        while consumed < target {
            let chunk = resp.chunk().await.unwrap().unwrap();
            max_chunk = max_chunk.max(chunk.len());
            consumed += chunk.len();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent_before = server.stats().bytes_sent;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent_after = server.stats().bytes_sent;
        assert_eq!(
            sent_before, sent_after,
            "pause {pause}: the server's writes stalled"
        );
        let buffered = client.stats().buffered_bytes as usize;
        assert!(
            buffered <= WINDOW as usize + max_chunk,
            "pause {pause}: quiver holds {buffered} bytes for the stream (window {WINDOW}, chunk {max_chunk})"
        );
        assert!(
            sent_after as usize - consumed <= WINDOW as usize + max_chunk,
            "pause {pause}: the server got ahead of the consumer by {} bytes",
            sent_after as usize - consumed
        );
    }
    // Then read the rest quickly: all of it arrives.
    while let Some(chunk) = resp.chunk().await.unwrap() {
        consumed += chunk.len();
    }
    assert_eq!(consumed, TOTAL);
    assert_eq!(client.stats().buffered_bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_never_runs_ahead_of_the_window() {
    const SERVER_WINDOW: u32 = 256 * 1024;
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 64 << 20;
    let server = Arc::new(
        server_with(H2Options {
            stream_window: SERVER_WINDOW,
            connection_window: SERVER_WINDOW,
            ..H2Options::default()
        })
        .await,
    );
    let client = Client::builder()
        .set("protocol", "http2")
        .set("request_timeout", Duration::from_secs(120))
        .build()
        .unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let worst = Arc::new(AtomicU64::new(0));
    let chunks = {
        let (server, produced, worst) = (server.clone(), produced.clone(), worst.clone());
        stream::iter(0..TOTAL / CHUNK).map(move |i| {
            // Each pull happens only when quiver has room to send: compare with what the
            // server has actually read.
            let ahead = produced
                .load(Ordering::Relaxed)
                .saturating_sub(server.stats().bytes_received);
            worst.fetch_max(ahead, Ordering::Relaxed);
            produced.fetch_add(CHUNK as u64, Ordering::Relaxed);
            Ok::<_, std::io::Error>(Bytes::from(vec![(i % 251) as u8; CHUNK]))
        })
    };
    use futures_util::StreamExt as _;
    let resp = client
        .request(
            Request::put(&server.h2c_url("/slow-sink?chunk=1048576&delay_ms=3"))
                .body(Body::from_stream(chunks))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["received"], TOTAL as u64);
    let worst = worst.load(Ordering::Relaxed) as usize;
    assert!(
        worst <= SERVER_WINDOW as usize + 2 * CHUNK,
        "the body was pulled {worst} bytes ahead of what the server read (window {SERVER_WINDOW}, chunk {CHUNK})"
    );

    // An 8 MiB streamed upload to /echo arrives intact.
    let data = Bytes::from(pattern(8 << 20));
    let pieces: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let resp = client
        .request(
            Request::post(&server.h2c_url("/echo"))
                .body(Body::from_stream(stream::iter(pieces)))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.body(), &data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_list_beyond_the_peer_limit_is_refused_before_sending() {
    let server = server_with(H2Options {
        max_header_list_size: Some(1024),
        ..H2Options::default()
    })
    .await;
    let client = Client::builder().set("protocol", "http2").build().unwrap();
    assert_eq!(
        client
            .get(&server.h2c_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    let before = server.stats().requests;
    let err = client
        .request(
            Request::get(&server.h2c_url("/health"))
                .header("x-big", "v".repeat(2000))
                .build()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HeaderListTooLarge, "{err}");
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert_eq!(server.stats().requests, before, "nothing was sent");
    assert_eq!(
        client
            .get(&server.h2c_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_peer_is_detected_by_ping() {
    let server = server_with(H2Options::default()).await;
    let client = Client::builder()
        .set("protocol", "http2")
        .set("ping_interval", Duration::from_millis(200))
        .set("ping_timeout", Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(&server.h2c_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    let started = Instant::now();
    let err = client
        .get(&server.h2c_url("/freeze/4000"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PingTimeout, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "detected before the freeze ended"
    );
    // The pool recovers with a new connection.
    assert_eq!(
        client
            .get(&server.h2c_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_dropped_streams_free_their_slot() {
    let server = server_with(H2Options {
        max_concurrent_streams: 1,
        ..H2Options::default()
    })
    .await;
    let client = Client::builder()
        .set("protocol", "http2")
        .set("max_connections", 1)
        .set("checkout_timeout", Duration::from_secs(5))
        .set("idle_timeout", Duration::from_millis(300))
        .build()
        .unwrap();
    // With one slot, a dropped unfinished stream must give its slot back.
    let mut resp = client
        .stream(
            Request::get(&server.h2c_url("/bytes/10000000"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    resp.chunk().await.unwrap();
    drop(resp);
    for _ in 0..5 {
        assert_eq!(
            client
                .get(&server.h2c_url("/health"))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(server.stats().h2_connections, 1);
    // Idle: the connection closes.
    let mut stats = client.stats();
    for _ in 0..100 {
        if stats.connections == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = client.stats();
    }
    assert_eq!(stats.connections, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_required_but_refused_by_alpn_is_a_clear_error() {
    let server = server_with(H2Options::default()).await;
    // The mTLS listener speaks HTTP/1.1 only.
    let client = h2_client(&server)
        .set("protocol", "http2")
        .set("client_cert", server.client_cert().to_str().unwrap())
        .set("client_key", server.client_key().to_str().unwrap())
        .build()
        .unwrap();
    let err = client.get(&server.mtls_url("/health")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unrecoverable, "{err}");
    assert!(
        err.message().contains("ALPN") && err.message().contains("h2"),
        "{err}"
    );
}

#[test]
fn window_options_are_validated() {
    for (name, value) in [
        ("stream_window", 10i64),
        ("connection_window", 1000),
        ("max_connections", 0),
    ] {
        let err = Client::builder().set(name, value).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{name}");
        assert!(err.message().contains(name), "{err}");
    }
    let err = Client::builder()
        .set("window_update_threshold", 1.5)
        .build()
        .unwrap_err();
    assert!(err.message().contains("window_update_threshold"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_sharing_a_small_connection_window_all_finish() {
    // Regression: credit held back per stream (below the update threshold) once summed to the
    // whole connection window and stalled every stream on the connection.
    let server = server_with(H2Options::default()).await;
    let client = Client::builder()
        .set("protocol", "http2")
        .set("max_connections", 1)
        .set("stream_window", 1 << 20)
        .set("connection_window", 1 << 20)
        .set("window_update_threshold", 1.0)
        .set("read_timeout", Duration::from_secs(10))
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let client = client.clone();
            let url = server.h2c_url("/bytes/102400");
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().body().len(), 102_400);
    }
    assert_eq!(server.stats().h2_connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_request_stops_pulling_its_upload() {
    let server = server_with(H2Options {
        stream_window: 64 * 1024,
        connection_window: 64 * 1024,
        ..H2Options::default()
    })
    .await;
    let client = Client::builder().set("protocol", "http2").build().unwrap();
    let pulled = Arc::new(AtomicU64::new(0));
    let endless = {
        let pulled = pulled.clone();
        futures_util::stream::repeat_with(move || {
            pulled.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 16 * 1024]))
        })
    };
    let req = Request::put(&server.h2c_url("/slow-sink?chunk=16384&delay_ms=5"))
        .body(Body::from_stream(endless))
        .build()
        .unwrap();
    let res = tokio::time::timeout(Duration::from_millis(400), client.request(req)).await;
    assert!(
        res.is_err(),
        "the endless upload is still running when dropped"
    );
    let while_running = pulled.load(Ordering::Relaxed);
    assert!(
        while_running > 10,
        "the upload was flowing ({while_running} chunks pulled)"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_drop = pulled.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        pulled.load(Ordering::Relaxed),
        after_drop,
        "no chunk is pulled after the request was dropped"
    );
    // The connection stays usable.
    assert_eq!(
        client.get(&server.h2c_url("/health")).await.unwrap().text(),
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_first_requests_share_one_auto_decision_and_close_works() {
    let server = server_with(H2Options::default()).await;
    let client = h2_client(&server).build().unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (client, url) = (client.clone(), server.https_url("/health"));
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().text(), "ok");
    }
    let stats = client.stats();
    assert_eq!(stats.origins.len(), 1);
    assert_eq!(
        stats.requests, 200,
        "every request counted on the one decided pool: {stats:?}"
    );
    // 200 callers, 100 streams per connection: the decided connection and one more.
    assert!(server.stats().h2_connections <= 2, "{:?}", server.stats());

    // close(): connections go away, later requests fail with `shutdown`.
    client.close();
    let err = client.get(&server.https_url("/health")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Shutdown);
    for _ in 0..100 {
        if server.stats().open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.stats().open,
        0,
        "the server sees the connection closed"
    );
}

#[test]
fn option_kinds_are_exposed_for_bindings() {
    use quiver_core::{OptionKind, PoolSettings};
    assert_eq!(
        PoolSettings::kind("checkout_timeout"),
        Some(OptionKind::Duration)
    );
    assert_eq!(
        PoolSettings::kind("request_timeout"),
        Some(OptionKind::OptionalDuration)
    );
    assert_eq!(PoolSettings::kind("size"), Some(OptionKind::Int));
    assert_eq!(PoolSettings::kind("protocol"), Some(OptionKind::Choice));
    assert_eq!(PoolSettings::kind("nope"), None);
    assert!(PoolSettings::NAMES
        .iter()
        .all(|n| PoolSettings::kind(n).is_some()));
}
