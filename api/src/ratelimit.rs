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

    /// Forgets users idle long enough to be back at full quota (call periodically).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_user {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
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
}
