//! With the `tracing` feature: each request runs in a `quiver.request` span and, with a
//! subscriber installed before the client is built, every event is a `tracing` event with
//! target `quiver`. (`cargo test -p quiver-core --features tracing --test tracing`.)
#![cfg(feature = "tracing")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use quiver_core::Client;
use quiver_testserver::{Options, TestServer};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records the names of spans and the `event` field of events with target `quiver`.
#[derive(Default)]
struct Seen {
    spans: Mutex<Vec<String>>,
    events: Mutex<Vec<String>>,
    next: AtomicU64,
}

struct Collect(Arc<Seen>);

struct EventName(Option<String>);

impl tracing::field::Visit for EventName {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "event" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl Subscriber for Collect {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("quiver")
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.0
            .spans
            .lock()
            .unwrap()
            .push(span.metadata().name().to_owned());
        Id::from_u64(self.0.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut name = EventName(None);
        event.record(&mut name);
        if let Some(n) = name.0 {
            self.0.events.lock().unwrap().push(n);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn requests_are_spans_and_events_are_tracing_events() {
    let seen = Arc::new(Seen::default());
    tracing::subscriber::set_global_default(Collect(seen.clone())).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = TestServer::start(Options::default()).await.unwrap();
        let client = Client::builder()
            .set("proxy_from_env", false)
            .build()
            .unwrap();
        client.get(&server.http_url("/bytes/10")).await.unwrap();
        assert!(client.get("http://127.0.0.1:1/").await.is_err());
    });
    let spans = seen.spans.lock().unwrap().clone();
    assert!(
        spans.iter().filter(|s| *s == "quiver.request").count() >= 2,
        "{spans:?}"
    );
    let events = seen.events.lock().unwrap().clone();
    for want in [
        "request_start",
        "connection_opened",
        "response_headers",
        "response_end",
        "request_failed",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "{want} missing: {events:?}"
        );
    }
}
