//! Core errors as Python exceptions: the class hierarchy lives in `quiver._exceptions`
//! (pure Python, so `TimeoutError` can also derive from the builtin), this module picks the
//! class for a core error and fills in `kind`, `error_class` and `message`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use quiver_core::{Error, ErrorClass, ErrorKind};

use crate::body::BodyFailure;

/// The exception classes core errors map to, imported once from `quiver._exceptions`.
struct Classes {
    transient: Py<PyType>,
    invalid: Py<PyType>,
    unrecoverable: Py<PyType>,
    timeout: Py<PyType>,
    too_many_redirects: Py<PyType>,
    decoding: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let module = py.import("quiver._exceptions")?;
        let get = |name: &str| -> PyResult<Py<PyType>> {
            Ok(module.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Classes {
            transient: get("TransientError")?,
            invalid: get("InvalidError")?,
            unrecoverable: get("UnrecoverableError")?,
            timeout: get("TimeoutError")?,
            too_many_redirects: get("TooManyRedirects")?,
            decoding: get("DecodingError")?,
        })
    })
}

/// Converts a core error into the matching `quiver` exception.
pub(crate) fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    let classes = match classes(py) {
        Ok(c) => c,
        Err(e) => return e,
    };
    // httpx's names for two kinds, subclasses of the class their kinds imply.
    let class = if err.is_timeout() {
        &classes.timeout
    } else if err.kind() == ErrorKind::TooManyRedirects {
        &classes.too_many_redirects
    } else if matches!(
        err.kind(),
        ErrorKind::Decoding | ErrorKind::DecompressionBomb
    ) {
        &classes.decoding
    } else {
        match err.class() {
            ErrorClass::Transient => &classes.transient,
            ErrorClass::Invalid => &classes.invalid,
            ErrorClass::Unrecoverable => &classes.unrecoverable,
        }
    };
    let args = (err.message(), err.kind().as_str(), err.class().as_str());
    match class.bind(py).call1(args) {
        Ok(obj) => PyErr::from_value(obj),
        Err(e) => e,
    }
}

/// Like [`to_py`] for a request's error: when a body iterator's exception caused it, that
/// exception becomes the `__cause__`.
pub(crate) fn request_error(py: Python<'_>, err: &Error, failure: &BodyFailure) -> PyErr {
    let exc = to_py(py, err);
    if err.kind() == ErrorKind::BodyStream {
        if let Some(cause) = failure.take() {
            exc.set_cause(py, Some(cause));
        }
    }
    exc
}

/// Shorthand: a core error of `kind` with `message`, as a Python exception.
pub(crate) fn new_py(py: Python<'_>, kind: ErrorKind, message: impl Into<String>) -> PyErr {
    to_py(py, &Error::new(kind, message))
}

/// The error an inherited object raises in a forked child (the same kind core uses).
pub(crate) fn forked() -> Error {
    Error::new(
        ErrorKind::Forked,
        "this object was created before fork(); create a new client in the child process",
    )
}

/// An error for a task that panicked or vanished: a bug in quiver.
pub(crate) fn internal(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, what.to_string())
}
