//! The endpoints for the client layer's tests: the second origin (`second`, `second_tls`),
//! redirects, content codings, cookies, authentication (Basic, Bearer, Digest) and multipart,
//! over HTTP/1.1 and once each over HTTP/2 (`https`) and HTTP/3 (`h3`).

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use common::*;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use md5::Md5;
use quiver_testserver::TestServer;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Clients.

/// A request with `headers` and `body` on HTTP/1.1.
fn request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        builder = builder.header("host", "localhost");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body)).expect("request")
}

/// One request on a fresh HTTP/1.1 connection to `addr`.
async fn h1(addr: SocketAddr, req: Request<Full<Bytes>>) -> Response<Bytes> {
    let mut sender = client(connect(addr).await).await;
    send(&mut sender, req).await.expect("response")
}

fn json(resp: &Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(resp.body()).expect("JSON body")
}

fn all_headers<'r>(resp: &'r Response<Bytes>, name: &str) -> Vec<&'r str> {
    resp.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

/// An HTTP/2 connection to the `https` listener (ALPN `h2`).
struct H2 {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
}

impl H2 {
    async fn connect(server: &TestServer) -> H2 {
        let connector = tls_connector_alpn(server.ca_file(), None, &[b"h2"]);
        let tls = tls_connect(&connector, v4(server.https_port()), "localhost")
            .await
            .expect("tls");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (send, conn) = h2::client::handshake(tls).await.expect("h2 handshake");
        tokio::spawn(conn);
        H2 {
            send,
            authority: format!("localhost:{}", server.https_port()),
        }
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority))
    }

    /// Sends `req` (and `body`) and returns the response head and its body stream.
    async fn start(&self, req: Request<()>, body: Option<Bytes>) -> Response<h2::RecvStream> {
        let mut send = self.send.clone().ready().await.expect("ready");
        let (resp, mut stream) = send.send_request(req, body.is_none()).expect("send");
        if let Some(body) = body {
            stream.send_data(body, true).expect("send data");
        }
        tokio::time::timeout(STEP, resp)
            .await
            .expect("response in time")
            .expect("response")
    }

    async fn exchange(&self, req: Request<()>, body: Option<Bytes>) -> Response<Bytes> {
        let resp = self.start(req, body).await;
        let (parts, mut recv) = resp.into_parts();
        let mut data = BytesMut::new();
        while let Some(chunk) = tokio::time::timeout(STEP, recv.data()).await.expect("data") {
            let chunk = chunk.expect("chunk");
            recv.flow_control().release_capacity(chunk.len()).unwrap();
            data.extend_from_slice(&chunk);
        }
        Response::from_parts(parts, data.freeze())
    }

    async fn get(&self, path: &str) -> Response<Bytes> {
        let req = self.request(Method::GET, path).body(()).unwrap();
        self.exchange(req, None).await
    }
}

/// An HTTP/3 connection to the `h3` listener.
struct H3 {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    authority: String,
    _endpoint: quinn::Endpoint,
}

impl H3 {
    async fn connect(server: &TestServer) -> H3 {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(server.ca_file()).expect("ca file") {
            roots.add(cert.expect("ca pem")).expect("ca cert");
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic");
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let quic = tokio::time::timeout(
            STEP,
            endpoint.connect(v4(server.h3_port()), "localhost").unwrap(),
        )
        .await
        .expect("handshake in time")
        .expect("handshake");
        let (mut driver, send) = h3::client::builder()
            .build::<_, _, Bytes>(h3_quinn::Connection::new(quic))
            .await
            .expect("h3 set-up");
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        H3 {
            send,
            authority: format!("localhost:{}", server.h3_port()),
            _endpoint: endpoint,
        }
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority))
    }

    async fn exchange(&self, req: Request<()>, body: Option<Bytes>) -> Response<Bytes> {
        tokio::time::timeout(STEP, async {
            let mut send = self.send.clone();
            let mut stream = send.send_request(req).await.expect("send");
            if let Some(body) = body {
                stream.send_data(body).await.expect("send data");
            }
            stream.finish().await.expect("finish");
            let head = stream.recv_response().await.expect("response");
            let mut data = BytesMut::new();
            while let Some(mut chunk) = stream.recv_data().await.expect("data") {
                data.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
            }
            let (parts, ()) = head.into_parts();
            Response::from_parts(parts, data.freeze())
        })
        .await
        .expect("exchange in time")
    }

    async fn get(&self, path: &str) -> Response<Bytes> {
        let req = self.request(Method::GET, path).body(()).unwrap();
        self.exchange(req, None).await
    }
}

// ---------------------------------------------------------------------------------------------
// Second origin.

#[tokio::test]
async fn second_listeners_answer() {
    let server = server().await;
    assert_eq!(
        server.second_url("/health"),
        format!("http://127.0.0.1:{}/health", server.second_port())
    );
    assert_eq!(
        server.second_tls_url("/health"),
        format!("https://localhost:{}/health", server.second_tls_port())
    );
    let ports = [
        server.http_port(),
        server.https_port(),
        server.second_port(),
        server.second_tls_port(),
    ];
    assert!((1..4).all(|i| !ports[..i].contains(&ports[i])), "{ports:?}");
    let line: serde_json::Value = serde_json::from_str(&server.json_line()).unwrap();
    assert_eq!(line["second"], server.second_port());
    assert_eq!(line["second_tls"], server.second_tls_port());

    for addr in [v4(server.second_port()), v6(server.second_port())] {
        let mut sender = client(connect(addr).await).await;
        let first = send(&mut sender, get("/health")).await.unwrap();
        assert_eq!(first.body().as_ref(), b"ok");
        // Keep-alive.
        let second = send(&mut sender, get("/health")).await.unwrap();
        assert_eq!(header(&second, "x-conn-requests"), "2");
    }

    // TLS: HTTP/1.1 or HTTP/2 by ALPN, on both addresses.
    for (addr, name) in [
        (v4(server.second_tls_port()), "localhost"),
        (v6(server.second_tls_port()), "::1"),
    ] {
        let connector = tls_connector(server.ca_file(), None);
        let tls = tls_connect(&connector, addr, name).await.expect("tls");
        let mut sender = client(tls).await;
        let resp = send(&mut sender, get("/health")).await.unwrap();
        assert_eq!(resp.body().as_ref(), b"ok");
    }
    let connector = tls_connector_alpn(server.ca_file(), None, &[b"h2"]);
    let tls = tls_connect(&connector, v4(server.second_tls_port()), "localhost")
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send2, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(server.second_tls_url("/headers"))
        .body(())
        .unwrap();
    let (resp, _) = send2
        .ready()
        .await
        .unwrap()
        .send_request(req, true)
        .unwrap();
    let mut body = resp.await.unwrap().into_body();
    let data = body.data().await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["version"], "HTTP/2.0");
}

// ---------------------------------------------------------------------------------------------
// Redirects.

#[tokio::test]
async fn redirect_to_with_cookies_and_loop() {
    let server = server().await;
    let addr = v4(server.http_port());
    let resp = h1(
        addr,
        request(
            Method::POST,
            "/redirect-to?url=%2Fcookies&status=307&set_cookie=a%3D1%3B%20Path%3D%2F&set_cookie=b%3D2",
            &[],
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&resp, "location"), "/cookies");
    assert_eq!(all_headers(&resp, "set-cookie"), ["a=1; Path=/", "b=2"]);
    assert_eq!(resp.body().as_ref(), b"redirect");

    let resp = h1(addr, get("/redirect-to?url=http%3A%2F%2Fexample.test%2Fx")).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(header(&resp, "location"), "http://example.test/x");
    assert!(resp.headers().get("set-cookie").is_none());
    for bad in [
        "/redirect-to",
        "/redirect-to?url=/x&status=200",
        "/redirect-to?url=/x&set_cookie=%0A",
    ] {
        assert_eq!(
            h1(addr, get(bad)).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    let resp = h1(addr, get("/redirect-loop")).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(header(&resp, "location"), "/redirect-loop");
    assert_eq!(resp.body().as_ref(), b"redirect");
}

/// The `location` of each hop of `/redirect/3?{query}`, followed by hand, and the final
/// `/headers`-like answer.
async fn follow_h1(
    addr: SocketAddr,
    host: &str,
    query: &str,
) -> (Vec<(u16, String)>, serde_json::Value) {
    let mut hops = Vec::new();
    let mut path = format!("/redirect/3?{query}");
    let mut sender = client(connect(addr).await).await;
    loop {
        let resp = send(
            &mut sender,
            request(Method::GET, &path, &[("host", host)], Bytes::new()),
        )
        .await
        .unwrap();
        if !resp.status().is_redirection() {
            return (hops, json(&resp));
        }
        assert_eq!(resp.body().as_ref(), b"redirect");
        let location = header(&resp, "location").to_owned();
        hops.push((resp.status().as_u16(), location.clone()));
        // Whatever the form, the path starts at the first '/' after the authority.
        path = match location.strip_prefix("//") {
            Some(rest) => rest[rest.find('/').unwrap()..].to_owned(),
            None => match location.find("://") {
                Some(i) => {
                    let rest = &location[i + 3..];
                    rest[rest.find('/').unwrap()..].to_owned()
                }
                None => location,
            },
        };
        assert!(hops.len() <= 3, "{hops:?}");
    }
}

#[tokio::test]
async fn redirect_chains_of_each_kind() {
    let server = server().await;
    let port = server.http_port();
    let host = format!("127.0.0.1:{port}");

    let (hops, last) = follow_h1(v4(port), &host, "").await;
    assert_eq!(
        hops,
        [
            (302, "/redirect/2".to_owned()),
            (302, "/redirect/1".to_owned()),
            (302, "/redirect/0".to_owned()),
        ]
    );
    assert_eq!(last["path"], "/redirect/0");
    assert_eq!(last["method"], "GET");
    assert_eq!(last["version"], "HTTP/1.1");

    let (hops, last) = follow_h1(v4(port), &host, "kind=relative&status=307").await;
    assert_eq!(
        hops.iter().map(|h| h.1.as_str()).collect::<Vec<_>>(),
        [
            "/redirect/2?kind=relative&status=307",
            "/redirect/1?kind=relative&status=307",
            "/redirect/0?kind=relative&status=307",
        ]
    );
    assert!(hops.iter().all(|h| h.0 == 307));
    assert_eq!(last["query"], "kind=relative&status=307");

    let (hops, _) = follow_h1(v4(port), &host, "kind=absolute&status=301").await;
    assert_eq!(
        hops,
        (0..3)
            .rev()
            .map(|n| (
                301,
                format!("http://{host}/redirect/{n}?kind=absolute&status=301")
            ))
            .collect::<Vec<_>>()
    );
    let (hops, last) = follow_h1(v4(port), &host, "kind=scheme-relative&status=308").await;
    assert_eq!(
        hops,
        (0..3)
            .rev()
            .map(|n| (
                308,
                format!("//{host}/redirect/{n}?kind=scheme-relative&status=308")
            ))
            .collect::<Vec<_>>()
    );
    assert!(last["headers"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(["host", host])));

    // Over TLS (HTTP/1.1) the absolute form is https.
    let connector = tls_connector(server.ca_file(), None);
    let tls = tls_connect(&connector, v4(server.second_tls_port()), "localhost")
        .await
        .unwrap();
    let mut sender = client(tls).await;
    let host_tls = format!("localhost:{}", server.second_tls_port());
    let resp = send(
        &mut sender,
        request(
            Method::GET,
            "/redirect/1?kind=absolute",
            &[("host", &host_tls)],
            Bytes::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        header(&resp, "location"),
        format!("https://{host_tls}/redirect/0?kind=absolute")
    );

    let addr = v4(port);
    for bad in [
        "/redirect/x",
        "/redirect/2?kind=sideways",
        "/redirect/2?status=404",
    ] {
        assert_eq!(
            h1(addr, get(bad)).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn redirects_over_h2_and_h3() {
    let server = server().await;
    let h2 = H2::connect(&server).await;
    let resp = h2.get("/redirect/2?kind=absolute").await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        header(&resp, "location"),
        format!("https://{}/redirect/1?kind=absolute", h2.authority)
    );
    let resp = h2.get("/redirect/1?kind=scheme-relative&status=303").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&resp, "location"),
        format!(
            "//{}/redirect/0?kind=scheme-relative&status=303",
            h2.authority
        )
    );
    let req = h2.request(Method::DELETE, "/redirect/0").body(()).unwrap();
    let last = h2.exchange(req, None).await;
    assert_eq!(json(&last)["method"], "DELETE");
    assert_eq!(json(&last)["version"], "HTTP/2.0");

    let h3 = H3::connect(&server).await;
    let resp = h3.get("/redirect/3?kind=absolute&status=307").await;
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        header(&resp, "location"),
        format!(
            "https://{}/redirect/2?kind=absolute&status=307",
            h3.authority
        )
    );
    let resp = h3.get("/redirect/1").await;
    assert_eq!(header(&resp, "location"), "/redirect/0");
    let last = h3.get("/redirect/0?x=1").await;
    assert_eq!(json(&last)["version"], "HTTP/3.0");
    assert_eq!(json(&last)["query"], "x=1");
    let resp = h3.get("/redirect-to?url=%2Fx&set_cookie=c%3D3").await;
    assert_eq!(header(&resp, "set-cookie"), "c=3");
}

// ---------------------------------------------------------------------------------------------
// Content codings.

/// Decodes one coding, strictly.
fn decode_one(coding: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(data).read_to_end(&mut out)?;
        }
        "deflate-raw" => {
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut out)?;
        }
        "br" => {
            brotli::Decompressor::new(data, 4096).read_to_end(&mut out)?;
        }
        "zstd" => {
            zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?;
        }
        "identity" => out.extend_from_slice(data),
        other => panic!("coding {other}"),
    }
    Ok(out)
}

/// Decodes a chain as the path names it (`gzip,br`: br is undone first).
fn decode(chain: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut data = data.to_vec();
    for coding in chain.split(',').rev() {
        data = decode_one(coding, &data)?;
    }
    Ok(data)
}

fn label(chain: &str) -> String {
    chain.replace("deflate-raw", "deflate").replace(',', ", ")
}

const CHAINS: [&str; 9] = [
    "gzip",
    "deflate",
    "deflate-raw",
    "br",
    "zstd",
    "identity",
    "gzip,br",
    "zstd,deflate",
    "deflate-raw,gzip,identity",
];

#[tokio::test]
async fn encoded_bodies_round_trip() {
    let server = server().await;
    let addr = v4(server.http_port());
    let n = 100_000;
    let mut sender = client(connect(addr).await).await;
    for chain in CHAINS {
        let resp = send(&mut sender, get(&format!("/encoded/{chain}/{n}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{chain}");
        assert_eq!(header(&resp, "content-encoding"), label(chain));
        assert_eq!(header(&resp, "vary"), "accept-encoding");
        assert_eq!(header(&resp, "x-uncompressed-length"), n.to_string());
        assert_eq!(
            header(&resp, "content-length"),
            resp.body().len().to_string()
        );
        if !chain.starts_with("identity") {
            assert!(resp.body().len() < n / 10, "{chain}: {}", resp.body().len());
        }
        assert_eq!(decode(chain, resp.body()).unwrap(), pattern(n), "{chain}");

        // Chunked: compressed as it is read.
        let resp = send(
            &mut sender,
            get(&format!("/encoded/{chain}/{n}?chunked=1&chunk_size=3000")),
        )
        .await
        .unwrap();
        assert!(resp.headers().get("content-length").is_none(), "{chain}");
        assert_eq!(header(&resp, "transfer-encoding"), "chunked");
        assert_eq!(header(&resp, "content-encoding"), label(chain));
        assert_eq!(header(&resp, "x-uncompressed-length"), n.to_string());
        assert_eq!(
            decode(chain, resp.body()).unwrap(),
            pattern(n),
            "{chain} chunked"
        );
    }

    // Zero fill, both ways; a zero-length body.
    let resp = h1(addr, get("/encoded/gzip/1000000?fill=zero")).await;
    assert!(resp.body().len() < 5000);
    assert_eq!(decode("gzip", resp.body()).unwrap(), vec![0u8; 1_000_000]);
    let resp = h1(addr, get("/encoded/br/1000000?fill=zero&chunked=1")).await;
    assert_eq!(decode("br", resp.body()).unwrap(), vec![0u8; 1_000_000]);
    let resp = h1(addr, get("/encoded/zstd/0")).await;
    assert!(decode("zstd", resp.body()).unwrap().is_empty());

    // delay_ms implies chunked and paces the steps.
    let start = Instant::now();
    let resp = h1(
        addr,
        get("/encoded/deflate/4000?delay_ms=50&chunk_size=1000"),
    )
    .await;
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(header(&resp, "transfer-encoding"), "chunked");
    assert_eq!(decode("deflate", resp.body()).unwrap(), pattern(4000));

    // HEAD: the headers only.
    let resp = h1(
        addr,
        request(Method::HEAD, "/encoded/gzip/1000", &[], Bytes::new()),
    )
    .await;
    assert!(resp.body().is_empty());
    assert!(header(&resp, "content-length").parse::<u64>().unwrap() > 0);
    assert_eq!(header(&resp, "content-encoding"), "gzip");

    for bad in [
        "/encoded/lzma/10",
        "/encoded/gzip,/10",
        "/encoded/gzip/x",
        "/encoded/gzip/67108865",
        "/encoded/gzip/10?fill=ones",
        "/encoded/gzip/10?chunk_size=0",
        "/encoded/gzip/1099511627777?chunked=1",
    ] {
        assert_eq!(
            h1(addr, get(bad)).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // 64 MiB is the limit of a body built whole.
    let resp = h1(addr, get("/encoded/zstd/67108864?fill=zero")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(decode("zstd", resp.body()).unwrap().len(), 64 << 20);
}

#[tokio::test]
async fn decompression_bomb_streams_lazily() {
    let server = server().await;
    // 1 GiB of zeros, gzip, chunked: read the first 200 KiB of compressed bytes only.
    let mut stream = connect(v4(server.http_port())).await;
    stream
        .write_all(b"GET /encoded/gzip/1073741824?fill=zero&chunked=1 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    while got.len() < 200_000 {
        let n = tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(
        text.contains("x-uncompressed-length: 1073741824"),
        "{text:.400}"
    );
    assert!(text.contains("transfer-encoding: chunked"));
    assert!(!text[..text.find("\r\n\r\n").unwrap()].contains("content-length"));
    drop(stream);
}

/// Waits until `bytes_sent` stops growing (no change over 300 ms), then checks that it stays
/// put for another 300 ms; returns the stalled value.
async fn stalled_bytes_sent(server: &TestServer) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = server.stats().bytes_sent;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = server.stats().bytes_sent;
        if now == last && now > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "bytes_sent never stalls: {now}");
        last = now;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.stats().bytes_sent, last, "bytes_sent grows again");
    last
}

#[tokio::test]
async fn chunked_encoded_stalls_when_the_client_stops_reading() {
    let server = server().await;
    // HTTP/1.1: a 1 TiB body; the client reads the head, then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = tokio::time::timeout(STEP, socket.connect(v4(server.http_port())))
        .await
        .unwrap()
        .unwrap();
    stream
        .write_all(
            b"GET /encoded/gzip/1099511627776?chunked=1&chunk_size=64 HTTP/1.1\r\nhost: x\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = [0u8; 512];
    let n = tokio::time::timeout(STEP, stream.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK"));
    let stalled = stalled_bytes_sent(&server).await;
    assert!(stalled < 64 << 20, "{stalled}");
    // Reading again lets it go on.
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0;
    while read < 4 << 20 {
        read += tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
    }
    assert!(server.stats().bytes_sent > stalled);
    drop(stream);

    // HTTP/2: the client never releases its window.
    server.reset_stats();
    let h2 = H2::connect(&server).await;
    let req = h2
        .request(Method::GET, "/encoded/br/1099511627776?chunked=1")
        .body(())
        .unwrap();
    let resp = h2.start(req, None).await;
    assert_eq!(header_of(&resp, "content-encoding"), "br");
    let stalled = stalled_bytes_sent(&server).await;
    assert!(stalled <= 1 << 20, "{stalled}");
    drop(resp);
}

fn header_of<B>(resp: &Response<B>, name: &str) -> String {
    resp.headers()[name].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn encoded_over_h2_and_h3() {
    let server = server().await;
    let h2 = H2::connect(&server).await;
    let resp = h2.get("/encoded/br/200000?chunked=1").await;
    assert_eq!(header(&resp, "content-encoding"), "br");
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(decode("br", resp.body()).unwrap(), pattern(200_000));
    let resp = h2.get("/encoded/gzip,zstd/200000").await;
    assert_eq!(header(&resp, "content-encoding"), "gzip, zstd");
    assert_eq!(
        header(&resp, "content-length"),
        resp.body().len().to_string()
    );
    assert_eq!(decode("gzip,zstd", resp.body()).unwrap(), pattern(200_000));

    let h3 = H3::connect(&server).await;
    let resp = h3
        .get("/encoded/zstd/300000?chunked=1&chunk_size=10000")
        .await;
    assert_eq!(header(&resp, "content-encoding"), "zstd");
    assert_eq!(header(&resp, "x-uncompressed-length"), "300000");
    assert_eq!(decode("zstd", resp.body()).unwrap(), pattern(300_000));
    let resp = h3.get("/encoded/deflate-raw/300000").await;
    assert_eq!(header(&resp, "content-encoding"), "deflate");
    assert_eq!(
        decode("deflate-raw", resp.body()).unwrap(),
        pattern(300_000)
    );
    let resp = h3.get("/corrupt/gzip?kind=truncated").await;
    assert!(decode("gzip", resp.body()).is_err());
}

#[tokio::test]
async fn corrupt_bodies_fail_to_decode() {
    let server = server().await;
    let mut sender = client(connect(v4(server.http_port())).await).await;
    for coding in ["gzip", "deflate", "br", "zstd"] {
        for kind in ["", "?kind=garbage", "?kind=truncated"] {
            let resp = send(&mut sender, get(&format!("/corrupt/{coding}{kind}")))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(header(&resp, "content-encoding"), coding);
            assert_eq!(
                header(&resp, "content-length"),
                resp.body().len().to_string()
            );
            let body = resp.body();
            assert!(decode(coding, body).is_err(), "{coding}{kind} decoded");
            if kind.ends_with("truncated") {
                let whole = h1(
                    v4(server.http_port()),
                    get(&format!("/encoded/{coding}/65536")),
                )
                .await;
                assert_eq!(body.len(), whole.body().len() / 2, "{coding}");
                assert_eq!(body.as_ref(), &whole.body()[..body.len()], "{coding}");
            } else {
                assert!(body.len() > 4096);
            }
        }
    }
    for bad in [
        "/corrupt/identity",
        "/corrupt/deflate-raw",
        "/corrupt/gzip?kind=odd",
    ] {
        let resp = send(&mut sender, get(bad)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Cookies.

#[tokio::test]
async fn cookies_are_echoed() {
    let server = server().await;
    let addr = v4(server.http_port());
    let resp = h1(addr, get("/cookies")).await;
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(json(&resp), serde_json::json!({}));
    let resp = h1(
        addr,
        request(
            Method::GET,
            "/cookies",
            &[("cookie", "a=1; b=2;c = x=y "), ("cookie", "a=3; flag")],
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(
        json(&resp),
        serde_json::json!({"a": "3", "b": "2", "c": "x=y"})
    );

    let resp = h1(addr, get("/set-cookie?v=s%3D1%3B%20Max-Age%3D60&v=t%3D2")).await;
    assert_eq!(all_headers(&resp, "set-cookie"), ["s=1; Max-Age=60", "t=2"]);

    // HTTP/2 clients may split the cookies over several headers.
    let h2 = H2::connect(&server).await;
    let req = h2
        .request(Method::GET, "/cookies")
        .header("cookie", "x=1")
        .header("cookie", "y=2")
        .body(())
        .unwrap();
    assert_eq!(
        json(&h2.exchange(req, None).await),
        serde_json::json!({"x": "1", "y": "2"})
    );
    let h3 = H3::connect(&server).await;
    let req = h3
        .request(Method::GET, "/cookies")
        .header("cookie", "z=9")
        .body(())
        .unwrap();
    assert_eq!(
        json(&h3.exchange(req, None).await),
        serde_json::json!({"z": "9"})
    );
}

// ---------------------------------------------------------------------------------------------
// Authentication.

fn basic(user: &str, passwd: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{passwd}"))
    )
}

#[tokio::test]
async fn basic_and_bearer_auth() {
    let server = server().await;
    let addr = v4(server.http_port());
    let resp = h1(addr, get("/basic-auth/alice/s3cret")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&resp, "www-authenticate"), "Basic realm=\"quiver\"");
    assert_eq!(json(&resp), serde_json::json!({"authenticated": false}));
    let good = basic("alice", "s3cret");
    let resp = h1(
        addr,
        request(
            Method::POST,
            "/basic-auth/alice/s3cret",
            &[("authorization", &good)],
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        json(&resp),
        serde_json::json!({"authenticated": true, "user": "alice"})
    );
    let wrong = basic("alice", "nope");
    let resp = h1(
        addr,
        request(
            Method::GET,
            "/basic-auth/alice/s3cret",
            &[("authorization", &wrong)],
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Percent-escapes in the path are decoded.
    let spaced = basic("a b", "p+q");
    let resp = h1(
        addr,
        request(
            Method::GET,
            "/basic-auth/a%20b/p+q",
            &[("authorization", &spaced)],
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = h1(addr, get("/bearer/tok-123")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&resp, "www-authenticate"), "Bearer realm=\"quiver\"");
    let resp = h1(
        addr,
        request(
            Method::GET,
            "/bearer/tok-123",
            &[("authorization", "Bearer tok-123")],
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(
        json(&resp),
        serde_json::json!({"authenticated": true, "token": "tok-123"})
    );
    let resp = h1(
        addr,
        request(
            Method::GET,
            "/bearer/tok-123",
            &[("authorization", "Bearer tok-124")],
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let h3 = H3::connect(&server).await;
    let req = h3
        .request(Method::GET, "/basic-auth/u/p")
        .header("authorization", basic("u", "p"))
        .body(())
        .unwrap();
    assert_eq!(h3.exchange(req, None).await.status(), StatusCode::OK);
    let h2 = H2::connect(&server).await;
    let req = h2
        .request(Method::GET, "/bearer/t")
        .header("authorization", "bearer t")
        .body(())
        .unwrap();
    assert_eq!(h2.exchange(req, None).await.status(), StatusCode::OK);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn h(algorithm: &str, data: &[u8]) -> String {
    if algorithm.to_ascii_uppercase().starts_with("SHA-256") {
        hex(&Sha256::digest(data))
    } else {
        hex(&Md5::digest(data))
    }
}

/// The parameters of a `www-authenticate: Digest ...` challenge (the server's values hold no
/// commas).
fn challenge(www: &str) -> HashMap<String, String> {
    let params = www.strip_prefix("Digest ").expect("a Digest challenge");
    params
        .split(", ")
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

/// The `authorization` answering `challenge` (RFC 7616), computed independently of the server.
fn digest_answer(
    challenge: &HashMap<String, String>,
    method: &str,
    uri: &str,
    user: &str,
    passwd: &str,
    nc: u32,
    body: &[u8],
) -> String {
    let algorithm = challenge["algorithm"].as_str();
    let realm = &challenge["realm"];
    let nonce = &challenge["nonce"];
    let cnonce = "0a4f113b";
    let nc = format!("{nc:08x}");
    let mut ha1 = h(algorithm, format!("{user}:{realm}:{passwd}").as_bytes());
    if algorithm.ends_with("-sess") {
        ha1 = h(algorithm, format!("{ha1}:{nonce}:{cnonce}").as_bytes());
    }
    let qop = challenge.get("qop").map(String::as_str);
    let ha2 = if qop == Some("auth-int") {
        let body_hash = h(algorithm, body);
        h(algorithm, format!("{method}:{uri}:{body_hash}").as_bytes())
    } else {
        h(algorithm, format!("{method}:{uri}").as_bytes())
    };
    let response = match qop {
        Some(qop) => h(
            algorithm,
            format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
        ),
        None => h(algorithm, format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    };
    let mut answer = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm={algorithm}, response=\"{response}\", opaque=\"{}\"",
        challenge["opaque"]
    );
    if let Some(qop) = qop {
        answer.push_str(&format!(", qop={qop}, nc={nc}, cnonce=\"{cnonce}\""));
    }
    answer
}

#[tokio::test]
async fn digest_auth_handshakes() {
    let server = server().await;
    let addr = v4(server.http_port());
    let mut sender = client(connect(addr).await).await;
    let mut challenges = 0;
    let mut oks = 0;
    for (qop, algorithm) in [
        ("auth", None),
        ("auth", Some("MD5")),
        ("auth", Some("md5-sess")),
        ("auth", Some("SHA-256")),
        ("auth", Some("SHA-256-sess")),
        ("auth-int", Some("SHA-256")),
        ("auth-int", None),
        ("none", None),
        ("none", Some("SHA-256")),
    ] {
        let path = match algorithm {
            Some(a) => format!("/digest-auth/{qop}/Mufasa/Circle%20of%20Life/{a}?x=1"),
            None => format!("/digest-auth/{qop}/Mufasa/Circle%20of%20Life?x=1"),
        };
        let body = Bytes::from_static(b"some body");
        let resp = send(&mut sender, request(Method::POST, &path, &[], body.clone()))
            .await
            .unwrap();
        challenges += 1;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(json(&resp), serde_json::json!({"authenticated": false}));
        let www = header(&resp, "www-authenticate").to_owned();
        let ch = challenge(&www);
        assert_eq!(ch["realm"], "quiver@test", "{www}");
        let want_algorithm = match algorithm.unwrap_or("MD5") {
            "md5-sess" => "MD5-sess",
            a => a,
        };
        assert_eq!(ch["algorithm"], want_algorithm, "{www}");
        assert_eq!(
            ch.get("qop").map(String::as_str),
            (qop != "none").then_some(qop),
            "{www}"
        );
        assert_eq!(ch["nonce"].len(), 32);
        assert!(!ch.contains_key("stale"));

        // The right password.
        let answer = digest_answer(&ch, "POST", &path, "Mufasa", "Circle of Life", 1, &body);
        let resp = send(
            &mut sender,
            request(
                Method::POST,
                &path,
                &[("authorization", &answer)],
                body.clone(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}: {answer}");
        oks += 1;
        let got = json(&resp);
        assert_eq!(got["authenticated"], true);
        assert_eq!(got["user"], "Mufasa");
        assert_eq!(got["algorithm"], want_algorithm);
        if qop == "none" {
            assert!(got["nc"].is_null());
        } else {
            assert_eq!(got["nc"], "00000001");
        }
        // The same nonce again, next nc: still good.
        let answer = digest_answer(&ch, "POST", &path, "Mufasa", "Circle of Life", 2, &body);
        let resp = send(
            &mut sender,
            request(
                Method::POST,
                &path,
                &[("authorization", &answer)],
                body.clone(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        oks += 1;

        // A wrong password, another uri, another method, another body (auth-int): 401 with a
        // fresh challenge.
        let wrong = digest_answer(&ch, "POST", &path, "Mufasa", "Circle Of Life", 3, &body);
        let other_uri = digest_answer(
            &ch,
            "POST",
            "/elsewhere",
            "Mufasa",
            "Circle of Life",
            3,
            &body,
        );
        let other_method = digest_answer(&ch, "PUT", &path, "Mufasa", "Circle of Life", 3, &body);
        let mut bad = vec![wrong, other_uri, other_method];
        if qop == "auth-int" {
            bad.push(digest_answer(
                &ch,
                "POST",
                &path,
                "Mufasa",
                "Circle of Life",
                3,
                b"other",
            ));
        }
        for answer in bad {
            let resp = send(
                &mut sender,
                request(
                    Method::POST,
                    &path,
                    &[("authorization", &answer)],
                    body.clone(),
                ),
            )
            .await
            .unwrap();
            challenges += 1;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{answer}");
            let fresh = challenge(header(&resp, "www-authenticate"));
            assert_ne!(fresh["nonce"], ch["nonce"]);
        }
    }

    // A nonce the server never issued.
    let forged = challenge(
        "Digest realm=\"quiver@test\", qop=\"auth\", nonce=\"00112233445566778899aabbccddeeff\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", algorithm=MD5",
    );
    let path = "/digest-auth/auth/u/p";
    let answer = digest_answer(&forged, "GET", path, "u", "p", 1, b"");
    let resp = send(
        &mut sender,
        request(
            Method::GET,
            path,
            &[("authorization", &answer)],
            Bytes::new(),
        ),
    )
    .await
    .unwrap();
    challenges += 1;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    for bad in [
        "/digest-auth/auth-conf/u/p",
        "/digest-auth/auth/u/p/SHA-512",
        "/digest-auth/auth/u",
    ] {
        let resp = send(&mut sender, get(bad)).await.unwrap();
        assert!(
            resp.status() == StatusCode::BAD_REQUEST || resp.status() == StatusCode::NOT_FOUND,
            "{bad}"
        );
    }

    let stats = server.stats();
    assert_eq!(stats.digest_challenges, challenges);
    assert_eq!(stats.digest_ok, oks);
    let resp = send(&mut sender, get("/stats")).await.unwrap();
    assert_eq!(json(&resp)["digest_challenges"], challenges);
    assert_eq!(json(&resp)["digest_ok"], oks);
    server.reset_stats();
    assert_eq!(
        (server.stats().digest_challenges, server.stats().digest_ok),
        (0, 0)
    );
}

#[tokio::test]
async fn digest_stale_nonce_flow() {
    let server = server().await;
    let mut sender = client(connect(v4(server.http_port())).await).await;
    let path = "/digest-auth/auth/u/p/SHA-256?stale=1";
    let resp = send(&mut sender, get(path)).await.unwrap();
    let first = challenge(header(&resp, "www-authenticate"));
    assert!(!first.contains_key("stale"));

    // A valid answer to the first nonce: 401, stale=true, a new nonce.
    let answer = digest_answer(&first, "GET", path, "u", "p", 1, b"");
    let resp = send(
        &mut sender,
        request(
            Method::GET,
            path,
            &[("authorization", &answer)],
            Bytes::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let second = challenge(header(&resp, "www-authenticate"));
    assert_eq!(second["stale"], "true");
    assert_ne!(second["nonce"], first["nonce"]);
    assert_eq!(server.stats().digest_ok, 0);

    // The old nonce is gone for good.
    let resp = send(
        &mut sender,
        request(
            Method::GET,
            path,
            &[("authorization", &answer)],
            Bytes::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(!challenge(header(&resp, "www-authenticate")).contains_key("stale"));

    // The new one is accepted.
    let answer = digest_answer(&second, "GET", path, "u", "p", 1, b"");
    let resp = send(
        &mut sender,
        request(
            Method::GET,
            path,
            &[("authorization", &answer)],
            Bytes::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json(&resp)["algorithm"], "SHA-256");
    let stats = server.stats();
    assert_eq!((stats.digest_challenges, stats.digest_ok), (3, 1));

    // Nonces are shared by every listener: one issued over HTTP/2 works over HTTP/1.1.
    let h2 = H2::connect(&server).await;
    let resp = h2.get("/digest-auth/auth/u/p").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let ch = challenge(header(&resp, "www-authenticate"));
    let answer = digest_answer(&ch, "GET", "/digest-auth/auth/u/p", "u", "p", 1, b"");
    let req = h2
        .request(Method::GET, "/digest-auth/auth/u/p")
        .header("authorization", &answer)
        .body(())
        .unwrap();
    assert_eq!(h2.exchange(req, None).await.status(), StatusCode::OK);
    let resp = send(
        &mut sender,
        request(
            Method::GET,
            "/digest-auth/auth/u/p",
            &[("authorization", &answer)],
            Bytes::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Multipart.

const BOUNDARY: &str = "----quiverBoundary7MA4YWxkTrZu0gW";

fn file_part() -> Vec<u8> {
    (0..MIB).map(|i| (i * 7 % 251) as u8).collect()
}

/// Two text parts and a 1 MiB file part.
fn form() -> Vec<u8> {
    let b = BOUNDARY;
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"field1\"\r\n\r\nvalue one\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"field2\"\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nvalue two \u{fc}\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file_part());
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    body
}

fn check_parts(json: &serde_json::Value) {
    let parts = json["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 3, "{json}");
    assert_eq!(
        parts[0],
        serde_json::json!({
            "name": "field1", "filename": null, "content_type": null, "size": 9,
            "sha256": hex(&Sha256::digest(b"value one")), "text": "value one",
        })
    );
    let two = "value two \u{fc}";
    assert_eq!(
        parts[1],
        serde_json::json!({
            "name": "field2", "filename": null, "content_type": "text/plain; charset=utf-8",
            "size": two.len(), "sha256": hex(&Sha256::digest(two.as_bytes())), "text": two,
        })
    );
    assert_eq!(
        parts[2],
        serde_json::json!({
            "name": "file", "filename": "data.bin", "content_type": "application/octet-stream",
            "size": MIB, "sha256": hex(&Sha256::digest(file_part())), "text": null,
        })
    );
}

fn form_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

#[tokio::test]
async fn multipart_forms() {
    let server = server().await;
    let addr = v4(server.http_port());
    let body = Bytes::from(form());
    let ct = form_type();
    let len = body.len().to_string();
    let resp = h1(
        addr,
        request(
            Method::POST,
            "/multipart",
            &[("content-type", &ct), ("content-length", &len)],
            body.clone(),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.body());
    let got = json(&resp);
    check_parts(&got);
    assert_eq!(got["content_type"], ct);
    assert_eq!(got["content_length"], body.len());
    assert_eq!(got["chunked"], false);
    assert!(server.stats().bytes_received >= body.len() as u64);

    // Chunked upload in odd pieces, through a slow reader.
    let pieces: Vec<Bytes> = body.chunks(77_777).map(Bytes::copy_from_slice).collect();
    let count = pieces.len() as u64;
    let stream = futures_util::stream::iter(pieces.into_iter().map(|p| infallible(Frame::data(p))));
    let io = TokioIo::new(connect(addr).await);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post("/multipart?delay_ms=20")
        .header("host", "x")
        .header("content-type", &ct)
        .body(StreamBody::new(stream))
        .unwrap();
    let start = Instant::now();
    let resp = tokio::time::timeout(STEP, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    let resp_body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        start.elapsed() >= Duration::from_millis(20 * count / 2),
        "{:?}",
        start.elapsed()
    );
    let got: serde_json::Value = serde_json::from_slice(&resp_body).unwrap();
    check_parts(&got);
    assert_eq!(got["chunked"], true);
    assert!(got["content_length"].is_null());

    // Not multipart: 400 with the parser's error.
    let resp = h1(
        addr,
        request(
            Method::POST,
            "/multipart",
            &[("content-type", "text/plain")],
            Bytes::from_static(b"x"),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(!resp.body().is_empty());
    let resp = h1(
        addr,
        request(
            Method::POST,
            "/multipart",
            &[("content-type", &ct)],
            Bytes::from(format!("--{BOUNDARY}\r\nno headers end")),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = h1(
        addr,
        request(
            Method::POST,
            "/multipart",
            &[("content-type", &ct)],
            Bytes::from(form()[..1000].to_vec()),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{:?}", resp.body());
    // An empty form.
    let resp = h1(
        addr,
        request(
            Method::POST,
            "/multipart",
            &[("content-type", &ct)],
            Bytes::from(format!("--{BOUNDARY}--\r\n")),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json(&resp)["parts"], serde_json::json!([]));
}

#[tokio::test]
async fn multipart_over_h2_and_h3() {
    let server = server().await;
    let body = Bytes::from(form());
    let h2 = H2::connect(&server).await;
    let req = h2
        .request(Method::POST, "/multipart")
        .header("content-type", form_type())
        .header("content-length", body.len())
        .body(())
        .unwrap();
    let resp = h2.exchange(req, Some(body.clone())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let got = json(&resp);
    check_parts(&got);
    assert_eq!(got["content_length"], body.len());

    let h3 = H3::connect(&server).await;
    let req = h3
        .request(Method::POST, "/multipart?delay_ms=1")
        .header("content-type", form_type())
        .body(())
        .unwrap();
    let resp = h3.exchange(req, Some(body)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let got = json(&resp);
    check_parts(&got);
    assert_eq!(got["chunked"], true);
}
