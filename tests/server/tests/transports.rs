//! End-to-end checks of the black holes (`blackhole`, `udp_blackhole`), the SOCKS5 proxies
//! (`socks5`, `socks5_auth`), the Unix sockets (`http.sock`, `h2c.sock`) and Alt-Svc
//! (`https_alt`, `https_alt_blocked`, `/alt-svc`).

mod common;

use std::future::poll_fn;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use common::*;
use http::{HeaderMap, Request, StatusCode};
use quiver_testserver::{TestServer, SOCKS5_PASSWORD, SOCKS5_USERNAME};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixStream};

/// How long a connect that should hang is given.
const HANG: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// Black holes

#[tokio::test]
async fn blackhole_hangs_connects_but_answers_on_127_0_0_1() {
    let server = server().await;
    let port = server.blackhole_port();
    assert!(port > 0);
    assert_ne!(port, server.http_port());

    let hole = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), port));
    assert!(
        tokio::time::timeout(HANG, TcpStream::connect(hole))
            .await
            .is_err(),
        "a connect to {hole} hangs"
    );
    assert!(server.blackhole_has_v6(), "this host has ::1");
    assert!(
        tokio::time::timeout(HANG, TcpStream::connect(v6(port)))
            .await
            .is_err(),
        "a connect to [::1]:{port} hangs"
    );

    // 127.0.0.1 is the `http` listener's twin, as often as asked.
    for path in ["/", "/health"] {
        let resp = get_at(v4(port), path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.body().as_ref(), b"ok");
        assert!(resp.headers().contains_key("x-conn-id"));
    }
    let resp = get_at(v4(port), "/bytes/1000").await;
    assert_eq!(resp.body().as_ref(), pattern(1000).as_slice());

    // Still black after being tried.
    assert!(tokio::time::timeout(HANG, TcpStream::connect(hole))
        .await
        .is_err());
}

#[tokio::test]
async fn udp_blackhole_swallows_datagrams_without_a_word() {
    let server = server().await;
    let port = server.udp_blackhole_port();
    assert!(port > 0);
    let before = server.stats().udp_blackholed;
    for (local, target) in [("127.0.0.1:0", v4(port)), ("[::1]:0", v6(port))] {
        let socket = UdpSocket::bind(local).await.unwrap();
        socket.connect(target).await.unwrap();
        socket.send(b"hello?").await.unwrap();
        let mut buf = [0u8; 64];
        // No answer and no ICMP port unreachable (which a connected socket would report as an
        // error from `recv`).
        let recv = tokio::time::timeout(HANG, socket.recv(&mut buf)).await;
        assert!(recv.is_err(), "{target}: {recv:?}");
        socket.send(b"still there?").await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + STEP;
    while server.stats().udp_blackholed < before + 4 {
        assert!(tokio::time::Instant::now() < deadline, "datagrams counted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// SOCKS5

/// A CONNECT request for the target written as `atyp` + `addr`, to `port`.
fn socks_request(command: u8, atyp: u8, addr: &[u8], port: u16) -> Vec<u8> {
    let mut out = vec![5, command, 0, atyp];
    if atyp == 3 {
        out.push(u8::try_from(addr.len()).unwrap());
    }
    out.extend_from_slice(addr);
    out.extend_from_slice(&port.to_be_bytes());
    out
}

/// Reads a reply (`VER REP RSV ATYP BND.ADDR BND.PORT`); returns REP and the bound address.
async fn read_socks_reply(stream: &mut TcpStream) -> (u8, SocketAddr) {
    let mut head = [0u8; 4];
    tokio::time::timeout(STEP, stream.read_exact(&mut head))
        .await
        .expect("reply in time")
        .expect("reply");
    assert_eq!(head[0], 5, "version");
    assert_eq!(head[2], 0, "reserved");
    let bound = match head[3] {
        1 => {
            let mut rest = [0u8; 6];
            stream.read_exact(&mut rest).await.unwrap();
            let ip: [u8; 4] = rest[..4].try_into().unwrap();
            SocketAddr::from((ip, u16::from_be_bytes([rest[4], rest[5]])))
        }
        4 => {
            let mut rest = [0u8; 18];
            stream.read_exact(&mut rest).await.unwrap();
            let ip: [u8; 16] = rest[..16].try_into().unwrap();
            SocketAddr::from((ip, u16::from_be_bytes([rest[16], rest[17]])))
        }
        other => panic!("address type {other} in a reply"),
    };
    (head[1], bound)
}

async fn read_exactly<const N: usize>(stream: &mut TcpStream) -> [u8; N] {
    let mut buf = [0u8; N];
    tokio::time::timeout(STEP, stream.read_exact(&mut buf))
        .await
        .expect("read in time")
        .expect("read");
    buf
}

/// Asserts that the server closes `stream` with nothing more to say.
async fn assert_closed(stream: &mut TcpStream) {
    let (rest, _) = read_to_end(stream).await;
    assert!(rest.is_empty(), "nothing after the refusal: {rest:?}");
}

/// Opens a SOCKS5 session on `socks5` (no authentication) up to the request.
async fn socks_session(server: &TestServer) -> TcpStream {
    let mut stream = connect(v4(server.socks5_port())).await;
    stream.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_exactly::<2>(&mut stream).await, [5, 0]);
    stream
}

/// Opens a SOCKS5 session on `socks5_auth` with `user` / `pass`; returns the auth status.
async fn socks_auth_session(server: &TestServer, user: &str, pass: &str) -> (TcpStream, u8) {
    let mut stream = connect(v4(server.socks5_auth_port())).await;
    stream.write_all(&[5, 2, 0, 2]).await.unwrap();
    assert_eq!(read_exactly::<2>(&mut stream).await, [5, 2]);
    let mut auth = vec![1, u8::try_from(user.len()).unwrap()];
    auth.extend_from_slice(user.as_bytes());
    auth.push(u8::try_from(pass.len()).unwrap());
    auth.extend_from_slice(pass.as_bytes());
    stream.write_all(&auth).await.unwrap();
    let [version, status] = read_exactly::<2>(&mut stream).await;
    assert_eq!(version, 1);
    (stream, status)
}

#[tokio::test]
async fn socks5_connect_by_name_then_http_through_it() {
    let server = server().await;
    let port = server.http_port();
    let mut stream = socks_session(&server).await;
    stream
        .write_all(&socks_request(1, 3, b"localhost", port))
        .await
        .unwrap();
    let (code, bound) = read_socks_reply(&mut stream).await;
    assert_eq!(code, 0, "succeeded");
    assert!(bound.ip().is_loopback() && bound.port() > 0, "{bound}");

    let mut sender = client(stream).await;
    let resp = send(&mut sender, get("/headers")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    // The origin sees the proxy's socket, whose address the reply gave.
    assert_eq!(json["peer"], bound.to_string());
    let resp = send(&mut sender, get("/health")).await.unwrap();
    assert_eq!(resp.body().as_ref(), b"ok");

    let stats = server.stats();
    assert_eq!(stats.socks_connects, 1);
    assert_eq!(stats.socks_connections, 1);
    let target = format!("domain localhost:{port}");
    assert_eq!(server.socks_last_target().as_deref(), Some(target.as_str()));
    // And over HTTP, for the bindings' tests.
    let stats = get_at(v4(server.http_port()), "/stats").await;
    let json: serde_json::Value = serde_json::from_slice(stats.body()).unwrap();
    assert_eq!(json["socks_connects"], 1);
    assert_eq!(json["socks_last_target"], target.as_str());
}

#[tokio::test]
async fn socks5_connect_by_address_records_the_family() {
    let server = server().await;
    let port = server.http_port();
    for (atyp, addr, expected) in [
        (1, vec![127, 0, 0, 1], format!("ipv4 127.0.0.1:{port}")),
        (
            4,
            std::net::Ipv6Addr::LOCALHOST.octets().to_vec(),
            format!("ipv6 [::1]:{port}"),
        ),
    ] {
        let mut stream = socks_session(&server).await;
        stream
            .write_all(&socks_request(1, atyp, &addr, port))
            .await
            .unwrap();
        let (code, _) = read_socks_reply(&mut stream).await;
        assert_eq!(code, 0, "{expected}");
        assert_eq!(server.socks_last_target(), Some(expected));
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut stream).await.body, b"ok");
    }
    assert_eq!(server.stats().socks_connects, 2);
    server.reset_stats();
    assert_eq!(server.socks_last_target(), None);
    let stats = get_at(v4(server.http_port()), "/stats").await;
    let json: serde_json::Value = serde_json::from_slice(stats.body()).unwrap();
    assert!(json["socks_last_target"].is_null(), "{json}");
}

#[tokio::test]
async fn socks5_refusals() {
    let server = server().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // Connection refused (0x05); an address off the host (not allowed, 0x02); UDP ASSOCIATE
    // and BIND (command not supported, 0x07); an unknown address type (0x08).
    for (request, expected) in [
        (socks_request(1, 1, &[127, 0, 0, 1], closed_port), 5),
        (socks_request(1, 1, &[192, 0, 2, 1], 80), 2),
        (socks_request(3, 1, &[0, 0, 0, 0], 0), 7),
        (socks_request(2, 1, &[127, 0, 0, 1], server.http_port()), 7),
        (vec![5, 1, 0, 9, 1, 2, 3], 8),
    ] {
        let mut stream = socks_session(&server).await;
        stream.write_all(&request).await.unwrap();
        let (code, _) = read_socks_reply(&mut stream).await;
        assert_eq!(code, expected, "{request:?}");
        assert_closed(&mut stream).await;
    }
    assert_eq!(server.stats().socks_connects, 0);
    // The failed CONNECT is recorded still; BIND and ASSOCIATE are not.
    assert_eq!(
        server.socks_last_target(),
        Some("ipv4 192.0.2.1:80".to_owned())
    );

    // `socks5` does not take username/password only.
    let mut stream = connect(v4(server.socks5_port())).await;
    stream.write_all(&[5, 1, 2]).await.unwrap();
    assert_eq!(read_exactly::<2>(&mut stream).await, [5, 0xFF]);
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn socks5_auth_checks_the_credentials() {
    let server = server().await;
    let (mut stream, status) = socks_auth_session(&server, SOCKS5_USERNAME, SOCKS5_PASSWORD).await;
    assert_eq!(status, 0, "right credentials");
    stream
        .write_all(&socks_request(1, 3, b"localhost", server.http_port()))
        .await
        .unwrap();
    assert_eq!(read_socks_reply(&mut stream).await.0, 0);
    let mut sender = client(stream).await;
    let resp = send(&mut sender, get("/health")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    for (user, pass) in [("quiver", "wrong"), ("nobody", "secret"), ("", "")] {
        let (mut stream, status) = socks_auth_session(&server, user, pass).await;
        assert_eq!(status, 1, "{user}:{pass}");
        assert_closed(&mut stream).await;
    }

    // A client offering no authentication only is turned away.
    let mut stream = connect(v4(server.socks5_auth_port())).await;
    stream.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_exactly::<2>(&mut stream).await, [5, 0xFF]);
    assert_closed(&mut stream).await;
    assert_eq!(server.stats().socks_connects, 1);
    assert_eq!(server.stats().socks_connections, 5);
}

// ---------------------------------------------------------------------------------------------
// Unix sockets

#[tokio::test]
async fn unix_sockets_serve_http1_and_h2c() {
    let server = server().await;
    assert_eq!(server.unix_http_path(), server.dir().join("http.sock"));
    assert_eq!(server.unix_h2c_path(), server.dir().join("h2c.sock"));

    let stream = UnixStream::connect(server.unix_http_path()).await.unwrap();
    let mut sender = client(stream).await;
    let resp = send(&mut sender, get("/health")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.body().as_ref(), b"ok");
    let resp = send(&mut sender, get("/headers")).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["version"], "HTTP/1.1");
    assert!(json["peer"].is_null(), "{json}");
    assert_eq!(header(&resp, "x-conn-requests"), "2");

    let stream = UnixStream::connect(server.unix_h2c_path()).await.unwrap();
    let (send_request, conn) = tokio::time::timeout(STEP, h2::client::handshake(stream))
        .await
        .expect("handshake in time")
        .expect("h2 handshake");
    tokio::spawn(conn);
    let mut send_request = send_request.ready().await.unwrap();
    let req = Request::get("http://localhost/headers").body(()).unwrap();
    let (resp, _) = send_request.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(STEP, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut data = BytesMut::new();
    while let Some(chunk) = tokio::time::timeout(STEP, body.data()).await.unwrap() {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["version"], "HTTP/2.0");
    assert!(json["peer"].is_null(), "{json}");

    let stats = server.stats();
    assert_eq!(stats.accepted, 2);
    assert_eq!(stats.h2_connections, 1);
    assert_eq!(stats.requests, 3);
}

// ---------------------------------------------------------------------------------------------
// Alt-Svc

fn alt_svc_values(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("alt-svc")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// One HTTP/1.1 GET over TLS (ALPN `http/1.1`) to `port` on `localhost`.
async fn https1_get(server: &TestServer, port: u16, path: &str) -> http::Response<Bytes> {
    let connector = tls_connector(server.ca_file(), None);
    let tls = tls_connect(&connector, v4(port), "localhost")
        .await
        .expect("tls");
    let mut sender = client(tls).await;
    send(&mut sender, get(path)).await.unwrap()
}

/// One HTTP/2 GET, over TLS (ALPN `h2`) to `port` when `tls`, else h2c, to `port`.
async fn h2_get(server: &TestServer, port: u16, tls: bool, path: &str) -> (HeaderMap, Bytes) {
    async fn over<I>(io: I, uri: String) -> (HeaderMap, Bytes)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send_request, conn) = tokio::time::timeout(STEP, h2::client::handshake(io))
            .await
            .expect("handshake in time")
            .expect("h2 handshake");
        tokio::spawn(conn);
        let mut send_request = send_request.ready().await.unwrap();
        let (resp, _) = send_request
            .send_request(Request::get(uri).body(()).unwrap(), true)
            .unwrap();
        let resp = tokio::time::timeout(STEP, resp).await.unwrap().unwrap();
        let (parts, mut body) = resp.into_parts();
        let mut data = BytesMut::new();
        while let Some(chunk) = tokio::time::timeout(STEP, body.data()).await.unwrap() {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        assert_eq!(parts.status, StatusCode::OK);
        (parts.headers, data.freeze())
    }
    if tls {
        let connector = tls_connector_alpn(server.ca_file(), None, &[b"h2"]);
        let stream = tls_connect(&connector, v4(port), "localhost")
            .await
            .expect("tls");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        over(stream, format!("https://localhost{path}")).await
    } else {
        over(connect(v4(port)).await, format!("http://localhost{path}")).await
    }
}

/// A QUIC client endpoint trusting the test CA, ALPN `h3`.
fn quic_client(server: &TestServer) -> quinn::Endpoint {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.ca_file()).expect("ca file") {
        roots.add(cert.expect("ca pem")).expect("ca cert");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(config)).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

/// One HTTP/3 GET to `localhost:port`.
async fn h3_get(server: &TestServer, port: u16, path: &str) -> (HeaderMap, Bytes) {
    let endpoint = quic_client(server);
    let quic = tokio::time::timeout(STEP, endpoint.connect(v4(port), "localhost").unwrap())
        .await
        .expect("handshake in time")
        .expect("handshake");
    let (mut driver, mut send_request) = h3::client::new(h3_quinn::Connection::new(quic))
        .await
        .expect("h3 set-up");
    let driver = tokio::spawn(async move { poll_fn(|cx| driver.poll_close(cx)).await });
    let req = Request::get(format!("https://localhost{path}"))
        .body(())
        .unwrap();
    let exchange = async {
        let mut stream = send_request.send_request(req).await.unwrap();
        stream.finish().await.unwrap();
        let resp = stream.recv_response().await.unwrap();
        let mut body = BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await.unwrap() {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        assert_eq!(resp.status(), StatusCode::OK);
        (resp.headers().clone(), body.freeze())
    };
    let reply = tokio::time::timeout(STEP, exchange)
        .await
        .expect("exchange in time");
    driver.abort();
    reply
}

#[tokio::test]
async fn https_alt_advertises_h3_which_answers() {
    let server = server().await;
    let expected = format!("h3=\":{}\"; ma=86400", server.h3_port());
    assert!(server.https_alt_url("/x").starts_with("https://localhost:"));

    let resp = https1_get(&server, server.https_alt_port(), "/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        alt_svc_values(resp.headers()),
        std::slice::from_ref(&expected)
    );
    let resp = https1_get(&server, server.https_alt_port(), "/nowhere").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        alt_svc_values(resp.headers()),
        std::slice::from_ref(&expected)
    );
    let (headers, _) = h2_get(&server, server.https_alt_port(), true, "/health").await;
    assert_eq!(alt_svc_values(&headers), [expected]);

    // The alternative it names serves the same names over HTTP/3.
    let (headers, body) = h3_get(&server, server.h3_port(), "/headers").await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["version"], "HTTP/3.0");
    assert!(alt_svc_values(&headers).is_empty(), "h3 has no alt-svc");

    // The plain `https` listener advertises nothing.
    let resp = https1_get(&server, server.https_port(), "/health").await;
    assert!(alt_svc_values(resp.headers()).is_empty());
}

#[tokio::test]
async fn https_alt_blocked_advertises_the_udp_blackhole() {
    let server = server().await;
    let blocked = server.udp_blackhole_port();
    let expected = format!("h3=\":{blocked}\"; ma=86400");
    let resp = https1_get(&server, server.https_alt_blocked_port(), "/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        alt_svc_values(resp.headers()),
        std::slice::from_ref(&expected)
    );
    let (headers, _) = h2_get(&server, server.https_alt_blocked_port(), true, "/health").await;
    assert_eq!(alt_svc_values(&headers), [expected]);

    // QUIC to it goes nowhere.
    let endpoint = quic_client(&server);
    let connecting = endpoint.connect(v4(blocked), "localhost").unwrap();
    assert!(tokio::time::timeout(HANG, connecting).await.is_err());
    assert!(server.stats().udp_blackholed >= 1);
}

#[tokio::test]
async fn alt_svc_endpoint_on_every_protocol() {
    let server = server().await;
    let path = "/alt-svc?v=h3%3D%22%3A443%22%3B%20ma%3D60&v=clear&v=h2%3D%22alt.example%3A8443%22";
    let expected = ["h3=\":443\"; ma=60", "clear", "h2=\"alt.example:8443\""];

    let resp = get_at(v4(server.http_port()), path).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.body().as_ref(), b"ok");
    assert_eq!(alt_svc_values(resp.headers()), expected);

    let (headers, body) = h2_get(&server, server.h2c_port(), false, path).await;
    assert_eq!(body.as_ref(), b"ok");
    assert_eq!(alt_svc_values(&headers), expected);

    let (headers, body) = h3_get(&server, server.h3_port(), path).await;
    assert_eq!(body.as_ref(), b"ok");
    assert_eq!(alt_svc_values(&headers), expected);

    // On `https_alt` the endpoint's values replace the listener's.
    let resp = https1_get(&server, server.https_alt_port(), "/alt-svc?v=clear").await;
    assert_eq!(alt_svc_values(resp.headers()), ["clear"]);
    let resp = https1_get(&server, server.https_alt_port(), "/alt-svc").await;
    assert_eq!(
        alt_svc_values(resp.headers()),
        [format!("h3=\":{}\"; ma=86400", server.h3_port())]
    );

    // `+` is a space; no `v`, no header; a broken escape or a control character, 400.
    let resp = get_at(v4(server.http_port()), "/alt-svc?v=h3%3D%22%3A1%22;+ma=5").await;
    assert_eq!(alt_svc_values(resp.headers()), ["h3=\":1\"; ma=5"]);
    let resp = get_at(v4(server.http_port()), "/alt-svc").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(alt_svc_values(resp.headers()).is_empty());
    for bad in ["/alt-svc?v=%zz", "/alt-svc?v=a%0Ab"] {
        let resp = get_at(v4(server.http_port()), bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}
