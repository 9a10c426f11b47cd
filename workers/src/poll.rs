//! The shape the polling workers share: a pass, then at once another after a full pass, or a
//! pause (longer after a failure), until shutdown. A pass under way always finishes. The order
//! expiry is [`repeat`] itself; the drain and the relay, which do more between passes, use
//! [`pause`].

use std::{future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

/// Runs `pass` until `shutdown`. A pass answers how long to wait before the next one (`None`:
/// go again at once, there is more to do).
pub async fn repeat<F, Fut>(shutdown: &CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<Duration>>,
{
    while !shutdown.is_cancelled() {
        if let Some(wait) = pass().await {
            pause(shutdown, wait).await;
        }
    }
}

/// Sleeps `wait`, or until `shutdown` if that comes first.
pub async fn pause(shutdown: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test]
    async fn goes_again_at_once_after_a_full_pass_and_stops_on_shutdown() {
        let shutdown = CancellationToken::new();
        let passes = Arc::new(AtomicU32::new(0));
        let (stop, count) = (shutdown.clone(), Arc::clone(&passes));
        let started = std::time::Instant::now();
        repeat(&shutdown, move || {
            let (stop, count) = (stop.clone(), Arc::clone(&count));
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                match n {
                    1..=3 => None,
                    4 => Some(Duration::from_secs(3600)),
                    _ => unreachable!("a pass after shutdown"),
                }
                .inspect(|_| stop.cancel())
            }
        })
        .await;
        assert_eq!(passes.load(Ordering::SeqCst), 4);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the pause ends on shutdown"
        );
    }
}
