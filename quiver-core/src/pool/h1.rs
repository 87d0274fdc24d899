//! The HTTP/1.1 pool for one origin: connections from `proto::h1`, leased to one request at a
//! time, with the decisions in [`super::h1_state`].

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::h1_state::{Checkout, H1State, Lease, PooledConn};
use super::Counters;
use crate::config::{PoolOptions, Protocol};
use crate::conn::{Activity, ConnRecord, ConnectionInfo, Connector, Stream};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventKind;
use crate::origin::Origin;
use crate::proto::h1::{self, ConnReturn, H1Body, H1Sender};
use crate::request::{ProxyForm, Request};
use crate::response::{ResponseBody, StreamResponse, Via};
use crate::signal::Signal;
use crate::stats::OriginStats;
use crate::timeout::Watchdog;

/// One HTTP/1.1 connection as the pool holds it.
pub(crate) struct H1Conn {
    sender: H1Sender,
    activity: Activity,
    /// Requests this connection has completed.
    served: u32,
    /// How the connection was made (its id, dial timings).
    record: Arc<ConnRecord>,
}

impl PooledConn for H1Conn {
    fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }
}

/// A connection leased to one request. Dropped unused, it goes back to the pool; dropped
/// after a request was sent on it without being released, it is closed (its response was not
/// fully read, so it cannot carry another request).
pub(crate) struct H1Lease {
    pool: Arc<H1Pool>,
    conn: Option<H1Conn>,
    used: bool,
}

impl Lease<H1Conn> for H1Lease {
    fn into_conn(mut self) -> H1Conn {
        self.conn
            .take()
            .expect("a lease holds its connection until consumed")
    }
}

impl H1Lease {
    fn conn_mut(&mut self) -> &mut H1Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until consumed")
    }

    /// The response was read to its end: the connection may carry another request.
    pub(crate) fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.served += 1;
            self.pool.checkin(conn);
        }
    }

    /// The connection must not be reused.
    pub(crate) fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.discard(conn);
        }
    }
}

impl ConnReturn for H1Lease {
    fn give_back(self: Box<Self>, reusable: bool) {
        if reusable {
            self.release();
        } else {
            self.discard();
        }
    }
}

impl Drop for H1Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.used {
                self.pool.discard(conn);
            } else {
                self.pool.checkin(conn);
            }
        }
    }
}

/// The HTTP/1.1 pool for one origin.
pub(crate) struct H1Pool {
    origin: Origin,
    /// The `Host` header value for this origin, computed once.
    host: http::HeaderValue,
    /// Set when requests go to a forward proxy in absolute form.
    proxy_form: Option<ProxyForm>,
    options: Arc<PoolOptions>,
    connector: Connector,
    runtime: Handle,
    state: Mutex<H1State<H1Conn, H1Lease>>,
    /// Fired by `close_all`: every connection's task stops, so requests in flight end.
    closing: Arc<Signal>,
    pub(crate) counters: Counters,
}

impl H1Pool {
    /// `proxy_form` is set when `connector` leads to a forward proxy taking absolute-form
    /// requests.
    pub(crate) fn new(
        origin: Origin,
        options: Arc<PoolOptions>,
        connector: Connector,
        proxy_form: Option<ProxyForm>,
        runtime: Handle,
    ) -> Arc<H1Pool> {
        let host = http::HeaderValue::from_str(&origin.authority())
            .expect("an origin's authority is a valid header value");
        let pool = Arc::new(H1Pool {
            host,
            proxy_form,
            state: Mutex::new(H1State::new(options.size, options.idle_timeout)),
            origin,
            options,
            connector,
            runtime,
            closing: Arc::new(Signal::new()),
            counters: Counters::default(),
        });
        pool.spawn_reaper();
        pool
    }

    fn lock(&self) -> MutexGuard<'_, H1State<H1Conn, H1Lease>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wrap(self: &Arc<Self>) -> impl Fn(H1Conn) -> H1Lease + '_ {
        move |conn| H1Lease {
            pool: self.clone(),
            conn: Some(conn),
            used: false,
        }
    }

    fn checkin(self: &Arc<Self>, conn: H1Conn) {
        let now = Instant::now();
        let connect = self.lock().checkin(conn, now, self.wrap());
        if connect {
            self.spawn_connect();
        }
    }

    fn discard(self: &Arc<Self>, conn: H1Conn) {
        drop(conn);
        let connect = self.lock().discard();
        if connect {
            self.spawn_connect();
        }
    }

    /// Closes idle connections past `idle_timeout`, periodically, for as long as the pool lives.
    fn spawn_reaper(self: &Arc<Self>) {
        let weak: Weak<H1Pool> = Arc::downgrade(self);
        let period = (self.options.idle_timeout / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = weak.upgrade() else { break };
                let expired = pool.lock().reap(Instant::now());
                drop(expired);
            }
        });
    }

    fn spawn_connect(self: &Arc<Self>) {
        let pool = self.clone();
        self.runtime.spawn(async move {
            match pool.open_connection().await {
                Ok(conn) => {
                    let now = Instant::now();
                    pool.lock().connected(conn, now, pool.wrap());
                }
                Err(e) => {
                    let again = pool.lock().connect_failed(e);
                    if again {
                        pool.spawn_connect();
                    }
                }
            }
        });
    }

    async fn open_connection(&self) -> Result<H1Conn> {
        let connected = self.connector.connect(&self.origin).await?;
        self.handshake(connected.stream, connected.info).await
    }

    /// Adds a connection whose transport already exists (the one that decided an `auto` pool).
    pub(crate) async fn adopt(
        self: &Arc<Self>,
        stream: Stream,
        info: ConnectionInfo,
    ) -> Result<()> {
        let conn = self.handshake(stream, info).await?;
        self.lock().adopt(conn, Instant::now(), self.wrap());
        Ok(())
    }

    async fn handshake(&self, stream: Stream, info: ConnectionInfo) -> Result<H1Conn> {
        let record = ConnRecord::new(info);
        let watch = self.connector.events.clone().map(|events| h1::Lifecycle {
            events,
            origin: self.origin.clone(),
            id: record.info.id,
        });
        let (sender, activity) = h1::handshake(
            stream,
            &self.origin,
            &self.runtime,
            self.closing.clone(),
            self.options.max_response_headers,
            watch,
        )
        .await?;
        self.counters.connection_opened();
        Ok(H1Conn {
            sender,
            activity,
            served: 0,
            record,
        })
    }

    /// Waits for a connection: an idle one (unless `fresh`), a new one, or one checked in by
    /// another caller, within `checkout_timeout` (or, when a connection is dialled for this
    /// caller, as long as the dial may take, so that its error is the one the caller sees).
    async fn checkout(
        self: &Arc<Self>,
        fresh: bool,
        wait: Option<Duration>,
        trace: Option<&crate::events::Trace>,
    ) -> Result<H1Lease> {
        let wait = wait.unwrap_or(self.options.checkout_timeout);
        let mut deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut dropped = Vec::new();
            let decision = {
                let mut state = self.lock();
                if fresh {
                    state.checkout_fresh()
                } else {
                    state.checkout(Instant::now(), &mut dropped)
                }
            };
            drop(dropped);
            let mut lease = match decision {
                Checkout::Ready(conn) => self.wrap()(conn),
                Checkout::Wait { rx, connect } => {
                    if let Some(t) = trace {
                        t.emit(
                            &self.origin,
                            Some(Protocol::Http1),
                            None,
                            None,
                            EventKind::Queued,
                        );
                    }
                    if connect {
                        deadline = deadline.max(super::dial_deadline(&self.options));
                        self.spawn_connect();
                    }
                    match tokio::time::timeout_at(deadline, rx).await {
                        Ok(Ok(Ok(lease))) => lease,
                        Ok(Ok(Err(e))) => return Err(e),
                        Ok(Err(_)) => {
                            return Err(Error::new(ErrorKind::Shutdown, "the pool was closed"))
                        }
                        Err(_) => return Err(self.checkout_timeout_error(wait)),
                    }
                }
            };
            // The connection task may still be finishing the previous exchange.
            match tokio::time::timeout_at(deadline, lease.conn_mut().sender.ready()).await {
                Ok(Ok(())) => return Ok(lease),
                Ok(Err(_)) => lease.discard(),
                Err(_) => {
                    lease.discard();
                    return Err(self.checkout_timeout_error(wait));
                }
            }
        }
    }

    fn checkout_timeout_error(&self, wait: Duration) -> Error {
        Error::new(
            ErrorKind::CheckoutTimeout,
            format!(
                "no connection to {} became free within {} ms (pool size {})",
                self.origin,
                wait.as_millis(),
                self.options.size
            ),
        )
    }

    /// Sends `req` and returns once the response head arrived. A request that fails on a
    /// reused connection before any response byte is retried once on a fresh connection, when
    /// its body can be replayed and either its method is idempotent or it was never written.
    pub(crate) async fn send(self: &Arc<Self>, mut req: Request) -> Result<StreamResponse> {
        let mut watchdog = Watchdog::new(
            req.read_timeout.unwrap_or(self.options.read_timeout),
            req.timeout.or(self.options.request_timeout),
        );
        let replayable = req.body.try_clone().is_some();
        let mut fresh = false;
        loop {
            let body = match req.body.try_clone() {
                Some(body) => body,
                None => std::mem::take(&mut req.body),
            };
            let asked = Instant::now();
            let mut lease = self
                .checkout(fresh, req.checkout_timeout, req.trace.as_ref())
                .await?;
            let queued = asked.elapsed();
            let reused = lease.conn_mut().served > 0;
            let record = lease.conn_mut().record.clone();
            let conn_reused = record.start_request();
            let conn_id = Some(record.info.id);
            let emit = |kind: EventKind| {
                if let Some(t) = &req.trace {
                    t.emit(&self.origin, Some(Protocol::Http1), conn_id, None, kind);
                }
            };
            emit(EventKind::ConnectionAcquired {
                reused: conn_reused,
            });
            let activity = lease.conn_mut().activity.clone();
            // hyper never polls an empty body: its `body_sent` goes out with the response head.
            let empty = body.exact_len() == Some(0);
            let sent = match empty {
                true => None,
                false => req.sent_hook(&self.origin, Protocol::Http1, conn_id, None),
            };
            let wire = req.to_http1(body, &self.host, self.proxy_form.as_ref(), sent);
            lease.used = true;
            // Before hyper's connection task can write the head and pull the body.
            emit(EventKind::HeadersSent);
            let response = lease.conn_mut().sender.send_request(wire);
            match watchdog.guard(&activity, response).await {
                Ok(Ok(response)) => {
                    let (head, incoming) = response.into_parts();
                    if let Err(e) = crate::proto::head::check_response_headers(
                        &head.headers,
                        self.options.max_response_headers,
                        &self.origin,
                    ) {
                        lease.discard();
                        return Err(e);
                    }
                    let body = H1Body::new(
                        incoming,
                        Box::new(lease),
                        activity,
                        self.origin.clone(),
                        self.closing.clone(),
                    );
                    if empty {
                        if let Some(hook) =
                            req.sent_hook(&self.origin, Protocol::Http1, conn_id, None)
                        {
                            hook(0);
                        }
                    }
                    emit(EventKind::ResponseHeaders {
                        status: head.status,
                    });
                    let mut resp = StreamResponse::new(
                        head,
                        ResponseBody::http1(body, watchdog).limited(self.options.max_response_body),
                    );
                    resp.via = Via {
                        queued,
                        record: Some(record),
                        reused: conn_reused,
                        stream: None,
                    };
                    return Ok(resp);
                }
                Ok(Err(e)) => {
                    lease.discard();
                    // RFC 9110 §9.2.2: a request the server may have processed goes again only
                    // when its method is idempotent; one never written always may.
                    let unsent = e.is_canceled();
                    if reused
                        && !fresh
                        && replayable
                        && h1::is_stale_connection(&e)
                        && (unsent || req.method.is_idempotent())
                    {
                        self.counters.retried();
                        emit(EventKind::Retried {
                            reason: h1::map_hyper_error(e, &self.origin, &self.closing).kind(),
                        });
                        fresh = true;
                        continue;
                    }
                    return Err(h1::map_hyper_error(e, &self.origin, &self.closing));
                }
                Err(timeout) => {
                    lease.discard();
                    return Err(timeout);
                }
            }
        }
    }

    /// Closes the least recently used idle connection, if any; `true` if there was one.
    pub(crate) fn evict_idle(&self) -> bool {
        let conn = self.lock().evict_one();
        conn.is_some()
    }

    /// Closes every connection: idle ones, and those carrying a request (which then fails
    /// with `shutdown`); waiting callers get `shutdown` too.
    pub(crate) fn close_all(&self) {
        self.closing.fire();
        let idle = self
            .lock()
            .close_all(&Error::new(ErrorKind::Shutdown, "the client was closed"));
        drop(idle);
    }

    pub(crate) fn stats(&self) -> OriginStats {
        let state = self.lock();
        let mut stats = self.counters.snapshot(&self.origin, Protocol::Http1);
        stats.idle = state.idle_count();
        stats.active = state.active_count();
        stats.queued = state.queued_count();
        stats.connections = stats.idle + stats.active;
        stats
    }
}
