//! End-to-end checks of the test server, started in-process (and once as a binary).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn health_over_every_transport() {
    let server = server().await;
    assert!(server.http_url("/health").starts_with("http://127.0.0.1:"));
    assert!(server.https_url("health").starts_with("https://localhost:"));
    assert!(server.http_url_v6("/x").starts_with("http://[::1]:"));

    let resp = get_at(v4(server.http_port()), "/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.body().as_ref(), b"ok");
    assert!(header(&resp, "x-conn-id").parse::<u64>().unwrap() > 0);
    assert_eq!(header(&resp, "x-conn-requests"), "1");

    assert!(server.has_ipv6(), "this host has ::1");
    let resp = get_at(v6(server.http_port()), "/health").await;
    assert_eq!(resp.body().as_ref(), b"ok");

    let resp = get_at(v4(server.idle_close_port()), "/health").await;
    assert_eq!(resp.body().as_ref(), b"ok");

    let connector = tls_connector(server.ca_file(), None);
    for (addr, name) in [
        (v4(server.https_port()), "localhost"),
        (v4(server.https_port()), "127.0.0.1"),
        (v6(server.https_port()), "::1"),
    ] {
        let tls = tls_connect(&connector, addr, name).await.expect("tls");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let mut sender = client(tls).await;
        let resp = send(&mut sender, get("/health")).await.unwrap();
        assert_eq!(resp.body().as_ref(), b"ok", "{name}");
        assert!(resp.headers().contains_key("x-conn-id"));
    }

    // A client trusting the unrelated CA rejects the server.
    let wrong = tls_connector(server.wrong_ca_file(), None);
    assert!(tls_connect(&wrong, v4(server.https_port()), "localhost")
        .await
        .is_err());
}

#[tokio::test]
async fn keep_alive_counts_requests_per_connection() {
    let server = server().await;
    let mut sender = client(connect(v4(server.http_port())).await).await;
    let first = send(&mut sender, get("/health")).await.unwrap();
    let second = send(&mut sender, get("/conn")).await.unwrap();
    assert_eq!(header(&second, "x-conn-requests"), "2");
    assert_eq!(header(&first, "x-conn-id"), header(&second, "x-conn-id"));
    let conn: serde_json::Value = serde_json::from_slice(second.body()).unwrap();
    assert_eq!(
        conn["conn_id"].as_u64().unwrap().to_string(),
        header(&second, "x-conn-id")
    );
    assert_eq!(conn["requests"], 2);

    let other = get_at(v4(server.http_port()), "/health").await;
    assert_ne!(header(&other, "x-conn-id"), header(&first, "x-conn-id"));
}

#[tokio::test]
async fn bytes_content_length_and_pattern() {
    let server = server().await;
    let n = 100_000;
    let resp = get_at(v4(server.http_port()), &format!("/bytes/{n}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-length"), n.to_string());
    assert_eq!(resp.body().as_ref(), pattern(n).as_slice());

    // Big and quick: 64 MiB streamed lazily.
    let n = 64 << 20;
    let resp = get_at(v4(server.http_port()), &format!("/bytes/{n}")).await;
    assert_eq!(resp.body().len(), n);
    assert!(resp.body()[n - 26..] == pattern(n)[n - 26..]);

    let resp = get_at(v4(server.http_port()), "/bytes/0").await;
    assert_eq!(header(&resp, "content-length"), "0");
    assert!(resp.body().is_empty());

    let resp = get_at(v4(server.http_port()), "/bytes/abc").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bytes_chunked_modes_on_the_wire() {
    let server = server().await;
    let addr = v4(server.http_port());
    let raw = raw_exchange(
        addr,
        b"GET /bytes/30?chunked=1&chunk_size=10 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert_eq!(
        body,
        "A\r\nabcdefghij\r\nA\r\nklmnopqrst\r\nA\r\nuvwxyzabcd\r\n0\r\n\r\n"
    );

    // delay_ms implies chunked and sleeps between chunks.
    let start = Instant::now();
    let raw = raw_exchange(
        addr,
        b"GET /bytes/4?delay_ms=60&chunk_size=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(start.elapsed() >= Duration::from_millis(180));
    let text = String::from_utf8(raw).unwrap().to_ascii_lowercase();
    assert!(text.contains("transfer-encoding: chunked"));
    assert!(text.ends_with("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n1\r\nd\r\n0\r\n\r\n"));

    // HEAD: headers only, with the length.
    let raw = raw_exchange(
        addr,
        b"HEAD /bytes/1000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    assert!(
        text.to_ascii_lowercase()
            .contains("content-length: 1000\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "no body after a HEAD: {text}");
}

#[tokio::test]
async fn echo_streams_the_body_back() {
    let server = server().await;
    let mut sender = client(connect(v4(server.http_port())).await).await;
    let req = Request::post("/echo")
        .header("content-type", "application/x-test")
        .body(Full::new(Bytes::from_static(b"hello echo")))
        .unwrap();
    let resp = send(&mut sender, req).await.unwrap();
    assert_eq!(resp.body().as_ref(), b"hello echo");
    assert_eq!(header(&resp, "content-type"), "application/x-test");
    assert_eq!(header(&resp, "x-echo-method"), "POST");
    assert_eq!(header(&resp, "content-length"), "10");

    // Streaming: the first piece comes back before the rest of the upload is sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (infallible(Frame::data(b)), rx))
    });
    let body = StreamBody::new(stream);
    let io = TokioIo::new(connect(v4(server.http_port())).await);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::put("/echo")
        .header("host", "x")
        .body(body)
        .unwrap();
    let pending = tokio::spawn(async move { sender.send_request(req).await });
    tx.send(Bytes::from_static(b"first ")).await.unwrap();
    let resp = tokio::time::timeout(STEP, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.headers()["x-echo-method"], "PUT");
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(STEP, body.frame())
        .await
        .expect("first piece echoed before the upload ends")
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().unwrap().as_ref(), b"first ");
    tx.send(Bytes::from_static(b"second")).await.unwrap();
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest.as_ref(), b"second");
}

#[tokio::test]
async fn sink_counts_without_echoing() {
    let server = server().await;
    let mut sender = client(connect(v4(server.http_port())).await).await;
    let req = Request::post("/sink")
        .body(Full::new(Bytes::from(vec![7u8; 3_000_000])))
        .unwrap();
    let resp = send(&mut sender, req).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["received"], 3_000_000);
}

#[tokio::test]
async fn status_headers_slow_and_not_found() {
    let server = server().await;
    let addr = v4(server.http_port());

    let resp = get_at(addr, "/status/204").await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.body().is_empty());
    let resp = get_at(addr, "/status/418").await;
    assert_eq!(resp.status().as_u16(), 418);
    assert_eq!(resp.body().as_ref(), b"status 418");
    let resp = get_at(addr, "/status/503").await;
    assert_eq!(resp.body().as_ref(), b"status 503");
    for bad in ["/status/nope", "/status/100", "/status/101", "/status/1000"] {
        assert_eq!(
            get_at(addr, bad).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let resp = get_at(addr, "/status/304").await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(resp.body().is_empty());

    let mut sender = client(connect(addr).await).await;
    let req = Request::builder()
        .method(Method::PATCH)
        .uri("/headers?a=1&b=2")
        .header("x-custom", "value 1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send(&mut sender, req).await.unwrap();
    assert_eq!(header(&resp, "content-type"), "application/json");
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["method"], "PATCH");
    assert_eq!(json["path"], "/headers");
    assert_eq!(json["query"], "a=1&b=2");
    assert_eq!(json["version"], "HTTP/1.1");
    let headers = json["headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["x-custom", "value 1"])));

    let start = Instant::now();
    let resp = get_at(addr, "/slow/150").await;
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(resp.body().as_ref(), b"slow");
    let resp = get_at(addr, "/slow/1?bytes=40").await;
    assert_eq!(resp.body().as_ref(), pattern(40).as_slice());

    let resp = get_at(addr, "/nowhere").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.body().as_ref(), b"not found");
    assert!(resp.headers().contains_key("x-conn-requests"));
}

#[tokio::test]
async fn trailers_are_sent_to_clients_accepting_them() {
    let server = server().await;
    let raw = raw_exchange(
        v4(server.http_port()),
        b"GET /trailers HTTP/1.1\r\nhost: x\r\nte: trailers\r\nconnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked"), "{text}");
    assert!(
        lower.contains("trailer: x-trailer-one, x-trailer-two"),
        "{text}"
    );
    assert!(
        text.ends_with("E\r\nhello trailers\r\n0\r\nx-trailer-one: 1\r\nx-trailer-two: 2\r\n\r\n"),
        "{text}"
    );

    // Without `te: trailers` hyper leaves them out (HTTP/1 rule) but ends the body properly.
    let raw = raw_exchange(
        v4(server.http_port()),
        b"GET /trailers HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.ends_with("E\r\nhello trailers\r\n0\r\n\r\n"), "{text}");

    // The raw listener sends them whatever the request says.
    let raw = raw_exchange(
        v4(server.raw_port()),
        b"GET /trailers HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.contains("x-trailer-one: 1\r\nx-trailer-two: 2\r\n\r\n"));
}

#[tokio::test]
async fn drop_next_closes_without_a_byte() {
    let server = server().await;
    let mut stream = connect(v4(server.http_port())).await;
    stream
        .write_all(b"GET /drop-next HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let armed = read_response(&mut stream).await;
    assert_eq!(armed.body, b"armed");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (bytes, _) = read_to_end(&mut stream).await;
    assert!(
        bytes.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&bytes)
    );

    // Only that one request: a new connection is served normally.
    let resp = get_at(v4(server.http_port()), "/health").await;
    assert_eq!(resp.body().as_ref(), b"ok");
}

#[tokio::test]
async fn close_mid_body_truncates() {
    let server = server().await;
    let raw = raw_exchange(
        v4(server.http_port()),
        b"GET /close-mid-body/1000 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    assert!(head.contains("content-length: 1000"), "{head}");
    assert_eq!(&raw[head_end..], pattern(500).as_slice());

    // A real client sees an error instead of a complete body.
    let mut sender = client(connect(v4(server.http_port())).await).await;
    let err = send(&mut sender, get("/close-mid-body/200000")).await;
    assert!(err.is_err(), "truncated body must be an error");
}

#[tokio::test]
async fn close_endpoint_closes_the_connection() {
    let server = server().await;
    let mut stream = connect(v4(server.http_port())).await;
    stream
        .write_all(b"GET /close HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let resp = read_response(&mut stream).await;
    assert_eq!(resp.body, b"bye");
    assert_eq!(resp.header("connection"), Some("close"));
    let (rest, _) = read_to_end(&mut stream).await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn mtls_requires_a_client_certificate() {
    let server = server().await;
    let addr = v4(server.mtls_port());
    assert!(server.mtls_url("/health").starts_with("https://localhost:"));

    // Without a certificate: the handshake or the first exchange fails, no response.
    let anonymous = tls_connector(server.ca_file(), None);
    match tls_connect(&anonymous, addr, "localhost").await {
        Err(_) => {}
        Ok(mut tls) => {
            let _ = tls
                .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            let result = tokio::time::timeout(STEP, tls.read_to_end(&mut buf))
                .await
                .unwrap();
            assert!(result.is_err() || buf.is_empty(), "no HTTP without a cert");
        }
    }

    let with_cert = tls_connector(
        server.ca_file(),
        Some((server.client_cert(), server.client_key())),
    );
    let tls = tls_connect(&with_cert, addr, "localhost").await.unwrap();
    let mut sender = client(tls).await;
    let resp = send(&mut sender, get("/health")).await.unwrap();
    assert_eq!(resp.body().as_ref(), b"ok");
}

#[tokio::test]
async fn stats_count_connections_and_requests() {
    let server = server().await;
    let addr = v4(server.http_port());
    let zero = server.stats();
    assert_eq!(zero.requests, 0);
    assert_eq!(zero.accepted, 0);

    let mut a = client(connect(addr).await).await;
    let mut b = client(connect(addr).await).await;
    send(&mut a, get("/health")).await.unwrap();
    send(&mut a, get("/health")).await.unwrap();
    send(&mut b, get("/health")).await.unwrap();
    let stats = server.stats();
    assert_eq!(stats.accepted, 2);
    assert_eq!(stats.open, 2);
    assert_eq!(stats.max_open, 2);
    assert_eq!(stats.requests, 3);

    let resp = send(&mut b, get("/stats")).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["requests"], 4);
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["open"], 2);
    assert_eq!(json["max_open"], 2);

    drop(a);
    let deadline = Instant::now() + STEP;
    while server.stats().open != 1 {
        assert!(Instant::now() < deadline, "open drops back to 1");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.reset_stats();
    let stats = server.stats();
    assert_eq!(
        (stats.accepted, stats.requests, stats.open, stats.max_open),
        (0, 0, 1, 1)
    );

    let resp = send(&mut b, get("/stats/reset")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let req = Request::post("/stats/reset")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send(&mut b, req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.requests, stats.open), (0, 0, 1));
}

#[tokio::test]
async fn raw_listener_answers() {
    let server = server().await;
    let addr = v4(server.raw_port());
    assert!(server
        .raw_url("/malformed")
        .starts_with("http://127.0.0.1:"));
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes();

    assert_eq!(
        raw_exchange(addr, &get("/malformed")).await,
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello"
    );
    assert_eq!(
        raw_exchange(addr, &get("/garbage")).await,
        b"THIS IS NOT HTTP\r\n\r\n"
    );
    assert!(raw_exchange(addr, &get("/close-immediately"))
        .await
        .is_empty());
    let truncated = raw_exchange(addr, &get("/truncated-chunked")).await;
    assert!(truncated.starts_with(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"));
    assert!(truncated.ends_with(b"10\r\nworld"));

    // Anything else: "ok", keep-alive, also over [::1].
    let mut stream = connect(v6(server.raw_port())).await;
    for _ in 0..2 {
        stream
            .write_all(b"POST /other HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
            .await
            .unwrap();
        let resp = read_response(&mut stream).await;
        assert!(resp.head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert_eq!(resp.body, b"ok");
    }
    assert_eq!(server.stats().requests, 6);
}

#[tokio::test]
async fn idle_close_closes_idle_connections_only() {
    let server = server().await;
    let addr = v4(server.idle_close_port());
    assert!(server.idle_close_url("/").starts_with("http://127.0.0.1:"));

    // Busy connection: a request every 50 ms keeps it alive past 200 ms.
    let mut stream = connect(addr).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let resp = read_response(&mut stream).await;
        ids.push(resp.header("x-conn-id").unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ids.iter().all(|id| *id == ids[0]));

    // A slow response is in flight, not idle.
    stream
        .write_all(b"GET /slow/400 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.body, b"slow");

    // Idle: closed after about 200 ms, without a byte.
    let start = Instant::now();
    let (rest, _) = read_to_end(&mut stream).await;
    let waited = start.elapsed();
    assert!(rest.is_empty());
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");

    // The plain listener keeps idle connections.
    let mut stream = connect(v4(server.http_port())).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.body, b"ok");
}

#[tokio::test]
async fn shutdown_stops_listeners_and_connections() {
    let server = server().await;
    let dir = server.dir().to_path_buf();
    assert!(server.ca_file().exists() && server.client_key().exists());
    let mut stream = connect(v4(server.http_port())).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut stream).await;
    let port = server.http_port();
    server.shutdown();
    let (rest, _) = read_to_end(&mut stream).await;
    assert!(rest.is_empty());
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(v4(port)).await.is_err());
    assert!(!dir.exists(), "the temporary folder is removed");
}

#[test]
fn binary_prints_one_json_line_and_exits_on_stdin_eof() {
    let dir = std::env::temp_dir().join(format!("qts-bin-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver-testserver"))
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    for key in [
        "http",
        "https",
        "mtls",
        "raw",
        "idle_close",
        "h2c",
        "h3",
        "h3_reject_early",
        "proxy",
        "proxy_tls",
        "proxy_h3",
        "udp_echo",
        "blackhole",
        "udp_blackhole",
        "socks5",
        "socks5_auth",
        "https_alt",
        "https_alt_blocked",
        "second",
        "second_tls",
    ] {
        assert!(json[key].as_u64().is_some_and(|p| p > 0), "{key}");
    }
    assert_eq!(json["blackhole_has_v6"], true);
    for (key, file) in [("unix_http", "http.sock"), ("unix_h2c", "h2c.sock")] {
        let path = std::path::PathBuf::from(json[key].as_str().unwrap());
        assert_eq!(path, dir.join(file));
        assert!(path.exists(), "{key}");
    }
    for (key, file) in [
        ("ca_file", "ca.crt"),
        ("client_cert", "client.crt"),
        ("client_key", "client.key"),
        ("wrong_ca_file", "wrong-ca.crt"),
    ] {
        let path = std::path::PathBuf::from(json[key].as_str().unwrap());
        assert_eq!(path, dir.join(file));
        assert!(path.exists(), "{key}");
    }

    let port = json["http"].as_u64().unwrap() as u16;
    let mut tcp = std::net::TcpStream::connect(v6(port)).unwrap();
    std::io::Write::write_all(
        &mut tcp,
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut tcp, &mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.ends_with("\r\n\r\nok"));

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
    let _ = std::fs::remove_dir_all(&dir);
}
