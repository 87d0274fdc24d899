//! Fetches a URL `ROUNDS` times, reading each body as a stream, and prints one JSON line with
//! the decoded bytes per round and the seconds each took (`bench/decode.py` uses it).
//!
//! Usage: `fetch URL [ROUNDS] [CA_FILE]`

use std::time::Instant;

use quiver_core::{Client, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: fetch URL [ROUNDS] [CA_FILE]")?;
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let mut builder = Client::builder().set("proxy_from_env", false);
    if let Some(ca) = args.next() {
        builder = builder.set("ca_file", ca);
    }
    let client = builder.build()?;
    let mut secs = Vec::new();
    let mut bytes = 0usize;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut resp = client.stream(Request::get(&url).build()?).await?;
        let mut n = 0usize;
        while let Some(chunk) = resp.chunk().await? {
            n += chunk.len();
        }
        secs.push(started.elapsed().as_secs_f64());
        bytes = n;
    }
    println!("{{\"bytes\": {bytes}, \"secs\": {secs:?}}}");
    Ok(())
}
