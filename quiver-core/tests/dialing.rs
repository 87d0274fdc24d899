//! Getting connected: Happy Eyeballs past a black-holed address, `resolve` overrides, the DNS
//! cache and a custom resolver, the dial's own error for a caller waiting on it, Unix domain
//! sockets, and SOCKS5 proxies, all against the test server on loopback.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_core::{Client, ErrorKind, Resolve, Resolving, Version};
use quiver_testserver::{Options, TestServer};

async fn server() -> TestServer {
    TestServer::start(Options::default()).await.unwrap()
}

/// `resolve` entry sending `name` on `port` to the black-holed addresses first.
fn black_hole_first(server: &TestServer, name: &str) -> String {
    let port = server.blackhole_port();
    let first = if server.blackhole_has_v6() {
        "[::1]"
    } else {
        "127.0.0.2"
    };
    format!("{name}:{port}:{first},127.0.0.1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_first_address_costs_about_one_attempt_delay() {
    let server = server().await;
    let client = Client::builder()
        .set("resolve", black_hole_first(&server, "eyeballs.test"))
        .set("connect_timeout", Duration::from_secs(10))
        .set("happy_eyeballs_delay", Duration::from_millis(250))
        .build()
        .unwrap();
    let url = format!("http://eyeballs.test:{}/health", server.blackhole_port());
    let started = Instant::now();
    let response = client.get(&url).await.unwrap();
    assert_eq!(response.text(), "ok");
    let took = started.elapsed();
    // The attempt delay, not the 10 s connect timeout (generous bound for a loaded machine).
    assert!(took >= Duration::from_millis(240), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_waiting_on_its_dial_gets_the_dials_error() {
    let server = server().await;
    let port = server.blackhole_port();
    // Only the black hole: the dial times out; the caller waited for it, not for the pool.
    let client = Client::builder()
        .set("resolve", format!("hole.test:{port}:127.0.0.2"))
        .set("connect_timeout", Duration::from_millis(600))
        .set("checkout_timeout", Duration::from_millis(100))
        .build()
        .unwrap();
    let err = client
        .get(&format!("http://hole.test:{port}/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectTimeout, "{err}");
    // A refused connection is `connect_refused`, also over HTTP/2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    for protocol in ["http1", "http2"] {
        let client = Client::builder()
            .set("protocol", protocol)
            .set("checkout_timeout", Duration::from_millis(1))
            .build()
            .unwrap();
        let err = client
            .get(&format!("http://127.0.0.1:{dead}/"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{protocol}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_overrides_name_only_the_given_host_and_port() {
    let server = server().await;
    let port = server.http_port();
    let client = Client::builder()
        .set(
            "resolve",
            format!("api.test:{port}:127.0.0.1 other.test:1:127.0.0.1"),
        )
        .build()
        .unwrap();
    let response = client
        .get(&format!("http://api.test:{port}/health"))
        .await
        .unwrap();
    assert_eq!(response.text(), "ok");
    // Another port of the same name is not overridden: `.test` never resolves.
    let err = client
        .get(&format!("http://api.test:{}/health", server.h2c_port()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dns, "{err}");
    for bad in [
        "api.test",
        "api.test:80",
        "api.test:http:127.0.0.1",
        "a:1:not-an-ip",
    ] {
        let err = Client::builder().set("resolve", bad).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
        assert!(err.message().contains("resolve"), "{err}");
    }
}

/// Resolves every name to 127.0.0.1, counting the questions.
struct Counting(Arc<AtomicUsize>);

impl Resolve for Counting {
    fn resolve(&self, name: &str) -> Resolving {
        assert_eq!(name, "cached.test");
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(vec![IpAddr::from([127, 0, 0, 1])]) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dns_cache_is_used_within_its_ttl_and_refreshed_after() {
    let server = server().await;
    let asked = Arc::new(AtomicUsize::new(0));
    let client = Client::builder()
        .resolver(Counting(asked.clone()))
        .set("dns_cache_ttl", Duration::from_millis(700))
        .build()
        .unwrap();
    // Three origins of one name: three pools, three dials.
    let url = |port: u16| format!("http://cached.test:{port}/health");
    client.get(&url(server.http_port())).await.unwrap();
    client.get(&url(server.idle_close_port())).await.unwrap();
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the second dial used the cache"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    client.get(&url(server.blackhole_port())).await.unwrap();
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "an expired entry is asked again"
    );

    // Without a cache every dial asks.
    let asked = Arc::new(AtomicUsize::new(0));
    let client = Client::builder()
        .resolver(Counting(asked.clone()))
        .set("dns_cache_ttl", Duration::ZERO)
        .build()
        .unwrap();
    client.get(&url(server.http_port())).await.unwrap();
    client.get(&url(server.idle_close_port())).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_sockets_carry_http1_and_h2c() {
    let server = server().await;
    let client = Client::builder()
        .set("unix_socket", server.unix_http_path().to_str().unwrap())
        .set_for(
            "http://h2c.local",
            "unix_socket",
            server.unix_h2c_path().to_str().unwrap(),
        )
        .set_for("http://h2c.local", "protocol", "http2")
        .build()
        .unwrap();
    let one = client.get("http://localhost/health").await.unwrap();
    assert_eq!(
        (one.text().as_str(), one.version()),
        ("ok", Version::HTTP_11)
    );
    let echo = client.get("http://docker.local/headers").await.unwrap();
    assert!(
        echo.text().contains("docker.local"),
        "Host names the URL's origin"
    );
    let two = client.get("http://h2c.local/health").await.unwrap();
    assert_eq!(
        (two.text().as_str(), two.version()),
        ("ok", Version::HTTP_2)
    );

    let err = Client::builder()
        .set("unix_socket", "/nonexistent/quiver.sock")
        .build()
        .unwrap()
        .get("http://localhost/")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectFailed, "{err}");
    let err = Client::builder()
        .set("unix_socket", "/tmp/x.sock")
        .set("protocol", "http3")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_proxies_with_and_without_authentication() {
    let server = server().await;
    let plain = format!("socks5://127.0.0.1:{}", server.socks5_port());
    let remote = format!("socks5h://127.0.0.1:{}", server.socks5_port());
    let authed = format!(
        "socks5h://quiver:secret@127.0.0.1:{}",
        server.socks5_auth_port()
    );
    let port = server.http_port();
    let target = format!("http://localhost:{port}/health");
    for (proxy, seen) in [
        (&plain, "ipv".to_owned()),
        (&remote, format!("domain localhost:{port}")),
        (&authed, format!("domain localhost:{port}")),
    ] {
        let before = server.stats().socks_connects;
        let client = Client::builder()
            .set("proxy", proxy.as_str())
            .build()
            .unwrap();
        assert_eq!(client.get(&target).await.unwrap().text(), "ok", "{proxy}");
        assert_eq!(server.stats().socks_connects, before + 1, "{proxy}");
        // socks5 resolves the name here (an address goes to the proxy), socks5h sends the name.
        let last = server.socks_last_target().unwrap_or_default();
        assert!(last.starts_with(&seen), "{proxy}: {last}");
    }
    // TLS to the origin inside the tunnel, HTTP/2 by ALPN.
    let client = Client::builder()
        .set("proxy", remote.as_str())
        .set("ca_file", server.ca_file().to_str().unwrap())
        .build()
        .unwrap();
    let response = client.get(&server.https_url("/health")).await.unwrap();
    assert_eq!(
        (response.text().as_str(), response.version()),
        ("ok", Version::HTTP_2)
    );

    let wrong = format!(
        "socks5://quiver:nope@127.0.0.1:{}",
        server.socks5_auth_port()
    );
    let none = format!("socks5://127.0.0.1:{}", server.socks5_auth_port());
    for proxy in [wrong, none] {
        let client = Client::builder()
            .set("proxy", proxy.as_str())
            .build()
            .unwrap();
        let err = client.get(&target).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProxyConnectFailed, "{err}");
        assert!(
            !err.to_string().contains("nope"),
            "no password in errors: {err}"
        );
    }
    let err = Client::builder()
        .set("proxy", plain.as_str())
        .set("protocol", "http3")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    let err = Client::builder()
        .set("proxy", "socks5://")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
}
