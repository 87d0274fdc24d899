//! The transparent-retry budget of a multiplexed request.

use super::Counters;
use crate::error::ErrorKind;

/// What to do after a multiplexed request failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Give the error to the caller.
    No,
    /// Send again (on whichever connection the coordinator picks; a draining one is skipped).
    Again,
    /// Send again, on another connection than the one that refused it.
    Elsewhere,
}

/// The transparent-retry budget of one HTTP/2 or HTTP/3 request. Requests the peer provably
/// never processed are safe to send again: streams left out by a GOAWAY (or that could not even
/// be opened) up to [`Retries::UNPROCESSED`] times, which stops a peer that GOAWAYs every
/// connection from looping us; a stream refused with REFUSED_STREAM once, elsewhere. A body
/// already being streamed cannot be replayed.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    unprocessed: u32,
    refused: bool,
}

impl Retries {
    /// Most re-sends of a request left unprocessed by GOAWAY. A server that takes only a few
    /// streams per connection (a per-connection request limit) may leave a burst unprocessed
    /// again and again while the burst moves to its next connection; every attempt is safe (the
    /// server said it processed nothing) and bounded by the request's timers, and the count
    /// still stops a server that refuses everything.
    pub(crate) const UNPROCESSED: u32 = 16;

    /// After an error before the stream was opened: the body is untouched, so it can always go
    /// again while the budget lasts.
    pub(crate) fn before_open(&mut self, kind: ErrorKind, counters: &Counters) -> Retry {
        let unprocessed = matches!(
            kind,
            ErrorKind::Goaway | ErrorKind::ConnectionClosed | ErrorKind::ConnectionReset
        );
        if unprocessed && self.unprocessed < Self::UNPROCESSED {
            self.unprocessed += 1;
            counters.retried();
            return Retry::Again;
        }
        Retry::No
    }

    /// After the stream failed: only unprocessed requests with a replayable body go again.
    pub(crate) fn after_send(
        &mut self,
        kind: ErrorKind,
        replayable: bool,
        counters: &Counters,
    ) -> Retry {
        if !replayable {
            return Retry::No;
        }
        let decision = match kind {
            ErrorKind::Goaway if self.unprocessed < Self::UNPROCESSED => {
                self.unprocessed += 1;
                Retry::Again
            }
            ErrorKind::RefusedStream if !self.refused => {
                self.refused = true;
                Retry::Elsewhere
            }
            _ => Retry::No,
        };
        if decision != Retry::No {
            counters.retried();
        }
        decision
    }
}
