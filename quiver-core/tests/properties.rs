//! Property tests over what parses network or user bytes through the public API: URLs and
//! origins, request validation (headers, methods, framing), option values. None may panic;
//! what parses must mean what it says. `make test` runs the default case count (256, or
//! `PROPTEST_CASES`); a longer run: `PROPTEST_CASES=100000 cargo test -p quiver-core --test
//! properties`. The internal parsers (varints and capsules, the HTTP/2 frame sniffer, numeric
//! hosts) have theirs beside them in `src`.

use proptest::prelude::*;
use quiver_core::{OptionValue, PoolSettings, Request, Target};

proptest! {
    #[test]
    fn any_url_parses_or_is_refused_without_panicking(url in ".{0,200}") {
        let _ = Target::parse(&url);
        let _ = Request::get(&url).build();
    }

    #[test]
    fn well_formed_urls_keep_their_parts(
        host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){0,3}",
        port in 1u16..,
        path in "(/[a-zA-Z0-9._~-]{0,10}){0,4}",
        https in any::<bool>(),
    ) {
        let scheme = if https { "https" } else { "http" };
        let t = Target::parse(&format!("{scheme}://{host}:{port}{path}")).unwrap();
        prop_assert_eq!(t.origin.port(), port);
        prop_assert_eq!(t.origin.host().to_authority_string(), host);
        let expected = if path.is_empty() { "/".to_owned() } else { path };
        prop_assert_eq!(t.path_and_query.as_str(), expected.as_str());
    }

    #[test]
    fn any_request_input_is_validated_without_panicking(
        method in "[ -~]{0,12}",
        headers in proptest::collection::vec((any::<Vec<u8>>(), any::<Vec<u8>>()), 0..6),
        body in any::<Vec<u8>>(),
    ) {
        let mut b = Request::builder(&method, "http://127.0.0.1/");
        for (n, v) in &headers {
            b = b.header(n, v);
        }
        if let Ok(req) = b.body(body).build() {
            // What was accepted carries no CR, LF or NUL in any header.
            for (_, v) in req.headers() {
                prop_assert!(!v.as_bytes().iter().any(|c| matches!(c, b'\r' | b'\n' | 0)));
            }
        }
    }

    #[test]
    fn any_option_value_is_checked_without_panicking(
        index in 0usize..PoolSettings::NAMES.len(),
        int in any::<i64>(),
        float in any::<f64>(),
        text in ".{0,40}",
        pick in 0u8..5,
    ) {
        let name = PoolSettings::NAMES[index];
        let value = match pick {
            0 => OptionValue::Int(int),
            1 => OptionValue::Float(float),
            2 => OptionValue::Str(text),
            3 => OptionValue::Bool(int % 2 == 0),
            _ => OptionValue::None,
        };
        let mut settings = PoolSettings::default();
        if settings.set(name, value).is_ok() {
            let _ = quiver_core::Client::builder().defaults(settings).build();
        }
    }
}
