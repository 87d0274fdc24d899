//! HTTP/3 end to end against the test server's QUIC side: pooling and the asynchronous
//! handshake, GOAWAY, 0-RTT, datagram channels, flow control.
#![cfg(feature = "http3")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quiver_core::{
    Bytes, Client, DatagramOptions, ErrorClass, ErrorKind, Protocol, Request, Version,
};
use quiver_testserver::{pattern, H3Options, Options, TestServer};

async fn server_with(h3: H3Options) -> TestServer {
    TestServer::start(Options {
        h3,
        ..Options::default()
    })
    .await
    .expect("test server starts")
}

fn h3_client(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder()
        .set("protocol", "http3")
        .set("ca_file", server.ca_file().to_str().unwrap())
        .set("checkout_timeout", Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_bodies_trailers_over_http3() {
    let server = server_with(H3Options::default()).await;
    let client = h3_client(&server).build().unwrap();
    let resp = client.get(&server.h3_url("/bytes/100000")).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_3);
    assert_eq!(&resp.body()[..], &pattern(100_000)[..]);
    for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let resp = client
            .request(
                Request::builder(method, &server.h3_url("/headers"))
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(json["method"], method);
        assert_eq!(json["version"], "HTTP/3.0");
    }
    let body = Bytes::from(pattern(2_000_000));
    let echo = client
        .request(
            Request::post(&server.h3_url("/echo"))
                .body(body.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(echo.body(), &body);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..40).map(|_| Ok(Bytes::from(pattern(50_000)))).collect();
    let echo = client
        .request(
            Request::put(&server.h3_url("/echo"))
                .body(quiver_core::Body::from_stream(futures_util::stream::iter(
                    chunks,
                )))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(echo.body().len(), 2_000_000);
    let resp = client.get(&server.h3_url("/trailers")).await.unwrap();
    assert_eq!(resp.text(), "hello trailers");
    assert_eq!(resp.trailers().unwrap()["x-trailer-one"], "1");
    let mut stream = client
        .stream(
            Request::get(&server.h3_url("/bytes/3000000"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut n = 0;
    while let Some(c) = stream.chunk().await.unwrap() {
        n += c.len();
    }
    assert_eq!(n, 3_000_000);
    assert_eq!(client.stats().origins[0].protocol, Protocol::Http3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_requests_from_128_callers() {
    let server = server_with(H3Options::default()).await;
    let client = h3_client(&server)
        .set("max_connections", 2)
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let expected = Bytes::from(pattern(1024));
    let callers: Vec<_> = (0..128)
        .map(|_| {
            let (client, next, expected, url) = (
                client.clone(),
                next.clone(),
                expected.clone(),
                server.h3_url("/bytes/1024"),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < 5_000 {
                    let resp = client.get(&url).await.expect("request succeeds");
                    assert_eq!(resp.body(), &expected);
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    let seen = server.stats();
    assert!(
        seen.h3_connections <= 2,
        "server saw {} QUIC connections",
        seen.h3_connections
    );
    assert!(seen.h3_max_streams_per_conn <= 100);
    let stats = client.stats();
    assert_eq!((stats.requests, stats.errors), (5_000, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_the_handshake_share_one_connection() {
    let server = server_with(H3Options::default()).await;
    let client = h3_client(&server).build().unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), server.h3_url("/health"));
            tokio::spawn(async move { client.get(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().text(), "ok");
    }
    assert_eq!(server.stats().h3_connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_mid_load_loses_nothing() {
    let server = server_with(H3Options {
        goaway_after: Some(400),
        ..H3Options::default()
    })
    .await;
    let client = h3_client(&server)
        .set("max_connections", 2)
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..64)
        .map(|_| {
            let (client, next, outcomes, url) = (
                client.clone(),
                next.clone(),
                outcomes.clone(),
                server.h3_url("/bytes/512"),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < 2_000 {
                    let resp = client.get(&url).await;
                    outcomes.fetch_add(1, Ordering::Relaxed);
                    assert_eq!(
                        resp.expect("unprocessed requests are retried").body().len(),
                        512
                    );
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(outcomes.load(Ordering::Relaxed), 2_000);
    assert!(server.stats().goaways >= 2);
    assert_eq!(client.stats().errors, 0);
}

/// Waits until the client's pool for `origin` has no connection (idle timeout).
async fn wait_idle_closed(client: &Client) {
    for _ in 0..200 {
        if client.stats().connections == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("connections did not close: {:?}", client.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_rtt_sends_idempotent_requests_early_and_replays_rejections() {
    // 40 ms of simulated latency: on bare loopback the handshake completes before a request
    // can be handed from one task to another, so nothing would ever be early.
    let server = server_with(H3Options {
        latency: Duration::from_millis(40),
        ..H3Options::default()
    })
    .await;

    let client = h3_client(&server)
        .set("early_data", true)
        .set("idle_timeout", Duration::from_millis(300))
        .build()
        .unwrap();
    // First connection: full handshake, a session ticket arrives.
    let first: serde_json::Value =
        serde_json::from_slice(client.get(&server.h3_url("/early")).await.unwrap().body()).unwrap();
    assert_eq!(first["early"], false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_idle_closed(&client).await;
    // Second connection resumes: the GET goes in the 0-RTT flight (asserted by the server).
    let second: serde_json::Value =
        serde_json::from_slice(client.get(&server.h3_url("/early")).await.unwrap().body()).unwrap();
    assert_eq!(
        second["early"], true,
        "the resumed connection sent the GET as early data"
    );
    assert!(server.stats().h3_early_requests >= 1);
    assert!(server.stats().h3_zero_rtt_accepted >= 1);

    // A POST (not idempotent) waits for the handshake even on a resumed connection.
    wait_idle_closed(&client).await;
    let post: serde_json::Value = serde_json::from_slice(
        client
            .request(
                Request::post(&server.h3_url("/early"))
                    .body("x")
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap()
            .body(),
    )
    .unwrap();
    assert_eq!(post["early"], false);

    // 425 Too Early: replayed after the handshake, transparently.
    wait_idle_closed(&client).await;
    let resp = client.get(&server.h3_url("/too-early")).await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the 425 was replayed after the handshake"
    );

    // A server that resumes but rejects early data: the early flight is replayed at 1-RTT.
    let resp = client
        .get(&server.h3_reject_early_url("/early"))
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["early"], false);
    assert_eq!(client.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagram_channel_echoes_intact_datagrams() {
    let server = server_with(H3Options::default()).await;
    let client = h3_client(&server).build().unwrap();
    let channel = client
        .open_datagram_channel(
            &server.h3_url("/datagram-echo"),
            Vec::<(String, String)>::new(),
            DatagramOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(channel.head().status, 200);
    assert_eq!(channel.recv_data().await.unwrap().unwrap(), "echo ready");
    let max = channel.max_datagram_size().expect("datagrams available");
    assert!(max > 100);

    // 10,000 datagrams, sent in bursts; each carries its number and a pattern to check.
    let make = |i: u32| {
        let mut d = i.to_be_bytes().to_vec();
        d.extend((0..60).map(|k| (i as u8).wrapping_add(k)));
        Bytes::from(d)
    };
    let mut received = 0u32;
    for burst in 0..100u32 {
        for i in burst * 100..(burst + 1) * 100 {
            channel.send(make(i)).unwrap();
        }
        // Take what comes back for this burst (loss is allowed).
        while let Ok(Ok(Some(d))) =
            tokio::time::timeout(Duration::from_millis(30), channel.recv()).await
        {
            let i = u32::from_be_bytes(d[..4].try_into().unwrap());
            assert_eq!(d, make(i), "datagram {i} arrived intact");
            received += 1;
        }
    }
    assert!(received > 0, "some datagrams came back");
    // Too large for the path: invalid. (Not `max + 1`: path MTU discovery may have grown
    // the limit meanwhile.)
    let err = channel.send(Bytes::from(vec![0u8; 70_000])).unwrap_err();

    assert_eq!(err.kind(), ErrorKind::DatagramTooLarge);
    assert_eq!(err.class(), ErrorClass::Invalid);
    // The channel survives and still echoes.
    channel.send(make(424_242)).unwrap();
    let mut got_one = false;
    for _ in 0..20 {
        if let Ok(Ok(Some(d))) =
            tokio::time::timeout(Duration::from_millis(100), channel.recv()).await
        {
            assert_eq!(d, make(u32::from_be_bytes(d[..4].try_into().unwrap())));
            got_one = true;
            break;
        }
        channel.send(make(424_242)).unwrap();
    }
    assert!(got_one);
    // Close our side: the server ends the stream with trailers; the channel ends.
    channel.close().await.unwrap();
    let err = channel.send(make(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DatagramError, "send after close");
    while channel.recv().await.unwrap().is_some() {}
    assert!(channel.is_ended());
    assert!(channel
        .trailers()
        .unwrap()
        .contains_key("x-datagrams-echoed"));
    assert!(server.stats().datagrams_received >= u64::from(received));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagram_channels_need_http3_and_peer_support() {
    let server = server_with(H3Options {
        datagrams: false,
        ..H3Options::default()
    })
    .await;
    let client = h3_client(&server).build().unwrap();
    let err = client
        .open_datagram_channel(
            &server.h3_url("/datagram-echo"),
            Vec::<(String, String)>::new(),
            DatagramOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DatagramsDisabled, "{err}");
    let h1 = Client::builder().build().unwrap();
    let err = h1
        .open_datagram_channel(
            &server.http_url("/datagram-echo"),
            Vec::<(String, String)>::new(),
            DatagramOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolUnsupportedForTransport, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_of_a_big_http3_body_stays_within_the_window() {
    const WINDOW: u32 = 512 * 1024;
    const TOTAL: usize = 256 << 20;
    let server = server_with(H3Options::default()).await;
    let client = h3_client(&server)
        .set("stream_window", WINDOW)
        .set("connection_window", 2 * WINDOW)
        .build()
        .unwrap();
    let mut resp = client
        .stream(
            Request::get(&server.h3_url(&format!("/bytes/{TOTAL}")))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut consumed = 0usize;
    let mut max_chunk = 0usize;
    for pause in 0..3 {
        let target = consumed + (2 << 20);
        while consumed < target {
            let c = resp.chunk().await.unwrap().unwrap();
            max_chunk = max_chunk.max(c.len());
            consumed += c.len();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = server.stats().bytes_sent;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = server.stats().bytes_sent;
        assert_eq!(before, after, "pause {pause}: the server's writes stalled");
        let ahead = after as usize - consumed;
        // quinn may hand h3 a reassembled (defragmented) chunk of up to a window, which frees
        // QUIC credit while h3 still holds it, and h3 may hold the tail of the chunk before it
        // while it reads the next frame's header: with the window in flight that is under three
        // windows plus the pieces, where a consumer that does not pace the peer is hundreds of MiB
        // ahead. (2W + max_chunk + 64 KiB was seen exceeded by 16 KiB on a loaded 2-core runner.)
        assert!(
            ahead <= 3 * WINDOW as usize + max_chunk + 64 * 1024,
            "pause {pause}: {ahead} bytes in flight or buffered beyond what was consumed (window {WINDOW})"
        );
    }
    while let Some(c) = resp.chunk().await.unwrap() {
        consumed += c.len();
    }
    assert_eq!(consumed, TOTAL);
}

#[test]
fn http3_options_are_validated() {
    let err = Client::builder()
        .set("early_data", true)
        .build()
        .unwrap_err();
    assert!(err.message().contains("early_data"), "{err}");
    let err = Client::builder()
        .set_for("http://example.com", "protocol", "http3")
        .build()
        .unwrap_err();
    assert!(err.message().contains("http3"), "{err}");
}
