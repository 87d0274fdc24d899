//! End-to-end checks of the HTTP/2 side (the `h2c` listener and `https` after ALPN `h2`),
//! driven by the `h2` crate's client.

mod common;

use std::future::poll_fn;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::*;
use h2::client::{self, ResponseFuture, SendRequest};
use h2::{Ping, PingPong, Reason, RecvStream};
use http::{HeaderMap, Method, Request, StatusCode};
use quiver_testserver::{H2Options, Options, TestServer};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const MIB: usize = 1 << 20;

async fn server_with(h2: H2Options) -> TestServer {
    TestServer::start(Options {
        h2,
        ..Options::default()
    })
    .await
    .expect("server starts")
}

/// An HTTP/2 client connection.
struct H2 {
    send: SendRequest<Bytes>,
    /// The connection driver; finishes when the connection closes.
    driver: JoinHandle<Result<(), h2::Error>>,
    ping: PingPong,
    scheme: &'static str,
}

impl H2 {
    async fn over<I>(io: I, builder: &client::Builder, scheme: &'static str) -> H2
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut conn) = tokio::time::timeout(STEP, builder.handshake(io))
            .await
            .expect("handshake in time")
            .expect("h2 handshake");
        let ping = conn.ping_pong().expect("ping_pong");
        let driver = tokio::spawn(conn);
        H2 {
            send,
            driver,
            ping,
            scheme,
        }
    }

    async fn h2c(server: &TestServer) -> H2 {
        Self::h2c_with(server, &client::Builder::new()).await
    }

    async fn h2c_with(server: &TestServer, builder: &client::Builder) -> H2 {
        let tcp = connect(v4(server.h2c_port())).await;
        Self::over(tcp, builder, "http").await
    }

    async fn tls(server: &TestServer) -> H2 {
        let connector = tls_connector_alpn(server.ca_file(), None, &[b"h2", b"http/1.1"]);
        let tls = tls_connect(&connector, v4(server.https_port()), "localhost")
            .await
            .expect("tls");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        Self::over(tls, &client::Builder::new(), "https").await
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}://localhost{path}", self.scheme))
    }

    /// Sends a request (with `body`, if any) and returns the response future.
    async fn start(
        &self,
        req: Request<()>,
        body: Option<Bytes>,
    ) -> Result<ResponseFuture, h2::Error> {
        let mut send = self.send.clone().ready().await?;
        let (resp, mut stream) = send.send_request(req, body.is_none())?;
        if let Some(body) = body {
            // Buffered by h2 and sent as the server's window allows.
            stream.send_data(body, true)?;
        }
        Ok(resp)
    }

    async fn exchange(&self, req: Request<()>, body: Option<Bytes>) -> Result<Reply, h2::Error> {
        tokio::time::timeout(STEP, async {
            let resp = self.start(req, body).await?;
            Reply::read(resp).await
        })
        .await
        .expect("exchange in time")
    }

    async fn get(&self, path: &str) -> Result<Reply, h2::Error> {
        let req = self.request(Method::GET, path).body(()).unwrap();
        self.exchange(req, None).await
    }

    /// Waits for the connection to close.
    async fn closed(self) {
        tokio::time::timeout(STEP, self.driver)
            .await
            .expect("the connection closes")
            .expect("driver task")
            .ok();
    }
}

/// A whole response.
struct Reply {
    parts: http::response::Parts,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl Reply {
    async fn read(resp: ResponseFuture) -> Result<Reply, h2::Error> {
        let (parts, mut recv) = resp.await?.into_parts();
        let body = read_body(&mut recv).await?;
        let trailers = recv.trailers().await?;
        Ok(Reply {
            parts,
            body,
            trailers,
        })
    }

    fn header(&self, name: &str) -> &str {
        self.parts
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name}"))
            .to_str()
            .unwrap()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Reads the data of `recv`, releasing the window as it goes.
async fn read_body(recv: &mut RecvStream) -> Result<Bytes, h2::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        recv.flow_control().release_capacity(chunk.len())?;
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn endpoints_over(client: &H2) {
    let resp = client.get("/health").await.unwrap();
    assert_eq!(resp.parts.status, StatusCode::OK);
    assert_eq!(resp.parts.version, http::Version::HTTP_2);
    assert_eq!(resp.body.as_ref(), b"ok");
    assert_eq!(resp.header("x-conn-requests"), "1");
    let conn_id = resp.header("x-conn-id").to_owned();
    let resp = client.get("/conn").await.unwrap();
    assert_eq!(resp.header("x-conn-requests"), "2");
    assert_eq!(resp.header("x-conn-id"), conn_id);
    assert_eq!(resp.json()["requests"], 2);

    let resp = client.get("/bytes/100000").await.unwrap();
    assert_eq!(resp.header("content-length"), "100000");
    assert_eq!(resp.body.as_ref(), pattern(100_000).as_slice());
    let resp = client
        .get("/bytes/50000?chunked=1&chunk_size=7000")
        .await
        .unwrap();
    assert!(!resp.parts.headers.contains_key("content-length"));
    assert_eq!(resp.body.as_ref(), pattern(50_000).as_slice());
    let head = client
        .request(Method::HEAD, "/bytes/1000")
        .body(())
        .unwrap();
    let resp = client.exchange(head, None).await.unwrap();
    assert_eq!(resp.header("content-length"), "1000");
    assert!(resp.body.is_empty());

    let req = client
        .request(Method::PATCH, "/headers?a=1")
        .header("x-custom", "value 1")
        .body(())
        .unwrap();
    let json = client.exchange(req, None).await.unwrap().json();
    assert_eq!(json["version"], "HTTP/2.0");
    assert_eq!(json["method"], "PATCH");
    assert_eq!(json["path"], "/headers");
    assert_eq!(json["query"], "a=1");
    let headers = json["headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["x-custom", "value 1"])));
    assert!(headers
        .iter()
        .all(|h| !h[0].as_str().unwrap().starts_with(':')));

    // 1 MiB echoed: the upload and the answer flow together under flow control.
    let upload: Bytes = (0..MIB)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let req = client
        .request(Method::POST, "/echo")
        .header("content-type", "application/x-test")
        .header("content-length", MIB)
        .body(())
        .unwrap();
    let resp = client.exchange(req, Some(upload.clone())).await.unwrap();
    assert_eq!(resp.body, upload);
    assert_eq!(resp.header("content-type"), "application/x-test");
    assert_eq!(resp.header("x-echo-method"), "POST");
    assert_eq!(resp.header("content-length"), MIB.to_string());

    // Trailers are always sent on HTTP/2 (no `te: trailers` needed).
    let resp = client.get("/trailers").await.unwrap();
    assert_eq!(resp.body.as_ref(), b"hello trailers");
    let trailers = resp.trailers.expect("trailers");
    assert_eq!(trailers["x-trailer-one"], "1");
    assert_eq!(trailers["x-trailer-two"], "2");

    let resp = client.get("/status/204").await.unwrap();
    assert_eq!(resp.parts.status, StatusCode::NO_CONTENT);
    assert!(resp.body.is_empty());
    let resp = client.get("/status/503").await.unwrap();
    assert_eq!(resp.body.as_ref(), b"status 503");
    let req = client.request(Method::POST, "/sink").body(()).unwrap();
    let resp = client
        .exchange(req, Some(Bytes::from(vec![1u8; 300_000])))
        .await
        .unwrap();
    assert_eq!(resp.json()["received"], 300_000);
    assert_eq!(
        client.get("/nowhere").await.unwrap().parts.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn endpoints_over_h2c_and_tls() {
    let server = server().await;
    assert_eq!(
        server.h2c_url("/health"),
        format!("http://127.0.0.1:{}/health", server.h2c_port())
    );
    let h2c = H2::h2c(&server).await;
    endpoints_over(&h2c).await;
    let tls = H2::tls(&server).await;
    endpoints_over(&tls).await;

    let stats = server.stats();
    assert_eq!(stats.h2_connections, 2);
    assert!(stats.bytes_received >= 2 * (MIB as u64 + 300_000));
    assert!(stats.bytes_sent >= 2 * (MIB as u64 + 150_000));
    assert!(stats.h2_max_streams_per_conn >= 1);

    let json = tls.get("/stats").await.unwrap().json();
    for key in [
        "bytes_sent",
        "bytes_received",
        "h2_connections",
        "h2_max_streams_per_conn",
        "goaways",
        "refused_streams",
    ] {
        assert!(json[key].is_u64(), "{key} in {json}");
    }
    assert_eq!(json["h2_connections"], 2);
    let req = tls.request(Method::POST, "/stats/reset").body(()).unwrap();
    let json = tls.exchange(req, None).await.unwrap().json();
    assert_eq!(json["bytes_sent"], 0);
    assert_eq!(json["h2_connections"], 0);
}

#[tokio::test]
async fn alpn_decides_the_protocol() {
    let server = server().await;
    let addr = v4(server.https_port());

    // Offering only http/1.1: HTTP/1.1, as before.
    let http1 = tls_connector(server.ca_file(), None);
    let tls = tls_connect(&http1, addr, "localhost").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut sender = client(tls).await;
    let resp = send(&mut sender, get("/headers")).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["version"], "HTTP/1.1");

    // Offering both: HTTP/2.
    let both = tls_connector_alpn(server.ca_file(), None, &[b"http/1.1", b"h2"]);
    let tls = tls_connect(&both, addr, "localhost").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let h2 = H2::over(tls, &client::Builder::new(), "https").await;
    assert_eq!(h2.get("/health").await.unwrap().body.as_ref(), b"ok");

    // The mTLS listener stays HTTP/1.1 only.
    let mtls = tls_connector_alpn(
        server.ca_file(),
        Some((server.client_cert(), server.client_key())),
        &[b"h2", b"http/1.1"],
    );
    let tls = tls_connect(&mtls, v4(server.mtls_port()), "localhost")
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    assert_eq!(server.stats().h2_connections, 1);
}

#[tokio::test]
async fn max_concurrent_streams_is_announced_and_honoured() {
    let server = server_with(H2Options {
        max_concurrent_streams: 7,
        ..H2Options::default()
    })
    .await;
    let client = H2::h2c(&server).await;
    client.get("/health").await.unwrap();
    assert_eq!(client.send.current_max_send_streams(), 7);

    let mut pending = Vec::new();
    for _ in 0..20 {
        let req = client.request(Method::GET, "/slow/100").body(()).unwrap();
        pending.push(client.start(req, None).await.unwrap());
    }
    for resp in pending {
        let reply = tokio::time::timeout(STEP, Reply::read(resp))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply.body.as_ref(), b"slow");
    }
    assert_eq!(server.stats().h2_max_streams_per_conn, 7);
}

#[tokio::test]
async fn goaway_after_n_streams_names_the_nth_stream() {
    let n = 3;
    let server = server_with(H2Options {
        goaway_after: Some(n),
        ..H2Options::default()
    })
    .await;

    // N + 5 streams opened at once: the first N are served, the others are reported by the
    // GOAWAY as not processed.
    let client = H2::h2c(&server).await;
    let mut results = Vec::new();
    for _ in 0..n + 5 {
        let req = client.request(Method::GET, "/slow/100").body(()).unwrap();
        results.push(client.start(req, None).await);
    }
    let mut outcomes = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        let outcome = match result {
            Ok(resp) => {
                let id = resp.stream_id().as_u32();
                (Some(id), Reply::read(resp).await)
            }
            Err(e) => (None, Err(e)),
        };
        outcomes.push((i as u64, outcome));
    }
    let mut go_aways = 0;
    for (i, (id, outcome)) in outcomes {
        if i < n {
            assert_eq!(id, Some(2 * i as u32 + 1));
            let reply = outcome.unwrap_or_else(|e| panic!("stream {i} failed: {e}"));
            assert_eq!(reply.body.as_ref(), b"slow");
        } else {
            let e = outcome
                .err()
                .unwrap_or_else(|| panic!("stream {i} succeeded"));
            assert!(e.is_go_away(), "stream {i}: {e:?}");
            assert_eq!(e.reason(), Some(Reason::NO_ERROR));
            go_aways += 1;
        }
    }
    assert_eq!(go_aways, 5);
    client.closed().await;
    let stats = server.stats();
    assert_eq!(stats.goaways, 1);
    assert_eq!(stats.requests, n);
    assert_eq!(stats.refused_streams, 0);

    // One request at a time: the N-th answer is followed by the GOAWAY and the close.
    let client = H2::h2c(&server).await;
    for i in 1..=n {
        let resp = client.get("/health").await.unwrap();
        assert_eq!(resp.header("x-conn-requests"), i.to_string());
    }
    client.closed().await;
    assert_eq!(server.stats().goaways, 2);
}

#[tokio::test]
async fn goaway_after_over_tls() {
    let server = server_with(H2Options {
        goaway_after: Some(1),
        ..H2Options::default()
    })
    .await;
    let client = H2::tls(&server).await;
    let first = client
        .start(
            client.request(Method::GET, "/slow/50").body(()).unwrap(),
            None,
        )
        .await
        .unwrap();
    let second = client
        .start(
            client.request(Method::GET, "/health").body(()).unwrap(),
            None,
        )
        .await;
    assert_eq!(Reply::read(first).await.unwrap().body.as_ref(), b"slow");
    let err = match second {
        Ok(resp) => Reply::read(resp)
            .await
            .err()
            .expect("second stream refused"),
        Err(e) => e,
    };
    assert!(err.is_go_away(), "{err:?}");
    client.closed().await;
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test]
async fn refuse_every_k_resets_with_refused_stream() {
    let server = server_with(H2Options {
        refuse_every: Some(3),
        ..H2Options::default()
    })
    .await;
    let client = H2::h2c(&server).await;
    let mut served = 0;
    for i in 1..=7 {
        match client.get("/health").await {
            Ok(resp) => {
                assert!(i % 3 != 0, "stream {i} should be refused");
                served += 1;
                assert_eq!(resp.header("x-conn-requests"), served.to_string());
            }
            Err(e) => {
                assert_eq!(i % 3, 0, "stream {i}: {e:?}");
                assert_eq!(e.reason(), Some(Reason::REFUSED_STREAM));
            }
        }
    }
    let stats = server.stats();
    assert_eq!(stats.refused_streams, 2);
    assert_eq!(stats.requests, 5);
}

#[tokio::test]
async fn writes_stall_when_the_client_does_not_read() {
    let server = server().await;
    let window = 64 * 1024;
    let mut builder = client::Builder::new();
    builder.initial_window_size(window);
    let client = H2::h2c_with(&server, &builder).await;
    let total = 4 * MIB;
    let req = client
        .request(Method::GET, &format!("/bytes/{total}"))
        .body(())
        .unwrap();
    let resp = client.start(req, None).await.unwrap();
    let (parts, mut recv) = tokio::time::timeout(STEP, resp)
        .await
        .unwrap()
        .unwrap()
        .into_parts();
    assert_eq!(parts.status, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let stalled = server.stats().bytes_sent;
    assert!(stalled > 0);
    assert!(
        stalled <= u64::from(window) + 16 * 1024,
        "sent {stalled} into a {window} window"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.stats().bytes_sent,
        stalled,
        "no progress while unread"
    );

    let body = tokio::time::timeout(STEP, read_body(&mut recv))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.len(), total);
    assert_eq!(server.stats().bytes_sent, total as u64);
}

#[tokio::test]
async fn slow_sink_fills_the_clients_window() {
    let window = 64 * 1024;
    let server = server_with(H2Options {
        stream_window: window,
        ..H2Options::default()
    })
    .await;
    let client = H2::h2c(&server).await;
    let total = 256 * 1024;
    let req = client
        .request(Method::POST, "/slow-sink?chunk=1024&delay_ms=5")
        .body(())
        .unwrap();
    let mut send = client.send.clone().ready().await.unwrap();
    let (resp, mut stream) = send.send_request(req, false).unwrap();
    let start = Instant::now();
    let upload = tokio::spawn(async move {
        let mut left = total;
        let mut most = 0;
        while left > 0 {
            stream.reserve_capacity(left);
            let granted = poll_fn(|cx| stream.poll_capacity(cx))
                .await
                .expect("capacity")
                .expect("capacity");
            most = most.max(granted);
            let n = granted.min(left);
            stream.send_data(Bytes::from(vec![b'x'; n]), false).unwrap();
            left -= n;
        }
        stream.send_data(Bytes::new(), true).unwrap();
        most
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = server.stats().bytes_received;
    assert!(received > 0, "reading has started");
    assert!(received < 128 * 1024, "read slowly: {received} in 300 ms");

    let most = tokio::time::timeout(STEP, upload).await.unwrap().unwrap();
    assert!(
        most <= window as usize,
        "send capacity {most} above the server's {window} window"
    );
    let reply = tokio::time::timeout(STEP, Reply::read(resp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.json()["received"], total);
    // 256 pieces of 1 KiB, 5 ms apart.
    assert!(
        start.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.stats().bytes_received, total as u64);
}

#[tokio::test]
async fn freeze_stops_the_whole_connection() {
    let server = server().await;
    let mut client = H2::h2c(&server).await;
    client.get("/health").await.unwrap();
    let start = Instant::now();
    let freeze = client
        .start(
            client.request(Method::GET, "/freeze/600").body(()).unwrap(),
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Another stream and a PING during the freeze: neither is answered.
    let health = client
        .start(
            client.request(Method::GET, "/health").body(()).unwrap(),
            None,
        )
        .await
        .unwrap();
    let ping =
        tokio::time::timeout(Duration::from_millis(200), client.ping.ping(Ping::opaque())).await;
    assert!(ping.is_err(), "no PONG during the freeze");

    // After the freeze: the PONG, then the answers.
    tokio::time::timeout(STEP, poll_fn(|cx| client.ping.poll_pong(cx)))
        .await
        .expect("PONG after the freeze")
        .expect("pong");
    assert!(
        start.elapsed() >= Duration::from_millis(550),
        "{:?}",
        start.elapsed()
    );
    let reply = tokio::time::timeout(STEP, Reply::read(health))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.body.as_ref(), b"ok");
    let reply = tokio::time::timeout(STEP, Reply::read(freeze))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.body.as_ref(), b"thawed");
    tokio::time::timeout(STEP, client.ping.ping(Ping::opaque()))
        .await
        .expect("PONG in time")
        .expect("pong");

    // HTTP/1.1: a plain sleep.
    let start = Instant::now();
    let resp = get_at(v4(server.http_port()), "/freeze/100").await;
    assert_eq!(resp.body().as_ref(), b"thawed");
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn close_drop_next_and_close_mid_body_over_h2() {
    let server = server().await;

    // /close: the answer, then GOAWAY and the connection closes.
    let client = H2::h2c(&server).await;
    let resp = client.get("/close").await.unwrap();
    assert_eq!(resp.body.as_ref(), b"bye");
    assert!(!resp.parts.headers.contains_key("connection"));
    client.closed().await;
    assert_eq!(server.stats().goaways, 1);

    // /drop-next: the next stream is reset with INTERNAL_ERROR, the one after is served.
    let client = H2::tls(&server).await;
    assert_eq!(
        client.get("/drop-next").await.unwrap().body.as_ref(),
        b"armed"
    );
    let err = client.get("/health").await.err().expect("reset");
    assert_eq!(err.reason(), Some(Reason::INTERNAL_ERROR), "{err:?}");
    let resp = client.get("/health").await.unwrap();
    assert_eq!(resp.header("x-conn-requests"), "3");

    // /close-mid-body: n/2 bytes, then a reset with INTERNAL_ERROR.
    let req = client
        .request(Method::GET, "/close-mid-body/1000")
        .body(())
        .unwrap();
    let resp = client.start(req, None).await.unwrap();
    let (parts, mut recv) = resp.await.unwrap().into_parts();
    assert_eq!(parts.headers["content-length"], "1000");
    let mut got = Vec::new();
    let err = loop {
        match tokio::time::timeout(STEP, recv.data()).await.unwrap() {
            Some(Ok(chunk)) => {
                recv.flow_control().release_capacity(chunk.len()).unwrap();
                got.extend_from_slice(&chunk);
            }
            Some(Err(e)) => break e,
            None => panic!("the body must not end cleanly"),
        }
    };
    assert_eq!(got, pattern(500));
    assert_eq!(err.reason(), Some(Reason::INTERNAL_ERROR), "{err:?}");
    // The connection itself is fine.
    assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");
}

#[tokio::test]
async fn http1_counts_bytes_too() {
    let server = server().await;
    let addr = v4(server.http_port());
    get_at(addr, "/bytes/1000").await;
    assert_eq!(server.stats().bytes_sent, 1000);
    let mut sender = client(connect(addr).await).await;
    let req = Request::post("/sink")
        .body(http_body_util::Full::new(Bytes::from(vec![0u8; 3000])))
        .unwrap();
    send(&mut sender, req).await.unwrap();
    let stats = server.stats();
    assert_eq!(stats.bytes_received, 3000);
    assert!(stats.bytes_sent > 1000);
    assert_eq!(stats.h2_connections, 0);
    server.reset_stats();
    assert_eq!(server.stats().bytes_sent, 0);

    // /slow-sink works on HTTP/1.1 as well.
    let req = Request::post("/slow-sink?chunk=100&delay_ms=1")
        .body(http_body_util::Full::new(Bytes::from(vec![0u8; 1000])))
        .unwrap();
    let resp = send(&mut sender, req).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["received"], 1000);
    let req = Request::post("/slow-sink?chunk=0")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        send(&mut sender, req).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn binary_takes_h2_flags() {
    let bin = env!("CARGO_BIN_EXE_quiver-testserver");
    for bad in [
        &["--h2-refuse-every", "0"][..],
        &["--h2-stream-window", "big"][..],
        &["--h2-goaway-after"][..],
    ] {
        let status = Command::new(bin)
            .args(bad)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(2), "{bad:?}");
    }

    let mut child = Command::new(bin)
        .args([
            "--h2-max-concurrent-streams",
            "5",
            "--h2-refuse-every=2",
            "--h2-stream-window=65536",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let port = json["h2c"].as_u64().expect("h2c port") as u16;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = TcpStream::connect(v4(port)).await.unwrap();
        let client = H2::over(tcp, &client::Builder::new(), "http").await;
        assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");
        assert_eq!(client.send.current_max_send_streams(), 5);
        let err = client.get("/health").await.err().expect("refused");
        assert_eq!(err.reason(), Some(Reason::REFUSED_STREAM));
    });

    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(Instant::now() < deadline, "exits on stdin EOF");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn max_header_list_size_limits_request_headers() {
    let server = server_with(H2Options {
        max_header_list_size: Some(1024),
        ..H2Options::default()
    })
    .await;
    let client = H2::h2c(&server).await;
    assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");

    // Over the limit: h2 answers 431 itself; no endpoint sees the request.
    let req = client
        .request(Method::GET, "/health")
        .header("x-big", "v".repeat(2000))
        .body(())
        .unwrap();
    let reply = client.exchange(req, None).await.unwrap();
    assert_eq!(
        reply.parts.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");

    // Over four times the limit: h2 ends the connection (GOAWAY ENHANCE_YOUR_CALM).
    let req = client
        .request(Method::GET, "/health")
        .header("x-big", "v".repeat(5000))
        .body(())
        .unwrap();
    let err = client
        .exchange(req, None)
        .await
        .err()
        .expect("connection error");
    assert!(err.is_go_away(), "{err:?}");
    assert_eq!(err.reason(), Some(Reason::ENHANCE_YOUR_CALM));
    client.closed().await;
    let stats = server.stats();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.goaways, 0, "h2's own GOAWAYs are not counted");
}

#[tokio::test]
async fn goaway_after_zero_processes_nothing() {
    let server = server_with(H2Options {
        goaway_after: Some(0),
        ..H2Options::default()
    })
    .await;
    let client = H2::h2c(&server).await;
    let err = client.get("/health").await.err().expect("not processed");
    assert!(err.is_go_away(), "{err:?}");
    client.closed().await;
    let stats = server.stats();
    assert_eq!((stats.requests, stats.goaways), (0, 1));
}
