//! Happy Eyeballs v2 (RFC 8305 §4–5) for TCP and QUIC alike: the resolved addresses are
//! interleaved by family, attempts start one after another (the next when the previous fails
//! or after the connection attempt delay, whichever comes first), the first to succeed wins and
//! the others are dropped, which cancels them.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::BoxFuture;
use crate::error::Result;

/// Orders addresses for connection attempts: alternating families, starting with the family
/// of the resolver's first answer, each family keeping the resolver's order.
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (mut lead, mut other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(lead.len() + other.len());
    lead.reverse();
    other.reverse();
    loop {
        match (lead.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Races `attempt` over `addrs` (already in order; addresses or what carries them): the first success is returned, later
/// attempts start `delay` after the previous one or at once when it fails. With every attempt
/// failed, the first attempt's error is returned (it names the most preferred address).
pub(crate) async fn race<A, T>(
    addrs: Vec<A>,
    delay: Duration,
    attempt: impl Fn(A) -> BoxFuture<'static, Result<T>>,
) -> Option<Result<T>> {
    let mut pending = addrs.into_iter();
    let mut running = FuturesUnordered::new();
    let mut first_error = None;
    let start = |addr: A, running: &mut FuturesUnordered<_>| {
        running.push(attempt(addr));
    };
    match pending.next() {
        Some(addr) => start(addr, &mut running),
        None => return None,
    }
    loop {
        let next_due = tokio::time::sleep(delay);
        tokio::pin!(next_due);
        let waiting_for_more = pending.len() > 0;
        tokio::select! {
            done = running.next() => match done {
                Some(Ok(conn)) => return Some(Ok(conn)),
                Some(Err(e)) => {
                    first_error.get_or_insert(e);
                    match pending.next() {
                        Some(addr) => start(addr, &mut running),
                        None if running.is_empty() => return first_error.map(Err),
                        None => {}
                    }
                }
                None => return first_error.map(Err),
            },
            () = &mut next_due, if waiting_for_more => {
                if let Some(addr) = pending.next() {
                    start(addr, &mut running);
                }
            }
        }
    }
}

/// [`race`] for connecting to `origin`: no address at all is a `dns` error naming it.
pub(crate) async fn connect<A, T>(
    origin: &crate::origin::Origin,
    addrs: Vec<A>,
    delay: Duration,
    attempt: impl Fn(A) -> BoxFuture<'static, Result<T>>,
) -> Result<T> {
    race(addrs, delay, attempt).await.unwrap_or_else(|| {
        Err(crate::error::Error::new(
            crate::error::ErrorKind::Dns,
            format!("{origin} has no address"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_starting_with_the_first_answer() {
        let got = interleave(vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
        ]);
        let want = ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"];
        assert_eq!(got, want.map(a));
        assert_eq!(
            interleave(vec![a("10.0.0.1:1"), a("[::1]:1")])[0],
            a("10.0.0.1:1")
        );
        assert!(interleave(vec![]).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_first_address_costs_one_delay() {
        let started = tokio::time::Instant::now();
        let got = race(
            vec![a("[::1]:1"), a("127.0.0.1:1")],
            Duration::from_millis(250),
            |addr| {
                Box::pin(async move {
                    if addr.is_ipv6() {
                        std::future::pending::<()>().await;
                    }
                    Ok(addr)
                })
            },
        )
        .await;
        assert_eq!(got.unwrap().unwrap(), a("127.0.0.1:1"));
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_starts_the_next_at_once_and_all_failing_gives_the_first_error() {
        let started = tokio::time::Instant::now();
        let got: Option<Result<()>> = race(
            vec![a("[::1]:1"), a("127.0.0.1:1"), a("127.0.0.2:1")],
            Duration::from_secs(10),
            |addr| {
                Box::pin(
                    async move { Err(Error::new(ErrorKind::ConnectRefused, addr.to_string())) },
                )
            },
        )
        .await;
        let err = got.unwrap().unwrap_err();
        assert_eq!(err.message(), "[::1]:1");
        assert_eq!(started.elapsed(), Duration::ZERO);
        let none: Option<Result<()>> =
            race(Vec::<SocketAddr>::new(), Duration::from_secs(1), |_| {
                Box::pin(async { Ok(()) })
            })
            .await;
        assert!(none.is_none());
    }
}
