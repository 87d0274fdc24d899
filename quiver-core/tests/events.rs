//! Request and connection events and per-response timings against the test server: a fresh
//! connection and a reused one over HTTP/1.1, TLS and HTTP/2 streams, HTTP/3, a request the
//! server refused (retried), a redirect, failures; timings in order and plausible.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_core::{Client, ErrorKind, Event, EventKind, Request};
use quiver_testserver::{H2Options, Options, TestServer};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Recorder {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.name()).collect()
}

fn client(server: &TestServer, protocol: &str) -> (Client, Recorder) {
    let rec = Recorder::default();
    let sink = rec.0.clone();
    let client = Client::builder()
        .set("proxy_from_env", false)
        .set("protocol", protocol)
        .set("ca_file", server.ca_file().to_str().unwrap())
        .listener(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    (client, rec)
}

/// The events of one request (by id) and of its connection, in order.
fn of_request(events: &[Event], id: u64) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.request == Some(id))
        .map(|e| e.kind.name())
        .collect()
}

/// A request's events on a new connection, in order.
const FRESH: [&str; 7] = [
    "request_start",
    "queued",
    "connection_acquired",
    "headers_sent",
    "body_sent",
    "response_headers",
    "response_end",
];

/// The same on a reused connection: no wait for one.
const REUSED: [&str; 6] = [
    "request_start",
    "connection_acquired",
    "headers_sent",
    "body_sent",
    "response_headers",
    "response_end",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_then_a_reused_connection_over_http1() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let (client, rec) = client(&server, "auto");
    let resp = client
        .request(
            Request::post(&server.http_url("/echo"))
                .body("hello")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.text(), "hello");
    let events = rec.take();
    let id = events[0]
        .request
        .expect("request_start carries the request id");
    assert_eq!(of_request(&events, id), FRESH, "{events:#?}");
    let conn = events
        .iter()
        .find(|e| e.kind.name() == "connection_opened")
        .expect("connection_opened");
    let conn_id = conn.connection.unwrap();
    let connection: Vec<_> = events
        .iter()
        .filter(|e| e.request.is_none() && e.connection == Some(conn_id))
        .map(|e| e.kind.name())
        .collect();
    assert_eq!(
        connection,
        ["dns_resolved", "connected", "connection_opened"]
    );
    for e in events.iter().filter(|e| e.request == Some(id)).skip(2) {
        assert_eq!(e.connection, Some(conn_id), "{e:?}");
    }
    let mine: Vec<_> = events.iter().filter(|e| e.request == Some(id)).collect();
    assert!(mine.windows(2).all(|w| w[0].at <= w[1].at), "out of order");
    let acquired = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ConnectionAcquired { .. }))
        .unwrap();
    assert!(matches!(
        acquired.kind,
        EventKind::ConnectionAcquired { reused: false }
    ));
    let sent = events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::BodySent { bytes } => Some(bytes),
            _ => None,
        })
        .unwrap();
    assert_eq!(sent, 5);
    let t = resp.timings();
    assert!(!t.reused && t.dns.is_some() && t.connect.is_some() && t.tls.is_none());
    assert_eq!(t.connection.id, conn_id);
    assert!(t.ttfb >= t.queued, "{t:?}");
    let total = t.total().expect("the body was read");
    assert!(total >= t.ttfb, "{t:?}");
    assert!(t.ttfb < Duration::from_secs(10));

    // The same connection again: no dial, reused.
    let resp = client.get(&server.http_url("/bytes/100")).await.unwrap();
    let events = rec.take();
    let id = events[0].request.unwrap();
    assert_eq!(of_request(&events, id), REUSED);
    assert!(events
        .iter()
        .any(|e| matches!(e.kind, EventKind::ConnectionAcquired { reused: true })));
    let t = resp.timings();
    assert!(t.reused && t.dns.is_none() && t.connect.is_none());
    assert_eq!(t.connection.id, conn_id);
    // Closing the client closes the connection.
    client.close();
    for _ in 0..100 {
        if rec
            .take()
            .iter()
            .any(|e| e.kind.name() == "connection_closed" && e.connection == Some(conn_id))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no connection_closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_http2_streams() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let (client, rec) = client(&server, "auto");
    let resp = client.get(&server.https_url("/bytes/10")).await.unwrap();
    let events = rec.take();
    let tls = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::TlsDone { alpn, resumed } => Some((alpn.clone(), *resumed)),
            _ => None,
        })
        .expect("tls_done");
    assert_eq!(tls, (Some("h2".to_owned()), false));
    let t = resp.timings();
    assert!(t.tls.is_some() && t.connect.is_some());
    assert_eq!(t.protocol, quiver_core::Protocol::Http2);
    assert_eq!(t.connection.alpn.as_deref(), Some("h2"));
    assert_eq!(t.stream, Some(1));
    let headers = events
        .iter()
        .find(|e| e.kind.name() == "response_headers")
        .unwrap();
    assert_eq!(headers.stream, Some(1));
    assert_eq!(headers.protocol, Some(quiver_core::Protocol::Http2));
    // A second request: the next stream on the same connection.
    let resp = client.get(&server.https_url("/bytes/10")).await.unwrap();
    assert_eq!(resp.timings().stream, Some(3));
    assert!(resp.timings().reused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_connections_and_streams() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let (client, rec) = client(&server, "http3");
    let resp = client.get(&server.h3_url("/bytes/10")).await.unwrap();
    let events = rec.take();
    let seen = names(&events);
    for want in [
        "request_start",
        "dns_resolved",
        "connected",
        "connection_opened",
        "connection_acquired",
        "headers_sent",
        "body_sent",
        "response_headers",
        "response_end",
    ] {
        assert!(seen.contains(&want), "{want} missing from {seen:?}");
    }
    let t = resp.timings();
    assert_eq!(t.protocol, quiver_core::Protocol::Http3);
    assert_eq!(t.connection.alpn.as_deref(), Some("h3"));
    assert!(t.connect.is_some() && t.stream.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_retried_and_says_why() {
    let server = TestServer::start(Options {
        h2: H2Options {
            refuse_every: Some(5),
            ..H2Options::default()
        },
        ..Options::default()
    })
    .await
    .unwrap();
    let (client, rec) = client(&server, "http2");
    for _ in 0..10 {
        client.get(&server.h2c_url("/health")).await.unwrap();
    }
    let events = rec.take();
    let retried: Vec<_> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Retried { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(!retried.is_empty(), "{:?}", names(&events));
    assert!(
        retried.iter().all(|r| *r == ErrorKind::RefusedStream),
        "{retried:?}"
    );
    assert_eq!(client.stats().retries as usize, retried.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goaway_is_seen_on_the_connection() {
    let server = TestServer::start(Options {
        h2: H2Options {
            goaway_after: Some(1),
            ..H2Options::default()
        },
        ..Options::default()
    })
    .await
    .unwrap();
    let (client, rec) = client(&server, "http2");
    // The GOAWAY arrives while a stream is still open (a slow answer), as it does in life.
    for _ in 0..3 {
        client.get(&server.h2c_url("/slow/200")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = rec.take();
    assert!(names(&events).contains(&"goaway"), "{:?}", names(&events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_failures() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let (client, rec) = client(&server, "auto");
    let resp = client.get(&server.http_url("/redirect/2")).await.unwrap();
    let events = rec.take();
    let redirected: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Redirected { status, location } => Some((status.as_u16(), location.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(redirected.len(), 2);
    assert!(redirected[1].1.ends_with("/redirect/0"), "{redirected:?}");
    // One request id for the whole chain.
    let ids: std::collections::HashSet<_> = events.iter().filter_map(|e| e.request).collect();
    assert_eq!(ids.len(), 1);
    let t = resp.timings();
    assert!(
        t.redirects > Duration::ZERO && t.ttfb >= t.redirects,
        "{t:?}"
    );

    // A refused connection: connection_failed, then request_failed with the kind.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = client
        .get(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectRefused);
    let events = rec.take();
    assert!(names(&events).contains(&"connection_failed"));
    let failed = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RequestFailed { error } => Some(error.kind()),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed, ErrorKind::ConnectRefused);

    // A body that fails after its head: request_failed instead of response_end.
    let err = client
        .get(&server.http_url("/close-mid-body/100000"))
        .await
        .unwrap_err();
    let events = rec.take();
    let last = events.iter().rev().find(|e| e.request.is_some()).unwrap();
    assert_eq!(last.kind.name(), "request_failed", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_listener_changes_nothing() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let client = Client::builder()
        .set("proxy_from_env", false)
        .listener(|_: &Event| panic!("listener bug"))
        .build()
        .unwrap();
    let resp = client.get(&server.http_url("/bytes/10")).await.unwrap();
    assert_eq!(resp.body().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_of_uploads_and_downloads() {
    use quiver_core::{Body, Bytes, Progress};
    let server = TestServer::start(Options::default()).await.unwrap();
    for (protocol, base) in [
        ("http1", server.http_url("")),
        ("http2", server.h2c_url("")),
        ("http3", server.h3_url("")),
    ] {
        let base = base.trim_end_matches('/').to_owned();
        let client = Client::builder()
            .set("proxy_from_env", false)
            .set("protocol", protocol)
            .set("ca_file", server.ca_file().to_str().unwrap())
            .build()
            .unwrap();
        // Download: what the caller took so far, and the announced total.
        let progress = Arc::new(Progress::new());
        let req = Request::get(&format!("{base}/bytes/1000000"))
            .progress(progress.clone())
            .build()
            .unwrap();
        let mut resp = client.stream(req).await.unwrap();
        assert_eq!(progress.download_total(), Some(1_000_000), "{protocol}");
        let mut taken = 0;
        for _ in 0..2 {
            taken += resp.chunk().await.unwrap().unwrap().len() as u64;
        }
        assert_eq!(progress.downloaded(), taken, "{protocol}");
        while let Some(c) = resp.chunk().await.unwrap() {
            taken += c.len() as u64;
        }
        assert_eq!(progress.downloaded(), 1_000_000, "{protocol}");
        assert_eq!(taken, 1_000_000);
        // Upload: a stream of chunks with a declared length, then bytes in memory.
        let progress = Arc::new(Progress::new());
        let chunks = futures_util::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 100_000]))),
        );
        let req = Request::post(&format!("{base}/sink"))
            .header("content-length", "1000000")
            .body(Body::from_stream(chunks))
            .progress(progress.clone())
            .build()
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert!(
            resp.text().contains("1000000"),
            "{protocol}: {}",
            resp.text()
        );
        assert_eq!(progress.upload_total(), Some(1_000_000), "{protocol}");
        assert_eq!(progress.uploaded(), 1_000_000, "{protocol}");
        let progress = Arc::new(Progress::new());
        let req = Request::post(&format!("{base}/sink"))
            .body(vec![b'y'; 300_000])
            .progress(progress.clone())
            .build()
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert!(
            resp.text().contains("300000"),
            "{protocol}: {}",
            resp.text()
        );
        assert_eq!(
            (progress.uploaded(), progress.upload_total()),
            (300_000, Some(300_000)),
            "{protocol}"
        );
        // A decoded body has no known total (content-length counts compressed bytes).
        let progress = Arc::new(Progress::new());
        let req = Request::get(&format!("{base}/encoded/gzip/50000"))
            .progress(progress.clone())
            .build()
            .unwrap();
        client.request(req).await.unwrap();
        assert_eq!(progress.download_total(), None);
        assert_eq!(progress.downloaded(), 50_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_is_not_enabled_gets_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    struct Gated {
        on: AtomicBool,
        seen: AtomicUsize,
    }
    struct Gate(Arc<Gated>);
    impl quiver_core::Listener for Gate {
        fn on_event(&self, _: &Event) {
            self.0.seen.fetch_add(1, Ordering::Relaxed);
        }
        fn enabled(&self) -> bool {
            self.0.on.load(Ordering::Relaxed)
        }
    }
    let server = TestServer::start(Options::default()).await.unwrap();
    let gated = Arc::new(Gated {
        on: AtomicBool::new(false),
        seen: AtomicUsize::new(0),
    });
    let client = Client::builder()
        .set("proxy_from_env", false)
        .listener(Gate(gated.clone()))
        .build()
        .unwrap();
    client.get(&server.http_url("/health")).await.unwrap();
    assert_eq!(gated.seen.load(Ordering::Relaxed), 0);
    gated.on.store(true, Ordering::Relaxed);
    client.get(&server.http_url("/health")).await.unwrap();
    assert!(gated.seen.load(Ordering::Relaxed) >= 5);
}
