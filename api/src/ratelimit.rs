//! Rate limits of the issue endpoints: one per user and one for the whole process (governor).
//!
//! The limits are per process: with N api replicas the global figure is N times the setting.
//! The per-user limit is keyed by the user the ticket is for, which is what a duplicate storm
//! repeats. Checked after the body is parsed, so malformed requests do not use up quota.
//!
//! The per-user map hashes with foldhash, not SipHash: its keys are the users of valid tokens
//! (a user may act only for themself), so no client can choose colliding keys to insert.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
};

type UserLimiter = DefaultKeyedRateLimiter<
    i64,
    NoOpMiddleware<<DefaultClock as Clock>::Instant>,
    foldhash::fast::RandomState,
>;

/// Both limiters.
pub struct RateLimits {
    per_user: Option<UserLimiter>,
    global: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
    shrink: std::sync::Mutex<Shrink>,
}

impl RateLimits {
    /// `user_rate`/s with bursts of `user_burst` per user, `global_rate`/s in all; 0 = no limit.
    pub fn new(user_rate: u32, user_burst: u32, global_rate: u32) -> Self {
        let per_user = NonZeroU32::new(user_rate).map(|rate| {
            let burst = NonZeroU32::new(user_burst.max(user_rate)).unwrap_or(rate);
            RateLimiter::dashmap_with_hasher(
                Quota::per_second(rate).allow_burst(burst),
                foldhash::fast::RandomState::default(),
            )
        });
        let global = NonZeroU32::new(global_rate).map(|rate| RateLimiter::direct(Quota::per_second(rate)));
        Self {
            per_user,
            global,
            clock: DefaultClock::default(),
            shrink: Default::default(),
        }
    }

    /// `Err(seconds to wait)` when `user` or the process is over its limit.
    pub fn check(&self, user: i64) -> Result<(), u64> {
        let wait = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        if let Some(limiter) = &self.per_user {
            limiter
                .check_key(&user)
                .map_err(|nu| wait(nu.wait_time_from(self.clock.now())))?;
        }
        if let Some(limiter) = &self.global {
            limiter
                .check()
                .map_err(|nu| wait(nu.wait_time_from(self.clock.now())))?;
        }
        Ok(())
    }

    /// Forgets users idle long enough to be back at full quota (call periodically), and gives
    /// the map's room back once the crowd that needed it is gone.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_user {
            let held = limiter.len();
            limiter.retain_recent();
            if self.shrink.lock().unwrap_or_else(|e| e.into_inner()).after(held) {
                limiter.shrink_to_fit();
            }
        }
    }
}

/// When a sweep shrinks the per-user map. Shrunk after every sweep of a rush, the map grew back
/// at once and rehashed every user it held on the way (about a hundred instructions a request
/// with fresh users); so it shrinks only when the users held before a sweep have fallen to a
/// quarter of the most held since it last shrank.
#[derive(Debug, Default)]
struct Shrink {
    /// Most users held before a sweep since the last shrink.
    peak: usize,
}

impl Shrink {
    /// Whether the sweep of a map that held `held` users shrinks it.
    fn after(&mut self, held: usize) -> bool {
        self.peak = self.peak.max(held);
        let shrink = held <= self.peak / 4;
        if shrink {
            self.peak = held;
        }
        shrink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_over_burst_waits_and_others_do_not() {
        let limits = RateLimits::new(1, 2, 0);
        assert!(limits.check(1).is_ok());
        assert!(limits.check(1).is_ok());
        assert_eq!(limits.check(1), Err(1));
        assert!(limits.check(2).is_ok());
    }

    #[test]
    fn the_map_shrinks_once_the_crowd_is_gone_not_during_it() {
        let mut shrink = Shrink::default();
        // A rush: about as many users before every sweep.
        for held in [300_000, 400_000, 380_000, 410_000] {
            assert!(!shrink.after(held), "{held} users during the rush");
        }
        // The rush is over: the users of its last seconds, then nearly nobody.
        assert!(shrink.after(80_000));
        assert!(!shrink.after(40_000));
        assert!(shrink.after(20_000));
        assert!(shrink.after(0));
    }
}
