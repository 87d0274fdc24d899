//! The two request timers: idle-between-bytes (`read_timeout`, measured on the connection's
//! activity) and the whole-request deadline (`request_timeout`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use crate::conn::Activity;
use crate::error::{Error, ErrorKind};

/// Watches one request. The timer is re-armed lazily: only when it fires early because bytes
/// moved meanwhile, so a busy stream costs no timer work per chunk.
pub(crate) struct Watchdog {
    read_timeout: Duration,
    deadline: Option<Instant>,
    started: Instant,
    /// When the caller started waiting for the current chunk (`None` while it is not waiting).
    waiting_since: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
}

impl Watchdog {
    /// Must be called inside a tokio runtime.
    pub(crate) fn new(read_timeout: Duration, request_timeout: Option<Duration>) -> Watchdog {
        let now = Instant::now();
        // Options are capped at a year, so these never overflow; a limit that would is no
        // limit rather than a panic.
        let far = |t: Duration| {
            now.checked_add(t)
                .unwrap_or(now + crate::config::MAX_DURATION)
        };
        let deadline = request_timeout.and_then(|t| now.checked_add(t));
        let first = deadline.map_or(far(read_timeout), |d| d.min(far(read_timeout)));
        Watchdog {
            read_timeout,
            deadline,
            started: now,
            waiting_since: None,
            sleep: Box::pin(tokio::time::sleep_until(first.into())),
        }
    }

    /// Ready with an error once the request's deadline passed or `activity` shows no byte
    /// moved for `read_timeout`.
    pub(crate) fn poll_expired(
        &mut self,
        cx: &mut Context<'_>,
        activity: &Activity,
    ) -> Poll<Error> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if let Some(deadline) = self.deadline {
                if now >= deadline {
                    return Poll::Ready(Error::new(
                        ErrorKind::RequestTimeout,
                        format!(
                            "the request took longer than {} ms",
                            deadline.duration_since(self.started).as_millis()
                        ),
                    ));
                }
            }
            // Idle time only counts while the caller waits: a consumer that paused is not
            // the connection being idle.
            let last = activity
                .last()
                .max(self.started)
                .max(self.waiting_since.unwrap_or(self.started));
            let idle_until = last
                .checked_add(self.read_timeout)
                .unwrap_or(now + crate::config::MAX_DURATION);
            if now >= idle_until {
                return Poll::Ready(Error::new(
                    ErrorKind::ReadTimeout,
                    format!("no data moved for {} ms", self.read_timeout.as_millis()),
                ));
            }
            let next = self.deadline.map_or(idle_until, |d| d.min(idle_until));
            self.sleep.as_mut().reset(next.into());
        }
    }

    /// The caller is waiting for data (called each time a poll comes back pending).
    pub(crate) fn begin_wait(&mut self) {
        self.waiting_since.get_or_insert_with(Instant::now);
    }

    /// The caller got data: the next wait starts afresh.
    pub(crate) fn end_wait(&mut self) {
        self.waiting_since = None;
    }

    /// Runs `fut` until it finishes or a limit passes.
    pub(crate) async fn guard<F: Future>(
        &mut self,
        activity: &Activity,
        fut: F,
    ) -> Result<F::Output, Error> {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            self.poll_expired(cx, activity).map(Err)
        })
        .await
    }
}
