//! A JavaScript Promise settled from quiver's runtime threads, exactly once.
//!
//! A dropped [`Pending`] rejects its Promise: a pending Promise holds a referenced threadsafe
//! function, so one never settled would keep the event loop alive forever.

use std::future::Future;

use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, JsDeferred};
use tokio::runtime::Handle;

use crate::errors;

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T> + Send>;

/// The settling end of a JavaScript Promise; `Send`, settles once.
pub(crate) struct Pending<T: ToNapiValue + 'static> {
    deferred: Option<JsDeferred<T, Resolver<T>>>,
}

impl<T: ToNapiValue + 'static> Pending<T> {
    /// A new Promise (returned to JavaScript) and its settling end.
    pub(crate) fn new(env: &Env) -> napi::Result<(Pending<T>, Object<'_>)> {
        let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
        Ok((
            Pending {
                deferred: Some(deferred),
            },
            promise,
        ))
    }

    /// Resolves with the value `make` builds on the JavaScript thread.
    pub(crate) fn resolve_with(
        mut self,
        make: impl FnOnce(Env) -> napi::Result<T> + Send + 'static,
    ) {
        if let Some(d) = self.deferred.take() {
            d.resolve(Box::new(make));
        }
    }

    /// Resolves with `value`.
    pub(crate) fn resolve(self, value: T)
    where
        T: Send,
    {
        self.resolve_with(move |_| Ok(value));
    }

    /// Rejects with a quiver error.
    pub(crate) fn reject(mut self, e: &quiver_core::Error) {
        if let Some(d) = self.deferred.take() {
            d.reject(errors::to_js(e));
        }
    }
}

impl<T: ToNapiValue + 'static> Drop for Pending<T> {
    fn drop(&mut self) {
        if let Some(d) = self.deferred.take() {
            d.reject(errors::to_js(&errors::lost()));
        }
    }
}

/// Runs `fut` on `runtime` and settles a new Promise with its result.
pub(crate) fn spawn_promise<'env, T, F>(
    env: &'env Env,
    runtime: &Handle,
    fut: F,
) -> napi::Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, quiver_core::Error>> + Send + 'static,
{
    let (pending, promise) = Pending::<T>::new(env)?;
    runtime.spawn(async move {
        match fut.await {
            Ok(value) => pending.resolve(value),
            Err(e) => pending.reject(&e),
        }
    });
    Ok(promise)
}
