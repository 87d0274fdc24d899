//! The conventional proxy environment variables (a test binary of its own: it sets them).

use quiver_core::Client;
use quiver_testserver::{Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_proxies_and_no_proxy() {
    let server = TestServer::start(Options::default()).await.unwrap();
    std::env::set_var("HTTPS_PROXY", server.proxy_url());
    std::env::set_var("http_proxy", server.proxy_url());
    std::env::set_var("NO_PROXY", "localhost, .example.invalid");
    let client = Client::builder()
        .set("ca_file", server.ca_file().to_str().unwrap())
        .set("protocol", "http1")
        .build()
        .unwrap();
    let tunnels = || server.stats().proxy_tunnels;
    let forwarded = || server.stats().proxy_forwarded;

    // NO_PROXY names localhost: direct.
    let before = (tunnels(), forwarded());
    assert_eq!(
        client
            .get(&server.https_url("/health"))
            .await
            .unwrap()
            .text(),
        "ok"
    );
    assert_eq!((tunnels(), forwarded()), before, "localhost is in NO_PROXY");

    // 127.0.0.1 is not: HTTPS_PROXY tunnels https, http_proxy forwards http.
    let by_ip = format!("https://127.0.0.1:{}/health", server.https_port());
    assert_eq!(client.get(&by_ip).await.unwrap().text(), "ok");
    assert_eq!(tunnels(), before.0 + 1);
    assert_eq!(
        client
            .get(&server.http_url("/health"))
            .await
            .unwrap()
            .text(),
        "ok"
    );
    assert_eq!(forwarded(), before.1 + 1);

    // proxy_from_env = false ignores them; proxy = "none" too.
    for client in [
        Client::builder()
            .set("ca_file", server.ca_file().to_str().unwrap())
            .set("proxy_from_env", false)
            .build()
            .unwrap(),
        Client::builder()
            .set("ca_file", server.ca_file().to_str().unwrap())
            .set("proxy", "none")
            .build()
            .unwrap(),
    ] {
        let before = (tunnels(), forwarded());
        assert_eq!(client.get(&by_ip).await.unwrap().text(), "ok");
        assert_eq!((tunnels(), forwarded()), before);
    }

    // httpoxy: under CGI (REQUEST_METHOD set) an upper-case HTTP_PROXY may come from the
    // request's `Proxy:` header, so only the lower-case variable counts there.
    std::env::remove_var("http_proxy");
    std::env::set_var("HTTP_PROXY", server.proxy_url());
    std::env::set_var("REQUEST_METHOD", "GET");
    let cgi = Client::builder().build().unwrap();
    let before = forwarded();
    assert_eq!(
        cgi.get(&server.http_url("/health")).await.unwrap().text(),
        "ok"
    );
    assert_eq!(forwarded(), before, "HTTP_PROXY ignored under CGI");
    std::env::remove_var("REQUEST_METHOD");
    let plain = Client::builder().build().unwrap();
    assert_eq!(
        plain.get(&server.http_url("/health")).await.unwrap().text(),
        "ok"
    );
    assert_eq!(forwarded(), before + 1, "HTTP_PROXY honoured outside CGI");
}
