//! The outbox: events for the data platform, written in the transaction of the change they
//! announce (a payment writes `ORDER_PAID`), and delivered afterwards by the relay
//! (`workers::relay`), so an outage of the platform never blocks or fails a payment.
//!
//! # Delivery
//!
//! At least once, in order per order id: a relay claims only the oldest undelivered record of
//! an order, so a later event of the same order waits (also while the earlier one is DEAD).
//! A failed attempt is retried after an exponential backoff with jitter ([`Backoff`]); after
//! the last attempt the record is DEAD until an admin retries it. Each delivery carries the
//! record's id as `eventId` (and `Idempotency-Key`), so the platform can drop repeats.

use std::{hash::BuildHasher, time::Duration};

use issuance_core::error::{Error, Missing, Refusal};
use sqlx::PgPool;
use store::outbox::OutboxRecord;

/// The event a payment writes.
pub const ORDER_PAID: &str = "ORDER_PAID";

/// When to try again after a failed attempt: `base × 2^(n-1)` capped at `max`, drawn at random
/// from its upper half (so relays that failed together do not retry together), and never again
/// after `max_attempts`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Wait after the first failure (before jitter).
    pub base: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Attempts before a record is DEAD.
    pub max_attempts: i32,
}

impl Backoff {
    /// The wait after failed attempt number `attempts` (1-based), or `None` when it was the last.
    pub fn after(&self, attempts: i32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(30);
        let full = self.base.saturating_mul(1 << exp).min(self.max);
        Some(full.mul_f64(0.5 + 0.5 * unit_random()))
    }
}

/// A number in `[0, 1)`, different on every call (jitter needs no better randomness).
pub fn unit_random() -> f64 {
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// One record.
pub async fn find(db: &PgPool, outbox_id: i64) -> Result<OutboxRecord, Error> {
    store::outbox::find(db, outbox_id)
        .await?
        .ok_or(Error::NotFound(Missing::OutboxRecord))
}

/// Sends a DEAD record round again: PENDING, due now, attempts counted afresh.
pub async fn retry(db: &PgPool, outbox_id: i64) -> Result<OutboxRecord, Error> {
    match store::outbox::revive(db, outbox_id).await? {
        Some(record) => Ok(record),
        None => match store::outbox::find(db, outbox_id).await? {
            Some(_) => Err(Error::Refused(Refusal::OutboxNotDead)),
            None => Err(Error::NotFound(Missing::OutboxRecord)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 10,
        };
        for (attempt, full) in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (9, 60.0)] {
            for _ in 0..50 {
                let wait = b.after(attempt).unwrap().as_secs_f64();
                assert!(wait >= full / 2.0 && wait <= full, "attempt {attempt}: {wait}");
            }
        }
        assert_eq!(b.after(10), None);
        assert_eq!(b.after(11), None);
    }

    #[test]
    fn jitter_varies() {
        let draws: std::collections::HashSet<u64> = (0..20).map(|_| unit_random().to_bits()).collect();
        assert!(draws.len() > 15);
        assert!((0..100).map(|_| unit_random()).all(|x| (0.0..1.0).contains(&x)));
    }
}
