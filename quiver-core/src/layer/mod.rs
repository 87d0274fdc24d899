//! The client layer: what sits between a request and its origin's pool, once for every
//! language. Each concern is its own module — `redirect` (which redirects are followed and
//! how), `decode` (content decoding), `cookies` (the jar), `auth` (Basic, Bearer, Digest) —
//! and [`Layer::send`] runs them around one request: headers added per hop, the pool asked,
//! cookies stored, a Digest challenge answered, redirects followed, the body decoded.

pub(crate) mod auth;
#[cfg(feature = "cookies")]
pub(crate) mod cookies;
pub(crate) mod decode;
mod hop;
pub(crate) mod redirect;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

#[cfg(feature = "cookies")]
use http::header::COOKIE;
use http::header::{ACCEPT_ENCODING, AUTHORIZATION};

use crate::config::{PoolOptions, Protocol};
use crate::error::{Error, Result};
use crate::events::{EventKind, Events, Trace};
use crate::manager::{Manager, Route};
use crate::origin::Origin;
use crate::request::{Auth, Body, LayerOptions, RedirectMode, Request};
use crate::response::{Redirect, StreamResponse, Timings};

use self::auth::{Challenge, DigestCache};
use self::hop::{declared_length, declared_length_of, discard, has, pick_auth, rebuild, Retained};
use self::redirect::{Policy, Step};

/// The client layer's state for one client: the cookie jar, remembered Digest challenges and
/// the event listeners.
pub(crate) struct Layer {
    #[cfg(feature = "cookies")]
    cookies: Option<Arc<cookies::CookieJar>>,
    digest: DigestCache,
    events: Option<Events>,
}

/// When the request started and when its last hop did, and who follows it (listeners, a
/// progress record).
struct Clock<'a> {
    started: Instant,
    hop_started: Instant,
    trace: Option<(Trace, &'a Origin)>,
    progress: Option<&'a Arc<crate::request::Progress>>,
}

impl Layer {
    /// The layer for a client whose client-wide options are `defaults`, keeping its cookies in
    /// `jar` when one is given (a jar shared with other clients).
    #[cfg(feature = "cookies")]
    pub(crate) fn new(
        defaults: &PoolOptions,
        jar: Option<Arc<cookies::CookieJar>>,
        events: Option<Events>,
    ) -> Result<Layer> {
        Ok(Layer {
            cookies: jar.or_else(|| {
                defaults
                    .cookies
                    .then(|| Arc::new(cookies::CookieJar::new()))
            }),
            digest: DigestCache::default(),
            events,
        })
    }

    /// The layer for a client whose client-wide options are `defaults`.
    #[cfg(not(feature = "cookies"))]
    pub(crate) fn new(defaults: &PoolOptions, events: Option<Events>) -> Result<Layer> {
        if defaults.cookies {
            return Err(Error::invalid_config(
                "option `cookies` needs quiver's `cookies` feature",
            ));
        }
        Ok(Layer {
            digest: DigestCache::default(),
            events,
        })
    }

    /// The cookie jar, when the client keeps one (`cookies`).
    #[cfg(feature = "cookies")]
    pub(crate) fn cookies(&self) -> Option<&Arc<cookies::CookieJar>> {
        self.cookies.as_ref()
    }

    /// Sends `req` through its origin's pool with everything the layer does around it; with
    /// listeners, the request's events from its start to its failure or its response.
    pub(crate) async fn send(&self, manager: &Manager, req: Request) -> Result<StreamResponse> {
        #[cfg(feature = "tracing")]
        {
            use tracing::Instrument;
            let span = tracing::debug_span!(
                target: "quiver",
                "quiver.request",
                method = %req.method,
                url = %req.url
            );
            return self.send_traced(manager, req).instrument(span).await;
        }
        #[cfg(not(feature = "tracing"))]
        self.send_traced(manager, req).await
    }

    async fn send_traced(&self, manager: &Manager, mut req: Request) -> Result<StreamResponse> {
        let Some(events) = self.events.as_ref().filter(|e| e.enabled()) else {
            return self.send_hops(manager, req).await;
        };
        let trace = Trace::new(events);
        let origin = req.target.origin.clone();
        trace.emit(
            &origin,
            None,
            None,
            None,
            EventKind::RequestStart {
                method: req.method.clone(),
                url: req.url.clone(),
            },
        );
        req.trace = Some(trace.clone());
        let out = self.send_hops(manager, req).await;
        if let Err(e) = &out {
            trace.emit(
                &origin,
                None,
                None,
                None,
                EventKind::RequestFailed { error: e.clone() },
            );
        }
        out
    }

    async fn send_hops(&self, manager: &Manager, mut req: Request) -> Result<StreamResponse> {
        let started = Instant::now();
        let mut hop_started = started;
        let trace = req.trace.clone();
        let progress = req.progress.clone();
        if let Some(p) = &progress {
            p.set_upload_total(
                req.body
                    .exact_len()
                    .or_else(|| declared_length(&req.headers)),
            );
            req.body = match std::mem::take(&mut req.body) {
                Body::Stream(stream) => {
                    let counter = p.clone();
                    Body::Stream(Box::pin(futures_util::StreamExt::inspect(
                        stream,
                        move |chunk| {
                            if let Ok(c) = chunk {
                                counter.add_uploaded(c.len() as u64);
                            }
                        },
                    )))
                }
                other => other,
            };
        }
        let options: LayerOptions = std::mem::take(&mut req.layer);
        let mut route = manager.route(&req.target.origin, options.protocol)?;
        let first = route.rule.clone();
        let policy = Policy {
            mode: options
                .redirect
                .unwrap_or(if first.options.follow_redirects {
                    RedirectMode::Follow
                } else {
                    RedirectMode::Manual
                }),
            max: options.max_redirects.unwrap_or(first.options.max_redirects),
            allow_insecure: first.options.allow_insecure_redirects,
        };
        let deadline = req.timeout.or(first.options.request_timeout);
        let own_timeouts = (req.read_timeout, req.checkout_timeout);
        let client_auth = manager.rules().default_rule().auth.clone();
        let mut history: Vec<Redirect> = Vec::new();
        // The origin the caller addressed, once a redirect left it (client-wide and per-request
        // credentials go to that origin only).
        let mut initial: Option<Origin> = None;
        let mut digest_answered = 0u8;
        loop {
            let at_initial = initial.as_ref().is_none_or(|o| *o == req.target.origin);
            let auth = pick_auth(&options, &route.rule, client_auth.as_ref(), at_initial);
            let decompress = options.decompress.unwrap_or(route.rule.options.decompress);
            let may_repeat = matches!(policy.mode, RedirectMode::Follow | RedirectMode::Error)
                || matches!(auth, Some(Auth::Digest { .. }));
            let retained = may_repeat.then(|| Retained {
                headers: req.headers.clone(),
                body: req.body.try_clone(),
            });
            let url = std::mem::take(&mut req.url);
            #[cfg(feature = "cookies")]
            let jar_url = match &self.cookies {
                Some(_) => url::Url::parse(&url).ok(),
                None => None,
            };
            self.add_headers(&mut req, auth, decompress)?;
            #[cfg(feature = "cookies")]
            if let (Some(jar), Some(u)) = (&self.cookies, &jar_url) {
                if !has(&req.headers, &COOKIE) {
                    if let Some(v) = jar.header_for(u) {
                        req.headers.push((COOKIE, v));
                    }
                }
            }
            let method = req.method.clone();
            let origin = req.target.origin.clone();
            let sent_digest =
                matches!(auth, Some(Auth::Digest { .. })) && has(&req.headers, &AUTHORIZATION);
            let resp = route.pool.send(req).await?;
            #[cfg(feature = "cookies")]
            if let (Some(jar), Some(u)) = (&self.cookies, &jar_url) {
                jar.store_from(u, resp.headers());
            }

            // A Digest challenge: answer it once (twice when the nonce went stale).
            if resp.status() == http::StatusCode::UNAUTHORIZED
                && matches!(auth, Some(Auth::Digest { .. }))
            {
                let challenge = Challenge::from_headers(resp.headers());
                let again = retained.as_ref().is_some_and(|r| r.body.is_some());
                match challenge {
                    Some(ch)
                        if again && (digest_answered == 0 || ch.stale && digest_answered == 1) =>
                    {
                        digest_answered += 1;
                        self.digest.remember(&origin, ch);
                        discard(resp).await;
                        let Some(r) = retained else {
                            return Err(Error::internal(
                                "a challenge answered without its request",
                            ));
                        };
                        let target = crate::origin::Target::parse(&url)?;
                        req = rebuild(method, url, target, r, deadline, started)?;
                        (req.read_timeout, req.checkout_timeout) = own_timeouts;
                        req.trace = trace.clone();
                        req.progress = progress.clone();
                        hop_started = Instant::now();
                        continue;
                    }
                    _ if sent_digest => self.digest.forget(&origin),
                    _ => {}
                }
            }

            let step = {
                let visited: Vec<&str> = history.iter().map(|h| h.url.as_str()).collect();
                let replayable = retained.as_ref().is_some_and(|r| r.body.is_some());
                redirect::next_step(
                    &policy,
                    resp.status(),
                    resp.headers(),
                    &method,
                    &url,
                    &visited,
                    replayable,
                )?
            };
            match step {
                Step::Deliver => {}
                Step::Unfollowed(why) => {
                    let when = Clock {
                        started,
                        hop_started,
                        trace: trace.map(|t| (t, &origin)),
                        progress: progress.as_ref(),
                    };
                    let parts = (url, history, Some(why));
                    return Ok(self.deliver(resp, &route, decompress, parts, when));
                }
                Step::Follow(hop) => {
                    let cross_origin = hop.target.origin != origin;
                    if cross_origin && initial.is_none() {
                        initial = Some(origin.clone());
                    }
                    if let Some(t) = &trace {
                        t.emit(
                            &origin,
                            None,
                            None,
                            None,
                            EventKind::Redirected {
                                status: resp.status(),
                                location: hop.url.clone(),
                            },
                        );
                    }
                    history.push(Redirect {
                        status: resp.status(),
                        url,
                        version: resp.version(),
                        headers: resp.headers().clone(),
                    });
                    discard(resp).await;
                    let Some(mut r) = retained else {
                        return Err(Error::internal("a followed redirect without its request"));
                    };
                    redirect::carry_headers(&mut r.headers, hop.drop_body, cross_origin);
                    if hop.drop_body {
                        r.body = Some(Body::Empty);
                    }
                    route = manager.route(&hop.target.origin, options.protocol)?;
                    req = rebuild(hop.method, hop.url, hop.target, r, deadline, started)?;
                    (req.read_timeout, req.checkout_timeout) = own_timeouts;
                    req.trace = trace.clone();
                    req.progress = progress.clone();
                    hop_started = Instant::now();
                    continue;
                }
            }
            let when = Clock {
                started,
                hop_started,
                trace: trace.map(|t| (t, &origin)),
                progress: progress.as_ref(),
            };
            let parts = (url, history, None);
            return Ok(self.deliver(resp, &route, decompress, parts, when));
        }
    }

    /// The response as the caller gets it: decoded if asked, with its URL, history and
    /// timings; with listeners, its end reported.
    fn deliver(
        &self,
        mut resp: StreamResponse,
        route: &Route,
        decompress: bool,
        (url, history, unfollowed): (String, Vec<Redirect>, Option<String>),
        when: Clock<'_>,
    ) -> StreamResponse {
        let Clock {
            started,
            hop_started,
            trace,
            progress,
        } = when;
        let codings = decompress
            .then(|| decode::codings(resp.headers()))
            .flatten();
        let decoded = codings.is_some();
        if let Some(codings) = codings {
            let options = &route.rule.options;
            let (ratio, limit) = (options.max_decompression_ratio, options.max_response_body);
            resp.map_body(|body| decode::wrap(body, codings, ratio, limit));
        }
        if let Some(p) = &progress {
            let total = match decoded {
                true => None,
                false => declared_length_of(resp.headers()),
            };
            p.start_download(total);
            resp.count_in(Arc::clone(p));
        }
        let via = std::mem::take(&mut resp.via);
        let fresh = via.record.is_some() && !via.reused;
        let info = via
            .record
            .map_or_else(crate::response::no_connection, |r| r.info.clone());
        let end = Arc::new(OnceLock::new());
        let timings = Timings {
            queued: via.queued,
            dns: info.dns.filter(|_| fresh),
            connect: info.connect.filter(|_| fresh),
            tls: info.tls.filter(|_| fresh),
            ttfb: started.elapsed(),
            redirects: hop_started - started,
            reused: via.reused,
            protocol: match resp.version() {
                http::Version::HTTP_2 => Protocol::Http2,
                http::Version::HTTP_3 => Protocol::Http3,
                _ => Protocol::Http1,
            },
            stream: via.stream,
            connection: info,
            end: Some(Arc::clone(&end)),
        };
        resp.time_to_end(started, end);
        if let Some((t, origin)) = trace {
            let (origin, protocol) = (origin.clone(), timings.protocol);
            let conn = Some(timings.connection.id).filter(|id| *id != 0);
            let stream = timings.stream;
            resp.on_end(Box::new(move |bytes, outcome| {
                let kind = match outcome {
                    Ok(()) => EventKind::ResponseEnd { bytes },
                    Err(e) => EventKind::RequestFailed { error: e.clone() },
                };
                t.emit(&origin, Some(protocol), conn, stream, kind);
            }));
        }
        resp.set_provenance(url, history, unfollowed, timings);
        resp
    }

    /// The headers the layer adds to one hop: `accept-encoding` and credentials, unless the
    /// request carries its own.
    fn add_headers(&self, req: &mut Request, auth: Option<&Auth>, decompress: bool) -> Result<()> {
        if decompress && !has(&req.headers, &ACCEPT_ENCODING) {
            if let Some(v) = decode::accept_encoding() {
                req.headers.push((ACCEPT_ENCODING, v));
            }
        }
        if let Some(auth) = auth {
            if !has(&req.headers, &AUTHORIZATION) {
                let value = match auth {
                    Auth::Digest { user, password } => self.digest.header(
                        &req.target.origin,
                        user,
                        password,
                        &req.method,
                        req.target.path_and_query.as_str(),
                    ),
                    other => auth::simple_header(other),
                };
                if let Some(v) = value {
                    req.headers.push((AUTHORIZATION, v));
                }
            }
        }
        Ok(())
    }
}
