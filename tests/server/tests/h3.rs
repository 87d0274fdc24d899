//! End-to-end checks of the HTTP/3 side (the `h3` and `h3_reject_early` listeners), driven by a
//! quinn + h3 client.

mod common;

use std::future::poll_fn;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use common::*;
use h3::error::{Code, StreamError};
use h3::ConnectionState;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use quiver_testserver::{H3Options, Options, Stats, TestServer};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::task::JoinHandle;

const MIB: usize = 1 << 20;

type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type ClientStream = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

async fn server_with(h3: H3Options) -> TestServer {
    TestServer::start(Options {
        h3,
        ..Options::default()
    })
    .await
    .expect("server starts")
}

/// A rustls client configuration for HTTP/3: trusts the test CA, ALPN `h3`, TLS 1.3, early
/// data allowed (it keeps the session tickets, so reuse it to resume).
fn client_tls(server: &TestServer) -> Arc<rustls::ClientConfig> {
    client_tls_trusting(server.ca_file())
}

fn client_tls_trusting(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca file") {
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
    config.enable_early_data = true;
    Arc::new(config)
}

/// A client QUIC endpoint on `addr`'s loopback using `tls`.
fn client_endpoint(tls: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> quinn::Endpoint {
    let local: SocketAddr = if addr.is_ipv6() {
        "[::1]:0".parse().unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    };
    let mut endpoint = quinn::Endpoint::client(local).expect("client endpoint");
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::clone(tls)).expect("quic");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

/// An HTTP/3 client connection.
struct H3 {
    quic: quinn::Connection,
    send: SendRequest,
    /// The h3 connection driver; ends with the connection.
    driver: JoinHandle<h3::error::ConnectionError>,
    _endpoint: quinn::Endpoint,
}

/// A whole response.
struct Reply {
    head: Response<()>,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.head
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("header {name}"))
            .to_str()
            .expect("ascii header")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

impl H3 {
    /// HTTP/3 on an established (or 0-RTT) QUIC connection.
    async fn over(quic: quinn::Connection, endpoint: quinn::Endpoint) -> H3 {
        let (mut driver, send) = tokio::time::timeout(
            STEP,
            h3::client::builder()
                .enable_datagram(true)
                .enable_extended_connect(true)
                .build::<_, _, Bytes>(h3_quinn::Connection::new(quic.clone())),
        )
        .await
        .expect("h3 set-up in time")
        .expect("h3 set-up");
        let driver = tokio::spawn(async move { poll_fn(|cx| driver.poll_close(cx)).await });
        H3 {
            quic,
            send,
            driver,
            _endpoint: endpoint,
        }
    }

    async fn connect_to(tls: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> H3 {
        let endpoint = client_endpoint(tls, addr);
        let quic = tokio::time::timeout(STEP, endpoint.connect(addr, "localhost").unwrap())
            .await
            .expect("handshake in time")
            .expect("handshake");
        H3::over(quic, endpoint).await
    }

    async fn connect(server: &TestServer) -> H3 {
        H3::connect_to(&client_tls(server), v4(server.h3_port())).await
    }

    fn request(method: Method, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .body(())
            .unwrap()
    }

    /// Sends the request head (and `body`), finishes the request.
    async fn start(
        &self,
        req: Request<()>,
        body: Option<Bytes>,
    ) -> Result<ClientStream, StreamError> {
        let mut send = self.send.clone();
        let mut stream = send.send_request(req).await?;
        if let Some(body) = body {
            stream.send_data(body).await?;
        }
        stream.finish().await?;
        Ok(stream)
    }

    async fn exchange(&self, req: Request<()>, body: Option<Bytes>) -> Result<Reply, StreamError> {
        let stream = self.start(req, body).await?;
        tokio::time::timeout(STEP, read_reply(stream))
            .await
            .expect("response in time")
    }

    async fn get(&self, path: &str) -> Result<Reply, StreamError> {
        self.exchange(H3::request(Method::GET, path), None).await
    }

    /// Waits until the connection is closed (by the server).
    async fn closed(self, within: Duration) {
        tokio::time::timeout(within, self.quic.closed())
            .await
            .expect("the server closes the connection");
    }
}

async fn read_reply(mut stream: ClientStream) -> Result<Reply, StreamError> {
    let head = stream.recv_response().await?;
    let mut body = BytesMut::new();
    while let Some(mut chunk) = stream.recv_data().await? {
        body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
    }
    let trailers = stream.recv_trailers().await?;
    Ok(Reply {
        head,
        body: body.freeze(),
        trailers,
    })
}

fn reset_code(e: &StreamError) -> Option<Code> {
    match e {
        StreamError::RemoteTerminate { code, .. } => Some(*code),
        _ => None,
    }
}

async fn endpoints_over(client: &H3) {
    let reply = client.get("/health").await.unwrap();
    assert_eq!(reply.head.status(), StatusCode::OK);
    assert_eq!(reply.body.as_ref(), b"ok");
    let conn_id = reply.header("x-conn-id").to_owned();
    assert_eq!(reply.header("x-conn-requests"), "1");

    let reply = client.get("/bytes/100000").await.unwrap();
    assert_eq!(reply.header("content-length"), "100000");
    assert_eq!(reply.body.as_ref(), pattern(100_000).as_slice());
    assert_eq!(reply.header("x-conn-id"), conn_id);
    assert_eq!(reply.header("x-conn-requests"), "2");

    let reply = client
        .get("/bytes/70000?chunked=1&chunk_size=1000")
        .await
        .unwrap();
    assert!(reply.head.headers().get("content-length").is_none());
    assert_eq!(reply.body.as_ref(), pattern(70_000).as_slice());

    let upload = Bytes::from(pattern(MIB));
    let req = Request::builder()
        .method(Method::POST)
        .uri("https://localhost/echo")
        .header("content-type", "application/x-test")
        .header("content-length", MIB.to_string())
        .body(())
        .unwrap();
    let reply = client.exchange(req, Some(upload.clone())).await.unwrap();
    assert_eq!(reply.header("content-type"), "application/x-test");
    assert_eq!(reply.header("x-echo-method"), "POST");
    assert_eq!(reply.header("content-length"), MIB.to_string());
    assert_eq!(reply.body, upload);

    let reply = client.get("/trailers").await.unwrap();
    assert_eq!(reply.body.as_ref(), b"hello trailers");
    let trailers = reply.trailers.expect("trailers");
    assert_eq!(trailers["x-trailer-one"], "1");
    assert_eq!(trailers["x-trailer-two"], "2");

    let reply = client.get("/headers?x=1").await.unwrap();
    let json = reply.json();
    assert_eq!(json["version"], "HTTP/3.0");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["path"], "/headers");
    assert_eq!(json["query"], "x=1");

    let reply = client.get("/status/204").await.unwrap();
    assert_eq!(reply.head.status(), StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());

    let reply = client
        .exchange(H3::request(Method::HEAD, "/bytes/5000"), None)
        .await
        .unwrap();
    assert_eq!(reply.header("content-length"), "5000");
    assert!(reply.body.is_empty());

    let reply = client
        .exchange(
            H3::request(Method::POST, "/sink"),
            Some(Bytes::from(pattern(300_000))),
        )
        .await
        .unwrap();
    assert_eq!(reply.json()["received"], 300_000);

    let reply = client.get("/early").await.unwrap();
    assert_eq!(reply.json()["early"], false);
    assert_eq!(client.get("/too-early").await.unwrap().body.as_ref(), b"ok");
    assert_eq!(
        client.get("/nope").await.unwrap().head.status(),
        StatusCode::NOT_FOUND
    );

    let reply = client.get("/conn").await.unwrap();
    assert_eq!(reply.json()["conn_id"].to_string(), conn_id);
}

#[tokio::test]
async fn endpoints_over_h3_on_both_addresses() {
    let server = server_with(H3Options::default()).await;
    let tls = client_tls(&server);
    let client = H3::connect_to(&tls, v4(server.h3_port())).await;
    endpoints_over(&client).await;
    let json = client.get("/stats").await.unwrap().json();
    assert_eq!(json["h3_connections"], 1);
    if server.has_ipv6() {
        let client = H3::connect_to(&tls, v6(server.h3_port())).await;
        endpoints_over(&client).await;
    }
    // The other listener serves the same endpoints.
    let client = H3::connect_to(&tls, v4(server.h3_reject_early_port())).await;
    assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");

    let stats = server.stats();
    assert_eq!(stats.h3_connections, if server.has_ipv6() { 3 } else { 2 });
    assert_eq!(stats.accepted, stats.h3_connections);
    let runs = if server.has_ipv6() { 2 } else { 1 };
    assert_eq!(stats.bytes_received, runs * (MIB as u64 + 300_000));
    assert_eq!(stats.h3_early_requests, 0);
    assert_eq!(stats.h3_zero_rtt_accepted, 0);
    assert!(server.h3_url("/x").starts_with("https://localhost:"));
    assert!(server
        .h3_reject_early_url("/x")
        .ends_with(&format!(":{}/x", server.h3_reject_early_port())));
}

#[tokio::test]
async fn a_hundred_concurrent_requests_on_one_connection() {
    let server = server_with(H3Options::default()).await;
    let client = H3::connect(&server).await;
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(
            client
                .start(H3::request(Method::GET, "/slow/300"), None)
                .await
                .unwrap(),
        );
    }
    let replies = futures_util::future::join_all(streams.into_iter().map(read_reply)).await;
    let mut conn_ids = std::collections::HashSet::new();
    for reply in replies {
        let reply = reply.unwrap();
        assert_eq!(reply.body.as_ref(), b"slow");
        conn_ids.insert(reply.header("x-conn-id").to_owned());
    }
    assert_eq!(conn_ids.len(), 1);
    let stats = server.stats();
    assert_eq!(stats.requests, 100);
    assert!(stats.h3_max_streams_per_conn > 50, "{stats:?}");
    assert!(stats.h3_max_streams_per_conn <= 100, "{stats:?}");
}

#[tokio::test]
async fn max_concurrent_streams_is_honoured() {
    let server = server_with(H3Options {
        max_concurrent_streams: 7,
        ..H3Options::default()
    })
    .await;
    let client = H3::connect(&server).await;
    let requests = (0..20).map(|_| client.exchange(H3::request(Method::GET, "/slow/100"), None));
    for reply in futures_util::future::join_all(requests).await {
        assert_eq!(reply.unwrap().body.as_ref(), b"slow");
    }
    assert_eq!(server.stats().h3_max_streams_per_conn, 7);
}

#[tokio::test]
async fn goaway_after_n_streams_rejects_the_rest() {
    let n = 3u64;
    let server = server_with(H3Options {
        goaway_after: Some(n),
        ..H3Options::default()
    })
    .await;
    let client = H3::connect(&server).await;
    // N + 10 requests at once: their streams are opened in order, the first N are served.
    let requests =
        (0..n + 10).map(|_| client.exchange(H3::request(Method::GET, "/slow/100"), None));
    let outcomes = futures_util::future::join_all(requests).await;
    let mut rejected = 0;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        if (i as u64) < n {
            let reply = outcome.unwrap_or_else(|e| panic!("request {i} failed: {e}"));
            assert_eq!(reply.body.as_ref(), b"slow");
            assert_eq!(reply.header("x-conn-requests"), (i + 1).to_string());
        } else {
            let e = outcome
                .err()
                .unwrap_or_else(|| panic!("request {i} succeeded"));
            // Rejected by the server (H3_REQUEST_REJECTED), or refused by the client once it
            // had the GOAWAY.
            match reset_code(&e) {
                Some(code) => {
                    assert_eq!(code, Code::H3_REQUEST_REJECTED, "request {i}: {e}");
                    rejected += 1;
                }
                None => assert!(matches!(e, StreamError::RemoteClosing), "request {i}: {e}"),
            }
        }
    }
    assert!(rejected > 0, "no stream was rejected by the server");
    // Once the accepted streams are done, the server closes the connection.
    client.closed(Duration::from_secs(5)).await;
    let stats = server.stats();
    assert_eq!(stats.goaways, 1);
    assert_eq!(stats.requests, n);

    // One request at a time: the N-th answer is followed by the GOAWAY, the next request fails.
    let client = H3::connect(&server).await;
    for i in 1..=n {
        let reply = client.get("/health").await.unwrap();
        assert_eq!(reply.header("x-conn-requests"), i.to_string());
    }
    let e = client
        .get("/health")
        .await
        .err()
        .expect("the request after the N-th fails");
    assert!(
        matches!(e, StreamError::RemoteClosing)
            || reset_code(&e) == Some(Code::H3_REQUEST_REJECTED),
        "{e}"
    );
    client.closed(Duration::from_secs(5)).await;
    assert_eq!(server.stats().goaways, 2);
    assert_eq!(server.stats().requests, 2 * n);
}

#[tokio::test]
async fn goaway_after_zero_processes_nothing() {
    let server = server_with(H3Options {
        goaway_after: Some(0),
        ..H3Options::default()
    })
    .await;
    let client = H3::connect(&server).await;
    assert!(client.get("/health").await.is_err());
    client.closed(Duration::from_secs(5)).await;
    let stats = server.stats();
    assert_eq!(stats.requests, 0);
    assert_eq!(stats.goaways, 1);
}

/// Waits until the client has the server's SETTINGS (h3 reports the defaults until then; the
/// server advertises SETTINGS_H3_DATAGRAM, default off, when datagrams are on).
async fn wait_for_settings(client: &H3) {
    let deadline = Instant::now() + STEP;
    while !client.send.settings().enable_datagram() {
        assert!(
            Instant::now() < deadline,
            "no SETTINGS_H3_DATAGRAM from the server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens `/datagram-echo`, checks the head and `echo ready`; returns the stream and its id.
async fn open_echo(client: &H3) -> (ClientStream, u64) {
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri("https://localhost/datagram-echo")
        .header("capsule-protocol", "?1")
        .extension(h3::ext::Protocol::CONNECT_UDP)
        .body(())
        .unwrap();
    let mut send = client.send.clone();
    let mut stream = send.send_request(req).await.unwrap();
    // Before any read: h3-quinn's `id()` panics while a read is in flight.
    let id = stream.id().into_inner();
    let head = tokio::time::timeout(STEP, stream.recv_response())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["capsule-protocol"], "?1");
    let mut ready = tokio::time::timeout(STEP, stream.recv_data())
        .await
        .unwrap()
        .unwrap()
        .expect("echo ready");
    assert_eq!(
        ready.copy_to_bytes(ready.remaining()).as_ref(),
        b"echo ready"
    );
    (stream, id)
}

/// An HTTP/3 datagram for `stream_id`, encoded by hand (h3-datagram 0.0.2 writes a zero quarter
/// stream id whatever the stream, hyperium/h3#345).
fn datagram(stream_id: u64, payload: &[u8]) -> Bytes {
    let quarter = stream_id / 4;
    assert!(quarter < 64, "one-byte quarter stream ids only here");
    let mut out = vec![quarter as u8];
    out.extend_from_slice(payload);
    out.into()
}

#[tokio::test]
async fn datagram_echo() {
    let server = server_with(H3Options::default()).await;
    let client = H3::connect(&server).await;
    // A first request, so that the echo stream is not stream 0.
    client.get("/health").await.unwrap();
    wait_for_settings(&client).await;
    assert!(client.send.settings().enable_extended_connect());
    assert!(client.quic.max_datagram_size().is_some());
    let (mut stream, id) = open_echo(&client).await;
    assert_eq!(id, 4);

    let total = 1000;
    let reader = {
        let quic = client.quic.clone();
        tokio::spawn(async move {
            let mut intact = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while intact < total {
                let Ok(Ok(bytes)) = tokio::time::timeout_at(deadline, quic.read_datagram()).await
                else {
                    break;
                };
                let d = h3_datagram::datagram::Datagram::decode(bytes).expect("decodes");
                if d.stream_id().into_inner() == id && d.payload().starts_with(b"datagram ") {
                    intact += 1;
                }
            }
            intact
        })
    };
    for i in 0..total {
        let payload = format!("datagram {i:04} {}", "x".repeat(100));
        client
            .quic
            .send_datagram(datagram(id, payload.as_bytes()))
            .unwrap();
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let intact = reader.await.unwrap();
    assert!(
        intact >= total * 9 / 10,
        "only {intact} of {total} came back"
    );

    // A datagram for another stream is not echoed.
    client
        .quic
        .send_datagram(datagram(8, b"elsewhere"))
        .unwrap();

    // Finishing the client's side ends the echo: trailers with the count.
    stream.finish().await.unwrap();
    assert!(tokio::time::timeout(STEP, stream.recv_data())
        .await
        .unwrap()
        .unwrap()
        .is_none());
    let trailers = tokio::time::timeout(STEP, stream.recv_trailers())
        .await
        .unwrap()
        .unwrap()
        .expect("trailers");
    let echoed: u64 = trailers["x-datagrams-echoed"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(echoed >= intact as u64, "{echoed} < {intact}");
    let stats = server.stats();
    assert_eq!(stats.datagrams_sent, echoed);
    assert!(stats.datagrams_received >= echoed);

    // Not an extended CONNECT: 400.
    assert_eq!(
        client.get("/datagram-echo").await.unwrap().head.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn datagrams_off() {
    let server = server_with(H3Options {
        datagrams: false,
        ..H3Options::default()
    })
    .await;
    // The same client code sees the setting from a server with datagrams...
    let on = server_with(H3Options::default()).await;
    let client = H3::connect(&on).await;
    wait_for_settings(&client).await;
    // ...but not from this one, however long it waits.
    let client = H3::connect(&server).await;
    client.get("/health").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!client.send.settings().enable_datagram());
    assert!(!client.send.settings().enable_extended_connect());
    assert!(client.quic.max_datagram_size().is_none());

    let req = Request::builder()
        .method(Method::CONNECT)
        .uri("https://localhost/datagram-echo")
        .extension(h3::ext::Protocol::CONNECT_UDP)
        .body(())
        .unwrap();
    let mut send = client.send.clone();
    let mut stream = send.send_request(req).await.unwrap();
    stream.finish().await.unwrap();
    let reply = tokio::time::timeout(STEP, read_reply(stream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.head.status(), StatusCode::BAD_REQUEST);
}

/// Makes a request on a fresh connection to `h3` with `tls`, then closes it: `tls` then holds
/// session tickets for `localhost`.
async fn collect_tickets(server: &TestServer, tls: &Arc<rustls::ClientConfig>) {
    let client = H3::connect_to(tls, v4(server.h3_port())).await;
    assert_eq!(client.get("/early").await.unwrap().json()["early"], false);
    client.quic.close(quinn::VarInt::from_u32(0x100), b"done");
    let _ = tokio::time::timeout(STEP, client.driver).await;
}

#[tokio::test]
async fn zero_rtt_requests_are_early() {
    let server = server_with(H3Options::default()).await;
    zero_rtt_early(&server).await;
}

/// The same against a server on a multi-threaded runtime (as the binary runs it): its streams
/// are accepted, and judged early or not, while its other tasks run on other threads. (The
/// client stays on one thread: on several, its own handshake may complete before it sends the
/// requests, which then go out as 1-RTT data.)
#[test]
fn zero_rtt_requests_are_early_on_a_multi_threaded_server() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime.block_on(server_with(H3Options::default()));
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(zero_rtt_early(&server));
}

async fn zero_rtt_early(server: &TestServer) {
    let tls = client_tls(server);
    collect_tickets(server, &tls).await;

    let addr = v4(server.h3_port());
    let endpoint = client_endpoint(&tls, addr);
    let connecting = endpoint.connect(addr, "localhost").unwrap();
    let (quic, accepted) = connecting
        .into_0rtt()
        .unwrap_or_else(|_| panic!("no 0-RTT: the first connection left no ticket"));
    let client = H3::over(quic, endpoint).await;
    // Both requests are sent before the handshake completes.
    let early = client
        .start(H3::request(Method::GET, "/early"), None)
        .await
        .unwrap();
    let too_early = client
        .start(H3::request(Method::GET, "/too-early"), None)
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(STEP, accepted).await.unwrap(),
        "0-RTT rejected"
    );
    let early = tokio::time::timeout(STEP, read_reply(early))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(early.json()["early"], true);
    let too_early = tokio::time::timeout(STEP, read_reply(too_early))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(too_early.head.status().as_u16(), 425);

    // After the handshake: not early.
    assert_eq!(client.get("/early").await.unwrap().json()["early"], false);
    assert_eq!(
        client.get("/too-early").await.unwrap().head.status(),
        StatusCode::OK
    );
    let stats = server.stats();
    assert_eq!(stats.h3_early_requests, 2);
    assert_eq!(stats.h3_zero_rtt_accepted, 1);
    assert_eq!(stats.h3_connections, 2);
}

const LATENCY: Duration = Duration::from_millis(40);

/// With simulated latency a request handed to another task (which first sleeps 5 ms) after
/// `into_0rtt` still goes out before the client's handshake completes and reaches the server
/// before the server's handshake completes: early. The client runs on several threads, as a
/// real one would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_makes_0rtt_from_another_task_early() {
    let server = server_with(H3Options {
        latency: LATENCY,
        ..H3Options::default()
    })
    .await;
    let tls = client_tls(&server);
    collect_tickets(&server, &tls).await;
    // An attempt where the client itself took half the latency to send its request (a
    // loaded machine can stall it that long) proves nothing either way: its handshake may
    // have completed first. Such attempts are made again, with a ticket from the last one.
    for attempt in 1.. {
        let before = server.stats();
        let (sent, early) = early_from_another_task(&server, &tls).await;
        if sent >= LATENCY / 2 {
            assert!(attempt < 5, "the client is too slow: sent after {sent:?}");
            continue;
        }
        assert!(
            early,
            "not early (sent {sent:?} after the connection started)"
        );
        let stats = server.stats();
        assert_eq!(stats.h3_early_requests - before.h3_early_requests, 1);
        assert_eq!(stats.h3_zero_rtt_accepted - before.h3_zero_rtt_accepted, 1);
        break;
    }
}

/// One 0-RTT connection to `h3` with `tls` (which must hold a ticket) whose `/early` request
/// is sent from another task after 5 ms: when it was sent (since the connection started) and
/// whether the server found it early. Checks that 0-RTT was accepted, and that a request
/// after the handshake is not early.
async fn early_from_another_task(
    server: &TestServer,
    tls: &Arc<rustls::ClientConfig>,
) -> (Duration, bool) {
    let addr = v4(server.h3_port());
    let endpoint = client_endpoint(tls, addr);
    let started = Instant::now();
    let connecting = endpoint.connect(addr, "localhost").unwrap();
    let (quic, accepted) = connecting
        .into_0rtt()
        .unwrap_or_else(|_| panic!("no 0-RTT: the last connection left no ticket"));
    let client = Arc::new(H3::over(quic, endpoint).await);
    let task = tokio::spawn({
        let client = Arc::clone(&client);
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let stream = client
                .start(H3::request(Method::GET, "/early"), None)
                .await
                .unwrap();
            let sent = started.elapsed();
            (sent, read_reply(stream).await)
        }
    });
    let (sent, reply) = tokio::time::timeout(STEP, task)
        .await
        .expect("response in time")
        .unwrap();
    let early = reply.unwrap().json()["early"] == true;
    assert!(
        tokio::time::timeout(STEP, accepted).await.unwrap(),
        "0-RTT rejected"
    );
    // After the handshake: not early.
    assert_eq!(client.get("/early").await.unwrap().json()["early"], false);
    client.quic.close(quinn::VarInt::from_u32(0x100), b"done");
    (sent, early)
}

/// With latency on, ordinary requests work; the first one on a fresh connection takes two
/// round trips (handshake, then request), each at least the latency.
#[tokio::test]
async fn latency_delays_but_serves() {
    let server = server_with(H3Options {
        latency: LATENCY,
        ..H3Options::default()
    })
    .await;
    let started = Instant::now();
    let client = H3::connect(&server).await;
    let reply = client.get("/health").await.unwrap();
    let first = started.elapsed();
    assert_eq!(reply.body.as_ref(), b"ok");
    assert!(first >= 2 * LATENCY, "first request in {first:?}");
    let started = Instant::now();
    let reply = client
        .exchange(
            H3::request(Method::POST, "/echo"),
            Some(Bytes::from(vec![7u8; 256 * 1024])),
        )
        .await
        .unwrap();
    assert_eq!(reply.body.len(), 256 * 1024);
    assert!(started.elapsed() >= LATENCY, "second request too fast");
    assert_eq!(server.stats().h3_connections, 1);
}

#[tokio::test]
async fn h3_reject_early_resumes_but_rejects_0rtt() {
    let server = server_with(H3Options::default()).await;
    let tls = client_tls(&server);
    collect_tickets(&server, &tls).await;

    let addr = v4(server.h3_reject_early_port());
    let endpoint = client_endpoint(&tls, addr);
    let connecting = endpoint.connect(addr, "localhost").unwrap();
    let (quic, accepted) = connecting
        .into_0rtt()
        .unwrap_or_else(|_| panic!("no 0-RTT: the first connection left no ticket"));
    let client = H3::over(quic.clone(), endpoint).await;
    let early = client.start(H3::request(Method::GET, "/early"), None).await;
    assert!(
        !tokio::time::timeout(STEP, accepted).await.unwrap(),
        "0-RTT accepted"
    );
    // The early request is lost with the rejected early data.
    if let Ok(early) = early {
        let outcome = tokio::time::timeout(STEP, read_reply(early)).await.unwrap();
        assert!(outcome.is_err(), "the early request was answered");
    }
    // The connection itself was established (a resumed session).
    let data = quic.handshake_data().unwrap();
    let data = data
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .unwrap();
    assert_eq!(data.protocol.as_deref(), Some(&b"h3"[..]));

    // A later connection without early data works.
    let client = H3::connect_to(&tls, addr).await;
    assert_eq!(client.get("/early").await.unwrap().json()["early"], false);
    let stats = server.stats();
    assert_eq!(stats.h3_early_requests, 0);
    assert_eq!(stats.h3_zero_rtt_accepted, 0);
}

/// Samples `stats` until `bytes_sent` stops moving (or 10 s pass).
async fn settled(server: &TestServer) -> Stats {
    let mut last = server.stats();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = server.stats();
        if now.bytes_sent == last.bytes_sent || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn writes_stall_when_the_client_does_not_read() {
    let server = server_with(H3Options::default()).await;
    let client = H3::connect(&server).await;
    let mut stream = client
        .start(H3::request(Method::GET, "/bytes/268435456"), None)
        .await
        .unwrap();
    let head = tokio::time::timeout(STEP, stream.recv_response())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.headers()["content-length"], "268435456");
    let stalled = settled(&server).await;
    // quinn's client stream window is 1.25 MB: the server cannot have handed much more to QUIC.
    assert!(stalled.bytes_sent > 0);
    assert!(stalled.bytes_sent < 4 * MIB as u64, "{stalled:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.stats().bytes_sent, stalled.bytes_sent);

    // Reading some lets the server go on.
    let mut read = 0;
    while read < 8 * MIB {
        let mut chunk = stream.recv_data().await.unwrap().expect("more data");
        read += chunk.remaining();
        chunk.advance(chunk.remaining());
    }
    assert!(server.stats().bytes_sent > stalled.bytes_sent);
    drop(stream);
}

#[tokio::test]
async fn slow_sink_reads_uploads_slowly() {
    let server = server_with(H3Options {
        stream_window: 64 * 1024,
        ..H3Options::default()
    })
    .await;
    let client = H3::connect(&server).await;
    let started = Instant::now();
    let reply = client
        .exchange(
            H3::request(Method::POST, "/slow-sink?chunk=16384&delay_ms=20"),
            Some(Bytes::from(pattern(256 * 1024))),
        )
        .await
        .unwrap();
    assert_eq!(reply.json()["received"], 256 * 1024);
    // 16 pieces, 15 pauses of 20 ms: the client could only send as the server read.
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(server.stats().bytes_received, 256 * 1024);
}

#[tokio::test]
async fn close_drop_next_and_close_mid_body_over_h3() {
    let server = server_with(H3Options::default()).await;
    let client = H3::connect(&server).await;

    assert_eq!(
        client.get("/drop-next").await.unwrap().body.as_ref(),
        b"armed"
    );
    let e = client.get("/health").await.err().expect("reset");
    assert_eq!(reset_code(&e), Some(Code::H3_INTERNAL_ERROR), "{e}");
    assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");

    let mut stream = client
        .start(H3::request(Method::GET, "/close-mid-body/100000"), None)
        .await
        .unwrap();
    let head = stream.recv_response().await.unwrap();
    assert_eq!(head.headers()["content-length"], "100000");
    let mut got = 0;
    let e = loop {
        match tokio::time::timeout(STEP, stream.recv_data())
            .await
            .unwrap()
        {
            Ok(Some(chunk)) => got += chunk.remaining(),
            Ok(None) => panic!("the body ended cleanly"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, 50_000);
    assert_eq!(reset_code(&e), Some(Code::H3_INTERNAL_ERROR), "{e}");

    let reply = client.get("/close").await.unwrap();
    assert_eq!(reply.body.as_ref(), b"bye");
    assert!(reply.head.headers().get("connection").is_none());
    client.closed(Duration::from_secs(5)).await;
    assert_eq!(server.stats().goaways, 1);
}

#[tokio::test]
async fn freeze_stops_the_whole_connection() {
    let server = server_with(H3Options::default()).await;
    let client = H3::connect(&server).await;
    client.get("/health").await.unwrap();
    let started = Instant::now();
    let freeze = client
        .start(H3::request(Method::GET, "/freeze/400"), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A stream opened during the freeze is not even accepted before it ends.
    let reply = client.get("/health").await.unwrap();
    assert_eq!(reply.body.as_ref(), b"ok");
    assert!(
        started.elapsed() >= Duration::from_millis(380),
        "{:?}",
        started.elapsed()
    );
    let thawed = read_reply(freeze).await.unwrap();
    assert_eq!(thawed.body.as_ref(), b"thawed");

    // Other connections are not affected.
    let other = H3::connect(&server).await;
    let started = Instant::now();
    let freeze = client
        .start(H3::request(Method::GET, "/freeze/400"), None)
        .await
        .unwrap();
    assert_eq!(other.get("/health").await.unwrap().body.as_ref(), b"ok");
    assert!(started.elapsed() < Duration::from_millis(300));
    read_reply(freeze).await.unwrap();
}

#[test]
fn binary_flags() {
    let bin = env!("CARGO_BIN_EXE_quiver-testserver");
    for bad in [
        &["--h3-goaway-after"][..],
        &["--h3-goaway-after", "x"],
        &["--h3-stream-window=-1"],
        &["--h3-no-datagrams=1"],
        &["--h3-latency-ms=x"],
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
            "--h3-goaway-after",
            "2",
            "--h3-no-datagrams",
            "--h3-max-concurrent-streams=10",
            "--h3-stream-window=65536",
            "--h3-connection-window",
            "1048576",
            "--h3-latency-ms",
            "5",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let port = json["h3"].as_u64().expect("h3 port") as u16;
    assert!(json["h3_reject_early"].as_u64().is_some_and(|p| p > 0));
    let tls = client_tls_trusting(Path::new(json["ca_file"].as_str().unwrap()));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = H3::connect_to(&tls, v4(port)).await;
        assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");
        let json = client.get("/stats").await.unwrap().json();
        assert_eq!(json["h3_connections"], 1);
        assert!(!client.send.settings().enable_datagram());
        assert!(client.quic.max_datagram_size().is_none());
        assert!(client.get("/health").await.is_err(), "GOAWAY after 2");
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
async fn shutdown_closes_h3_connections() {
    let server = server_with(H3Options::default()).await;
    let client = H3::connect(&server).await;
    assert_eq!(client.get("/health").await.unwrap().body.as_ref(), b"ok");
    assert_eq!(server.stats().open, 1);
    server.shutdown();
    client.closed(STEP).await;
}

#[tokio::test]
async fn connections_count_as_open_until_closed() {
    let server = server_with(H3Options::default()).await;
    let client = H3::connect(&server).await;
    client.get("/health").await.unwrap();
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.open, stats.max_open), (1, 1, 1));
    client.quic.close(quinn::VarInt::from_u32(0x100), b"bye");
    let deadline = Instant::now() + STEP;
    while server.stats().open != 0 {
        assert!(Instant::now() < deadline, "the server saw the close");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
