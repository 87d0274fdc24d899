//! The chaos soak: requests over HTTP/1.1, HTTP/2 and HTTP/3 against `/chaos`, which answers,
//! stalls, sends GOAWAY, resets streams, cuts bodies and kills connections at random. Every
//! request must end in one outcome (a response or a classified error) within its bound, no
//! POST may be processed twice, every successful POST must have been processed once, memory
//! stays flat, and the pools serve afterwards.
//!
//! `make test` runs it for `QUIVER_SOAK_SECS` (60 s there); `make soak` runs
//! `QUIVER_SOAK_REQUESTS=1000000`. The figures are printed at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quiver_core::{Client, ErrorKind, Request};
use quiver_testserver::{Options, TestServer};

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, u64>,
    /// POSTs that succeeded, and POSTs that failed as never processed, by request id.
    posted_ok: Vec<String>,
    posted_unprocessed: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak() {
    let limit_requests = env_u64("QUIVER_SOAK_REQUESTS");
    let limit_secs = env_u64("QUIVER_SOAK_SECS").unwrap_or(if limit_requests.is_some() {
        u64::MAX / 4
    } else {
        20
    });
    let server = TestServer::start(Options::default()).await.unwrap();
    let ca = server.ca_file().to_str().unwrap().to_owned();
    let make = |protocol: &str| {
        Client::builder()
            .set("ca_file", ca.as_str())
            .set("protocol", protocol)
            .set("proxy_from_env", false)
            .set("request_timeout", Duration::from_millis(1500))
            .set("read_timeout", Duration::from_millis(1000))
            .set("checkout_timeout", Duration::from_secs(5))
            .set("connect_timeout", Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let targets = Arc::new(vec![
        (make("http1"), server.http_url("/chaos")),
        (make("http2"), server.h2c_url("/chaos")),
        (make("http3"), server.h3_url("/chaos")),
    ]);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicU64::new(0));
    let hung = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(limit_secs);
    let total = limit_requests.unwrap_or(u64::MAX);
    let start_rss = rss();
    let peak_rss = Arc::new(AtomicU64::new(start_rss));
    let workers: Vec<_> = (0..48)
        .map(|_| {
            let (targets, tally, next, hung, peak) = (
                targets.clone(),
                tally.clone(),
                next.clone(),
                hung.clone(),
                peak_rss.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total || Instant::now() >= deadline {
                        break;
                    }
                    if n % 2000 == 0 {
                        peak.fetch_max(rss(), Ordering::Relaxed);
                    }
                    let (client, url) = &targets[(n % 3) as usize];
                    let size = 256 + (n * 7919 % 16_000) as usize;
                    let url = format!("{url}?size={size}");
                    let post = n % 3 == 1;
                    let id = format!("req-{n}");
                    let req = if post {
                        Request::post(&url)
                            .header("x-request-id", &id)
                            .body(format!("order {n}"))
                    } else {
                        Request::get(&url).header("x-request-id", &id)
                    }
                    .build()
                    .unwrap();
                    // Every wait is bounded by the request timeout; 10 s means a hang.
                    let outcome =
                        tokio::time::timeout(Duration::from_secs(10), client.request(req)).await;
                    let mut t = tally.lock().unwrap();
                    let key = match outcome {
                        Err(_) => {
                            hung.fetch_add(1, Ordering::Relaxed);
                            "hung".to_owned()
                        }
                        Ok(Ok(r)) if r.status() == 200 && r.body().len() == size => {
                            if post {
                                t.posted_ok.push(id);
                            }
                            "ok".to_owned()
                        }
                        Ok(Ok(r)) => {
                            format!(
                                "bad response over {} {} ({} of {size} bytes)",
                                ["http1", "http2", "http3"][(n % 3) as usize],
                                r.status(),
                                r.body().len()
                            )
                        }
                        Ok(Err(e)) => {
                            if post
                                && matches!(e.kind(), ErrorKind::Goaway | ErrorKind::RefusedStream)
                            {
                                t.posted_unprocessed.push(id);
                            }
                            format!("{} ({})", e.kind(), e.class())
                        }
                    };
                    *t.outcomes.entry(key).or_default() += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let end_rss = rss();
    peak_rss.fetch_max(end_rss, Ordering::Relaxed);
    let t = std::mem::take(&mut *tally.lock().unwrap());
    let requests: u64 = t.outcomes.values().sum();
    let stats = server.stats();
    println!(
        "soak: {requests} requests in {} s; outcomes {:?}; POSTs ok {}, processed {} (then failed {}), duplicated {}; RSS start {} MiB, peak {} MiB, end {} MiB",
        limit_secs.min(deadline.elapsed().as_secs() + limit_secs),
        t.outcomes,
        t.posted_ok.len(),
        stats.chaos_processed,
        stats.chaos_processed_failed,
        stats.chaos_duplicates,
        start_rss >> 20,
        peak_rss.load(Ordering::Relaxed) >> 20,
        end_rss >> 20,
    );
    assert!(requests >= 300, "only {requests} requests ran");
    assert_eq!(
        hung.load(Ordering::Relaxed),
        0,
        "requests hung past their timeout"
    );
    assert!(
        !t.outcomes.keys().any(|k| k.starts_with("bad response")),
        "{:?}",
        t.outcomes
    );
    assert_eq!(stats.chaos_duplicates, 0, "a request was processed twice");
    for id in &t.posted_ok {
        assert_eq!(
            server.chaos_outcome(id),
            Some(false),
            "{id} succeeded but the server did not process it once"
        );
    }
    for id in &t.posted_unprocessed {
        assert_eq!(
            server.chaos_outcome(id),
            None,
            "{id} was reported unprocessed"
        );
    }
    let grown = end_rss.saturating_sub(start_rss);
    assert!(grown < 96 << 20, "memory grew by {} MiB", grown >> 20);
    // The pools serve afterwards.
    for (client, url) in targets.iter() {
        let health = url.replace("/chaos", "/health");
        let resp = client
            .get(&health)
            .await
            .unwrap_or_else(|e| panic!("{health}: {e}"));
        assert_eq!(resp.status(), 200);
    }
}
