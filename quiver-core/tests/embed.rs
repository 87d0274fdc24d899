//! The embedders' toolkit against a real server: `Prefetch` reading ahead and collecting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quiver_core::embed::{Prefetch, Taken};
use quiver_core::{Client, ErrorKind, Request};
use quiver_testserver::{Options, TestServer};

async fn body_of(client: &Client, url: &str) -> quiver_core::ResponseBody {
    let resp = client
        .stream(Request::get(url).build().unwrap())
        .await
        .unwrap();
    resp.into_parts().1
}

fn client(protocol: &str) -> Client {
    Client::builder()
        .set("protocol", protocol)
        .set("proxy_from_env", false)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_gathers_a_body_past_the_read_ahead_bound() {
    let server = TestServer::start(Options::default()).await.unwrap();
    for (protocol, url) in [
        ("http1", server.http_url("/bytes/1000000?chunk_size=16384")),
        ("http2", server.h2c_url("/bytes/1000000?chunk_size=16384")),
    ] {
        let client = client(protocol);
        let body = body_of(&client, &url).await;
        let prefetch = Prefetch::start(body, client.runtime(), 64 << 10);
        let (tx, rx) = tokio::sync::oneshot::channel();
        prefetch.collect(move |all| {
            let _ = tx.send(all);
        });
        let (all, _) = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(all.len(), 1_000_000, "{url}");
        assert!(prefetch.is_done());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_after_the_end_answers_at_once_on_the_callers_thread() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let client = client("http2");
    let body = body_of(&client, &server.h2c_url("/bytes/10")).await;
    let prefetch = Prefetch::start(body, client.runtime(), 64 << 10);
    while !prefetch.has_ended() {
        prefetch.ready().await;
    }
    let called = Arc::new(AtomicBool::new(false));
    let seen = called.clone();
    let here = std::thread::current().id();
    prefetch.collect(move |all| {
        assert_eq!(all.unwrap().0.len(), 10);
        assert_eq!(std::thread::current().id(), here);
        seen.store(true, Ordering::SeqCst);
    });
    assert!(called.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_answers_a_pending_collect_with_cancelled() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let client = client("http2");
    // A body that trickles for a long time.
    let body = body_of(
        &client,
        &server.h2c_url("/bytes/1000000?chunk_size=10&delay_ms=50"),
    )
    .await;
    let prefetch = Prefetch::start(body, client.runtime(), 64 << 10);
    let (tx, rx) = tokio::sync::oneshot::channel();
    prefetch.collect(move |all| {
        let _ = tx.send(all);
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    prefetch.cancel();
    let err = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
}

/// The pump tells waiting readers about what it holds whenever it stops to wait, for the
/// network or for room: a trickling body's first bytes reach a reader while the body goes on,
/// and a reader behind a full read-ahead buffer gets every batch to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_readers_hear_of_each_batch() {
    let server = TestServer::start(Options::default()).await.unwrap();
    for (protocol, trickle, fast) in [
        (
            "http1",
            server.http_url("/bytes/100000?chunk_size=10&delay_ms=50"),
            server.http_url("/bytes/1000000?chunk_size=16384"),
        ),
        (
            "http2",
            server.h2c_url("/bytes/100000?chunk_size=10&delay_ms=50"),
            server.h2c_url("/bytes/1000000?chunk_size=16384"),
        ),
    ] {
        let client = client(protocol);
        let prefetch =
            Prefetch::start(body_of(&client, &trickle).await, client.runtime(), 64 << 10);
        let first = tokio::time::timeout(Duration::from_secs(10), prefetch.take())
            .await
            .unwrap_or_else(|_| panic!("{trickle}: no bytes reached the reader"));
        match first {
            Taken::Data(chunks) => assert!(!chunks.is_empty(), "{trickle}"),
            other => panic!("{trickle}: {other:?}"),
        }
        assert!(!prefetch.has_ended(), "{trickle} goes on for seconds");
        prefetch.cancel();

        // A bound of one byte: the pump stops for room after every chunk.
        let prefetch = Prefetch::start(body_of(&client, &fast).await, client.runtime(), 1);
        let mut total = 0;
        loop {
            let taken = tokio::time::timeout(Duration::from_secs(10), prefetch.take())
                .await
                .unwrap_or_else(|_| panic!("{fast}: the reader was not woken after {total} bytes"));
            match taken {
                Taken::Data(chunks) => total += chunks.iter().map(|c| c.len()).sum::<usize>(),
                Taken::End(_) => break,
                other => panic!("{fast}: {other:?}"),
            }
        }
        assert_eq!(total, 1_000_000, "{fast}");
    }
}

/// `when_ready` calls back once a take would find something (from the reading task), a
/// forgotten callback is dropped uncalled, and a cancel calls the one waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_ready_calls_back_for_data_and_for_a_cancel() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let client = client("http2");
    let url = server.h2c_url("/bytes/1000?chunk_size=10&delay_ms=200");
    let prefetch = Prefetch::start(body_of(&client, &url).await, client.runtime(), 64 << 10);
    let wait = Duration::from_secs(10);

    let (tx, rx) = tokio::sync::oneshot::channel();
    prefetch.when_ready(move || {
        let _ = tx.send(());
    });
    tokio::time::timeout(wait, rx).await.unwrap().unwrap();
    assert!(matches!(prefetch.try_take(), Taken::Data(_)));

    // Nothing buffered now (the next chunk is 200 ms away): forgotten, never called.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    prefetch.when_ready(move || {
        let _ = tx.send(());
    });
    prefetch.forget_when_ready();
    assert!(
        rx.await.is_err(),
        "a forgotten callback is dropped uncalled"
    );

    let (tx, rx) = tokio::sync::oneshot::channel();
    prefetch.when_ready(move || {
        let _ = tx.send(());
    });
    prefetch.cancel();
    tokio::time::timeout(wait, rx).await.unwrap().unwrap();
    assert!(matches!(prefetch.try_take(), Taken::End(_)));
}
