//! One benchmark run: N requests from C concurrent workers through one client (quiver or
//! reqwest), every response verified (status and length). Prints one JSON line.
//!
//! `quiver-bench-rust --client quiver|reqwest --url URL [--requests N] [--concurrency C]
//!  [--ca FILE] [--protocol auto|http1|http2] [--expect-len BYTES] [--method GET|POST --body-len B]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    client: String,
    url: String,
    requests: u64,
    concurrency: usize,
    ca: Option<String>,
    protocol: String,
    expect_len: Option<usize>,
    method: String,
    body_len: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        client: "quiver".into(),
        url: String::new(),
        requests: 10_000,
        concurrency: 32,
        ca: None,
        protocol: "auto".into(),
        expect_len: None,
        method: "GET".into(),
        body_len: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--client" => a.client = val(),
            "--url" => a.url = val(),
            "--requests" => a.requests = val().parse().expect("--requests"),
            "--concurrency" => a.concurrency = val().parse().expect("--concurrency"),
            "--ca" => a.ca = Some(val()),
            "--protocol" => a.protocol = val(),
            "--expect-len" => a.expect_len = Some(val().parse().expect("--expect-len")),
            "--method" => a.method = val(),
            "--body-len" => a.body_len = val().parse().expect("--body-len"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.url.is_empty(), "--url is required");
    a
}

fn rusage() -> (Duration, u64) {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss as u64 * 1024)
}

fn rustls_config(ca: &Option<String>) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("ca file") {
            roots.add(cert.expect("ca cert")).expect("add ca");
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

enum Client {
    Quiver(quiver_core::Client),
    Reqwest(reqwest::Client),
}

impl Client {
    fn new(a: &Args) -> Client {
        match a.client.as_str() {
            "quiver" => {
                let mut b = quiver_core::Client::builder()
                    .runtime(tokio::runtime::Handle::current())
                    .set("size", a.concurrency)
                    .set("protocol", a.protocol.as_str())
                    .set("checkout_timeout", Duration::from_secs(60));
                if let Some(ca) = &a.ca {
                    b = b.set("ca_file", ca.as_str());
                }
                Client::Quiver(b.build().expect("quiver client"))
            }
            "reqwest" => {
                let mut tls = rustls_config(&a.ca);
                let mut b = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency);
                match a.protocol.as_str() {
                    "http1" => {
                        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
                        b = b.http1_only();
                    }
                    "http2" => {
                        tls.alpn_protocols = vec![b"h2".to_vec()];
                        b = b.http2_prior_knowledge();
                    }
                    _ => tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                }
                Client::Reqwest(b.tls_backend_preconfigured(tls).build().expect("reqwest client"))
            }
            other => panic!("unknown client {other}"),
        }
    }

    async fn one(&self, a: &Args, body: &quiver_core::Bytes) -> Result<(u16, usize), String> {
        match self {
            Client::Quiver(c) => {
                let req = quiver_core::Request::builder(&a.method, &a.url)
                    .body(body.clone())
                    .build()
                    .map_err(|e| e.to_string())?;
                let r = c.request(req).await.map_err(|e| e.to_string())?;
                Ok((r.status().as_u16(), r.body().len()))
            }
            Client::Reqwest(c) => {
                let method = reqwest::Method::from_bytes(a.method.as_bytes()).unwrap();
                let mut req = c.request(method, &a.url);
                if !body.is_empty() {
                    req = req.body(body.clone());
                }
                let r = req.send().await.map_err(|e| e.to_string())?;
                let status = r.status().as_u16();
                let b = r.bytes().await.map_err(|e| e.to_string())?;
                Ok((status, b.len()))
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    let client = Arc::new(Client::new(&args));
    let body = quiver_core::Bytes::from(vec![b'x'; args.body_len]);
    // Warm-up: open the connections.
    let warm: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (c, a, b) = (client.clone(), args.clone(), body.clone());
            tokio::spawn(async move { c.one(&a, &b).await })
        })
        .collect();
    for w in warm {
        w.await.unwrap().expect("warm-up request failed");
    }
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let (cpu0, _) = rusage();
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (c, a, b, next, failures) = (client.clone(), args.clone(), body.clone(), next.clone(), failures.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < a.requests {
                    let t = Instant::now();
                    match c.one(&a, &b).await {
                        Ok((status, len)) if status < 400 && a.expect_len.is_none_or(|n| n == len) => {}
                        Ok((status, len)) => {
                            if failures.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("bad response: status {status}, {len} bytes");
                            }
                        }
                        Err(e) => {
                            if failures.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("request failed: {e}");
                            }
                        }
                    }
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(args.requests as usize);
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    let elapsed = start.elapsed();
    let (cpu1, maxrss) = rusage();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let n = lat.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "client": args.client,
            "requests": lat.len(),
            "failures": failures.load(Ordering::Relaxed),
            "seconds": elapsed.as_secs_f64(),
            "rps": n / elapsed.as_secs_f64(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "cpu_s_per_10k": (cpu1 - cpu0).as_secs_f64() * 10_000.0 / n,
            "peak_rss_bytes": maxrss,
        })
    );
}
