//! End-to-end checks of the forward proxy (`proxy`, `proxy_tls`, `proxy_h3`), of the `udp_echo`
//! target, and of the `peer` that `/headers` reports.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::poll_fn;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::*;
use h3::ConnectionState;
use http::{Method, Request, StatusCode};
use quiver_testserver::{Options, ProxyOptions, Stats, TestServer, PROXY_AUTHORIZATION};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WRONG_AUTH: &str = "Basic d3Jvbmc6d3Jvbmc=";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Reads a response head byte by byte (so that nothing after it is consumed).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(STEP, stream.read_u8())
            .await
            .expect("head in time")
            .expect("head byte");
        head.push(byte);
    }
    String::from_utf8(head).expect("utf-8 head")
}

fn status_of(head: &str) -> u16 {
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

fn header_of<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends `CONNECT authority` (with `proxy-authorization: auth` if given) on a fresh connection
/// to the `proxy` listener; returns the connection and the response head.
async fn h1_connect(
    server: &TestServer,
    authority: &str,
    auth: Option<&str>,
) -> (TcpStream, String) {
    let mut tcp = connect(v4(server.proxy_port())).await;
    let auth = auth
        .map(|a| format!("proxy-authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n{auth}\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await;
    (tcp, head)
}

/// A `CONNECT` that must be refused with `status`; returns the response.
async fn h1_connect_refused(
    server: &TestServer,
    authority: &str,
    auth: Option<&str>,
    status: u16,
) -> RawResponse {
    let (mut tcp, head) = h1_connect(server, authority, auth).await;
    assert_eq!(status_of(&head), status, "{head}");
    let len: usize = header_of(&head, "content-length").unwrap().parse().unwrap();
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body).await.unwrap();
    RawResponse { head, body }
}

fn json_of(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("json body")
}

/// The value of header `name` in a `/headers` JSON answer.
fn sent_header<'j>(json: &'j serde_json::Value, name: &str) -> Option<&'j str> {
    json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap())
}

/// The counters once the connections of a test have settled.
async fn settled(server: &TestServer) -> Stats {
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stats()
}

fn put_varint(out: &mut BytesMut, value: u64) {
    if value < 1 << 6 {
        out.put_u8(value as u8);
    } else if value < 1 << 14 {
        out.put_u16(0x4000 | value as u16);
    } else {
        out.put_u32(0x8000_0000 | value as u32);
    }
}

fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut value = u64::from(first & 0x3f);
    for byte in &bytes[1..] {
        value = (value << 8) | u64::from(*byte);
    }
    Some((value, len))
}

/// A capsule: type, length, payload.
fn capsule(kind: u64, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    put_varint(&mut out, kind);
    put_varint(&mut out, payload.len() as u64);
    out.extend_from_slice(payload);
    out.freeze()
}

/// An HTTP datagram payload: context id, then the UDP payload.
fn with_context(context: u64, udp: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_varint(&mut out, context);
    out.extend_from_slice(udp);
    out.to_vec()
}

/// Takes the next whole capsule off `buf`.
fn next_capsule(buf: &mut BytesMut) -> Option<(u64, Bytes)> {
    let (kind, a) = get_varint(buf)?;
    let (len, b) = get_varint(&buf[a..])?;
    if buf.len() < a + b + len as usize {
        return None;
    }
    buf.advance(a + b);
    Some((kind, buf.split_to(len as usize).freeze()))
}

fn masque_path(host: &str, port: u16) -> String {
    format!("/.well-known/masque/udp/{host}/{port}/")
}

/// A port nobody listens on (TCP), a moment ago.
fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1: CONNECT and absolute-form

#[tokio::test]
async fn connect_tunnel_carries_tls_to_the_https_listener() {
    let server = server().await;
    let (tcp, head) =
        h1_connect(&server, &format!("localhost:{}", server.https_port()), None).await;
    assert_eq!(status_of(&head), 200, "{head}");
    let relay = header_of(&head, "x-proxy-relay-addr")
        .expect("relay address")
        .to_owned();
    assert!(relay.starts_with("127.0.0.1:"), "{relay}");

    // TLS with the origin, inside the tunnel.
    let connector = tls_connector(server.ca_file(), None);
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("TLS through the tunnel");
    let mut sender = client(tls).await;
    let resp = send(&mut sender, get("/headers")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let json = json_of(resp.body());
    // The origin sees the proxy's connection, whose local address the proxy announced.
    assert_eq!(json["peer"], relay.as_str());
    assert_eq!(json["version"], "HTTP/1.1");
    // Keep-alive inside the tunnel.
    let resp = send(&mut sender, get("/bytes/100000")).await.unwrap();
    assert_eq!(resp.body().as_ref(), pattern(100_000).as_slice());
    assert_eq!(header(&resp, "x-conn-requests"), "2");

    let stats = settled(&server).await;
    assert_eq!(stats.proxy_connections, 1);
    assert_eq!(stats.proxy_tunnels, 1);
    assert_eq!(stats.proxy_forwarded, 0);
    // Only the proxy's connection to the origin counts as accepted.
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.requests, 2);
}

#[tokio::test]
async fn connect_tunnel_to_ipv6_loopback() {
    let server = server().await;
    if !server.has_ipv6() {
        return;
    }
    let (mut tcp, head) = h1_connect(&server, &format!("[::1]:{}", server.http_port()), None).await;
    assert_eq!(status_of(&head), 200, "{head}");
    let relay = header_of(&head, "x-proxy-relay-addr").unwrap().to_owned();
    assert!(relay.starts_with("[::1]:"), "{relay}");
    tcp.write_all(b"GET /headers HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let resp = read_response(&mut tcp).await;
    assert_eq!(json_of(&resp.body)["peer"], relay.as_str());
}

#[tokio::test]
async fn absolute_form_requests_are_forwarded() {
    let server = server().await;
    let proxy = connect(v4(server.proxy_port())).await;
    let local = proxy.local_addr().unwrap();
    let mut sender = client(proxy).await;
    let origin = format!("http://127.0.0.1:{}", server.http_port());

    let req = Request::get(format!("{origin}/headers?x=1"))
        .header("host", format!("127.0.0.1:{}", server.http_port()))
        .header("proxy-authorization", PROXY_AUTHORIZATION)
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("x-end", "2")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = send(&mut sender, req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let json = json_of(resp.body());
    assert_eq!(json["path"], "/headers");
    assert_eq!(json["query"], "x=1");
    assert_eq!(sent_header(&json, "x-end"), Some("2"));
    for hop in ["x-hop", "connection", "proxy-authorization"] {
        assert_eq!(sent_header(&json, hop), None, "{hop} reached the origin");
    }
    assert_eq!(
        sent_header(&json, "host"),
        Some(format!("127.0.0.1:{}", server.http_port()).as_str())
    );
    // The origin sees the proxy's own connection, not ours.
    let peer = json["peer"].as_str().unwrap();
    assert!(peer.starts_with("127.0.0.1:"));
    assert_ne!(peer, local.to_string());
    // The origin's headers come back unchanged.
    assert!(resp.headers().contains_key("x-conn-id"));

    // A streamed (chunked) body, and an upload, on the same proxy connection.
    let resp = send(
        &mut sender,
        get(&format!("{origin}/bytes/200000?chunked=1")),
    )
    .await
    .unwrap();
    assert_eq!(resp.body().as_ref(), pattern(200_000).as_slice());
    let req = Request::post(format!("{origin}/echo"))
        .header("host", "127.0.0.1")
        .header("content-type", "text/x-test")
        .body(http_body_util::Full::new(Bytes::from(pattern(50_000))))
        .unwrap();
    let resp = send(&mut sender, req).await.unwrap();
    assert_eq!(header(&resp, "content-type"), "text/x-test");
    assert_eq!(resp.body().as_ref(), pattern(50_000).as_slice());

    // Not a proxy request: 400; https:// is not forwarded.
    let resp = send(&mut sender, get("/health")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let https = format!("https://localhost:{}/health", server.https_port());
    let resp = send(&mut sender, get(&https)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let stats = settled(&server).await;
    assert_eq!(stats.proxy_connections, 1);
    assert_eq!(stats.proxy_forwarded, 3);
    assert_eq!(stats.proxy_auth_seen, 1);
    assert_eq!(stats.proxy_tunnels, 0);
    // A fresh connection to the origin per forwarded request.
    assert_eq!(stats.accepted, 3);
}

#[tokio::test]
async fn proxy_authorization_is_checked() {
    let server = server().await;
    let target = format!("127.0.0.1:{}", server.http_port());

    let refused = h1_connect_refused(&server, &target, Some(WRONG_AUTH), 407).await;
    assert!(refused
        .header("proxy-authenticate")
        .unwrap()
        .starts_with("Basic"));
    let (mut tcp, head) = h1_connect(&server, &target, Some(PROXY_AUTHORIZATION)).await;
    assert_eq!(status_of(&head), 200, "{head}");
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut tcp).await.body, b"ok");
    // No header at all is fine too.
    let (_tcp, head) = h1_connect(&server, &target, None).await;
    assert_eq!(status_of(&head), 200, "{head}");

    // Absolute form.
    let mut sender = client(connect(v4(server.proxy_port())).await).await;
    let req = Request::get(format!("http://{target}/health"))
        .header("host", &target)
        .header("proxy-authorization", WRONG_AUTH)
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = send(&mut sender, req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);

    let stats = settled(&server).await;
    assert_eq!(stats.proxy_auth_seen, 3);
    assert_eq!(stats.proxy_tunnels, 2);
    assert_eq!(stats.proxy_forwarded, 0);
    assert_eq!(stats.proxy_connections, 4);
}

#[tokio::test]
async fn non_loopback_targets_are_forbidden() {
    let server = server().await;
    for target in [
        "example.com:443",
        "192.0.2.1:80",
        "[2001:db8::1]:443",
        "10.0.0.1:22",
    ] {
        h1_connect_refused(&server, target, None, 403).await;
    }
    // No port: 400.
    h1_connect_refused(&server, "127.0.0.1", None, 400).await;
    let mut sender = client(connect(v4(server.proxy_port())).await).await;
    let resp = send(&mut sender, get("http://example.com/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let stats = settled(&server).await;
    assert_eq!(stats.proxy_tunnels, 0);
    assert_eq!(stats.proxy_forwarded, 0);
    assert_eq!(stats.accepted, 0);
}

#[tokio::test]
async fn refused_targets_are_bad_gateway() {
    let server = server().await;
    let port = refused_port();
    h1_connect_refused(&server, &format!("127.0.0.1:{port}"), None, 502).await;
    let mut sender = client(connect(v4(server.proxy_port())).await).await;
    let resp = send(&mut sender, get(&format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    // The proxy connection survives a refusal.
    let resp = send(
        &mut sender,
        get(&format!("http://127.0.0.1:{}/health", server.http_port())),
    )
    .await
    .unwrap();
    assert_eq!(resp.body().as_ref(), b"ok");
    let stats = settled(&server).await;
    assert_eq!(stats.proxy_tunnels, 0);
    assert_eq!(stats.proxy_forwarded, 1);
}

#[tokio::test]
async fn dial_delay_is_honoured() {
    let delay = Duration::from_millis(300);
    let server = TestServer::start(Options {
        proxy: ProxyOptions { dial_delay: delay },
        ..Options::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let (_tcp, head) =
        h1_connect(&server, &format!("127.0.0.1:{}", server.http_port()), None).await;
    assert_eq!(status_of(&head), 200);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());

    // Over HTTP/2 as well.
    let h2 = H2Proxy::new(&server).await;
    let started = Instant::now();
    let (status, _, _) = h2
        .connect(&format!("127.0.0.1:{}", server.http_port()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 on proxy_tls

/// An HTTP/2 client connection to `proxy_tls`.
struct H2Proxy {
    send: h2::client::SendRequest<Bytes>,
    port: u16,
}

type H2Tunnel = (h2::SendStream<Bytes>, h2::RecvStream);

impl H2Proxy {
    async fn new(server: &TestServer) -> H2Proxy {
        let connector = tls_connector_alpn(server.ca_file(), None, &[b"h2", b"http/1.1"]);
        let tls = tls_connect(&connector, v4(server.proxy_tls_port()), "localhost")
            .await
            .expect("tls");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (send, conn) = tokio::time::timeout(STEP, h2::client::handshake(tls))
            .await
            .unwrap()
            .unwrap();
        tokio::spawn(conn);
        H2Proxy {
            send,
            port: server.proxy_tls_port(),
        }
    }

    /// Sends `req` (the stream left open); returns the response head and the stream.
    async fn open(&self, req: Request<()>) -> (http::response::Parts, H2Tunnel) {
        let mut send = self.send.clone().ready().await.unwrap();
        let (resp, stream) = send.send_request(req, false).unwrap();
        let resp = tokio::time::timeout(STEP, resp).await.unwrap().unwrap();
        let (parts, recv) = resp.into_parts();
        (parts, (stream, recv))
    }

    /// A plain CONNECT to `authority` (with `extra` headers).
    async fn connect_with(
        &self,
        authority: &str,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, H2Tunnel) {
        let mut req = Request::builder().method(Method::CONNECT).uri(authority);
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        let (parts, tunnel) = self.open(req.body(()).unwrap()).await;
        let relay = parts
            .headers
            .get("x-proxy-relay-addr")
            .map(|v| v.to_str().unwrap().to_owned());
        (parts.status, relay, tunnel)
    }

    async fn connect(&self, authority: &str) -> (StatusCode, Option<String>, H2Tunnel) {
        self.connect_with(authority, &[]).await
    }

    /// Waits for the server's SETTINGS_ENABLE_CONNECT_PROTOCOL.
    async fn wait_for_extended_connect(&self) {
        let deadline = Instant::now() + STEP;
        while !self.send.is_extended_connect_protocol_enabled() {
            assert!(
                Instant::now() < deadline,
                "no SETTINGS_ENABLE_CONNECT_PROTOCOL"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// An extended CONNECT `connect-udp` on `path`.
    async fn connect_udp(&self, path: &str) -> (http::response::Parts, H2Tunnel) {
        self.wait_for_extended_connect().await;
        let req = Request::builder()
            .method(Method::CONNECT)
            .uri(format!("https://localhost:{}{path}", self.port))
            .header("capsule-protocol", "?1")
            .extension(h2::ext::Protocol::from_static("connect-udp"))
            .body(())
            .unwrap();
        self.open(req).await
    }
}

/// Reads DATA until the end of the stream.
async fn read_to_end_h2(recv: &mut h2::RecvStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(data) = tokio::time::timeout(STEP, recv.data())
        .await
        .expect("data in time")
    {
        let data = data.expect("data");
        let _ = recv.flow_control().release_capacity(data.len());
        out.extend_from_slice(&data);
    }
    out
}

#[tokio::test]
async fn h2_connect_tunnels_tcp() {
    let server = server().await;
    let h2 = H2Proxy::new(&server).await;
    let target = format!("127.0.0.1:{}", server.http_port());

    // Two tunnels on one connection, at once.
    let (status, relay_a, (mut send_a, mut recv_a)) = h2.connect(&target).await;
    assert_eq!(status, StatusCode::OK);
    let (status, relay_b, (mut send_b, mut recv_b)) = h2.connect(&target).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(relay_a, relay_b);

    send_b
        .send_data(
            Bytes::from_static(
                b"GET /bytes/300000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            ),
            false,
        )
        .unwrap();
    send_a
        .send_data(
            Bytes::from_static(b"GET /headers HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
            false,
        )
        .unwrap();
    // Both at once: the client's connection window (64 KiB) is shared by the two streams.
    let (answer_a, answer_b) =
        tokio::join!(read_to_end_h2(&mut recv_a), read_to_end_h2(&mut recv_b));
    let split = |answer: &[u8]| {
        let at = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(answer)))
            + 4;
        (
            String::from_utf8(answer[..at].to_vec()).unwrap(),
            answer[at..].to_vec(),
        )
    };
    let (head, body) = split(&answer_a);
    assert_eq!(status_of(&head), 200, "{head}");
    assert_eq!(json_of(&body)["peer"], relay_a.unwrap().as_str());
    let (head, body) = split(&answer_b);
    assert_eq!(status_of(&head), 200, "{head}");
    assert_eq!(body, pattern(300_000));
    // The origin closed its side: so did the proxy (END_STREAM); now the client ends its own.
    send_a.send_data(Bytes::new(), true).unwrap();
    send_b.send_data(Bytes::new(), true).unwrap();

    // An upload larger than the windows goes through (flow control both ways).
    let (status, _, (mut send, mut recv)) = h2.connect(&target).await;
    assert_eq!(status, StatusCode::OK);
    let size = 3 << 20;
    let head = format!(
        "POST /sink HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {size}\r\n\r\n"
    );
    let mut upload = BytesMut::from(head.as_bytes());
    upload.extend_from_slice(&pattern(size));
    // The stream stays open: its END_STREAM would reach the origin as a FIN, and hyper closes
    // a connection whose client half-closed it.
    send.send_data(upload.freeze(), false).unwrap();
    let answer = read_to_end_h2(&mut recv).await;
    let (head, body) = split(&answer);
    assert_eq!(status_of(&head), 200, "{head}");
    assert_eq!(json_of(&body)["received"], size as u64);
    send.send_data(Bytes::new(), true).unwrap();

    // Refusals.
    let (status, _, _) = h2
        .connect_with(&target, &[("proxy-authorization", WRONG_AUTH)])
        .await;
    assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    let (status, _, _) = h2.connect("example.com:443").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h2.connect(&format!("127.0.0.1:{}", refused_port())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (status, _, _) = h2
        .connect_with(&target, &[("proxy-authorization", PROXY_AUTHORIZATION)])
        .await;
    assert_eq!(status, StatusCode::OK);

    let stats = settled(&server).await;
    assert_eq!(stats.proxy_connections, 1);
    assert_eq!(stats.proxy_tunnels, 4);
    assert_eq!(stats.proxy_auth_seen, 2);
}

#[tokio::test]
async fn h2_forwards_http_scheme_requests() {
    let server = server().await;
    let h2 = H2Proxy::new(&server).await;
    let req = Request::get(format!("http://127.0.0.1:{}/headers", server.http_port()))
        .header("x-end", "1")
        .body(())
        .unwrap();
    let (parts, (_send, mut recv)) = h2.open(req).await;
    assert_eq!(parts.status, StatusCode::OK);
    let json = json_of(&read_to_end_h2(&mut recv).await);
    assert_eq!(json["version"], "HTTP/1.1");
    assert_eq!(sent_header(&json, "x-end"), Some("1"));
    assert_eq!(
        sent_header(&json, "host"),
        Some(format!("127.0.0.1:{}", server.http_port()).as_str())
    );
    // An https request to the proxy itself is no proxy request.
    let req = Request::get(format!(
        "https://localhost:{}/health",
        server.proxy_tls_port()
    ))
    .body(())
    .unwrap();
    let (parts, _) = h2.open(req).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert_eq!(settled(&server).await.proxy_forwarded, 1);
}

#[tokio::test]
async fn proxy_tls_speaks_http1_too() {
    let server = server().await;
    let connector = tls_connector(server.ca_file(), None);
    let mut tls = tls_connect(&connector, v4(server.proxy_tls_port()), "localhost")
        .await
        .unwrap();
    let target = format!("127.0.0.1:{}", server.http_port());
    tls.write_all(format!("CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tls).await;
    assert_eq!(status_of(&head), 200, "{head}");
    tls.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut tls).await.body, b"ok");
}

#[tokio::test]
async fn h2_connect_udp_relays_capsules() {
    let server = server().await;
    let h2 = H2Proxy::new(&server).await;
    let (parts, (mut send, mut recv)) = h2
        .connect_udp(&masque_path("127.0.0.1", server.udp_echo_port()))
        .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers["capsule-protocol"], "?1");
    let relay = parts.headers["x-proxy-relay-addr"].to_str().unwrap();
    assert!(relay.starts_with("127.0.0.1:"), "{relay}");

    // Ignored: an unknown capsule type, and a DATAGRAM with another context id.
    let mut out = BytesMut::new();
    out.extend_from_slice(&capsule(0x2a3b, b"unknown capsule"));
    out.extend_from_slice(&capsule(0, &with_context(1, b"context 1")));
    let total = 100;
    let mut expected = HashSet::new();
    for i in 0..total {
        let payload = format!("datagram {i:03} {}", "x".repeat(i * 7));
        out.extend_from_slice(&capsule(0, &with_context(0, payload.as_bytes())));
        expected.insert(payload.into_bytes());
    }
    send.send_data(out.freeze(), false).unwrap();

    let mut received = HashSet::new();
    let mut buf = BytesMut::new();
    let deadline = tokio::time::Instant::now() + STEP;
    while received.len() < total {
        let data = tokio::time::timeout_at(deadline, recv.data())
            .await
            .expect("all datagrams back in time")
            .expect("stream open")
            .unwrap();
        let _ = recv.flow_control().release_capacity(data.len());
        buf.extend_from_slice(&data);
        while let Some((kind, payload)) = next_capsule(&mut buf) {
            assert_eq!(kind, 0, "only DATAGRAM capsules come back");
            let (context, len) = get_varint(&payload).unwrap();
            assert_eq!(context, 0);
            received.insert(payload[len..].to_vec());
        }
    }
    assert_eq!(received, expected);

    // Ending the stream ends the tunnel: the proxy ends its side.
    send.send_data(Bytes::new(), true).unwrap();
    let rest = read_to_end_h2(&mut recv).await;
    assert!(rest.is_empty(), "{rest:?}");

    let stats = settled(&server).await;
    assert_eq!(stats.udp_echoed, total as u64);
    assert_eq!(stats.proxy_tunnels, 1);

    // To [::1], percent-encoded.
    if server.has_ipv6() {
        let (parts, (mut send, mut recv)) = h2
            .connect_udp(&masque_path("%3A%3A1", server.udp_echo_port()))
            .await;
        assert_eq!(parts.status, StatusCode::OK);
        assert!(parts.headers["x-proxy-relay-addr"]
            .to_str()
            .unwrap()
            .starts_with("[::1]:"));
        send.send_data(capsule(0, &with_context(0, b"six")), false)
            .unwrap();
        let data = tokio::time::timeout(STEP, recv.data())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(data, capsule(0, &with_context(0, b"six")));
    }

    // Refusals: a bad port, a non-loopback target, another path, bad auth.
    let (parts, _) = h2.connect_udp("/.well-known/masque/udp/127.0.0.1/0/").await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    let (parts, _) = h2.connect_udp(&masque_path("192.0.2.7", 53)).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    let (parts, _) = h2.connect_udp("/somewhere/else").await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri(format!(
            "https://localhost:{}{}",
            server.proxy_tls_port(),
            masque_path("127.0.0.1", server.udp_echo_port())
        ))
        .header("proxy-authorization", WRONG_AUTH)
        .extension(h2::ext::Protocol::from_static("connect-udp"))
        .body(())
        .unwrap();
    assert_eq!(
        h2.open(req).await.0.status,
        StatusCode::PROXY_AUTHENTICATION_REQUIRED
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP/3 on proxy_h3

type H3Send = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type H3Stream = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// An HTTP/3 client connection with datagrams and extended CONNECT.
struct H3Proxy {
    quic: quinn::Connection,
    send: H3Send,
    port: u16,
    _endpoint: quinn::Endpoint,
}

impl H3Proxy {
    async fn connect_to(server: &TestServer, port: u16) -> H3Proxy {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(server.ca_file()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls)).unwrap();
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport.datagram_receive_buffer_size(Some(4 << 20));
        config.transport_config(Arc::new(transport));
        endpoint.set_default_client_config(config);
        let quic = tokio::time::timeout(STEP, endpoint.connect(v4(port), "localhost").unwrap())
            .await
            .unwrap()
            .unwrap();
        let (mut driver, send) = tokio::time::timeout(
            STEP,
            h3::client::builder()
                .enable_datagram(true)
                .enable_extended_connect(true)
                .build::<_, _, Bytes>(h3_quinn::Connection::new(quic.clone())),
        )
        .await
        .unwrap()
        .unwrap();
        tokio::spawn(async move { poll_fn(|cx| driver.poll_close(cx)).await });
        H3Proxy {
            quic,
            send,
            port,
            _endpoint: endpoint,
        }
    }

    async fn connect(server: &TestServer) -> H3Proxy {
        let client = H3Proxy::connect_to(server, server.proxy_h3_port()).await;
        let deadline = Instant::now() + STEP;
        while !client.send.settings().enable_datagram() {
            assert!(Instant::now() < deadline, "no SETTINGS_H3_DATAGRAM");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client
    }

    /// Sends `req`; returns the response head, the stream and its id.
    async fn open(&self, req: Request<()>) -> (http::Response<()>, H3Stream, u64) {
        let mut send = self.send.clone();
        let mut stream = send.send_request(req).await.unwrap();
        // Before any read: h3-quinn's `id()` panics while a read is in flight.
        let id = stream.id().into_inner();
        let head = tokio::time::timeout(STEP, stream.recv_response())
            .await
            .unwrap()
            .unwrap();
        (head, stream, id)
    }

    fn connect_udp_request(&self, path: &str, auth: Option<&str>) -> Request<()> {
        let mut req = Request::builder()
            .method(Method::CONNECT)
            .uri(format!("https://localhost:{}{path}", self.port))
            .header("capsule-protocol", "?1")
            .extension(h3::ext::Protocol::CONNECT_UDP);
        if let Some(auth) = auth {
            req = req.header("proxy-authorization", auth);
        }
        req.body(()).unwrap()
    }
}

/// An HTTP/3 datagram for `stream_id` carrying `payload` (encoded by hand: h3-datagram 0.0.2
/// writes a zero quarter stream id whatever the stream).
fn h3_datagram(stream_id: u64, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    put_varint(&mut out, stream_id / 4);
    out.extend_from_slice(payload);
    out.freeze()
}

#[tokio::test]
async fn h3_connect_udp_hundred_tunnels_on_one_connection() {
    let server = server().await;
    let client = H3Proxy::connect(&server).await;
    let path = masque_path("127.0.0.1", server.udp_echo_port());

    let opened = futures_util::future::join_all((0..100).map(|_| {
        let req = client.connect_udp_request(&path, None);
        client.open(req)
    }))
    .await;
    let mut tunnels = Vec::new();
    let mut relays = HashSet::new();
    for (head, stream, id) in opened {
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()["capsule-protocol"], "?1");
        relays.insert(
            head.headers()["x-proxy-relay-addr"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        tunnels.push((stream, id));
    }
    assert_eq!(relays.len(), 100, "one UDP socket per tunnel");
    assert_eq!(server.stats().proxy_tunnels, 100);

    // Every tunnel echoes its own datagram (resent until it comes back: UDP may lose one).
    let reader = {
        let quic = client.quic.clone();
        tokio::spawn(async move {
            let mut back: HashMap<u64, Vec<Bytes>> = HashMap::new();
            while let Ok(bytes) = quic.read_datagram().await {
                let d = h3_datagram::datagram::Datagram::decode(bytes).expect("decodes");
                back.entry(d.stream_id().into_inner())
                    .or_default()
                    .push(d.into_payload());
                if back.len() == 100 {
                    break;
                }
            }
            back
        })
    };
    let payload = |id: u64| with_context(0, format!("tunnel {id}").as_bytes());
    let deadline = Instant::now() + STEP;
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "not every tunnel echoed");
        for (_, id) in &tunnels {
            // Also ignored: a datagram with another context id.
            client
                .quic
                .send_datagram(h3_datagram(*id, &with_context(5, b"no")))
                .unwrap();
            client
                .quic
                .send_datagram(h3_datagram(*id, &payload(*id)))
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let back = reader.await.unwrap();
    for (_, id) in &tunnels {
        let got = back.get(id).expect("echoed");
        assert!(
            got.iter().all(|p| p.as_ref() == payload(*id).as_slice()),
            "{id}: {got:?}"
        );
    }

    // Ending the streams ends the tunnels: the proxy ends its side of each.
    for (stream, _) in &mut tunnels {
        stream.finish().await.unwrap();
    }
    for (stream, id) in &mut tunnels {
        let end = tokio::time::timeout(STEP, stream.recv_data())
            .await
            .expect("end in time");
        assert!(matches!(end, Ok(None)), "{id}");
    }
    let echoed = settled(&server).await.udp_echoed;
    assert!(echoed >= 100);
    // Datagrams for finished tunnels go nowhere.
    for (_, id) in &tunnels {
        client
            .quic
            .send_datagram(h3_datagram(*id, &payload(*id)))
            .unwrap();
    }
    let stats = settled(&server).await;
    assert_eq!(stats.udp_echoed, echoed);
    assert_eq!(stats.proxy_connections, 1);
    assert_eq!(stats.proxy_tunnels, 100);
}

#[tokio::test]
async fn h3_refusals() {
    let server = server().await;
    let client = H3Proxy::connect(&server).await;
    let echo = server.udp_echo_port();
    let client = &client;
    let status = move |path: String, auth: Option<&'static str>| {
        let req = client.connect_udp_request(&path, auth);
        async move { client.open(req).await.0.status() }
    };
    assert_eq!(
        status(masque_path("127.0.0.1", echo), Some(WRONG_AUTH)).await,
        StatusCode::PROXY_AUTHENTICATION_REQUIRED
    );
    assert_eq!(
        status(masque_path("127.0.0.1", echo), Some(PROXY_AUTHORIZATION)).await,
        StatusCode::OK
    );
    assert_eq!(
        status(masque_path("example.com", 53), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(masque_path("localhost", 0), None).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status("/not/masque".to_owned(), None).await,
        StatusCode::NOT_FOUND
    );
    let req = Request::get(format!(
        "https://localhost:{}/health",
        server.proxy_h3_port()
    ))
    .body(())
    .unwrap();
    assert_eq!(client.open(req).await.0.status(), StatusCode::BAD_REQUEST);
    let stats = server.stats();
    assert_eq!(stats.proxy_auth_seen, 2);
    assert_eq!(stats.proxy_tunnels, 1);
}

// ---------------------------------------------------------------------------------------------
// udp_echo, /headers "peer", the binary

#[tokio::test]
async fn udp_echo_sends_datagrams_back() {
    let server = server().await;
    let mut addrs = vec![server.udp_echo_addr()];
    if server.has_ipv6() {
        addrs.push(v6(server.udp_echo_port()));
    }
    for addr in addrs {
        let local: SocketAddr = if addr.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        }
        .parse()
        .unwrap();
        let socket = UdpSocket::bind(local).await.unwrap();
        socket.send_to(b"ping", addr).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(STEP, socket.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from, addr);
    }
    assert_eq!(
        server.stats().udp_echoed,
        if server.has_ipv6() { 2 } else { 1 }
    );
}

#[tokio::test]
async fn headers_report_the_peer() {
    let server = server().await;
    // HTTP/1.1.
    let tcp = connect(v4(server.http_port())).await;
    let local = tcp.local_addr().unwrap().to_string();
    let mut sender = client(tcp).await;
    let resp = send(&mut sender, get("/headers")).await.unwrap();
    assert_eq!(json_of(resp.body())["peer"], local.as_str());
    // HTTP/2 (h2c).
    let tcp = connect(v4(server.h2c_port())).await;
    let local = tcp.local_addr().unwrap().to_string();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let (resp, _) = send
        .send_request(
            Request::get("http://localhost/headers").body(()).unwrap(),
            true,
        )
        .unwrap();
    let mut recv = resp.await.unwrap().into_body();
    assert_eq!(
        json_of(&read_to_end_h2(&mut recv).await)["peer"],
        local.as_str()
    );
    // HTTP/3: the QUIC remote address.
    let client = H3Proxy::connect_to(&server, server.h3_port()).await;
    let local = client._endpoint.local_addr().unwrap().to_string();
    let req = Request::get(format!("https://localhost:{}/headers", server.h3_port()))
        .body(())
        .unwrap();
    let (head, mut stream, _) = client.open(req).await;
    assert_eq!(head.status(), StatusCode::OK);
    stream.finish().await.unwrap();
    let mut body = Vec::new();
    while let Some(mut chunk) = stream.recv_data().await.unwrap() {
        body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
    }
    assert_eq!(json_of(&body)["peer"], local.as_str());
}

#[test]
fn binary_announces_the_proxy_and_takes_its_flag() {
    let bin = env!("CARGO_BIN_EXE_quiver-testserver");
    for bad in [
        &["--proxy-dial-delay-ms", "soon"][..],
        &["--proxy-dial-delay-ms"][..],
    ] {
        let status = Command::new(bin)
            .args(bad)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(2), "{bad:?}");
    }
    let mut child = Command::new(bin)
        .arg("--proxy-dial-delay-ms=200")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    let port = |key: &str| json[key].as_u64().unwrap_or_else(|| panic!("{key}")) as u16;
    for key in ["proxy", "proxy_tls", "proxy_h3", "udp_echo"] {
        assert!(port(key) > 0, "{key}");
    }

    let started = Instant::now();
    let mut tcp = std::net::TcpStream::connect(v4(port("proxy"))).unwrap();
    let target = format!("127.0.0.1:{}", port("http"));
    std::io::Write::write_all(
        &mut tcp,
        format!("CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut tcp, &mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(started.elapsed() >= Duration::from_millis(200));

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(STEP)).unwrap();
    udp.send_to(b"echo?", v4(port("udp_echo"))).unwrap();
    let mut buf = [0u8; 16];
    let n = udp.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"echo?");

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}
