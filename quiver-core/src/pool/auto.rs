//! The `auto` pool of an https origin: its first connection offers ALPN h2 and http/1.1, and
//! the server's choice decides, for the pool's lifetime, whether the origin gets an HTTP/2 or an
//! HTTP/1.1 pool. That first connection becomes the new pool's first connection (no throwaway
//! probe). Concurrent first callers wait on the one decision.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::h1::H1Pool;
use super::{h2, Counters, Pool};
use crate::config::{PoolOptions, Protocol};
use crate::conn::tls::{RuleTls, ALPN_H2};
use crate::conn::{Connector, Dial};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::stats::OriginStats;

type Waiters = Vec<oneshot::Sender<Result<Pool>>>;

/// An https origin's pool before and after ALPN decided its protocol.
pub(crate) struct AutoPool {
    origin: Origin,
    options: Arc<PoolOptions>,
    tls: RuleTls,
    dial: Arc<dyn Dial>,
    runtime: Handle,
    decided: OnceLock<Pool>,
    /// `Some` while a decision is in flight: the callers waiting for it.
    deciding: Mutex<Option<Waiters>>,
    /// Requests that failed before a protocol was decided.
    counters: Counters,
}

impl AutoPool {
    pub(crate) fn new(
        origin: Origin,
        options: Arc<PoolOptions>,
        tls: RuleTls,
        dial: Arc<dyn Dial>,
        runtime: Handle,
    ) -> Arc<AutoPool> {
        Arc::new(AutoPool {
            origin,
            options,
            tls,
            dial,
            runtime,
            decided: OnceLock::new(),
            deciding: Mutex::new(None),
            counters: Counters::default(),
        })
    }

    /// The decided pool, deciding it first if needed (once, whoever asks).
    pub(crate) async fn pool(self: &Arc<Self>) -> Result<Pool> {
        if let Some(pool) = self.decided.get() {
            return Ok(pool.clone());
        }
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut deciding = self.deciding.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(pool) = self.decided.get() {
                return Ok(pool.clone());
            }
            match deciding.as_mut() {
                Some(waiters) => {
                    waiters.push(tx);
                    false
                }
                None => {
                    *deciding = Some(vec![tx]);
                    true
                }
            }
        };
        if start {
            // A task of its own: a caller that gives up must not strand the others.
            let me = self.clone();
            self.runtime.spawn(async move {
                let result = me.decide().await;
                // Publish the decision under the lock that newcomers check, so that no caller
                // can slip between "waiters taken" and "decided" and start a second decision.
                let waiters = {
                    let mut deciding = me.deciding.lock().unwrap_or_else(|p| p.into_inner());
                    if let Ok(pool) = &result {
                        let _ = me.decided.set(pool.clone());
                    }
                    deciding.take().unwrap_or_default()
                };
                match result {
                    Ok(pool) => {
                        for w in waiters {
                            let _ = w.send(Ok(pool.clone()));
                        }
                    }
                    Err(e) => {
                        for w in waiters {
                            let _ = w.send(Err(e.clone()));
                        }
                    }
                }
            });
        }
        let res = match rx.await {
            Ok(res) => res,
            Err(_) => Err(Error::new(ErrorKind::Shutdown, "the pool was closed")),
        };
        if res.is_err() {
            self.counters.request();
            self.counters.error();
        }
        res
    }

    fn connector(&self, tls: &Arc<rustls::ClientConfig>) -> Connector {
        Connector {
            dial: self.dial.clone(),
            tls: Some(tls.clone()),
            connect_timeout: self.options.connect_timeout,
        }
    }

    async fn decide(&self) -> Result<Pool> {
        let connector = self.connector(&self.tls.auto);
        let connected = connector.connect(&self.origin).await?;
        let runtime = self.runtime.clone();
        if connected.alpn.as_deref() == Some(ALPN_H2) {
            // Later connections offer h2 only: the origin is an HTTP/2 origin now.
            let connector = self.connector(&self.tls.http2);
            let pool = h2::new_pool(
                self.origin.clone(),
                self.options.clone(),
                connector,
                runtime,
            );
            let (origin, options, stream) =
                (self.origin.clone(), self.options.clone(), connected.stream);
            pool.adopt(move |link| crate::proto::h2::setup(link, stream, origin, options));
            Ok(Pool::Http2(pool))
        } else {
            let connector = self.connector(&self.tls.http1);
            let pool = H1Pool::new(
                self.origin.clone(),
                self.options.clone(),
                connector,
                None,
                runtime,
            );
            pool.adopt(connected.stream).await?;
            Ok(Pool::Http1(pool))
        }
    }

    /// Closes the decided pool, if any.
    pub(crate) fn close_all(&self) {
        if let Some(pool) = self.decided.get() {
            pool.close_all();
        }
    }

    pub(crate) fn stats(&self) -> OriginStats {
        let mut stats = match self.decided.get() {
            Some(pool) => pool.stats(),
            None => self.counters.snapshot(&self.origin, Protocol::Auto),
        };
        if self.decided.get().is_some() {
            let before = self.counters.snapshot(&self.origin, Protocol::Auto);
            stats.requests += before.requests;
            stats.errors += before.errors;
        }
        stats
    }
}
