//! The monotonic clock every language can compare with: an event's instant as the system's
//! monotonic clock reads it (CLOCK_MONOTONIC on Unix: Python's `time.monotonic()`, Node's
//! `process.hrtime`, C's `clock_gettime(CLOCK_MONOTONIC)`).

use std::time::{Duration, Instant};

/// `at` as a reading of the system's monotonic clock (time since its unspecified start).
pub fn monotonic(at: Instant) -> Duration {
    let now = Instant::now();
    let clock_now = monotonic_now();
    if at <= now {
        clock_now.saturating_sub(now - at)
    } else {
        clock_now + (at - now)
    }
}

#[cfg(unix)]
fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on every Unix quiver
    // builds for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return fallback();
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

#[cfg(not(unix))]
fn monotonic_now() -> Duration {
    fallback()
}

/// Time since this process first asked (when the system clock cannot be read).
fn fallback() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_map_onto_the_monotonic_clock_in_order() {
        let a = Instant::now();
        let b = a + Duration::from_millis(5);
        let (ma, mb) = (monotonic(a), monotonic(b));
        let diff = mb.saturating_sub(ma);
        assert!(
            diff >= Duration::from_millis(4) && diff <= Duration::from_millis(6),
            "{diff:?}"
        );
        let now = monotonic_now();
        assert!(ma <= now + Duration::from_millis(1));
    }
}
