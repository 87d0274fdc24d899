//! Client options from JavaScript: every entry goes through core's `ClientBuilder::set` /
//! `set_for`, so names, types and validation are core's own.

use std::time::Duration;

use napi::bindgen_prelude::{Either4, Null};
use napi_derive::napi;
use quiver_core::{ClientBuilder, OptionKind, OptionValue, PoolSettings};

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

/// The core value for a JavaScript value of option `name`, by the kind of value core says the
/// option takes ([`PoolSettings::kind`]): numbers are milliseconds for durations, and
/// `Infinity` means "no limit" where the option allows none. A value of the wrong type goes to
/// core as it is, for core's own error message (which names the option and what it expects).
pub(crate) fn option_value(name: &str, value: Either4<bool, f64, String, Null>) -> OptionValue {
    match value {
        Either4::D(Null) => OptionValue::None,
        Either4::A(b) => OptionValue::Bool(b),
        Either4::C(s) => OptionValue::Str(s),
        Either4::B(n) => match PoolSettings::kind(name) {
            Some(OptionKind::OptionalDuration) if n == f64::INFINITY => OptionValue::None,
            Some(OptionKind::Duration | OptionKind::OptionalDuration)
                if n.is_finite() && n >= 0.0 && n <= u64::MAX as f64 / 1000.0 =>
            {
                OptionValue::Duration(Duration::from_secs_f64(n / 1000.0))
            }
            Some(OptionKind::Float) => OptionValue::Float(n),
            // Integers (and numbers given to options that take none: core rejects them).
            _ if n.fract() == 0.0 && n.abs() < 9.0e15 => OptionValue::Int(n as i64),
            _ => OptionValue::Float(n),
        },
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
        // A required duration has no "no limit": Infinity goes to core, which rejects it.
        assert!(matches!(
            num("connect_timeout", f64::INFINITY),
            OptionValue::Float(f) if f.is_infinite()
        ));
        // Negative durations go to core as they are, for core's own error message.
        assert_eq!(num("connect_timeout", -1.0), OptionValue::Int(-1));
        assert_eq!(num("connect_timeout", -1.5), OptionValue::Float(-1.5));
        assert_eq!(num("size", 10.0), OptionValue::Int(10));
        assert_eq!(num("size", 2.5), OptionValue::Float(2.5));
        assert_eq!(
            num("window_update_threshold", 0.25),
            OptionValue::Float(0.25)
        );
        assert_eq!(num("window_update_threshold", 1.0), OptionValue::Float(1.0));
        assert_eq!(
            option_value("protocol", Either4::C("http2".into())),
            OptionValue::Str("http2".into())
        );
        assert_eq!(
            option_value("proxy_protocol", Either4::C("http2".into())),
            OptionValue::Str("http2".into())
        );
        assert_eq!(
            option_value("early_data", Either4::A(true)),
            OptionValue::Bool(true)
        );
        assert_eq!(
            option_value("proxy_from_env", Either4::A(false)),
            OptionValue::Bool(false)
        );
        assert_eq!(
            option_value("request_timeout", Either4::D(Null)),
            OptionValue::None
        );
        assert_eq!(option_value("proxy", Either4::D(Null)), OptionValue::None);
        // Names that end like durations but are not are not guessed: only core's kind counts.
        assert_eq!(num("no_such_timeout", 10.0), OptionValue::Int(10));
    }

    #[test]
    fn every_duration_option_takes_milliseconds() {
        for name in PoolSettings::NAMES {
            let mut settings = PoolSettings::default();
            let value = option_value(name, Either4::B(1500.0));
            match PoolSettings::kind(name) {
                Some(OptionKind::Duration | OptionKind::OptionalDuration) => {
                    assert_eq!(value, OptionValue::Duration(Duration::from_millis(1500)));
                    settings.set(name, value).unwrap();
                }
                Some(_) => assert!(!matches!(value, OptionValue::Duration(_)), "{name}"),
                None => panic!("{name} has no kind"),
            }
        }
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
