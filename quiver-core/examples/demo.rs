//! `make demo`: fetches from the loopback test server through quiver and prints what came back.
//!
//! Usage: `demo '<the test server's JSON line>'`

use std::time::Duration;

use quiver_core::{Body, Bytes, Client, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let line = std::env::args()
        .nth(1)
        .ok_or("usage: demo '<test server JSON line>'")?;
    let server: serde_json::Value = serde_json::from_str(&line)?;
    let http = format!("http://127.0.0.1:{}", server["http"]);
    let https = format!("https://localhost:{}", server["https"]);
    let ca_file = server["ca_file"].as_str().ok_or("no ca_file")?;

    let client = Client::builder()
        .set("ca_file", ca_file)
        .set("size", 4)
        .set("checkout_timeout", Duration::from_secs(2))
        .build()?;

    let resp = client.get(&format!("{http}/health")).await?;
    println!(
        "GET {http}/health -> {} {:?} {:?}",
        resp.status(),
        resp.version(),
        resp.text()
    );

    let resp = client.get(&format!("{https}/bytes/32")).await?;
    println!(
        "GET {https}/bytes/32 (TLS, test CA) -> {} body {:?}",
        resp.status(),
        resp.text()
    );

    let req = Request::post(&format!("{http}/echo"))
        .header("content-type", "text/plain")
        .body("hello from quiver")
        .build()?;
    let resp = client.request(req).await?;
    println!("POST {http}/echo -> {} {:?}", resp.status(), resp.text());

    let upload = futures_util::stream::iter(
        ["streamed ", "request ", "body"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s))),
    );
    let req = Request::put(&format!("{https}/echo"))
        .body(Body::from_stream(upload))
        .build()?;
    let resp = client.request(req).await?;
    println!(
        "PUT {https}/echo (chunked upload) -> {} {:?}",
        resp.status(),
        resp.text()
    );

    let url = format!("{http}/bytes/1000000?chunk_size=65536");
    let mut stream = client.stream(Request::get(&url).build()?).await?;
    let (mut chunks, mut bytes) = (0, 0);
    while let Some(chunk) = stream.chunk().await? {
        chunks += 1;
        bytes += chunk.len();
    }
    println!("GET {url} (streamed) -> {bytes} bytes in {chunks} chunks");

    let concurrent: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            let url = format!("{http}/bytes/{i}");
            tokio::spawn(async move { client.get(&url).await.map(|r| r.body().len() == i) })
        })
        .collect();
    let mut ok = 0;
    for t in concurrent {
        if t.await?? {
            ok += 1;
        }
    }
    println!("100 concurrent GETs through a pool of 4 -> {ok} correct");

    match client
        .request(
            Request::get(&format!("{http}/slow/3000"))
                .timeout(Duration::from_millis(200))
                .build()?,
        )
        .await
    {
        Ok(r) => println!("unexpected: {}", r.status()),
        Err(e) => println!(
            "GET /slow/3000 with a 200 ms timeout -> error class={} kind={} ({})",
            e.class(),
            e.kind(),
            e.message()
        ),
    }

    let stats = client.stats();
    for o in &stats.origins {
        let usage = if o.protocol == quiver_core::Protocol::Http1 {
            format!("{} idle, {} in use", o.idle, o.active)
        } else {
            format!(
                "{} streams in flight, {} free stream slots",
                o.active, o.idle
            )
        };
        println!(
            "pool {} ({}): {} connections ({usage}), {} requests, {} errors",
            o.origin, o.protocol, o.connections, o.requests, o.errors
        );
    }

    Ok(())
}
