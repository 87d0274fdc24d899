//! One benchmark run: N requests from C concurrent workers through one client (quiver or
//! reqwest), every response verified (status and length). Prints one JSON line.
//!
//! ```text
//! quiver-bench-rust --client quiver|reqwest --url URL [--requests N] [--concurrency C]
//!   [--ca FILE] [--protocol auto|http1|http2|http3] [--expect-len BYTES]
//!   [--method GET|POST --body-len B] [--duration SECS] [--pool-size P] [--warmup W] [--stream]
//!   [--proxy URL] [--proxy-protocol auto|http1|http2|http3]
//! ```
//!
//! The flags and the JSON keys are the contract every client of the harness follows
//! (bench/README.md, "The client contract"):
//! - `--duration SECS`: stop starting new requests SECS after the timed section began (requests
//!   in flight then still finish and count); `--requests` stays an upper bound.
//! - `--pool-size P`: at most P connections (default: the concurrency). reqwest has no
//!   per-host connection cap, so over HTTP/1 it gets a semaphore of P permits in front
//!   (reported in `note`); over HTTP/2 it uses one connection anyway.
//! - `--warmup W`: requests sent before the timed section to open the connections
//!   (default: min(pool size, concurrency); 0 with `--stream`). Counted in `warmup`; their
//!   failures count in `failures`.
//! - `--stream`: each request's body is pulled chunk by chunk and dropped as it comes
//!   (constant memory); `bytes` and `mb_per_s` say how fast.
//! - `--listener` (quiver only): an event listener that counts every event (the cost of
//!   events with someone listening).
//! - `--proxy URL`, `--proxy-protocol P` (quiver only): quiver's pool options `proxy` and
//!   `proxy_protocol`, e.g. an `https://` MASQUE proxy with `http3` for an HTTP/3 origin
//!   (the harness's "64 MiB over HTTP/3: direct vs MASQUE"). reqwest exits 3 (n/a).
//!
//! JSON: client, requests, failures, seconds, rps, p50_ms, p99_ms, cpu_s_per_10k,
//! peak_rss_bytes, warmup, bytes, mb_per_s, proto (versions seen: h1, h2, h3), note.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
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
    duration: Option<Duration>,
    pool_size: Option<usize>,
    warmup: Option<usize>,
    stream: bool,
    /// quiver only: a listener counting every event (`--listener`).
    listener: bool,
    proxy: Option<String>,
    proxy_protocol: Option<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("quiver-bench-rust: {msg}");
    eprintln!(
        "usage: quiver-bench-rust --client quiver|reqwest --url URL [--requests N] [--concurrency C] \
         [--ca FILE] [--protocol auto|http1|http2|http3] [--expect-len BYTES] [--method M --body-len B] \
         [--duration SECS] [--pool-size P] [--warmup W] [--stream] [--proxy URL] [--proxy-protocol P]"
    );
    std::process::exit(2)
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
        duration: None,
        pool_size: None,
        warmup: None,
        stream: false,
        listener: false,
        proxy: None,
        proxy_protocol: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--stream" {
            a.stream = true;
            continue;
        }
        if flag == "--listener" {
            a.listener = true;
            continue;
        }
        let val = it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
            v.parse().unwrap_or_else(|_| usage(&format!("{flag}: not a number: {v}")))
        }
        match flag.as_str() {
            "--client" => a.client = val,
            "--url" => a.url = val,
            "--requests" => a.requests = num(&flag, &val),
            "--concurrency" => a.concurrency = num(&flag, &val),
            "--ca" => a.ca = Some(val),
            "--protocol" => a.protocol = val,
            "--expect-len" => a.expect_len = Some(num(&flag, &val)),
            "--method" => a.method = val,
            "--body-len" => a.body_len = num(&flag, &val),
            "--duration" => a.duration = Some(Duration::from_secs_f64(num(&flag, &val))),
            "--pool-size" => a.pool_size = Some(num(&flag, &val)),
            "--warmup" => a.warmup = Some(num(&flag, &val)),
            "--proxy" => a.proxy = Some(val),
            "--proxy-protocol" => a.proxy_protocol = Some(val),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if a.url.is_empty() {
        usage("--url is required");
    }
    if a.concurrency == 0 || a.pool_size == Some(0) {
        usage("--concurrency and --pool-size must be at least 1");
    }
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

/// Bit per HTTP version seen (1: h1, 2: h2, 4: h3, 8: other).
fn version_bit(v: http_version::V) -> u8 {
    match v {
        http_version::V::H1 => 1,
        http_version::V::H2 => 2,
        http_version::V::H3 => 4,
        http_version::V::Other => 8,
    }
}

mod http_version {
    pub enum V {
        H1,
        H2,
        H3,
        Other,
    }
    pub fn of_quiver(v: quiver_core::Version) -> V {
        match v {
            quiver_core::Version::HTTP_11 | quiver_core::Version::HTTP_10 => V::H1,
            quiver_core::Version::HTTP_2 => V::H2,
            quiver_core::Version::HTTP_3 => V::H3,
            _ => V::Other,
        }
    }
    pub fn of_reqwest(v: reqwest::Version) -> V {
        match v {
            reqwest::Version::HTTP_11 | reqwest::Version::HTTP_10 => V::H1,
            reqwest::Version::HTTP_2 => V::H2,
            reqwest::Version::HTTP_3 => V::H3,
            _ => V::Other,
        }
    }
}

fn proto_names(bits: u8) -> String {
    let names: Vec<&str> = [(1, "h1"), (2, "h2"), (4, "h3"), (8, "other")]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    names.join("+")
}

enum Client {
    Quiver(quiver_core::Client),
    /// reqwest and, when the pool size is below the concurrency, a semaphore standing in for
    /// the per-host connection cap reqwest does not have.
    Reqwest(reqwest::Client, Option<tokio::sync::Semaphore>),
}

/// One response as seen by a worker: status, body bytes, HTTP version bit.
type Outcome = Result<(u16, usize, u8), String>;

impl Client {
    fn new(a: &Args) -> Result<Client, String> {
        let pool_size = a.pool_size.unwrap_or(a.concurrency);
        match a.client.as_str() {
            "quiver" => {
                let mut b = quiver_core::Client::builder()
                    .runtime(tokio::runtime::Handle::current())
                    .set("size", pool_size)
                    .set("protocol", a.protocol.as_str())
                    .set("checkout_timeout", Duration::from_secs(120));
                if let Some(ca) = &a.ca {
                    b = b.set("ca_file", ca.as_str());
                }
                if let Some(proxy) = &a.proxy {
                    b = b.set("proxy", proxy.as_str());
                }
                if let Some(p) = &a.proxy_protocol {
                    b = b.set("proxy_protocol", p.as_str());
                }
                if a.listener {
                    // The cheapest real listener: count every event (what a metrics exporter
                    // does before anything else), so the cost measured is building and
                    // delivering the events.
                    static EVENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                    b = b.listener(|_: &quiver_core::Event| {
                        EVENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    });
                }
                Ok(Client::Quiver(b.build().map_err(|e| format!("quiver client: {e}"))?))
            }
            "reqwest" => {
                if a.proxy.is_some() || a.proxy_protocol.is_some() {
                    // Exit status 3: "cannot do that" (the MASQUE workload is quiver's alone).
                    eprintln!("reqwest: --proxy / --proxy-protocol are for the quiver client only");
                    std::process::exit(3);
                }
                let mut tls = rustls_config(&a.ca);
                let mut b = reqwest::Client::builder().pool_max_idle_per_host(pool_size);
                match a.protocol.as_str() {
                    "http1" => {
                        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
                        b = b.http1_only();
                    }
                    "http2" => {
                        tls.alpn_protocols = vec![b"h2".to_vec()];
                        b = b.http2_prior_knowledge();
                    }
                    "auto" => tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                    other => {
                        // Exit status 3: "cannot do that" (reqwest's HTTP/3 is behind
                        // `--cfg reqwest_unstable`; this build does not enable it).
                        eprintln!("reqwest: protocol {other} not supported by this build");
                        std::process::exit(3);
                    }
                }
                // HTTP/1 only: over HTTP/2 reqwest multiplexes on one connection, which is
                // within any pool size already.
                let sem = (pool_size < a.concurrency && a.protocol != "http2")
                    .then(|| tokio::sync::Semaphore::new(pool_size));
                let c = b.tls_backend_preconfigured(tls).build().map_err(|e| format!("reqwest client: {e}"))?;
                Ok(Client::Reqwest(c, sem))
            }
            other => Err(format!("unknown client {other}")),
        }
    }

    fn note(&self, a: &Args) -> Option<String> {
        match self {
            Client::Reqwest(_, Some(_)) => Some(format!(
                "semaphore({}) in front: reqwest has no per-host connection cap",
                a.pool_size.unwrap_or(a.concurrency)
            )),
            Client::Quiver(_) if a.proxy.is_some() => Some(format!(
                "through the proxy {} (proxy_protocol {})",
                a.proxy.as_deref().unwrap_or_default(),
                a.proxy_protocol.as_deref().unwrap_or("auto")
            )),
            _ => None,
        }
    }

    /// One request; with `stream` the body is pulled chunk by chunk and dropped.
    async fn one(&self, a: &Args, body: &quiver_core::Bytes) -> Outcome {
        match self {
            Client::Quiver(c) => {
                let req = quiver_core::Request::builder(&a.method, &a.url)
                    .body(body.clone())
                    .build()
                    .map_err(|e| e.to_string())?;
                if a.stream {
                    let mut r = c.stream(req).await.map_err(|e| e.to_string())?;
                    let (status, v) = (r.status().as_u16(), r.version());
                    let mut n = 0;
                    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
                        n += chunk.len();
                    }
                    Ok((status, n, version_bit(http_version::of_quiver(v))))
                } else {
                    let r = c.request(req).await.map_err(|e| e.to_string())?;
                    Ok((r.status().as_u16(), r.body().len(), version_bit(http_version::of_quiver(r.version()))))
                }
            }
            Client::Reqwest(c, sem) => {
                let _permit = match sem {
                    Some(s) => Some(s.acquire().await.map_err(|e| e.to_string())?),
                    None => None,
                };
                let method = reqwest::Method::from_bytes(a.method.as_bytes()).map_err(|e| e.to_string())?;
                let mut req = c.request(method, &a.url);
                if !body.is_empty() {
                    req = req.body(body.clone());
                }
                let mut r = req.send().await.map_err(|e| e.to_string())?;
                let (status, v) = (r.status().as_u16(), version_bit(http_version::of_reqwest(r.version())));
                if a.stream {
                    let mut n = 0;
                    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
                        n += chunk.len();
                    }
                    Ok((status, n, v))
                } else {
                    let b = r.bytes().await.map_err(|e| e.to_string())?;
                    Ok((status, b.len(), v))
                }
            }
        }
    }
}

struct Shared {
    args: Args,
    client: Client,
    body: quiver_core::Bytes,
    next: AtomicU64,
    failures: AtomicU64,
    bytes: AtomicU64,
    versions: AtomicU8,
}

impl Shared {
    /// Runs one request, verifies it, counts it. Returns false if it failed.
    async fn run_one(&self) -> bool {
        let a = &self.args;
        match self.client.one(a, &self.body).await {
            Ok((status, len, v)) if (200..300).contains(&status) && a.expect_len.is_none_or(|n| n == len) => {
                self.bytes.fetch_add(len as u64, Ordering::Relaxed);
                self.versions.fetch_or(v, Ordering::Relaxed);
                true
            }
            Ok((status, len, _)) => {
                if self.failures.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("bad response: status {status}, {len} bytes (expected {:?})", a.expect_len);
                }
                false
            }
            Err(e) => {
                if self.failures.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("request failed: {e}");
                }
                false
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let client = match Client::new(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let pool_size = args.pool_size.unwrap_or(args.concurrency);
    let warmup = args
        .warmup
        .unwrap_or(if args.stream { 0 } else { pool_size.min(args.concurrency) });
    let note = client.note(&args);
    let s = Arc::new(Shared {
        body: quiver_core::Bytes::from(vec![b'x'; args.body_len]),
        args,
        client,
        next: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        versions: AtomicU8::new(0),
    });

    // Warm-up: open the connections (concurrently, so that each one gets its own).
    let warm: Vec<_> = (0..warmup)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.run_one().await })
        })
        .collect();
    for w in warm {
        // A failed warm-up request is counted in `failures` like any other.
        let _ = w.await;
    }
    s.bytes.store(0, Ordering::Relaxed);

    let (cpu0, _) = rusage();
    let start = Instant::now();
    let deadline = s.args.duration.map(|d| start + d);
    let workers: Vec<_> = (0..s.args.concurrency)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while s.next.fetch_add(1, Ordering::Relaxed) < s.args.requests {
                    let t = Instant::now();
                    if deadline.is_some_and(|d| t >= d) {
                        break;
                    }
                    s.run_one().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(s.args.requests.min(1 << 20) as usize);
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    let elapsed = start.elapsed();
    let (cpu1, maxrss) = rusage();
    lat.sort();
    let pct = |p: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3
    };
    let n = lat.len() as f64;
    let secs = elapsed.as_secs_f64();
    let bytes = s.bytes.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "client": s.args.client,
            "requests": lat.len(),
            "failures": s.failures.load(Ordering::Relaxed),
            "seconds": secs,
            "rps": n / secs,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "cpu_s_per_10k": if n > 0.0 { (cpu1 - cpu0).as_secs_f64() * 10_000.0 / n } else { 0.0 },
            "peak_rss_bytes": maxrss,
            "warmup": warmup,
            "bytes": bytes,
            "mb_per_s": bytes as f64 / secs / 1e6,
            "proto": proto_names(s.versions.load(Ordering::Relaxed)),
            "note": note,
        })
    );
}
