//! Content decoding against the test server: every coding with and without a length, over
//! HTTP/1.1, HTTP/2 and HTTP/3; `accept-encoding` and the raw switch; corrupt and truncated
//! streams; a decompression bomb; and a 1 GiB gzip stream read slowly, which must stall the
//! server rather than fill memory.
#![cfg(all(
    feature = "gzip",
    feature = "brotli",
    feature = "zstd",
    feature = "http3"
))]

use std::time::Duration;

use quiver_core::{Client, ErrorKind, Request, StatusCode};
use quiver_testserver::{pattern, Options, TestServer};

async fn server() -> TestServer {
    TestServer::start(Options::default()).await.unwrap()
}

fn builder(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder()
        .set("proxy_from_env", false)
        .set("ca_file", server.ca_file().to_str().unwrap())
}

/// (client, base URL) for HTTP/1.1, HTTP/2 and HTTP/3.
fn targets(server: &TestServer) -> Vec<(&'static str, Client, String)> {
    vec![
        ("h1", builder(server).build().unwrap(), server.http_url("")),
        ("h2", builder(server).build().unwrap(), server.https_url("")),
        (
            "h3",
            builder(server).set("protocol", "http3").build().unwrap(),
            server.h3_url(""),
        ),
    ]
}

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_coding_decodes_with_and_without_a_length() {
    let server = server().await;
    let n = 300_000;
    let expected = pattern(n);
    for (name, client, base) in targets(&server) {
        for coding in [
            "gzip",
            "deflate",
            "deflate-raw",
            "br",
            "zstd",
            "gzip,br",
            "identity",
        ] {
            for query in ["", "?chunked=1&chunk_size=7000"] {
                let path = format!("/encoded/{coding}/{n}{query}");
                let resp = client.get(&url(&base, &path)).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{name} {path}");
                assert_eq!(resp.body().len(), n, "{name} {path}");
                assert!(
                    resp.body().as_ref() == expected,
                    "{name} {path}: wrong bytes"
                );
                // Headers stay as the server sent them (as httpx keeps them).
                let sent = resp.headers()["content-encoding"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(
                    sent.replace(' ', ""),
                    coding.replace("deflate-raw", "deflate")
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_encoding_is_offered_unless_the_request_sets_it_or_asks_for_raw_bytes() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let sent = |body: &[u8]| -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0] == "accept-encoding")
            .map(|p| p[1].as_str().unwrap().to_owned())
    };
    let resp = client.get(&server.http_url("/headers")).await.unwrap();
    assert_eq!(
        sent(resp.body()).as_deref(),
        Some("gzip, deflate, br, zstd")
    );
    let req = Request::get(&server.http_url("/headers"))
        .header("accept-encoding", "br")
        .build()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(sent(resp.body()).as_deref(), Some("br"));
    let req = Request::get(&server.http_url("/headers"))
        .decompress(false)
        .build()
        .unwrap();
    assert_eq!(sent(client.request(req).await.unwrap().body()), None);
    // Raw bytes: the gzip stream itself.
    let req = Request::get(&server.http_url("/encoded/gzip/1000"))
        .decompress(false)
        .build()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(&resp.body()[..2], &[0x1f, 0x8b]);
    assert_eq!(
        resp.headers()["content-length"],
        resp.body().len().to_string().as_str()
    );
    let raw = builder(&server).set("decompress", false).build().unwrap();
    let resp = raw
        .get(&server.http_url("/encoded/zstd/1000"))
        .await
        .unwrap();
    assert_ne!(resp.body().len(), 1000);
    // An unknown coding is passed on as it came.
    let resp = client.get(&server.http_url("/headers")).await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
    // HEAD: no body to decode.
    let req = Request::head(&server.http_url("/encoded/br/5000"))
        .build()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert!(resp.body().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_truncated_streams_are_decoding_errors() {
    let server = server().await;
    for (name, client, base) in targets(&server) {
        for coding in ["gzip", "deflate", "br", "zstd"] {
            for kind in ["garbage", "truncated"] {
                let path = format!("/corrupt/{coding}?kind={kind}");
                let err = client.get(&url(&base, &path)).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Decoding, "{name} {path}: {err}");
                assert_eq!(err.class(), quiver_core::ErrorClass::Unrecoverable);
                // The pool goes on.
                let ok = client.get(&url(&base, "/health")).await.unwrap();
                assert_eq!(ok.text(), "ok");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_is_stopped_early() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    for coding in ["gzip", "br", "zstd"] {
        let path = format!(
            "/encoded/{coding}/{}?fill=zero&chunked=1&chunk_size=1048576",
            1u64 << 34
        );
        server.reset_stats();
        let err = client.get(&server.http_url(&path)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DecompressionBomb, "{coding}: {err}");
        assert!(err.message().contains("max_decompression_ratio"), "{err}");
        // It stopped after a few MiB, not 16 GiB.
        assert!(server.stats().bytes_sent < 8 << 20, "{coding}");
    }
    // Off: the caller's own bound (max_response_body) is what stops it.
    let capped = builder(&server)
        .set("max_decompression_ratio", 0)
        .set("max_response_body", 32u64 << 20)
        .build()
        .unwrap();
    let err = capped
        .get(&server.http_url("/encoded/gzip/1073741824?fill=zero&chunked=1&chunk_size=1048576"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResponseBodyTooLarge, "{err}");
    // A legitimately compressible body is fine.
    let resp = client
        .get(&server.http_url("/encoded/gzip/20000000"))
        .await
        .unwrap();
    assert_eq!(resp.body().len(), 20_000_000);
}

/// A 1 GiB gzip body read a little, then not at all: the server stalls (flow control and
/// socket buffers fill) and what the client holds stays small, because the decoder pulls
/// compressed bytes only as decoded bytes are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_a_gigabyte_gzip_stream_stalls_the_server() {
    let server = server().await;
    for (name, client, base) in targets(&server).into_iter().take(2) {
        server.reset_stats();
        let path = format!("/encoded/gzip/{}?chunked=1&chunk_size=65536", 1u64 << 30);
        let req = Request::get(&url(&base, &path)).build().unwrap();
        let mut resp = client.stream(req).await.unwrap();
        let mut taken = 0usize;
        while taken < 4 << 20 {
            taken += resp.chunk().await.unwrap().unwrap().len();
            // A slow reader.
            if taken % (1 << 20) < 65536 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        // Now stop reading: the server must stop too.
        let mut last = server.stats().bytes_sent;
        let mut stalled = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let now = server.stats().bytes_sent;
            if now == last {
                stalled = true;
                break;
            }
            last = now;
        }
        assert!(stalled, "{name}: the server kept sending ({last} bytes)");
        // Compressed bytes sent are a small part of 1 GiB (the pattern compresses ~100:1, so
        // 4 MiB decoded needs ~40 KiB; windows and buffers hold a few MiB more at most).
        assert!(
            last < 24 << 20,
            "{name}: {last} bytes sent for {taken} taken"
        );
        assert!(client.stats().buffered_bytes < 24 << 20, "{name}");
        // Reading resumes where it stopped.
        let more = resp.chunk().await.unwrap().unwrap();
        let expected = pattern(taken + more.len());
        assert_eq!(&more[..], &expected[taken..]);
    }
}
