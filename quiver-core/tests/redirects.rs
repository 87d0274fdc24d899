//! Redirects against the test server: every status, relative, absolute and scheme-relative
//! locations, method and body rules, loops and limits, credentials and cookies left behind
//! on another origin, https to http, streamed bodies, the per-request switches, and chains over
//! HTTP/2 and HTTP/3.

use std::time::Duration;

use quiver_core::{Auth, Body, Client, ErrorKind, RedirectMode, Request, StatusCode, Version};
use quiver_testserver::{Options, TestServer};

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

/// The value of `name` in a `/headers` answer, if the request carried it.
fn header_sent(answer: &serde_json::Value, name: &str) -> Option<String> {
    answer["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap().to_owned())
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_status_changes_method_and_body_as_browsers_do() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    for (status, method, body_kept) in [
        (301, "GET", false),
        (302, "GET", false),
        (303, "GET", false),
        (307, "POST", true),
        (308, "POST", true),
    ] {
        let url = server.http_url(&format!("/redirect-to?url=%2Fecho&status={status}"));
        let req = Request::post(&url)
            .header("content-type", "text/plain")
            .body("payload")
            .build()
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{status}");
        assert_eq!(resp.headers()["x-echo-method"], method, "{status}");
        let expected: &[u8] = if body_kept { b"payload" } else { b"" };
        assert_eq!(resp.body().as_ref(), expected, "{status}");
        assert_eq!(resp.url(), server.http_url("/echo"), "{status}");
        let hops: Vec<u16> = resp.history().iter().map(|h| h.status.as_u16()).collect();
        assert_eq!(hops, [status], "{status}");
        assert_eq!(resp.history()[0].url, url);
        assert_eq!(resp.history()[0].headers["location"], "/echo");
    }
    // A PUT keeps its method through a 302; a 303 turns it into a GET.
    for (status, method) in [(302, "PUT"), (303, "GET")] {
        let url = server.http_url(&format!("/redirect-to?url=%2Fecho&status={status}"));
        let req = Request::put(&url).body("x").build().unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.headers()["x-echo-method"], method, "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_absolute_and_scheme_relative_chains() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    for kind in ["relative", "absolute", "scheme-relative"] {
        for (base, version) in [
            (server.http_url(""), Version::HTTP_11),
            (server.https_url(""), Version::HTTP_2),
        ] {
            let url = format!("{}/redirect/3?kind={kind}", base.trim_end_matches('/'));
            let resp = client.get(&url).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{kind} {url}");
            assert_eq!(resp.version(), version);
            assert_eq!(json(resp.body())["path"], "/redirect/0", "{kind}");
            assert_eq!(resp.history().len(), 3, "{kind}");
            assert!(resp.url().contains("/redirect/0?kind="), "{}", resp.url());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_over_http3() {
    let server = server().await;
    let client = builder(&server).set("protocol", "http3").build().unwrap();
    let resp = client
        .get(&server.h3_url("/redirect/2?status=308"))
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_3);
    assert_eq!(resp.history().len(), 2);
    let req = Request::post(&server.h3_url("/redirect-to?url=%2Fecho&status=307"))
        .body("over quic")
        .build()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.body().as_ref(), b"over quic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_and_limits_are_too_many_redirects() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let err = client
        .get(&server.http_url("/redirect-loop"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects, "{err}");
    assert_eq!(err.class(), quiver_core::ErrorClass::Unrecoverable);
    assert!(err.message().contains("loop"), "{err}");
    // Ten hops are fine by default, eleven are not.
    assert!(client.get(&server.http_url("/redirect/10")).await.is_ok());
    let err = client
        .get(&server.http_url("/redirect/11"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    // Per request, client-wide and per rule.
    let req = Request::get(&server.http_url("/redirect/3"))
        .max_redirects(2)
        .build()
        .unwrap();
    assert_eq!(
        client.request(req).await.unwrap_err().kind(),
        ErrorKind::TooManyRedirects
    );
    let strict = builder(&server).set("max_redirects", 1).build().unwrap();
    assert!(strict.get(&server.http_url("/redirect/1")).await.is_ok());
    assert!(strict.get(&server.http_url("/redirect/2")).await.is_err());
    let ruled = builder(&server)
        .set_for(&server.http_url(""), "max_redirects", 0)
        .build()
        .unwrap();
    let resp = ruled.get(&server.http_url("/redirect/1")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(resp.history().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_and_error_modes() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let req = Request::get(&server.http_url("/redirect/1"))
        .follow_redirects(false)
        .build()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "/redirect/0");
    assert_eq!(resp.text(), "redirect");
    assert!(resp.unfollowed_redirect().is_none());
    let off = builder(&server)
        .set("follow_redirects", false)
        .build()
        .unwrap();
    assert_eq!(
        off.get(&server.http_url("/redirect/1"))
            .await
            .unwrap()
            .status(),
        StatusCode::FOUND
    );
    let req = Request::get(&server.http_url("/redirect/1"))
        .redirect(RedirectMode::Error)
        .build()
        .unwrap();
    let err = client.request(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRefused, "{err}");
    // A non-redirect response passes in error mode.
    let req = Request::get(&server.http_url("/health"))
        .redirect(RedirectMode::Error)
        .build()
        .unwrap();
    assert!(client.request(req).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_cookies_stay_with_their_origin() {
    let server = server().await;
    let client = builder(&server)
        .set("basic_auth", "client:secret")
        .build()
        .unwrap();
    let second = format!("http://localhost:{}/headers", server.second_port());
    let same = server.http_url("/headers");
    for (target, cross) in [(second.as_str(), true), (same.as_str(), false)] {
        let url = server.http_url(&format!("/redirect-to?url={}", escape(target)));
        let req = Request::get(&url)
            .header("cookie", "mine=1")
            .header("proxy-authorization", "Basic eDp5")
            .header("x-custom", "kept")
            .build()
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let answer = json(resp.body());
        assert_eq!(header_sent(&answer, "x-custom").as_deref(), Some("kept"));
        for name in ["authorization", "cookie", "proxy-authorization"] {
            assert_eq!(
                header_sent(&answer, name).is_none(),
                cross,
                "{name} on {target}: {answer}"
            );
        }
    }
    // An explicit per-request credential behaves the same.
    let plain = builder(&server).build().unwrap();
    let url = server.http_url(&format!("/redirect-to?url={}", escape(&second)));
    let req = Request::get(&url)
        .auth(Auth::bearer("t0ken"))
        .build()
        .unwrap();
    let answer = json(plain.request(req).await.unwrap().body());
    assert_eq!(header_sent(&answer, "authorization"), None);
    // A rule's credentials go to its own origin, even when a redirect leads there.
    let ruled = builder(&server)
        .set_for(
            &format!("http://localhost:{}", server.second_port()),
            "bearer_token",
            "for-second",
        )
        .build()
        .unwrap();
    let answer = json(ruled.get(&url).await.unwrap().body());
    assert_eq!(
        header_sent(&answer, "authorization").as_deref(),
        Some("Bearer for-second")
    );
    let answer = json(ruled.get(&same).await.unwrap().body());
    assert_eq!(header_sent(&answer, "authorization"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_http_needs_the_option() {
    let server = server().await;
    let target = escape(&server.http_url("/health"));
    let url = server.https_url(&format!("/redirect-to?url={target}"));
    let client = builder(&server).build().unwrap();
    let err = client.get(&url).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRefused, "{err}");
    assert!(err.message().contains("allow_insecure_redirects"), "{err}");
    let lax = builder(&server)
        .set("allow_insecure_redirects", true)
        .build()
        .unwrap();
    assert_eq!(lax.get(&url).await.unwrap().text(), "ok");
    // Not an http(s) URL.
    let url = server.http_url("/redirect-to?url=ftp%3A%2F%2Fexample.com%2F");
    let err = client.get(&url).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRefused, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_cannot_follow_307_and_the_response_says_why() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        quiver_core::Bytes::from_static(b"streamed"),
    )]);
    let url = server.http_url("/redirect-to?url=%2Fecho&status=307");
    let req = Request::post(&url)
        .body(Body::from_stream(chunks))
        .build()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let why = resp.unfollowed_redirect().expect("a reason");
    assert!(why.contains("stream"), "{why}");
    // A 303 drops the body, so a stream is no obstacle.
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        quiver_core::Bytes::from_static(b"streamed"),
    )]);
    let url = server.http_url("/redirect-to?url=%2Fecho&status=303");
    let req = Request::post(&url)
        .body(Body::from_stream(chunks))
        .build()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.headers()["x-echo-method"], "GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_applies_to_the_hops_after_a_redirect() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let url = server.http_url("/redirect-to?url=%2Fslow%2F2000");
    let req = Request::get(&url)
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let err = client.request(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RequestTimeout, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_can_ask_for_its_own_protocol() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let req = Request::get(&server.https_url("/health"))
        .protocol(quiver_core::Protocol::Http1)
        .build()
        .unwrap();
    assert_eq!(
        client.request(req).await.unwrap().version(),
        Version::HTTP_11
    );
    assert_eq!(
        client
            .get(&server.https_url("/health"))
            .await
            .unwrap()
            .version(),
        Version::HTTP_2
    );
    let req = Request::get(&server.h3_url("/health"))
        .protocol(quiver_core::Protocol::Http3)
        .build()
        .unwrap();
    assert_eq!(
        client.request(req).await.unwrap().version(),
        Version::HTTP_3
    );
    let req = Request::get(&server.http_url("/health"))
        .protocol(quiver_core::Protocol::Http3)
        .build()
        .unwrap();
    let err = client.request(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    let stats = client.stats();
    let protocols: Vec<_> = stats
        .origins
        .iter()
        .filter(|o| o.origin.contains(&server.https_port().to_string()))
        .map(|o| o.protocol)
        .collect();
    assert_eq!(protocols.len(), 2, "{protocols:?}");
}
