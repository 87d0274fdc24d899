//! Futures built where they first run.

use std::future::Future;

/// A future that calls `make` when first polled and runs what it returns from the heap.
///
/// For embedders that spawn a request from their own thread (a Python or JavaScript event loop,
/// a C caller): a request's future is several KiB, and a task holding it would be allocated
/// and copied on the caller's thread, and freed on another; the future returned here holds only
/// `make` (what it captured), and the request's future is allocated, run and freed on the
/// runtime's worker that polls it. Rust callers that await in place have no use for it.
pub async fn on_first_poll<F, M>(make: M) -> F::Output
where
    M: FnOnce() -> F,
    F: Future,
{
    Box::pin(make()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_on_first_poll_and_runs_the_future() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let built = Arc::new(AtomicBool::new(false));
        let flag = built.clone();
        let fut = on_first_poll(move || async move {
            flag.store(true, Ordering::SeqCst);
            let big = [7u8; 16 * 1024]; // held across the await: the built future is > 16 KiB
            tokio::task::yield_now().await;
            big.iter().map(|&b| u32::from(b)).sum::<u32>()
        });
        assert!(
            std::mem::size_of_val(&fut) < 1024,
            "the unbuilt future holds only its maker"
        );
        assert!(
            !built.load(Ordering::SeqCst),
            "nothing is built before the first poll"
        );
        assert_eq!(fut.await, 7 * 16 * 1024);
        assert!(built.load(Ordering::SeqCst));
    }
}
