//! Automatic HTTP/3: `auto` clients learn HTTP/3 alternatives from `alt-svc`, move to them,
//! race QUIC against TCP, and fall back to TCP (marking the alternative broken) when UDP is
//! black-holed; all against the test server on loopback.
#![cfg(feature = "http3")]

use std::time::{Duration, Instant};

use quiver_core::{Client, OriginStats, Protocol, Version};
use quiver_testserver::{Options, TestServer};

async fn server() -> TestServer {
    TestServer::start(Options::default()).await.unwrap()
}

fn builder(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder().set("ca_file", server.ca_file().to_str().unwrap())
}

fn origin_stats(client: &Client, port: u16) -> OriginStats {
    client
        .stats()
        .origin(&format!("https://localhost:{port}"))
        .cloned()
        .expect("the origin has a pool")
}

async fn version_of(client: &Client, url: &str) -> Version {
    let response = client.get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "ok");
    response.version()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_moves_to_http3_after_the_first_response() {
    let server = server().await;
    // A long head start: QUIC wins the race even on a loaded machine.
    let client = builder(&server)
        .set("happy_eyeballs_delay", Duration::from_secs(3))
        .build()
        .unwrap();
    let url = server.https_alt_url("/");
    // Request 1 goes over TCP (ALPN picks h2) and learns the alternative.
    assert_eq!(version_of(&client, &url).await, Version::HTTP_2);
    let stats = origin_stats(&client, server.https_alt_port());
    assert_eq!(
        stats
            .alt_svc
            .as_deref()
            .map(|v| v.split(';').next().unwrap()),
        Some(format!("h3=\":{}\"", server.h3_port()).as_str())
    );
    // Request 2 onwards: HTTP/3, concurrent ones too, on one QUIC connection.
    assert_eq!(version_of(&client, &url).await, Version::HTTP_3);
    let mut many = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (client, url) = (client.clone(), url.clone());
        many.spawn(async move { version_of(&client, &url).await });
    }
    while let Some(v) = many.join_next().await {
        assert_eq!(v.unwrap(), Version::HTTP_3);
    }
    let stats = origin_stats(&client, server.https_alt_port());
    assert_eq!(stats.protocol, Protocol::Http3);
    assert_eq!((stats.fallbacks, stats.alt_svc_broken), (0, false));
    assert_eq!(stats.requests, 22);
    assert_eq!(stats.errors, 0);
    // An upload over the alternative carries its body.
    let response = client
        .request(
            quiver_core::Request::post(&server.https_alt_url("/echo"))
                .body(vec![7u8; 100_000])
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_3);
    assert_eq!(response.body().len(), 100_000);

    // `alt_svc` off: the same origin stays on TCP.
    let tcp_only = builder(&server).set("alt_svc", false).build().unwrap();
    for _ in 0..3 {
        assert_eq!(version_of(&tcp_only, &url).await, Version::HTTP_2);
    }
    let stats = origin_stats(&tcp_only, server.https_alt_port());
    assert_eq!((stats.protocol, stats.alt_svc), (Protocol::Http2, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_udp_port_falls_back_to_tcp_and_marks_the_alternative_broken() {
    let server = server().await;
    let connect_timeout = Duration::from_secs(3);
    let client = builder(&server)
        .set("connect_timeout", connect_timeout)
        .set("happy_eyeballs_delay", Duration::from_millis(100))
        .build()
        .unwrap();
    let url = server.https_alt_blocked_url("/");
    let port = server.https_alt_blocked_port();
    assert_eq!(version_of(&client, &url).await, Version::HTTP_2);
    // QUIC goes to the black hole; TCP, started after the head start, carries the request
    // long before the QUIC attempt could time out.
    let started = Instant::now();
    assert_eq!(version_of(&client, &url).await, Version::HTTP_2);
    let took = started.elapsed();
    assert!(
        took < connect_timeout - Duration::from_millis(500),
        "{took:?}"
    );
    // While that QUIC attempt is still out, requests do not wait for it.
    assert_eq!(version_of(&client, &url).await, Version::HTTP_2);
    let stats = origin_stats(&client, port);
    assert_eq!(stats.fallbacks, 2);
    assert!(stats.alt_svc.is_some());
    // The QUIC attempt times out and marks the alternative broken.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !origin_stats(&client, port).alt_svc_broken {
        assert!(Instant::now() < deadline, "never marked broken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.stats().udp_blackholed > 0);
    // Broken: straight to TCP, no more QUIC attempts counted as fallbacks.
    for _ in 0..5 {
        assert_eq!(version_of(&client, &url).await, Version::HTTP_2);
    }
    let stats = origin_stats(&client, port);
    assert_eq!(stats.fallbacks, 2);
    assert_eq!(stats.protocol, Protocol::Http2);
    assert_eq!(stats.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alt_svc_headers_as_servers_send_them() {
    let server = server().await;
    let port = server.https_port();
    let h3 = server.h3_port();
    let client = builder(&server)
        .set("happy_eyeballs_delay", Duration::from_secs(3))
        .build()
        .unwrap();
    let alt_svc = |values: &[String]| {
        let query: Vec<String> = values
            .iter()
            .map(|v| format!("v={}", urlencode(v)))
            .collect();
        server.https_url(&format!("/alt-svc?{}", query.join("&")))
    };
    let plain = server.https_url("/");
    assert_eq!(version_of(&client, &plain).await, Version::HTTP_2);
    // Several headers, drafts and other protocols among them (as Caddy and Hypercorn send).
    let advertise = alt_svc(&[
        format!("h3-29=\":{h3}\"; ma=60, h2=\":{port}\""),
        format!("h3=\":{h3}\"; ma=60; persist=1"),
    ]);
    version_of(&client, &advertise).await;
    let shown = origin_stats(&client, port).alt_svc.unwrap();
    assert!(
        shown.starts_with(&format!("h3=\":{h3}\"; ma=")) && shown.ends_with("; persist=1"),
        "{shown}"
    );
    assert_eq!(version_of(&client, &plain).await, Version::HTTP_3);
    // A response without `alt-svc` changes nothing; `clear` (here over HTTP/3) forgets.
    version_of(&client, &alt_svc(&["clear".to_string()])).await;
    assert_eq!(origin_stats(&client, port).alt_svc, None);
    assert_eq!(version_of(&client, &plain).await, Version::HTTP_2);
    // A malformed value leaves the cache alone; `ma=0` expires at once.
    version_of(&client, &alt_svc(&[format!("h3=:{h3}")])).await;
    version_of(&client, &alt_svc(&[format!("h3=\":{h3}\"; ma=0")])).await;
    assert_eq!(origin_stats(&client, port).alt_svc, None);
    assert_eq!(version_of(&client, &plain).await, Version::HTTP_2);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(feature = "https-rr")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_record_puts_the_first_request_on_http3() {
    let server = server().await;
    let nameserver = format!("127.0.0.1:{}", server.dns_port());
    // `quiver.test` (in the server's certificate) is what the DNS listener has records for;
    // TCP reaches it through a `resolve` override, QUIC through the record's address hint.
    let (https, blocked_port) = (server.https_port(), server.https_alt_blocked_port());
    let records = |delay: Duration| {
        builder(&server)
            .set("https_rr", true)
            .set("https_rr_nameserver", nameserver.as_str())
            .set(
                "resolve",
                format!("quiver.test:{https}:127.0.0.1 quiver.test:{blocked_port}:127.0.0.1"),
            )
            .set("happy_eyeballs_delay", delay)
            .build()
            .unwrap()
    };
    let client = records(Duration::from_secs(3));
    let url = format!("https://quiver.test:{https}/");
    let first = version_of(&client, &url).await;
    assert_eq!(first, Version::HTTP_3, "{:?}", client.stats());
    assert_eq!(version_of(&client, &url).await, Version::HTTP_3);
    let stats = client.stats();
    let stats = stats
        .origin(&format!("https://quiver.test:{https}"))
        .unwrap();
    assert_eq!(stats.protocol, Protocol::Http3);
    let shown = stats.alt_svc.clone().unwrap();
    assert!(
        shown.starts_with(&format!("h3=\":{}\"", server.h3_port())),
        "{shown}"
    );
    assert_eq!(server.stats().dns_queries, 1, "one lookup per origin");
    // A record naming a black-holed UDP port: the first request falls back to TCP.
    let blocked = records(Duration::from_millis(100));
    let url = format!("https://quiver.test:{blocked_port}/");
    assert_eq!(version_of(&blocked, &url).await, Version::HTTP_2);
    let stats = blocked.stats();
    let stats = stats
        .origin(&format!("https://quiver.test:{blocked_port}"))
        .unwrap();
    assert_eq!(stats.fallbacks, 1);
    // Off (the default): no lookup, the first request over TCP.
    let plain = builder(&server)
        .set("resolve", format!("quiver.test:{https}:127.0.0.1"))
        .build()
        .unwrap();
    assert_eq!(
        version_of(&plain, &format!("https://quiver.test:{https}/")).await,
        Version::HTTP_2
    );
    assert_eq!(server.stats().dns_queries, 2);
    // A malformed nameserver is refused when the client is built.
    let err = Client::builder()
        .set("https_rr_nameserver", "localhost")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), quiver_core::ErrorKind::InvalidConfig);
}
