//! Cookies and credentials against the test server: the jar (off by default, stored across
//! redirects, host, domain, path, Secure, expiry and the public suffix list, Netscape files),
//! Basic, Bearer and Digest per client, rule and request, and multipart uploads.
#![cfg(all(feature = "cookies", feature = "http3"))]

use std::time::Duration;

use quiver_core::{Auth, Body, Client, ErrorKind, Multipart, Part, Request, StatusCode};
use quiver_testserver::{pattern, Options, TestServer};

async fn server() -> TestServer {
    TestServer::start(Options::default()).await.unwrap()
}

fn builder(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder()
        .set("proxy_from_env", false)
        .set("ca_file", server.ca_file().to_str().unwrap())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn cookies_at(client: &Client, url: &str) -> serde_json::Value {
    json(client.get(url).await.unwrap().body())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jar_is_off_by_default_and_keeps_cookies_when_on() {
    let server = server().await;
    let plain = builder(&server).build().unwrap();
    assert!(plain.cookies().is_none());
    plain
        .get(&server.http_url("/set-cookie?v=a%3D1"))
        .await
        .unwrap();
    assert_eq!(
        cookies_at(&plain, &server.http_url("/cookies")).await,
        serde_json::json!({})
    );

    let client = builder(&server).set("cookies", true).build().unwrap();
    client
        .get(&server.http_url("/set-cookie?v=a%3D1&v=b%3D2%3B%20Path%3D%2Fcookies"))
        .await
        .unwrap();
    assert_eq!(
        cookies_at(&client, &server.http_url("/cookies")).await,
        serde_json::json!({"a": "1", "b": "2"})
    );
    // Path: `b` only under /cookies.
    let seen = json(
        client
            .get(&server.http_url("/headers"))
            .await
            .unwrap()
            .body(),
    );
    let cookie = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "cookie")
        .map(|p| p[1].as_str().unwrap().to_owned());
    assert_eq!(cookie.as_deref(), Some("a=1"));
    // Host-only: 127.0.0.1's cookies do not go to localhost.
    let other = format!("http://localhost:{}/cookies", server.http_port());
    assert_eq!(cookies_at(&client, &other).await, serde_json::json!({}));
    // Set while redirecting, sent to the next hop.
    let url = server.http_url("/redirect-to?url=%2Fcookies&set_cookie=hop%3Dyes");
    let got = cookies_at(&client, &url).await;
    assert_eq!(got["hop"], "yes");
    // A request's own cookie header wins over the jar.
    let req = Request::get(&server.http_url("/cookies"))
        .cookie("mine", "x")
        .build()
        .unwrap();
    let got = json(client.request(req).await.unwrap().body());
    assert_eq!(got, serde_json::json!({"mine": "x"}));
    // Deleting with Max-Age=0.
    client
        .get(&server.http_url("/set-cookie?v=a%3D%3B%20Max-Age%3D0"))
        .await
        .unwrap();
    assert!(cookies_at(&client, &server.http_url("/cookies")).await["a"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_secure_expiry_and_public_suffixes() {
    let server = server().await;
    let port = server.http_port();
    let names = ["www.example.co.uk", "api.example.co.uk", "www.other.test"];
    let resolve: Vec<String> = names
        .iter()
        .map(|n| format!("{n}:{port}:127.0.0.1"))
        .collect();
    let client = builder(&server)
        .set("cookies", true)
        .set("resolve", resolve.join(" "))
        .build()
        .unwrap();
    let at = |host: &str, path: &str| format!("http://{host}:{port}{path}");
    let set = |v: &str| at("www.example.co.uk", &format!("/set-cookie?v={}", escape(v)));
    for v in [
        "wide=1; Domain=example.co.uk; Path=/",
        "suffix=1; Domain=co.uk; Path=/",
        "secure=1; Secure; Path=/",
        "brief=1; Max-Age=1; Path=/",
        "site=1; SameSite=Strict; HttpOnly; Path=/",
    ] {
        client.get(&set(v)).await.unwrap();
    }
    let here = cookies_at(&client, &at("www.example.co.uk", "/cookies")).await;
    assert_eq!(here["wide"], "1");
    assert_eq!(here["site"], "1");
    assert!(
        here["suffix"].is_null(),
        "a public suffix cookie was kept: {here}"
    );
    assert!(
        here["secure"].is_null(),
        "a Secure cookie went over http: {here}"
    );
    let sibling = cookies_at(&client, &at("api.example.co.uk", "/cookies")).await;
    assert_eq!(sibling, serde_json::json!({"wide": "1"}));
    let stranger = cookies_at(&client, &at("www.other.test", "/cookies")).await;
    assert_eq!(stranger, serde_json::json!({}));
    let jar = client.cookies().unwrap();
    let site = jar
        .cookies()
        .into_iter()
        .find(|c| c.name == "site")
        .unwrap();
    assert!(site.http_only && site.host_only);
    assert_eq!(site.same_site.as_deref(), Some("Strict"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = cookies_at(&client, &at("www.example.co.uk", "/cookies")).await;
    assert!(later["brief"].is_null(), "expired cookie sent: {later}");
    assert_eq!(later["wide"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jar_reads_sets_clears_exports_and_imports() {
    let server = server().await;
    let client = builder(&server).set("cookies", true).build().unwrap();
    let jar = client.cookies().unwrap();
    jar.set(&server.http_url("/"), "given=by-hand; Path=/")
        .unwrap();
    assert_eq!(
        cookies_at(&client, &server.http_url("/cookies")).await,
        serde_json::json!({"given": "by-hand"})
    );
    let file = jar.export_netscape();
    assert!(
        file.contains("127.0.0.1\tFALSE\t/\tFALSE\t0\tgiven\tby-hand"),
        "{file}"
    );
    jar.clear(None);
    assert_eq!(
        cookies_at(&client, &server.http_url("/cookies")).await,
        serde_json::json!({})
    );
    assert_eq!(jar.import_netscape(&file).unwrap(), 1);
    assert_eq!(
        cookies_at(&client, &server.http_url("/cookies")).await,
        serde_json::json!({"given": "by-hand"})
    );
    assert_eq!(
        builder(&server)
            .set_for(&server.http_url(""), "cookies", true)
            .build()
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidConfig
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_and_bearer_per_client_rule_and_request() {
    let server = server().await;
    let client = builder(&server)
        .set("basic_auth", "user:pass word")
        .build()
        .unwrap();
    let ok = client
        .get(&server.http_url("/basic-auth/user/pass%20word"))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let wrong = client
        .get(&server.http_url("/basic-auth/user/other"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // Per request: another credential, or none at all.
    let req = Request::get(&server.http_url("/bearer/t0k"))
        .auth(Auth::bearer("t0k"))
        .build()
        .unwrap();
    assert_eq!(client.request(req).await.unwrap().status(), StatusCode::OK);
    let req = Request::get(&server.http_url("/basic-auth/user/pass%20word"))
        .auth(Auth::None)
        .build()
        .unwrap();
    assert_eq!(
        client.request(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // An explicit header wins.
    let req = Request::get(&server.http_url("/bearer/mine"))
        .header("authorization", "Bearer mine")
        .build()
        .unwrap();
    assert_eq!(client.request(req).await.unwrap().status(), StatusCode::OK);
    // Per rule: only that origin.
    let ruled = builder(&server)
        .set_for(&server.http_url(""), "bearer_token", "ruled")
        .build()
        .unwrap();
    assert_eq!(
        ruled
            .get(&server.http_url("/bearer/ruled"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        ruled
            .get(&server.second_url("/bearer/ruled"))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Bad values are refused when the client is built.
    for (option, value) in [("basic_auth", "no-colon"), ("digest_auth", "x")] {
        let err = builder(&server).set(option, value).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{option}");
    }
    let err = builder(&server)
        .set("basic_auth", "a:b")
        .set("bearer_token", "c")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let err = Request::get("http://x.test/")
        .basic_auth("a:b", "c")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidHeader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_answers_each_algorithm_and_reuses_the_challenge() {
    let server = server().await;
    for (protocol, base) in [("auto", server.http_url("")), ("http3", server.h3_url(""))] {
        let client = builder(&server)
            .set("protocol", protocol)
            .set("digest_auth", "mufasa:Circle of Life")
            .build()
            .unwrap();
        let base = base.trim_end_matches('/').to_owned();
        for path in [
            "auth/mufasa/Circle%20of%20Life",
            "auth/mufasa/Circle%20of%20Life/MD5-sess",
            "auth/mufasa/Circle%20of%20Life/SHA-256",
            "auth/mufasa/Circle%20of%20Life/SHA-256-sess",
            "none/mufasa/Circle%20of%20Life",
        ] {
            let url = format!("{base}/digest-auth/{path}");
            let resp = client.get(&url).await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "{protocol} {path}: {}",
                resp.text()
            );
            assert_eq!(json(resp.body())["authenticated"], true);
        }
        // The second request to the same place answers the remembered challenge: no 401.
        let url = format!("{base}/digest-auth/auth/mufasa/Circle%20of%20Life");
        client.get(&url).await.unwrap();
        let before = server.stats().digest_challenges;
        let resp = client.get(&url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(json(resp.body())["nc"], "00000002");
        assert_eq!(server.stats().digest_challenges, before);
    }
    // A stale nonce is answered again; a wrong password gives the 401 back (no loop).
    let client = builder(&server).set("digest_auth", "u:p").build().unwrap();
    let resp = client
        .get(&server.http_url("/digest-auth/auth/u/p?stale=1"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text());
    let resp = client
        .get(&server.http_url("/digest-auth/auth/u/other"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A replayable body goes again; a streamed one cannot, so the 401 comes back.
    let req = Request::post(&server.http_url("/digest-auth/auth/u/p"))
        .body("form=1")
        .build()
        .unwrap();
    assert_eq!(client.request(req).await.unwrap().status(), StatusCode::OK);
    let fresh = builder(&server).set("digest_auth", "u:p").build().unwrap();
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        quiver_core::Bytes::from_static(b"form=1"),
    )]);
    let req = Request::post(&server.http_url("/digest-auth/auth/u/p"))
        .body(Body::from_stream(chunks))
        .build()
        .unwrap();
    assert_eq!(
        fresh.request(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_fields_bytes_files_and_streams() {
    let server = server().await;
    let dir = server.dir().join("upload");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.bin");
    let big = pattern(3 << 20);
    std::fs::write(&path, &big).unwrap();
    let targets = [
        (
            "h1",
            builder(&server).build().unwrap(),
            server.http_url("/multipart"),
        ),
        (
            "h2",
            builder(&server).build().unwrap(),
            server.https_url("/multipart"),
        ),
        (
            "h3",
            builder(&server).set("protocol", "http3").build().unwrap(),
            server.h3_url("/multipart"),
        ),
    ];
    for (name, client, url) in targets {
        let form = Multipart::new()
            .text("title", "holiday \"photos\"")
            .text("odd \"name\"", "v")
            .part(
                Part::bytes("note", b"hello".to_vec())
                    .filename("note.txt")
                    .content_type("text/plain"),
            )
            .part(Part::file("photo", &path));
        let req = Request::post(&url).multipart(form).build().unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{name}: {}", resp.text());
        let got = json(resp.body());
        let mut parts = got["parts"].as_array().unwrap().clone();
        assert_eq!(parts.len(), 4, "{name}");
        let odd = parts.remove(1);
        assert_eq!(odd["name"], "odd %22name%22");
        assert_eq!(parts[0]["name"], "title");
        assert_eq!(parts[0]["text"], "holiday \"photos\"");
        assert_eq!(parts[1]["filename"], "note.txt");
        assert_eq!(parts[1]["content_type"], "text/plain");
        assert_eq!(parts[1]["text"], "hello");
        assert_eq!(parts[2]["filename"], "big.bin");
        assert_eq!(parts[2]["content_type"], "application/octet-stream");
        assert_eq!(parts[2]["size"], big.len());
        assert_eq!(parts[2]["sha256"], sha256_hex(&big), "{name}");
        assert!(got["content_length"].is_u64(), "{name}: {got}");
        assert!(got["content_type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/form-data; boundary="));
    }
    // A stream of unknown length: no content-length, chunked on HTTP/1.1.
    let client = builder(&server).build().unwrap();
    let chunks = futures_util::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(quiver_core::Bytes::from(pattern(10_000)))),
    );
    let stream: quiver_core::BodyStream = match Body::from_stream(chunks) {
        Body::Stream(s) => s,
        _ => unreachable!(),
    };
    let form = Multipart::new().part(Part::stream("s", stream, None).filename("s.bin"));
    let req = Request::post(&server.http_url("/multipart?delay_ms=5"))
        .multipart(form)
        .build()
        .unwrap();
    let got = json(client.request(req).await.unwrap().body());
    assert_eq!(got["chunked"], true);
    assert_eq!(got["parts"][0]["size"], 40_000);
    // A missing file is refused before anything is sent.
    let err = Request::post(&server.http_url("/multipart"))
        .multipart(Multipart::new().part(Part::file("f", dir.join("missing"))))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidBody);
}
