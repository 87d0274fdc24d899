//! JavaScript Promises settled from quiver's runtime threads, exactly once, in batches.
//!
//! napi's own `Env::create_deferred` makes a threadsafe function per Promise (a libuv handle, an
//! environment cleanup hook, an `eventfd` write to settle it, a handle close after): at 1 KiB
//! requests that was a large share of the JavaScript thread's time. Here every Promise of one
//! JavaScript thread is settled through a single threadsafe function: a runtime thread queues
//! the settlement and wakes JavaScript only if no wake-up is on its way, and JavaScript settles
//! every queued Promise in one callback.
//!
//! Keeping the process alive: the threadsafe function is referenced (holds the event loop) while
//! at least one Promise made here is pending, and unreferenced otherwise, so a pending request
//! keeps Node running (as a socket would) and nothing else does.
//!
//! A dropped [`Pending`] rejects its Promise (kind `lost`): one never settled would hold the
//! loop forever.

use std::cell::RefCell;
use std::ffi::c_void;
use std::future::Future;
use std::marker::PhantomData;
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{check_status, sys, Env};
use tokio::runtime::Handle;

use crate::errors;

/// A settlement, run on the JavaScript thread with its environment.
type Job = Box<dyn FnOnce(sys::napi_env) + Send>;

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A wake-up was sent and the queue not drained since.
    woken: bool,
    /// The environment is gone (and with it the threadsafe function): nothing runs the jobs.
    closed: bool,
}

/// The part runtime threads post to.
struct Settler {
    queue: Mutex<Queue>,
    tsfn: sys::napi_threadsafe_function,
}

// SAFETY: the threadsafe function handle is made to be called from any thread (and is called
// only with the queue's lock held, see `post`); everything else is behind the mutex.
unsafe impl Send for Settler {}
unsafe impl Sync for Settler {}

impl Settler {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` for the JavaScript thread, waking it unless a wake-up is on its way.
    fn post(&self, job: Job) {
        let mut q = self.lock();
        if q.closed {
            return; // the environment is gone, and its Promises with it
        }
        q.jobs.push(job);
        if !std::mem::replace(&mut q.woken, true) {
            // Called with the lock held: `finalize` takes it to set `closed`, so the function
            // cannot be freed under this call. Non-blocking: a runtime thread never waits.
            // SAFETY: a live threadsafe function (see above).
            let status = unsafe {
                sys::napi_call_threadsafe_function(
                    self.tsfn,
                    ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            };
            if status != sys::Status::napi_ok {
                // Closing: nobody will drain. Let the next post try again.
                q.woken = false;
            }
        }
    }
}

/// The JavaScript thread's side: the settler of its environment and how many Promises wait.
struct Local {
    env: sys::napi_env,
    settler: Arc<Settler>,
    pending: usize,
}

thread_local! {
    /// Each JavaScript thread (the main one, each worker) has an environment of its own.
    static LOCAL: RefCell<Option<Rc<RefCell<Local>>>> = const { RefCell::new(None) };
}

/// The settler of `env` (made on first use), counting one more pending Promise.
fn register(env: &Env) -> napi::Result<Arc<Settler>> {
    let raw = env.raw();
    let local = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        match l.as_ref() {
            Some(local) if local.borrow().env == raw => Ok(local.clone()),
            _ => {
                let settler = create(raw)?;
                let local = Rc::new(RefCell::new(Local {
                    env: raw,
                    settler,
                    pending: 0,
                }));
                *l = Some(local.clone());
                Ok::<_, napi::Error>(local)
            }
        }
    })?;
    let mut local = local.borrow_mut();
    local.pending += 1;
    if local.pending == 1 {
        // SAFETY: on the environment's thread, with a live threadsafe function.
        unsafe { sys::napi_ref_threadsafe_function(raw, local.settler.tsfn) };
    }
    Ok(local.settler.clone())
}

/// One Promise settled: the loop is let go when none is left.
fn settled(env: sys::napi_env) {
    LOCAL.with(|l| {
        if let Some(local) = l.borrow().as_ref() {
            let mut local = local.borrow_mut();
            if local.env == env && local.pending > 0 {
                local.pending -= 1;
                if local.pending == 0 {
                    // SAFETY: as in `register`.
                    unsafe { sys::napi_unref_threadsafe_function(env, local.settler.tsfn) };
                }
            }
        }
    });
}

fn create(env: sys::napi_env) -> napi::Result<Arc<Settler>> {
    let mut name = ptr::null_mut();
    check_status!(
        unsafe { sys::napi_create_string_utf8(env, c"quiver".as_ptr(), 6, &mut name) },
        "cannot name quiver's threadsafe function"
    )?;
    // The context is a strong reference, given back by the finalizer.
    let slot: Arc<Mutex<Option<Arc<Settler>>>> = Arc::new(Mutex::new(None));
    let context = Arc::into_raw(slot.clone()) as *mut c_void;
    let mut tsfn = ptr::null_mut();
    let status = unsafe {
        sys::napi_create_threadsafe_function(
            env,
            ptr::null_mut(),
            ptr::null_mut(),
            name,
            0,
            1,
            context,
            Some(finalize),
            context,
            Some(drain),
            &mut tsfn,
        )
    };
    if let Err(e) = check_status!(status, "cannot create quiver's threadsafe function") {
        // SAFETY: not handed to napi; take the reference back.
        drop(unsafe { Arc::from_raw(context as *const Mutex<Option<Arc<Settler>>>) });
        return Err(e);
    }
    // Weak until a Promise waits (see `register`).
    unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    let settler = Arc::new(Settler {
        queue: Mutex::default(),
        tsfn,
    });
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(settler.clone());
    Ok(settler)
}

fn settler_of(context: *mut c_void) -> Option<Arc<Settler>> {
    // SAFETY: `context` is the `Arc` made in `create`, alive until `finalize`.
    let slot = unsafe { &*(context as *const Mutex<Option<Arc<Settler>>>) };
    slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The threadsafe function's call on the JavaScript thread: runs every queued settlement.
unsafe extern "C" fn drain(
    env: sys::napi_env,
    _js: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    let Some(settler) = settler_of(context) else {
        return;
    };
    let jobs = {
        let mut q = settler.lock();
        q.woken = false;
        std::mem::take(&mut q.jobs)
    };
    if env.is_null() {
        return; // the environment is tearing down: its Promises go with it
    }
    for job in jobs {
        // A job never unwinds into napi: a panic settles nothing more and is dropped here.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(env)));
        settled(env);
    }
}

/// The environment is gone: later posts are dropped, queued ones released.
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the reference made in `create`, given back exactly once.
    let slot = unsafe { Arc::from_raw(data as *const Mutex<Option<Arc<Settler>>>) };
    let settler = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(settler) = settler {
        let jobs = {
            let mut q = settler.lock();
            q.closed = true;
            std::mem::take(&mut q.jobs)
        };
        drop(jobs);
    }
}

/// A Promise's `napi_deferred`, settled once on the JavaScript thread.
struct Deferred(sys::napi_deferred);

// SAFETY: only carried across threads; used on the JavaScript thread alone (in a job).
unsafe impl Send for Deferred {}

/// The settling end of a JavaScript Promise; `Send`, settles once.
pub(crate) struct Pending<T: ToNapiValue + 'static> {
    deferred: Option<(Deferred, Arc<Settler>)>,
    _value: PhantomData<fn(T)>,
}

impl<T: ToNapiValue + 'static> Pending<T> {
    /// A new Promise (returned to JavaScript) and its settling end.
    pub(crate) fn new(env: &Env) -> napi::Result<(Pending<T>, Object<'_>)> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        check_status!(
            unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) },
            "cannot create a Promise"
        )?;
        let settler = register(env)?;
        Ok((
            Pending {
                deferred: Some((Deferred(deferred), settler)),
                _value: PhantomData,
            },
            Object::from_raw(env.raw(), promise),
        ))
    }

    /// Resolves with the value `make` builds on the JavaScript thread (rejects with its error).
    pub(crate) fn resolve_with(
        mut self,
        make: impl FnOnce(Env) -> napi::Result<T> + Send + 'static,
    ) {
        if let Some((deferred, settler)) = self.deferred.take() {
            settler.post(Box::new(move |env| {
                let value = make(Env::from_raw(env))
                    .and_then(|v| unsafe { ToNapiValue::to_napi_value(env, v) });
                settle(env, deferred, value);
            }));
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
        if let Some((deferred, settler)) = self.deferred.take() {
            let err = errors::to_js(e);
            settler.post(Box::new(move |env| settle(env, deferred, Err(err))));
        }
    }
}

/// Resolves or rejects `deferred` (on the JavaScript thread).
fn settle(env: sys::napi_env, deferred: Deferred, value: napi::Result<sys::napi_value>) {
    // SAFETY: `env` is the live environment the Promise was made in, on its thread.
    unsafe {
        match value {
            Ok(v) => {
                sys::napi_resolve_deferred(env, deferred.0, v);
            }
            Err(e) => match ToNapiValue::to_napi_value(env, e) {
                Ok(err) => {
                    sys::napi_reject_deferred(env, deferred.0, err);
                }
                Err(_) => {
                    let mut undefined = ptr::null_mut();
                    sys::napi_get_undefined(env, &mut undefined);
                    sys::napi_reject_deferred(env, deferred.0, undefined);
                }
            },
        }
    }
}

impl<T: ToNapiValue + 'static> Drop for Pending<T> {
    fn drop(&mut self) {
        if let Some((deferred, settler)) = self.deferred.take() {
            let err = errors::to_js(&errors::lost());
            settler.post(Box::new(move |env| settle(env, deferred, Err(err))));
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
    // A combinator rather than an `async` block, which would hold `fut` twice (as what it
    // captured and as what it awaits): the task is as large as `fut`, and made on this thread.
    runtime.spawn(fut.map(move |out| match out {
        Ok(value) => pending.resolve(value),
        Err(e) => pending.reject(&e),
    }));
    Ok(promise)
}
