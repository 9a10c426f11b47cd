//! Timers polled only when a poll can change something.
//!
//! A tokio `Sleep` keeps the waker it was last polled with and wakes it when it fires, so polling
//! it again from the same task before then does nothing but cost (about 150 instructions: the
//! task's budget and the waker compared). An issue request polled its connection's idle timer
//! three times and its own deadline twice; [`poll_timer`] skips the polls that cannot matter.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use tokio::time::Sleep;

/// `timer` polled from `cx`, unless it was last polled by `cx`'s task (`polled_by`, kept here)
/// and has not fired since. Whoever resets `timer` sets `polled_by` to `None`: a timer that fired
/// has given its waker away, and is registered again by the next poll.
pub(crate) fn poll_timer(
    timer: Pin<&mut Sleep>,
    polled_by: &mut Option<Waker>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let same_task = polled_by.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
    if same_task && !timer.is_elapsed() {
        return Poll::Pending;
    }
    let polled = timer.poll(cx);
    if polled.is_pending() && !same_task {
        *polled_by = Some(cx.waker().clone());
    }
    polled
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A timer skipped after its first poll still wakes its task and answers ready once it fired,
    /// and one reset (after firing) is registered again by the next poll.
    #[tokio::test]
    async fn a_skipped_timer_still_fires_and_a_reset_one_is_registered_again() {
        let mut timer = Box::pin(tokio::time::sleep(Duration::from_millis(500)));
        let mut polled_by = None;
        let mut polls = 0;
        std::future::poll_fn(|cx| {
            polls += 1;
            let polled = poll_timer(timer.as_mut(), &mut polled_by, cx);
            if polls == 1 {
                // Polled again at once, before the timer fires: that poll is skipped.
                cx.waker().wake_by_ref();
            }
            polled
        })
        .await;
        assert!(polled_by.is_some());
        // The first poll registers, the second is skipped, the third (the timer's wake-up) sees
        // it fired.
        assert_eq!(polls, 3);
        timer
            .as_mut()
            .reset(tokio::time::Instant::now() + Duration::from_millis(20));
        polled_by = None;
        let fired = tokio::time::timeout(
            Duration::from_secs(5),
            std::future::poll_fn(|cx| poll_timer(timer.as_mut(), &mut polled_by, cx)),
        )
        .await;
        assert!(fired.is_ok(), "the reset timer woke its task");
    }
}
