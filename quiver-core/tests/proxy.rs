//! Proxies end to end against the test server's forward proxy: CONNECT tunnels over HTTP/1.1
//! and pooled HTTP/2, absolute-form HTTP/1.1, MASQUE CONNECT-UDP over HTTP/3 and HTTP/2, HTTP/3
//! origins through MASQUE, and the upstream pool.
#![cfg(feature = "masque")]

use std::time::{Duration, Instant};

use quiver_core::{Client, ErrorClass, ErrorKind, Protocol, UdpTunnelOptions, Version};
use quiver_testserver::{Options, ProxyOptions, TestServer, PROXY_AUTHORIZATION};

async fn server() -> TestServer {
    TestServer::start(Options::default())
        .await
        .expect("test server starts")
}

fn base(server: &TestServer) -> quiver_core::ClientBuilder {
    Client::builder()
        .set("ca_file", server.ca_file().to_str().unwrap())
        .set("proxy_from_env", false)
        .set("checkout_timeout", Duration::from_secs(30))
}

/// The proxy URL with `quiver:secret` credentials.
fn with_credentials(url: &str) -> String {
    url.replacen("://", "://quiver:secret@", 1)
}

async fn headers_json(client: &Client, url: &str) -> serde_json::Value {
    let resp = client
        .get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(resp.status(), 200, "{url}");
    serde_json::from_slice(resp.body()).unwrap()
}

fn has_header(json: &serde_json::Value, name: &str) -> bool {
    json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_http_targets_through_http_and_https_proxies() {
    let server = server().await;
    assert!(PROXY_AUTHORIZATION.ends_with("cXVpdmVyOnNlY3JldA=="));
    for (proxy, proxy_protocol) in [
        (server.proxy_url(), "http1"),
        (server.proxy_tls_url(), "http1"),
        (server.proxy_tls_url(), "http2"),
    ] {
        let before = server.stats();
        let client = base(&server)
            .set("proxy", with_credentials(&proxy).as_str())
            .set("proxy_protocol", proxy_protocol)
            .build()
            .unwrap();
        // https target: CONNECT tunnel, TLS to the origin inside it.
        let json = headers_json(&client, &server.https_url("/headers")).await;
        assert!(
            !has_header(&json, "proxy-authorization"),
            "{proxy} {proxy_protocol}: the origin never sees proxy credentials"
        );
        // http target over HTTP/1.1: absolute form to the proxy.
        let http = base(&server)
            .set("proxy", with_credentials(&proxy).as_str())
            .set("proxy_protocol", proxy_protocol)
            .set("protocol", "http1")
            .build()
            .unwrap();
        let json = headers_json(&http, &server.http_url("/headers")).await;
        assert!(!has_header(&json, "proxy-authorization"));
        let after = server.stats();
        assert!(
            after.proxy_tunnels > before.proxy_tunnels,
            "{proxy} {proxy_protocol}: a tunnel was used"
        );
        assert!(
            after.proxy_forwarded > before.proxy_forwarded,
            "{proxy}: the http request was forwarded"
        );
        assert!(
            after.proxy_auth_seen >= before.proxy_auth_seen + 2,
            "the proxy saw the credentials"
        );
    }

    // HTTP/2 to the origin inside a tunnel.
    let h2 = base(&server)
        .set("proxy", server.proxy_url().as_str())
        .build()
        .unwrap();
    let resp = h2.get(&server.https_url("/bytes/100000")).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.body().len(), 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_http2_proxy_connection_carries_many_tunnels() {
    let server = server().await;
    let client = base(&server)
        .set("proxy", server.proxy_tls_url().as_str())
        .set("proxy_protocol", "http2")
        .set("protocol", "http1")
        .set("size", 3)
        .build()
        .unwrap();
    let before = server.stats();
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let (client, url) = (client.clone(), server.https_url("/slow/20"));
            tokio::spawn(async move { client.get(&url).await.map(|r| r.status()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    let after = server.stats();
    assert_eq!(
        after.proxy_connections - before.proxy_connections,
        1,
        "one pooled HTTP/2 connection to the proxy"
    );
    assert_eq!(
        after.proxy_tunnels - before.proxy_tunnels,
        3,
        "one tunnel per origin connection"
    );
    assert_eq!(client.stats().proxies.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connect_is_a_transient_proxy_error() {
    let server = server().await;
    let client = base(&server)
        .set("proxy", server.proxy_url().as_str())
        .build()
        .unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client
        .get(&format!("https://127.0.0.1:{closed_port}/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyConnectFailed, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(err.message().contains("502"), "{err}");
    // Wrong credentials: 407.
    let wrong = base(&server)
        .set("proxy", server.proxy_url().as_str())
        .set("proxy_authorization", "Basic d3Jvbmc6d3Jvbmc=")
        .build()
        .unwrap();
    let err = wrong.get(&server.https_url("/health")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyConnectFailed);
    assert!(err.message().contains("407"), "{err}");
    // An invalid proxy option is caught at build time.
    let err = base(&server)
        .set("proxy", "socks4://127.0.0.1:1080")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.message().contains("proxy"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_tunnels_over_http3_and_http2_echo_intact() {
    let server = server().await;
    let client = base(&server).build().unwrap();
    let echo = server.udp_echo_addr();
    for (proxy, protocol, tunnels) in [
        (server.proxy_h3_url(), Protocol::Http3, 100usize),
        (server.proxy_tls_url(), Protocol::Http2, 100),
    ] {
        let before = server.stats();
        let mut opened = Vec::new();
        for _ in 0..tunnels {
            let options = UdpTunnelOptions::default().protocol(protocol);
            opened.push(
                client
                    .open_udp_tunnel(&proxy, "127.0.0.1", echo.port(), options)
                    .await
                    .unwrap(),
            );
        }
        let after = server.stats();
        assert_eq!(
            after.proxy_connections - before.proxy_connections,
            1,
            "{protocol:?}: all tunnels share one proxy connection"
        );
        assert_eq!(after.proxy_tunnels - before.proxy_tunnels, tunnels as u64);
        for (i, tunnel) in opened.iter_mut().enumerate() {
            let payload = format!("datagram {i} via {protocol:?}").into_bytes();
            // UDP may lose a datagram: resend until the echo comes back (bounded).
            let mut echoed = None;
            for _ in 0..20 {
                tunnel.send(&payload).unwrap();
                if let Ok(got) =
                    tokio::time::timeout(Duration::from_millis(200), tunnel.recv()).await
                {
                    echoed = got.unwrap();
                    break;
                }
            }
            assert_eq!(
                echoed.as_deref(),
                Some(&payload[..]),
                "tunnel {i} echoes intact"
            );
        }
        for tunnel in opened {
            tunnel.close().await.unwrap();
        }
    }
    // HTTP/1.1 is not pooled for tunnels.
    let options = UdpTunnelOptions::default().protocol(Protocol::Http1);
    let err = client
        .open_udp_tunnel(&server.proxy_url(), "127.0.0.1", echo.port(), options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolUnsupportedForTransport);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_pool_single_flight_and_keys() {
    let slow = TestServer::start(Options {
        proxy: ProxyOptions {
            dial_delay: Duration::from_millis(1500),
        },
        ..Options::default()
    })
    .await
    .unwrap();
    let fast = server().await;
    let client = base(&fast).build().unwrap();
    let echo = fast.udp_echo_addr();
    // 5 concurrent tunnels for one key: exactly one dial.
    let before = fast.stats().proxy_connections;
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (client, proxy) = (client.clone(), fast.proxy_h3_url());
            tokio::spawn(async move {
                client
                    .open_udp_tunnel(
                        &proxy,
                        "127.0.0.1",
                        echo.port(),
                        UdpTunnelOptions::default(),
                    )
                    .await
            })
        })
        .collect();
    let mut tunnels = Vec::new();
    for t in tasks {
        tunnels.push(t.await.unwrap().unwrap());
    }
    assert_eq!(
        fast.stats().proxy_connections - before,
        1,
        "single flight: one dial for five callers"
    );

    // A slow proxy stalls only its own key.
    let slow_client = Client::builder()
        .set("ca_file", slow.ca_file().to_str().unwrap())
        .set_for(
            &fast.proxy_h3_url(),
            "ca_file",
            fast.ca_file().to_str().unwrap(),
        )
        .set("proxy_from_env", false)
        .build()
        .unwrap();
    let slow_echo = slow.udp_echo_addr();
    let slow_proxy = slow.proxy_h3_url();
    let started = Instant::now();
    let slow_task = {
        let client = slow_client.clone();
        tokio::spawn(async move {
            client
                .open_udp_tunnel(
                    &slow_proxy,
                    "127.0.0.1",
                    slow_echo.port(),
                    UdpTunnelOptions::default(),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quick = slow_client
        .open_udp_tunnel(
            &fast.proxy_h3_url(),
            "127.0.0.1",
            echo.port(),
            UdpTunnelOptions::default(),
        )
        .await
        .unwrap();
    let quick_done = started.elapsed();
    assert!(
        quick_done < Duration::from_millis(1200),
        "the fast proxy's tunnel took {quick_done:?}"
    );
    slow_task.await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1400));
    drop(quick);

    // close_all: tunnels in flight each get one `shutdown` error; nothing hangs.
    let waiters: Vec<_> = tunnels
        .into_iter()
        .map(|t| tokio::spawn(async move { t.recv().await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.close_all_tunnels();
    for w in waiters {
        let res = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("nothing hangs")
            .unwrap();
        let err = res.expect_err("a shutdown error");
        assert_eq!(err.kind(), ErrorKind::Shutdown, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_proxy_follows_the_proxys_rule_not_the_origins() {
    let server = server().await;
    let localhost = server.https_url("/health");
    let by_ip = format!("https://127.0.0.1:{}/health", server.https_port());
    let ip_origin = format!("https://127.0.0.1:{}", server.https_port());
    // Origins with different trust settings share the proxy connection: TLS to the proxy is
    // verified with the proxy's rule (here the client-wide CA), whatever the origin's rule says.
    let client = base(&server)
        .set("proxy", server.proxy_tls_url().as_str())
        .set("proxy_protocol", "http2")
        .set_for(&ip_origin, "danger_accept_invalid_certs", true)
        .build()
        .unwrap();
    let before = server.stats().proxy_connections;
    assert_eq!(client.get(&localhost).await.unwrap().status(), 200);
    assert_eq!(client.get(&by_ip).await.unwrap().status(), 200);
    assert_eq!(server.stats().proxy_connections - before, 1);

    // An origin that accepts any certificate does not make the proxy's TLS unverified: with a
    // CA that does not vouch for the proxy, the proxy is refused (and Proxy-Authorization never
    // goes out over that connection).
    for proxy_protocol in ["http1", "http2"] {
        let client = Client::builder()
            .set("ca_file", server.wrong_ca_file().to_str().unwrap())
            .set("proxy_from_env", false)
            .set("proxy", with_credentials(&server.proxy_tls_url()).as_str())
            .set("proxy_protocol", proxy_protocol)
            .set_for(&ip_origin, "danger_accept_invalid_certs", true)
            .build()
            .unwrap();
        let err = client.get(&by_ip).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{proxy_protocol}: {err}");
        // The proxy's own rule decides: trusting the right CA for it makes the request work.
        let client = Client::builder()
            .set("ca_file", server.wrong_ca_file().to_str().unwrap())
            .set("proxy_from_env", false)
            .set("proxy", server.proxy_tls_url().as_str())
            .set("proxy_protocol", proxy_protocol)
            .set_for(&ip_origin, "danger_accept_invalid_certs", true)
            .set_for(
                &server.proxy_tls_url(),
                "ca_file",
                server.ca_file().to_str().unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            client.get(&by_ip).await.unwrap().status(),
            200,
            "{proxy_protocol}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_origin_through_a_masque_proxy() {
    let server = server().await;
    let direct = base(&server).set("protocol", "http3").build().unwrap();
    let direct_peer = headers_json(&direct, &server.h3_url("/headers")).await["peer"].clone();
    for proxy_protocol in ["http3", "http2"] {
        let proxy = if proxy_protocol == "http3" {
            server.proxy_h3_url()
        } else {
            server.proxy_tls_url()
        };
        let client = base(&server)
            .set("protocol", "http3")
            .set("proxy", proxy.as_str())
            .set("proxy_protocol", proxy_protocol)
            .build()
            .unwrap();
        let before = server.stats().proxy_tunnels;
        let json = headers_json(&client, &server.h3_url("/headers")).await;
        assert_eq!(json["version"], "HTTP/3.0");
        assert_ne!(
            json["peer"], direct_peer,
            "via {proxy_protocol}: the origin sees the proxy's address, not ours"
        );
        assert_eq!(server.stats().proxy_tunnels - before, 1);
        // More requests reuse the QUIC connection inside the tunnel.
        for _ in 0..10 {
            assert_eq!(
                client
                    .get(&server.h3_url("/bytes/5000"))
                    .await
                    .unwrap()
                    .body()
                    .len(),
                5000
            );
        }
        assert_eq!(server.stats().proxy_tunnels - before, 1);
    }
}
