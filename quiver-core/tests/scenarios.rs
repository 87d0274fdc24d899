//! The cross-language behaviour cases (`tests/server/scenarios.tsv`) from Rust: each case on
//! each protocol it names, against the loopback test server.

use std::time::Duration;

use quiver_core::{Client, Request};
use quiver_testserver::scenarios::{scenarios, Check, Expect, Scenario};
use quiver_testserver::{pattern, Options, TestServer};

/// A client and base URL for one of the table's protocol names.
fn target(server: &TestServer, name: &str) -> (Client, String) {
    let ca = server.ca_file().to_str().unwrap().to_owned();
    let (builder, base) = match name {
        "http1" => (Client::builder(), server.http_url("")),
        "https1" => (
            Client::builder()
                .set("ca_file", ca.as_str())
                .set("protocol", "http1"),
            server.https_url(""),
        ),
        "h2" => (
            Client::builder().set("ca_file", ca.as_str()),
            server.https_url(""),
        ),
        "h2c" => (
            Client::builder().set("protocol", "http2"),
            server.h2c_url(""),
        ),
        "h3" => (
            Client::builder()
                .set("ca_file", ca.as_str())
                .set("protocol", "http3"),
            server.h3_url(""),
        ),
        other => panic!("unknown protocol `{other}` in scenarios.tsv"),
    };
    let client = builder
        .set("proxy_from_env", false)
        .build()
        .expect("client");
    (client, base.trim_end_matches('/').to_owned())
}

async fn run(client: &Client, base: &str, case: &Scenario) -> Result<(), String> {
    let mut builder = Request::builder(&case.method, &case.url(base));
    for (name, value) in &case.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &case.body {
        builder = builder.body(body.clone());
    }
    if let Some(ms) = case.timeout_ms {
        builder = builder.timeout(Duration::from_millis(ms));
    }
    let outcome = match builder.build() {
        Ok(req) => client.request(req).await,
        Err(e) => Err(e),
    };
    match (&case.expect, outcome) {
        (Expect::Error(kind), Err(e)) if e.kind().as_str() == kind => Ok(()),
        (Expect::Error(kind), Err(e)) => Err(format!("expected error {kind}, got {e}")),
        (Expect::Error(kind), Ok(r)) => Err(format!("expected error {kind}, got {}", r.status())),
        (Expect::Status(_), Err(e)) => Err(format!("failed: {e}")),
        (Expect::Status(status), Ok(r)) => {
            if r.status().as_u16() != *status {
                return Err(format!("status {} instead of {status}", r.status()));
            }
            for check in &case.checks {
                let ok = match check {
                    Check::Pattern(n) => r.body()[..] == pattern(*n)[..],
                    Check::Text(t) => r.body()[..] == *t.as_bytes(),
                    Check::Len(n) => r.body().len() == *n,
                    Check::Contains(t) => r.text().contains(t.as_str()),
                    Check::History(n) => r.history().len() == *n,
                    Check::UrlEnds(t) => r.url().ends_with(t.as_str()),
                    Check::Header(name, value) => {
                        r.headers().get(name.as_str()).and_then(|v| v.to_str().ok())
                            == Some(value.as_str())
                    }
                };
                if !ok {
                    return Err(format!(
                        "check {check:?} failed (body {} bytes)",
                        r.body().len()
                    ));
                }
            }
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_on_every_protocol() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let cases = scenarios();
    let mut failures = Vec::new();
    let mut ran = 0;
    for protocol in quiver_testserver::scenarios::ALL_PROTOCOLS {
        let (client, base) = target(&server, protocol);
        for case in cases
            .iter()
            .filter(|c| c.protocols.iter().any(|p| p == protocol))
        {
            ran += 1;
            if let Err(why) = run(&client, &base, case).await {
                failures.push(format!("{} on {protocol}: {why}", case.name));
            }
        }
    }
    assert!(ran >= 100, "only {ran} case runs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
