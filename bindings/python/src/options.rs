//! Client options from Python keyword arguments and `pools={pattern: {...}}`, passed to core's
//! `ClientBuilder::set` / `set_for`, which validates them. Durations (the options core reports
//! as `OptionKind::Duration` / `OptionalDuration`) are seconds in Python.

use std::time::Duration;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use quiver_core::{
    Client, ClientBuilder, Error, ErrorKind, Listener, OptionKind, OptionValue, PoolSettings,
};

use crate::errors;

/// Builds a core client from the keyword arguments of `quiver.Client(...)`.
/// `listener` hears the client's events (it decides itself whether it wants them).
pub(crate) fn build(
    py: Python<'_>,
    options: Option<&Bound<'_, PyDict>>,
    pools: Option<&Bound<'_, PyAny>>,
    listener: impl Listener,
) -> PyResult<Client> {
    let mut builder = Client::builder().listener(listener);
    if let Some(options) = options {
        for (name, value) in options.iter() {
            let name: String = name.extract()?;
            builder = set(py, builder, None, &name, &value)?;
        }
    }
    if let Some(pools) = pools.filter(|p| !p.is_none()) {
        let items = pools.call_method0(intern!(py, "items")).map_err(|_| {
            invalid(
                py,
                None,
                "`pools` must be a dict of origin patterns to option dicts".into(),
            )
        })?;
        for item in items.try_iter()? {
            let (pattern, rule): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            let Ok(pattern) = pattern.extract::<String>() else {
                return Err(invalid(
                    py,
                    None,
                    format!(
                        "`pools` keys must be origin patterns (str), got {}",
                        pattern.repr()?
                    ),
                ));
            };
            let rule_items = rule.call_method0(intern!(py, "items")).map_err(|_| {
                invalid(
                    py,
                    Some(&pattern),
                    "options must be a dict of option names to values".into(),
                )
            })?;
            for entry in rule_items.try_iter()? {
                let (name, value): (String, Bound<'_, PyAny>) = entry?.extract()?;
                builder = set(py, builder, Some(&pattern), &name, &value)?;
            }
        }
    }
    builder.build().map_err(|e| errors::to_py(py, &e))
}

/// An `invalid_config` error, prefixed with the rule like core's own messages.
fn invalid(py: Python<'_>, rule: Option<&str>, message: String) -> PyErr {
    let message = match rule {
        Some(pattern) => format!("pool rule `{pattern}`: {message}"),
        None => message,
    };
    errors::to_py(py, &Error::new(ErrorKind::InvalidConfig, message))
}

fn set(
    py: Python<'_>,
    builder: ClientBuilder,
    rule: Option<&str>,
    name: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<ClientBuilder> {
    // `client_cert=(cert, key)`, like httpx's `cert=`.
    if name == "client_cert"
        && (value.is_instance_of::<PyTuple>() || value.is_instance_of::<PyList>())
    {
        let (cert, key): (Bound<'_, PyAny>, Bound<'_, PyAny>) = value.extract().map_err(|_| {
            invalid(
                py,
                rule,
                "option `client_cert` expects a path or a (cert, key) pair of paths".into(),
            )
        })?;
        let builder = set(py, builder, rule, "client_cert", &cert)?;
        return set(py, builder, rule, "client_key", &key);
    }
    let value = option_value(name, value).map_err(|msg| invalid(py, rule, msg))?;
    Ok(match rule {
        None => builder.set(name, value),
        Some(pattern) => builder.set_for(pattern, name, value),
    })
}

fn option_value(name: &str, value: &Bound<'_, PyAny>) -> Result<OptionValue, String> {
    let py = value.py();
    let shown = || {
        value
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let kind = PoolSettings::kind(name);
    if let Some(OptionKind::Duration | OptionKind::OptionalDuration) = kind {
        let none_ok = kind == Some(OptionKind::OptionalDuration);
        let expected = || {
            format!(
                "option `{name}` expects a duration in seconds (a non-negative number){}, got {}",
                if none_ok { " or None" } else { "" },
                shown()
            )
        };
        if value.is_none() {
            return if none_ok {
                Ok(OptionValue::None)
            } else {
                Err(expected())
            };
        }
        let secs = if value.is_instance_of::<PyBool>() {
            None
        } else if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
            value.extract::<f64>().ok()
        } else if value.hasattr(intern!(py, "total_seconds")).unwrap_or(false) {
            // datetime.timedelta
            value
                .call_method0(intern!(py, "total_seconds"))
                .and_then(|s| s.extract::<f64>())
                .ok()
        } else {
            None
        };
        return secs
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(OptionValue::Duration)
            .ok_or_else(expected);
    }
    if value.is_none() {
        return Ok(OptionValue::None);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(OptionValue::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .map(OptionValue::Int)
            .map_err(|_| format!("option `{name}` got an integer out of range: {}", shown()));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(OptionValue::Float(f.value()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(OptionValue::Str(
            s.to_cow().map_err(|e| e.to_string())?.into_owned(),
        ));
    }
    if value.hasattr(intern!(py, "__fspath__")).unwrap_or(false) {
        // os.PathLike: a file path option.
        let path = py
            .import("os")
            .and_then(|os| os.call_method1("fsdecode", (value,)))
            .and_then(|p| p.extract::<String>())
            .map_err(|e| format!("option `{name}`: {e}"))?;
        return Ok(OptionValue::Str(path));
    }
    let type_name = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    Err(format!(
        "option `{name}` cannot take a value of type {type_name}: {}",
        shown()
    ))
}
