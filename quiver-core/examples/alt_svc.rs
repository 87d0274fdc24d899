//! Automatic HTTP/3, measured: against the loopback test server, an `auto` client's time to
//! first byte for request 1 (TCP + TLS, learns `alt-svc`), request 2 (a new QUIC connection
//! racing TCP) and request 3 (the pooled QUIC connection), then the same with the advertised
//! UDP port black-holed (request 2 falls back to TCP after the head start), and with `https_rr`
//! against the test server's DNS listener (request 1 already over HTTP/3).
//!
//! `cargo run --release -p quiver-core --example alt_svc [ROUNDS]`

use std::time::{Duration, Instant};

use quiver_core::{Client, Version};
use quiver_testserver::{Options, TestServer};

async fn ttfb(client: &Client, url: &str) -> (Duration, Version) {
    let started = Instant::now();
    let response = client
        .stream(
            quiver_core::Request::get(url)
                .build()
                .expect("a valid request"),
        )
        .await
        .expect("the request succeeds");
    (started.elapsed(), response.version())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let server = TestServer::start(Options::default())
        .await
        .expect("the test server starts");
    let https = server.https_port();
    let records = [
        (
            "https_rr_nameserver",
            format!("127.0.0.1:{}", server.dns_port()),
        ),
        ("resolve", format!("quiver.test:{https}:127.0.0.1")),
    ];
    for (name, url, extra) in [
        ("h3 advertised", server.https_alt_url("/"), &[][..]),
        (
            "h3 advertised, UDP black-holed",
            server.https_alt_blocked_url("/"),
            &[][..],
        ),
        (
            "HTTPS record (https_rr)",
            format!("https://quiver.test:{https}/"),
            &records[..],
        ),
    ] {
        let mut times = vec![Vec::new(); 3];
        let mut versions = [Version::HTTP_09; 3];
        for _ in 0..rounds {
            // A fresh client (and so fresh connections and an empty Alt-Svc cache) each round.
            let mut builder = Client::builder()
                .set("ca_file", server.ca_file().to_str().unwrap_or_default())
                .set("https_rr", !extra.is_empty());
            for (option, value) in extra {
                builder = builder.set(option, value.as_str());
            }
            let client = builder.build().expect("a valid client");
            for i in 0..3 {
                let (took, version) = ttfb(&client, &url).await;
                times[i].push(took);
                versions[i] = version;
            }
            client.close();
        }
        println!("{name} ({rounds} rounds, median time to response head):");
        for (i, t) in times.into_iter().enumerate() {
            println!(
                "  request {}: {:>8.2} ms over {:?}",
                i + 1,
                median(t).as_secs_f64() * 1e3,
                versions[i]
            );
        }
    }
}
