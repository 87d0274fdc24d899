//! `quiver_config`: the client configuration builder (client-wide options and per-origin
//! rules, set by name, the completion queue and the event callback), read by
//! `quiver_client_new`.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use quiver_core::{ClientBuilder, OptionValue, PoolSettings};

use crate::error::quiver_result;
use crate::events::{quiver_event_fn, EventSink, EventSpec};
use crate::ffi::{
    box_castable, clone_arc, free_box, to_boxed_mut_ptr, try_cstr, try_mut_from_ptr, try_str,
    UserData,
};
use crate::panic::ffi_panic_boundary;
use crate::queue::{quiver_queue, Queue};

/// A client configuration: pool options client-wide and per origin pattern.
///
/// One thread at a time (it may move between threads). `quiver_client_new` only reads it, so
/// one configuration can build several clients; free it with `quiver_config_free`.
pub struct quiver_config {
    _private: [u8; 0],
}

/// Where one option applies: client-wide (`None`) or an origin pattern.
type Setting = (Option<String>, String, OptionValue);

/// The Rust value behind a `quiver_config`: the options in the order they were set, replayed
/// into a fresh core builder for every client, the completion queue its clients use, and the
/// event callback (with the queue its events go through, if any).
#[derive(Debug, Default)]
pub(crate) struct Config {
    settings: Vec<Setting>,
    queue: Option<Arc<Queue>>,
    events: Option<EventSpec>,
    event_queue: Option<Arc<Queue>>,
}

box_castable!(quiver_config => Config);

impl Config {
    /// A core builder with every option applied in order (core validates them in `build`).
    pub(crate) fn builder(&self) -> ClientBuilder {
        self.settings.iter().fold(
            quiver_core::Client::builder(),
            |b, (pattern, name, value)| match pattern {
                None => b.set(name, value.clone()),
                Some(p) => b.set_for(p, name, value.clone()),
            },
        )
    }

    /// The completion queue clients built from this configuration use, if any.
    pub(crate) fn queue(&self) -> Option<Arc<Queue>> {
        self.queue.clone()
    }

    /// A new client's event sink, when an event callback is set (none: no listener, so core
    /// builds no event).
    pub(crate) fn event_sink(&self) -> Option<Arc<EventSink>> {
        let spec = self.events.clone()?;
        Some(EventSink::new(spec, self.event_queue.clone()))
    }

    /// Records an option; rejects at once an unknown name or a value of the wrong type
    /// (ranges and rule patterns are checked by `quiver_client_new`).
    fn set(&mut self, pattern: Option<&str>, name: &str, value: OptionValue) -> quiver_result {
        let known = PoolSettings::default().set(name, value.clone()).is_ok();
        self.settings
            .push((pattern.map(str::to_owned), name.to_owned(), value));
        if known {
            quiver_result::Ok
        } else {
            quiver_result::InvalidConfig
        }
    }
}

/// Makes an empty configuration (every option at its default). NULL only on a panic.
#[no_mangle]
pub extern "C" fn quiver_config_new() -> *mut quiver_config {
    ffi_panic_boundary! {
        to_boxed_mut_ptr::<quiver_config>(Config::default())
    }
}

/// Frees a configuration. NULL is a no-op. Clients built from it are not affected.
#[no_mangle]
pub extern "C" fn quiver_config_free(config: *mut quiver_config) {
    ffi_panic_boundary! {
        free_box(config)
    }
}

/// Shared body of the typed setters.
fn set_option(
    config: *mut quiver_config,
    pattern: *const c_char,
    option: *const c_char,
    value: impl FnOnce() -> Result<OptionValue, quiver_result>,
) -> quiver_result {
    let config = try_mut_from_ptr!(config);
    let option = try_str!(option);
    let pattern = match try_cstr(pattern).map(|p| p.to_str()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return quiver_result::InvalidArgument,
    };
    match value() {
        Ok(value) => config.set(pattern, option, value),
        Err(code) => code,
    }
}

/// Sets a boolean option (`danger_accept_invalid_certs`).
///
/// Every `quiver_config_set_*` call takes the option's name (docs/options.md) and a `pattern`:
/// NULL for the client-wide value, or an origin pattern for a rule, exact
/// (`https://api.example.com`) or wildcard (`*.example.com` after the scheme); the most
/// specific rule wins. It returns `QUIVER_RESULT_INVALID_CONFIG` at once for an unknown option
/// or a value of the wrong type; `quiver_client_new` then fails with the full `invalid_config`
/// error (which also covers ranges and patterns). Later settings of an option override earlier
/// ones.
#[no_mangle]
pub extern "C" fn quiver_config_set_bool(
    config: *mut quiver_config,
    pattern: *const c_char,
    option: *const c_char,
    value: bool,
) -> quiver_result {
    ffi_panic_boundary! {
        set_option(config, pattern, option, || Ok(OptionValue::Bool(value)))
    }
}

/// Sets an integer option (`size`, `max_connections`, `stream_window`, ...). See
/// `quiver_config_set_bool`.
#[no_mangle]
pub extern "C" fn quiver_config_set_int(
    config: *mut quiver_config,
    pattern: *const c_char,
    option: *const c_char,
    value: i64,
) -> quiver_result {
    ffi_panic_boundary! {
        set_option(config, pattern, option, || Ok(OptionValue::Int(value)))
    }
}

/// Sets a floating-point option (`window_update_threshold`). See `quiver_config_set_bool`.
#[no_mangle]
pub extern "C" fn quiver_config_set_float(
    config: *mut quiver_config,
    pattern: *const c_char,
    option: *const c_char,
    value: f64,
) -> quiver_result {
    ffi_panic_boundary! {
        set_option(config, pattern, option, || Ok(OptionValue::Float(value)))
    }
}

/// Sets a string option (`protocol`, `ca_file`, `client_cert`, `client_key`, `tls_roots`),
/// copied. See `quiver_config_set_bool`.
#[no_mangle]
pub extern "C" fn quiver_config_set_str(
    config: *mut quiver_config,
    pattern: *const c_char,
    option: *const c_char,
    value: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        set_option(config, pattern, option, || match try_cstr(value).map(|v| v.to_str()) {
            Some(Ok(v)) => Ok(OptionValue::Str(v.to_owned())),
            Some(Err(_)) => Err(quiver_result::InvalidArgument),
            None => Err(quiver_result::NullParameter),
        })
    }
}

/// Sets a duration option in milliseconds (`checkout_timeout`, `connect_timeout`,
/// `read_timeout`, `idle_timeout`, `ping_interval`, `ping_timeout`, `request_timeout`; 0 means
/// "none" where the option allows it). See `quiver_config_set_bool`.
#[no_mangle]
pub extern "C" fn quiver_config_set_duration_ms(
    config: *mut quiver_config,
    pattern: *const c_char,
    option: *const c_char,
    milliseconds: u64,
) -> quiver_result {
    ffi_panic_boundary! {
        set_option(config, pattern, option, || {
            Ok(OptionValue::Duration(Duration::from_millis(milliseconds)))
        })
    }
}

/// Unsets an option that allows "none" (`request_timeout`, `ca_file`, `client_cert`,
/// `client_key`, ...), overriding a client-wide value in a rule. See `quiver_config_set_bool`.
#[no_mangle]
pub extern "C" fn quiver_config_set_none(
    config: *mut quiver_config,
    pattern: *const c_char,
    option: *const c_char,
) -> quiver_result {
    ffi_panic_boundary! {
        set_option(config, pattern, option, || Ok(OptionValue::None))
    }
}

/// Makes the clients built from this configuration queue their callbacks on `queue` (the
/// configuration keeps its own reference; NULL goes back to running them on quiver's threads).
///
/// Such a client runs no callback by itself: response callbacks, stream events (`on_head`,
/// `on_data`, `on_end`), channel and tunnel events wait in the queue until a thread calls
/// `quiver_queue_dispatch`, typically when `quiver_queue_fd` polls readable in the program's
/// event loop. The rules are otherwise the same: exactly one completion per call, events of one
/// call in order and never overlapping. Body sources (`read`) and `release` callbacks still run
/// on quiver's threads. Several clients may share one queue.
#[no_mangle]
pub extern "C" fn quiver_config_set_queue(
    config: *mut quiver_config,
    queue: *const quiver_queue,
) -> quiver_result {
    ffi_panic_boundary! {
        let config = try_mut_from_ptr!(config);
        config.queue = clone_arc(queue);
        quiver_result::Ok
    }
}

/// Sets the event callback of the clients built from this configuration: `callback(userdata,
/// event)` hears every request and connection event of such a client (`quiver_event`;
/// docs/observability.md). NULL removes it: then no event is even built.
///
/// It runs on quiver's runtime threads (unless `quiver_config_set_event_queue` is set), while
/// requests go on: it must be quick (copy what it needs and hand it elsewhere), must not block,
/// and must not call blocking quiver functions (`quiver_client_send_blocking` returns
/// `QUIVER_RESULT_WOULD_DEADLOCK` there). Events of one request or connection come in order,
/// one at a time; different requests' and connections' events may come on several threads at
/// once. `userdata` must stay usable until `quiver_client_free` of every client built with it
/// has returned: no event reaches the callback after that (events of connections closing in the
/// background later are dropped), except, with an event queue, those already queued.
#[no_mangle]
pub extern "C" fn quiver_config_set_event_callback(
    config: *mut quiver_config,
    callback: quiver_event_fn,
    userdata: *mut c_void,
) -> quiver_result {
    ffi_panic_boundary! {
        let config = try_mut_from_ptr!(config);
        config.events = callback.map(|callback| EventSpec {
            callback,
            userdata: UserData(userdata),
        });
        quiver_result::Ok
    }
}

/// Delivers the event callback's events through `queue` (the configuration keeps its own
/// reference; NULL goes back to running the callback on quiver's threads): for programs with
/// their own event loop.
///
/// Each event is copied when it happens and waits in the queue; `quiver_queue_dispatch` then
/// calls the event callback with it on the dispatching thread, in the order the events
/// happened (with one dispatching thread, also one at a time). `queue` may be the client's
/// completion queue (`quiver_config_set_queue`) or another one. Events never hold a request
/// back: a queue that is not dispatched grows by each event (a few per request). Without an
/// event callback this has no effect. When the client is freed, events not yet queued are
/// dropped and those already queued still run when dispatched: free the clients, dispatch until
/// nothing is pending, then free what `userdata` points at and the queue.
#[no_mangle]
pub extern "C" fn quiver_config_set_event_queue(
    config: *mut quiver_config,
    queue: *const quiver_queue,
) -> quiver_result {
    ffi_panic_boundary! {
        let config = try_mut_from_ptr!(config);
        config.event_queue = clone_arc(queue);
        quiver_result::Ok
    }
}
