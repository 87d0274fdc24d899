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

/// A client whose `o1.test` … `o{n}.test` on the test server's HTTP port are distinct origins.
fn many_origins(server: &TestServer, n: usize) -> (quiver_core::ClientBuilder, Vec<String>) {
    let port = server.http_port();
    let names: Vec<String> = (1..=n).map(|i| format!("o{i}.test")).collect();
    let resolve: Vec<String> = names
        .iter()
        .map(|name| format!("{name}:{port}:127.0.0.1"))
        .collect();
    let urls = names
        .iter()
        .map(|name| format!("http://{name}:{port}"))
        .collect();
    (Client::builder().set("resolve", resolve.join(" ")), urls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_connection_cap_holds_across_20_origins() {
    let server = server().await;
    let (builder, origins) = many_origins(&server, 20);
    let client = builder
        .set("max_total_connections", 4)
        .set("checkout_timeout", Duration::from_secs(60))
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (client, url) = (client.clone(), format!("{}/slow/5", origins[i % 20]));
        tasks.spawn(async move { client.get(&url).await.map(|r| r.text()) });
    }
    let mut peak = 0;
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap(), "slow");
        peak = peak.max(client.stats().connections);
    }
    // Every origin was served, never over more than 4 connections at once (the server counts).
    let stats = client.stats();
    assert_eq!(stats.origins.len(), 20);
    assert!(stats
        .origins
        .iter()
        .all(|o| o.requests == 10 && o.errors == 0));
    assert!(
        stats.connections_opened >= 20,
        "{}",
        stats.connections_opened
    );
    // Stats read pool after pool (not one atomic snapshot), so a connection closed in one pool
    // and opened in another between two reads can be seen twice.
    assert!(peak <= 6, "{peak}");
    // The server's own count: never more than 4 requests in progress at once (a request in
    // progress holds its connection, and so its place under the cap; `max_open` would also
    // count an evicted connection whose close is still on its way). Without the cap: up to 200.
    let seen = server.stats().max_in_flight;
    assert!((1..=4).contains(&seen), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_cap_evicts_idle_connections_and_times_out_when_all_are_busy() {
    let server = server().await;
    let (builder, origins) = many_origins(&server, 2);
    let client = builder
        .set("max_total_connections", 1)
        .set("checkout_timeout", Duration::from_millis(300))
        .build()
        .unwrap();
    // An idle connection to one origin makes room for another at once.
    for _ in 0..3 {
        for origin in &origins {
            assert_eq!(
                client
                    .get(&format!("{origin}/health"))
                    .await
                    .unwrap()
                    .text(),
                "ok"
            );
        }
    }
    assert_eq!(client.stats().connections_opened, 6);
    // The one connection busy: the other origin waits `checkout_timeout`, then gives up.
    let busy = {
        let (client, url) = (client.clone(), format!("{}/slow/1500", origins[0]));
        tokio::spawn(async move { client.get(&url).await.map(|r| r.text()) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = client
        .get(&format!("{}/health", origins[1]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CheckoutTimeout, "{err}");
    assert!(err.to_string().contains("max_total_connections"), "{err}");
    assert_eq!(busy.await.unwrap().unwrap(), "slow");
    // A per-origin rule cannot set it.
    let err = Client::builder()
        .set_for("http://o1.test", "max_total_connections", 2)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
}
