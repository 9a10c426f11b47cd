//! Leases: one golden-ticket event spread over `shards` buckets, each a Redis copy of its own,
//! and still exact.
//!
//! One copy decides on one Redis core. An event created with `shards` > 1 gets that many
//! buckets instead ([`Scope::TicketBucket`]): each has keys of its own hash tag, chosen so that
//! the buckets fall on different cluster masters, and decides for the users that hash to it, so
//! "one per user" and a repeat answer stay single-bucket decisions. A bucket is a copy in every
//! other sense too: `issue.lua` runs on it unchanged, it has its own stream (drained like any
//! other, its records naming `<event>#<bucket>`), its own `scope_reservations` row and fence, and
//! it is rebuilt on its own after a loss.
//!
//! **The pool.** No bucket owns a share of the quantity (a static split strands stock in cold
//! buckets). A bucket's ceiling — its reservation, the units it may issue — is leased from the
//! event's own `scope_reservations` row, which holds the sum leased to all buckets. A bucket that
//! reaches its ceiling answers RESERVE, and [`Engine::lease`], in one Postgres transaction that
//! holds the pool row locked, grants it up to `min(block, ⌈left / shards⌉)` (so leases shrink as
//! the pool empties) and writes both rows; only then does it raise the bucket's ceiling in Redis.
//! A bucket issuing steadily leases ahead ([`Engine::lease_ahead`]), so it rarely runs dry.
//! When the pool is empty it first takes back from every other bucket what that bucket leased
//! and has not issued (`lower_ceiling.lua`, under the same lock), so no request is told "sold
//! out" while a unit is left anywhere; with nothing left anywhere the answer is SOLD_OUT.
//!
//! **Why it is exact.** Postgres keeps `pool = Σ bucket reservations ≤ quantity` (every change
//! of either is made under the pool row's lock), and a bucket's ceiling in Redis is never above
//! its reservation: a raise comes after the commit, a take-back lowers Redis before Postgres. A
//! raise computed before a take-back must not land after it, so a bucket's meta carries a lease
//! generation `lgen` that every take-back moves on, and a raise applies only to the generation it
//! read before it leased (`raise_ceiling.lua`). A raise that is skipped, or a take-back whose
//! commit failed, leaves the reservation above the ceiling: the safe side, and the bucket's next
//! lease finds it and raises to it. A bucket whose Redis history may have lost answers resumes
//! at its reservation, like any copy ([`crate::meta`]), so what it leased and did not issue is
//! stranded rather than answered twice.

use std::{sync::atomic::Ordering, time::Instant};

use chrono::Utc;

use fred::interfaces::HashesInterface;
use issuance_core::error::Error;
use sqlx::PgConnection;
use store::scope_reservations::{self, Reservation};

use crate::{
    cache::{Cached, Part},
    engine::Engine,
    scope::Scope,
    script::Lua,
};

/// How long a lease that found nothing left anywhere is taken at its word (ms): the sold-out
/// flood of an event too large for the sold-out memory's holders then costs no Postgres
/// transaction per request.
const DRAINED_FOR_MS: u64 = 1_000;

/// How long after a bucket's reservation changed a ceiling below it counts as a raise on its
/// way rather than one that was skipped (ms): a lease's commit is followed by its raise within
/// one Redis round trip.
const IN_FLIGHT_MS: i64 = 200;

/// What a lease did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leased {
    /// The bucket may issue further (or its copy needs a rebuild first): ask it again.
    Raised,
    /// Nothing is left in the pool nor in any other bucket.
    SoldOut,
}

impl Engine {
    /// Leases quantity of `cached`'s pool to its bucket `index`, which reached its ceiling on an
    /// event of quantity `total` (see the module doc).
    pub(crate) async fn lease<T>(
        &self,
        cached: &Cached<T>,
        index: usize,
        total: i64,
    ) -> Result<Leased, Error> {
        let now_ms = Utc::now().timestamp_millis() as u64;
        let drained = cached.drained_at.load(Ordering::Relaxed);
        if drained != 0 && now_ms.saturating_sub(drained) < DRAINED_FOR_MS {
            return Ok(Leased::SoldOut);
        }
        let leased = self
            .lease_to(&cached.scope, &cached.parts, index, total, false)
            .await?;
        if leased == Leased::SoldOut {
            cached.drained_at.store(now_ms, Ordering::Relaxed);
        }
        Ok(leased)
    }

    /// Starts leasing the next block to bucket `index` in the background once less than half a
    /// block of its lease is left (`issued` of `ceiling`), so a bucket issuing steadily never
    /// waits for a lease; nothing when one is under way in this process, and never a take-back
    /// (that is for a bucket that has run dry).
    pub(crate) fn lease_ahead<T>(
        &self,
        cached: &Cached<T>,
        index: usize,
        total: i64,
        issued: i64,
        ceiling: i64,
    ) {
        let part = &cached.parts[index];
        let blocks = part
            .blocks
            .get_or_init(|| self.inner.reservations.blocks(&part.keys.meta));
        if ceiling - issued > blocks.size.load(Ordering::Relaxed) / 2
            || cached.pool_empty.load(Ordering::Relaxed)
            || blocks.ahead.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let blocks = std::sync::Arc::clone(blocks);
        let empty = std::sync::Arc::clone(&cached.pool_empty);
        let (engine, pool, parts) = (self.clone(), cached.scope.clone(), cached.parts.clone());
        tokio::spawn(async move {
            match engine.lease_to(&pool, &parts, index, total, true).await {
                Ok(Leased::SoldOut) => empty.store(true, Ordering::Relaxed),
                Ok(Leased::Raised) => {}
                Err(e) => {
                    tracing::warn!(scope = ?pool, bucket = index, error = %e, "could not lease ahead; the bucket will when it runs dry");
                }
            }
            blocks.ahead.store(false, Ordering::Release);
        });
    }

    /// The lease itself: to bucket `index` of `parts`, from `pool`'s row. `ahead`: the bucket
    /// has not run dry yet, so an empty pool is left at that (no take-back; [`Leased::SoldOut`]
    /// then means only that the pool is empty).
    async fn lease_to(
        &self,
        pool: &Scope,
        parts: &[Part],
        index: usize,
        total: i64,
        ahead: bool,
    ) -> Result<Leased, Error> {
        let part = &parts[index];
        let blocks = self.inner.reservations.blocks(&part.keys.meta);
        // One lease per bucket at a time in this process; others wait and find it raised.
        let mut last = blocks.last.lock().await;
        let redis = self.redis().next();
        let (ceiling, issued, lgen): (Option<i64>, Option<i64>, Option<i64>) = redis
            .hmget(&part.keys.meta, vec!["ceiling", "issued", "lgen"])
            .await?;
        let (Some(ceiling), Some(issued)) = (ceiling, issued) else {
            return Ok(Leased::Raised); // missing: the next call rebuilds it
        };
        if issued < ceiling && !ahead {
            return Ok(Leased::Raised); // raised while this waited
        }
        let (kind, pool_id, bucket_id) = (pool.kind().as_str(), pool.id(), part.scope.id());
        let mut tx = self.db().begin().await?;
        let pool_row = scope_reservations::lock(&mut tx, kind, &pool_id).await?;
        let mine = row(&mut tx, &part.scope).await?;
        let target = if mine.reserved > ceiling {
            // Leased before and never raised (a raise skipped, a take-back not committed).
            mine.reserved
        } else {
            let mut leased = pool_row.reserved;
            if leased >= total && !ahead {
                leased -= self.take_back(&mut tx, pool, parts, index).await?;
            }
            let left = total - leased;
            if left <= 0 {
                tx.commit().await?;
                return Ok(Leased::SoldOut);
            }
            let shards = parts.len() as i64;
            let block = self.inner.reservations.next(&blocks, *last, total);
            let grant = block.min((left + shards - 1) / shards).clamp(1, left);
            scope_reservations::set_reserved(&mut tx, kind, &pool_id, leased + grant).await?;
            scope_reservations::set_reserved(&mut tx, kind, &bucket_id, mine.reserved + grant).await?;
            mine.reserved + grant
        };
        tx.commit().await?;
        *last = Some(Instant::now());
        metrics::counter!("issuer_leases_total").increment(1);
        let raised: i64 = Lua::RaiseCeiling
            .call(
                redis,
                vec![part.keys.meta.as_str()],
                vec![
                    mine.fence.to_string(),
                    target.to_string(),
                    lgen.unwrap_or(0).to_string(),
                ],
            )
            .await?;
        if raised < 0 {
            tracing::warn!(bucket = %bucket_id, "the bucket's copy cannot take the lease; rebuilding it");
        }
        Ok(Leased::Raised)
    }

    /// Takes back from every bucket of `parts` but `index` what it leased and has not issued,
    /// inside `tx`, which holds the pool row; returns how much.
    async fn take_back(
        &self,
        tx: &mut PgConnection,
        pool: &Scope,
        parts: &[Part],
        index: usize,
    ) -> Result<i64, Error> {
        let kind = pool.kind().as_str();
        let redis = self.redis().next();
        let mut freed = 0;
        for (i, part) in parts.iter().enumerate() {
            if i == index {
                continue;
            }
            let Some((reservation, recent)) =
                scope_reservations::find_with_age(&mut *tx, kind, &part.scope.id(), IN_FLIGHT_MS).await?
            else {
                continue; // never leased
            };
            let ceiling: i64 = Lua::LowerCeiling
                .call(
                    redis,
                    vec![part.keys.meta.as_str()],
                    vec![
                        reservation.fence.to_string(),
                        if recent { "1" } else { "" }.to_owned(),
                        reservation.reserved.to_string(),
                    ],
                )
                .await?;
            // A copy that is missing or of another history keeps its lease until its rebuild;
            // one whose raise is on its way keeps it too.
            if ceiling < 0 || ceiling >= reservation.reserved {
                continue;
            }
            scope_reservations::set_reserved(&mut *tx, kind, &part.scope.id(), ceiling).await?;
            freed += reservation.reserved - ceiling;
        }
        if freed > 0 {
            metrics::counter!("issuer_lease_take_backs_total").increment(1);
        }
        Ok(freed)
    }
}

/// A bucket's reservation row, made when it has none.
async fn row(tx: &mut PgConnection, bucket: &Scope) -> Result<Reservation, Error> {
    let (kind, id) = (bucket.kind().as_str(), bucket.id());
    match scope_reservations::find(&mut *tx, kind, &id).await? {
        Some(found) => Ok(found),
        None => scope_reservations::open(&mut *tx, kind, &id).await,
    }
}
