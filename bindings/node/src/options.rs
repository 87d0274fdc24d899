//! Client options from JavaScript: every entry goes through core's `ClientBuilder::set` /
//! `set_for`, so names, types and validation are core's own.

use std::time::Duration;

use napi::bindgen_prelude::{Either4, Null};
use napi_derive::napi;
use quiver_core::{ClientBuilder, OptionValue};

/// One option as the JavaScript layer passes it: `index.js` flattens `new Client({...})` into
/// these, with names already in core's snake_case.
#[napi(object, namespace = "native")]
pub struct OptionEntry {
    /// The origin pattern of a per-origin rule (`https://*.example.com`); absent for a
    /// client-wide option.
    pub pattern: Option<String>,
    /// The option's name in snake_case (`checkout_timeout`).
    pub name: String,
    /// The value; `null` means "unset / no limit" where the option allows it.
    pub value: Either4<bool, f64, String, Null>,
}

/// Options whose values are durations, given in milliseconds from JavaScript.
fn is_duration(name: &str) -> bool {
    name.ends_with("_timeout") || name.ends_with("_interval")
}

/// The core value for a JavaScript value of option `name`.
pub(crate) fn option_value(name: &str, value: Either4<bool, f64, String, Null>) -> OptionValue {
    match value {
        Either4::D(Null) => OptionValue::None,
        Either4::A(b) => OptionValue::Bool(b),
        Either4::C(s) => OptionValue::Str(s),
        Either4::B(n) if is_duration(name) => {
            if n == f64::INFINITY {
                OptionValue::None
            } else if n.is_finite() && n >= 0.0 && n <= u64::MAX as f64 / 1000.0 {
                OptionValue::Duration(Duration::from_secs_f64(n / 1000.0))
            } else {
                // Negative or NaN: core rejects it with the option's name and what it expects.
                OptionValue::Float(n)
            }
        }
        Either4::B(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                OptionValue::Int(n as i64)
            } else {
                OptionValue::Float(n)
            }
        }
    }
}

/// Applies every entry to `builder`, in order.
pub(crate) fn apply(mut builder: ClientBuilder, entries: Vec<OptionEntry>) -> ClientBuilder {
    for entry in entries {
        let value = option_value(&entry.name, entry.value);
        builder = match &entry.pattern {
            Some(pattern) => builder.set_for(pattern, &entry.name, value),
            None => builder.set(&entry.name, value),
        };
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javascript_values_become_core_values() {
        let num = |name: &str, n: f64| option_value(name, Either4::B(n));
        assert_eq!(
            num("checkout_timeout", 1500.0),
            OptionValue::Duration(Duration::from_millis(1500))
        );
        assert_eq!(
            num("ping_interval", 0.5),
            OptionValue::Duration(Duration::from_micros(500))
        );
        assert_eq!(num("request_timeout", f64::INFINITY), OptionValue::None);
        // Negative durations go to core as they are, for core's own error message.
        assert_eq!(num("connect_timeout", -1.0), OptionValue::Float(-1.0));
        assert_eq!(num("size", 10.0), OptionValue::Int(10));
        assert_eq!(
            num("window_update_threshold", 0.25),
            OptionValue::Float(0.25)
        );
        assert_eq!(
            option_value("protocol", Either4::C("http2".into())),
            OptionValue::Str("http2".into())
        );
        assert_eq!(
            option_value("early_data", Either4::A(true)),
            OptionValue::Bool(true)
        );
        assert_eq!(
            option_value("request_timeout", Either4::D(Null)),
            OptionValue::None
        );
    }

    #[test]
    fn entries_go_through_core_validation() {
        let entry = |pattern: Option<&str>, name: &str, value| OptionEntry {
            pattern: pattern.map(str::to_owned),
            name: name.to_owned(),
            value,
        };
        let ok = apply(
            quiver_core::Client::builder(),
            vec![
                entry(None, "size", Either4::B(3.0)),
                entry(
                    Some("https://*.example.com"),
                    "protocol",
                    Either4::C("http2".into()),
                ),
            ],
        );
        assert!(ok.build().is_ok());
        let bad = apply(
            quiver_core::Client::builder(),
            vec![entry(Some("https://a.example"), "size", Either4::B(0.0))],
        );
        let err = bad.build().unwrap_err();
        assert_eq!(err.kind(), quiver_core::ErrorKind::InvalidConfig);
        assert!(err.message().contains("https://a.example"), "{err}");
    }
}
