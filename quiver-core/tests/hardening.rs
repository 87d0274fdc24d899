//! Hostile servers and extreme input: bounded memory, classified errors, bounded waits, no
//! panics, nothing sent twice. Each test names the finding it covers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_core::{Body, Client, ErrorClass, ErrorKind, Request};
use quiver_testserver::hostile::{H2Mode, H3Mode, GIANT};
use quiver_testserver::{H2Options, H3Options, Options, TestServer};

async fn server() -> TestServer {
    TestServer::start(Options::default()).await.unwrap()
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn h3_client(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder()
        .set("ca_file", server.ca_file().to_str().unwrap())
        .set("protocol", "http3")
        .set("proxy_from_env", false)
}

/// Finding: HTTP/2 accepted response header lists up to h2's 16 MiB default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_header_flood_over_continuation_is_bounded() {
    let server = server().await;
    let client = Client::builder()
        .set("protocol", "http2")
        .set("proxy_from_env", false)
        .build()
        .unwrap();
    let before = rss();
    let url = server.hostile_h2_url(H2Mode::HeaderFlood, "/");
    let err = client.get(&url).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Protocol | ErrorKind::ResponseHeadersTooLarge
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Unrecoverable);
    let grown = rss().saturating_sub(before);
    assert!(grown < 24 << 20, "memory grew by {grown} bytes");
    // The same client still serves, there and elsewhere.
    let again = client.get(&url).await.unwrap_err();
    assert_eq!(again.kind(), err.kind(), "{again}");
    let ok = client.get(&server.h2c_url("/health")).await.unwrap();
    assert_eq!(ok.status(), 200);
}

/// Finding: a malformed HTTP/2 response surfaced as transient `connection_closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http2_responses_are_protocol_errors() {
    let server = server().await;
    let client = Client::builder()
        .set("protocol", "http2")
        .set("proxy_from_env", false)
        .build()
        .unwrap();
    for mode in [H2Mode::UppercaseHeader, H2Mode::OversizedFrame] {
        let err = client
            .get(&server.hostile_h2_url(mode, "/"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{mode:?}: {err}");
        assert_eq!(err.class(), ErrorClass::Unrecoverable);
    }
}

/// Finding: the response header limit, one option for every protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_limit_on_every_protocol() {
    let server = server().await;
    let ca = server.ca_file().to_str().unwrap().to_owned();
    for (protocol, base) in [
        ("http1", server.http_url("")),
        ("auto", server.https_url("")),
        ("http2", server.h2c_url("")),
        ("http3", server.h3_url("")),
    ] {
        let client = Client::builder()
            .set("ca_file", ca.as_str())
            .set("protocol", protocol)
            .set("proxy_from_env", false)
            .set("max_response_headers", 4096)
            .build()
            .unwrap();
        let base = base.trim_end_matches('/');
        let err = client
            .get(&format!("{base}/big-headers/8000"))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::ResponseHeadersTooLarge,
            "{protocol}: {err}"
        );
        let ok = client
            .get(&format!("{base}/big-headers/1000"))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{protocol}");
        assert_eq!(ok.headers()["x-big"].len(), 1000);
    }
}

/// Finding: h3 buffered a whole frame, unknown types included, before decoding: on request
/// streams and on the control stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_unknown_frames_are_discarded_as_they_stream() {
    let server = server().await;
    let client = h3_client(&server)
        .set("read_timeout", Duration::from_secs(60))
        .build()
        .unwrap();
    for mode in [
        H3Mode::RequestStreamUnknownFrame,
        H3Mode::ControlStreamUnknownFrame,
    ] {
        let before = rss();
        let resp = client
            .get(&server.hostile_h3_url(mode, "/"))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(&resp.body()[..], b"done", "{mode:?}");
        if mode == H3Mode::ControlStreamUnknownFrame {
            // Give the control stream's junk time to arrive while the connection lives.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let grown = rss().saturating_sub(before);
        assert!(
            grown < GIANT / 2,
            "{mode:?}: memory grew by {grown} bytes for a {GIANT}-byte frame"
        );
    }
}

/// Finding (chaos soak): an HTTP/3 body that ended short of its content-length was returned
/// as complete; h3 leaves the check to its user (HTTP/2 and HTTP/1.1 do it below us).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_bodies_are_held_to_their_content_length() {
    let server = server().await;
    let client = h3_client(&server).build().unwrap();
    // A short body ends in `connection_closed` ("... bytes short of its content-length"); under
    // load the stream has also reached the client as a reset (code 0) before its end (2 runs in
    // 100 with the CPUs busy): `stream_reset`. Either way it is refused, never returned whole.
    for (mode, kinds) in [
        (
            H3Mode::ShortBody,
            &[ErrorKind::ConnectionClosed, ErrorKind::StreamReset][..],
        ),
        (H3Mode::LongBody, &[ErrorKind::Protocol][..]),
    ] {
        let err = client
            .get(&server.hostile_h3_url(mode, "/"))
            .await
            .map(|r| r.body().len())
            .unwrap_err();
        assert!(kinds.contains(&err.kind()), "{mode:?}: {err}");
    }
    // A HEAD answer announces a length and has no body.
    let resp = client
        .request(
            Request::head(&server.h3_url("/bytes/1000"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.body().is_empty());
}

/// Finding: a known HTTP/3 frame longer than the limit was buffered whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_oversized_headers_frame_is_refused() {
    let server = server().await;
    let client = h3_client(&server).build().unwrap();
    let before = rss();
    let err = client
        .get(&server.hostile_h3_url(H3Mode::HugeHeadersFrame, "/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FrameTooLarge, "{err}");
    assert!(rss().saturating_sub(before) < 6 << 20);
}

/// Finding: the HTTP/3 connect task had no deadline; a server granting too few unidirectional
/// streams left the slot connecting forever, and the pool wedged behind `checkout_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_setup_that_never_completes_is_a_connect_timeout() {
    let server = server().await;
    let client = h3_client(&server)
        .set("connect_timeout", Duration::from_millis(500))
        .set("checkout_timeout", Duration::from_secs(20))
        .build()
        .unwrap();
    let url = server.hostile_h3_url(H3Mode::FewUniStreams, "/");
    for _ in 0..2 {
        let started = Instant::now();
        let err = client.get(&url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectTimeout, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}

/// Finding: QUIC keep-alive equalled the idle timeout, so it could not keep a connection open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_keep_alive_keeps_an_idle_connection_open() {
    let server = server().await;
    let client = h3_client(&server)
        .set("quic_idle_timeout", Duration::from_millis(900))
        .build()
        .unwrap();
    let url = server.h3_url("/health");
    assert_eq!(client.get(&url).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(client.get(&url).await.unwrap().status(), 200);
    assert_eq!(client.stats().origins[0].connections_opened, 1);
}

/// Finding: a large in-memory upload failed with `read_timeout` while bytes were moving (HTTP/2
/// and HTTP/3; on HTTP/1.1 the kernel takes such a body at once, and the socket's writes are
/// what `read_timeout` sees).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_held_upload_to_a_slow_reader_does_not_time_out() {
    // Small server windows: what the client handed over within the window at the end still
    // waits on the server (and counts as waiting), so keep that tail well under the limit.
    let server = TestServer::start(Options {
        h2: H2Options {
            stream_window: 64 << 10,
            connection_window: 256 << 10,
            ..H2Options::default()
        },
        h3: H3Options {
            stream_window: 64 << 10,
            connection_window: 256 << 10,
            ..H3Options::default()
        },
        ..Options::default()
    })
    .await
    .unwrap();
    let ca = server.ca_file().to_str().unwrap().to_owned();
    let body = Bytes::from(vec![b'u'; 1 << 20]);
    // The sink sleeps between reads: over HTTP/2 each read is one 16 KiB frame, over HTTP/3
    // one QUIC packet's worth, so HTTP/3 sleeps less per read for a similar pace.
    for (protocol, base, delay) in [
        ("http2", server.h2c_url(""), 15),
        ("http3", server.h3_url(""), 1),
    ] {
        let client = Client::builder()
            .set("ca_file", ca.as_str())
            .set("protocol", protocol)
            .set("proxy_from_env", false)
            .set("read_timeout", Duration::from_millis(600))
            .build()
            .unwrap();
        let url = format!(
            "{}/slow-sink?chunk=16384&delay_ms={delay}",
            base.trim_end_matches('/')
        );
        let started = Instant::now();
        let resp = client
            .request(Request::post(&url).body(body.clone()).build().unwrap())
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e} after {:?}", started.elapsed()));
        assert_eq!(resp.status(), 200, "{protocol}");
        assert!(
            started.elapsed() > Duration::from_millis(600),
            "{protocol}: the reader was not slow ({:?})",
            started.elapsed()
        );
    }
}

/// Finding: HTTP/1.1 retried a reused connection's failure for a POST the server may have
/// processed (RFC 9110 §9.2.2): the server saw it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_dropped_after_processing_is_not_sent_again() {
    let server = server().await;
    let client = Client::builder()
        .set("proxy_from_env", false)
        .set("size", 1)
        .build()
        .unwrap();
    // A kept-alive connection first, so that the POST goes on a reused one.
    assert_eq!(
        client
            .get(&server.http_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    let req = Request::post(&server.http_url("/count-and-drop"))
        .body("charge the card")
        .build()
        .unwrap();
    let err = client.request(req).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert_eq!(
        server.stats().processed_then_dropped,
        1,
        "sent exactly once"
    );
    assert_eq!(client.stats().retries, 0);
}

/// Finding: with a graceful GOAWAY every few streams, 32 callers lost requests as
/// `connection_reset`: streams above the GOAWAY's last-stream-id are safe to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_races_lose_no_request() {
    let server = TestServer::start(Options {
        h2: H2Options {
            goaway_after: Some(3),
            ..H2Options::default()
        },
        ..Options::default()
    })
    .await
    .unwrap();
    let client = Client::builder()
        .set("protocol", "http2")
        .set("proxy_from_env", false)
        .set("max_connections", 8)
        .set("checkout_timeout", Duration::from_secs(30))
        .build()
        .unwrap();
    let url = server.h2c_url("/bytes/1000");
    let mut failures = Vec::new();
    for _ in 0..10 {
        let batch: Vec<_> = (0..32)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move { client.get(&url).await })
            })
            .collect();
        for t in batch {
            match t.await.unwrap() {
                Ok(r) if r.status() == 200 && r.body().len() == 1000 => {}
                Ok(r) => failures.push(format!("status {}", r.status())),
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 320 failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

/// Finding: extreme user values panicked (`now + t` overflowed); the per-request timeout
/// escaped the one-year cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_values_are_invalid_errors_not_panics() {
    for value in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let err = Client::builder()
            .set("request_timeout", value)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
        let err = Request::get("http://127.0.0.1/")
            .timeout(value)
            .build()
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    }
    for (name, value) in [
        ("size", i64::MAX),
        ("size", -1),
        ("max_response_headers", 1 << 40),
        ("stream_window", i64::MIN),
    ] {
        let err = Client::builder().set(name, value).build().unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidConfig,
            "{name}={value}: {err}"
        );
    }
    for value in [f64::NAN, f64::INFINITY, -1.0, 1e300] {
        let err = Client::builder()
            .set("window_update_threshold", value)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{value}: {err}");
    }
    // A year exactly is fine, and a request under it works.
    let server = server().await;
    let client = Client::builder()
        .set("request_timeout", Duration::from_secs(86_400 * 365))
        .set("proxy_from_env", false)
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(&server.http_url("/health"))
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Finding: `max_response_body`, a cap on what a response may make us read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_body_cap() {
    let server = server().await;
    let client = Client::builder()
        .set("proxy_from_env", false)
        .set("max_response_body", 50_000)
        .build()
        .unwrap();
    let err = client
        .get(&server.http_url("/bytes/100000"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResponseBodyTooLarge, "{err}");
    let ok = client.get(&server.http_url("/bytes/50000")).await.unwrap();
    assert_eq!(ok.body().len(), 50_000);
}

/// Finding: a declared content-length was not enforced for streamed bodies; two equal
/// content-lengths were both written; a repeated transfer-encoding passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_framing_is_consistent() {
    let server = server().await;
    let ca = server.ca_file().to_str().unwrap().to_owned();
    for (protocol, base) in [
        ("http1", server.http_url("")),
        ("http2", server.h2c_url("")),
        ("http3", server.h3_url("")),
    ] {
        let build = || {
            Client::builder()
                .set("ca_file", ca.as_str())
                .set("protocol", protocol)
                .set("proxy_from_env", false)
                .build()
                .unwrap()
        };
        let url = format!("{}/echo", base.trim_end_matches('/'));
        for (declared, chunks) in [("5", vec!["hello", " world"]), ("20", vec!["short"])] {
            // A client per case: after a cancelled upload, h3 0.0.8 can end the shared
            // connection (a stream finished without response headers is a connection error
            // there), which is not what this test is about.
            let client = build();
            let stream = futures_util::stream::iter(
                chunks
                    .into_iter()
                    .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
            );
            let req = Request::post(&url)
                .header("content-length", declared)
                .body(Body::from_stream(stream))
                .build()
                .unwrap();
            let err = client.request(req).await.unwrap_err();
            // Known race on HTTP/3 (open): the server's reset of a short body can reach the
            // request before the upload task reports the short body itself.
            let raced = protocol == "http3" && err.kind() == ErrorKind::StreamReset;
            assert!(
                err.kind() == ErrorKind::InvalidBody || raced,
                "{protocol} {declared}: {err}"
            );
        }
        let client = build();
        let headers_url = format!("{}/headers", base.trim_end_matches('/'));
        let req = Request::post(&headers_url)
            .header("content-length", "2")
            .header("content-length", "2")
            .body("hi")
            .build()
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        let lengths = json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] == "content-length")
            .count();
        assert!(
            lengths <= 1,
            "{protocol}: content-length sent {lengths} times"
        );
    }
    let err = Request::post("http://127.0.0.1/")
        .header("transfer-encoding", "chunked")
        .header("transfer-encoding", "chunked")
        .body(Body::from_stream(futures_util::stream::empty::<
            Result<Bytes, std::io::Error>,
        >()))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidBody);
}

/// Finding: MASQUE over HTTP/2 trusted the capsule length field.
#[cfg(feature = "masque")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_capsule_from_a_proxy_ends_the_tunnel() {
    let server = server().await;
    let client = Client::builder()
        .set("ca_file", server.ca_file().to_str().unwrap())
        .set("proxy_from_env", false)
        .build()
        .unwrap();
    let options = quiver_core::UdpTunnelOptions::default().protocol(quiver_core::Protocol::Http2);
    let tunnel = client
        .open_udp_tunnel(
            &server.proxy_tls_url(),
            "127.0.0.1",
            quiver_testserver::HOSTILE_CAPSULE_PORT,
            options,
        )
        .await
        .unwrap();
    let before = rss();
    let err = tokio::time::timeout(Duration::from_secs(10), tunnel.recv())
        .await
        .expect("the tunnel ends, it does not hang")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CapsuleTooLarge, "{err}");
    assert!(rss().saturating_sub(before) < 8 << 20);
    assert!(
        tunnel.send(b"after").is_err(),
        "a failed tunnel sends nothing"
    );
}

/// Finding: stream data on an HTTP/3 datagram channel piled up unbounded while the caller only
/// read datagrams. Now a few events wait, then QUIC flow control holds the server back.
#[cfg(feature = "http3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_channel_stream_data_stays_bounded() {
    const MIB: u64 = 64;
    let server = server().await;
    let client = h3_client(&server).build().unwrap();
    let before = rss();
    let channel = client
        .open_datagram_channel(
            &server.h3_url(&format!("/datagram-echo?stream_mib={MIB}")),
            Vec::<(String, String)>::new(),
            quiver_core::DatagramOptions::default(),
        )
        .await
        .unwrap();
    // Datagrams still flow while the stream data goes unread.
    let mut echoed = false;
    for _ in 0..50 {
        channel.send(b"ping").unwrap();
        if let Ok(Ok(Some(d))) =
            tokio::time::timeout(Duration::from_millis(100), channel.recv()).await
        {
            assert_eq!(&d[..], b"ping");
            echoed = true;
            break;
        }
    }
    assert!(echoed, "no datagram came back");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss().saturating_sub(before);
    assert!(
        grown < (MIB << 20) / 4,
        "memory grew by {} MiB while {MIB} MiB of stream data went unread",
        grown >> 20
    );
    // All of it arrives once read.
    let mut total = 0u64;
    while let Some(chunk) = channel.recv_data().await.unwrap() {
        total += chunk.len() as u64;
        if total >= (MIB << 20) + 10 {
            break;
        }
    }
    assert_eq!(total, (MIB << 20) + b"echo ready".len() as u64);
}
