//! Reservations: what a scope's Redis copy may issue, reserved in Postgres ahead of it (hi/lo).
//!
//! Redis may lose answers it gave: without persistence a crash loses what the drain had not
//! written, a restore from an older snapshot or a failover to a replica that lagged loses the
//! last writes. Were the copy rebuilt from Postgres alone, the units and coupon positions of
//! those lost answers would be answered again, to other users. So Postgres keeps, per scope,
//! `scope_reservations.reserved`: the copy's meta holds it as `ceiling`, `issue.lua` never
//! issues at or past the ceiling (it answers RESERVE), and this module raises the row in
//! Postgres *before* it raises the ceiling in Redis. A rebuild resumes the count at `reserved`,
//! above every unit and position that could have been answered.
//!
//! The cost is one small Postgres write per block, made in the background while half a block is
//! still left, so the hot path does not wait for it. A block is sized to the rate: about
//! `RESERVE_AHEAD_MS` (100 ms) of issues, doubling while blocks last less than that and halving
//! when they last over four times as long, never under `RESERVE_BLOCK_MIN`. What a loss strands
//! — units counted as issued that nobody holds — is at most the unused part of the last blocks
//! each api process reserved: the meta's `gap`, which `workers reconcile` reports.
//!
//! `RESERVE_AHEAD_MS=0` reserves the whole quantity at once: no reservation after the first,
//! and no protection of lost answers (for measuring what the reservations cost).

use std::{
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use fred::interfaces::HashesInterface;
use issuance_core::error::Error;
use store::scope_reservations::{self, Reservation};

pub use crate::blocks::ReserveOptions;
use crate::{blocks::Blocks, cache::Cached, engine::Engine, keys::ScopeKeys, scope::Scope, script::Lua};

impl Engine {
    /// The reservation of a scope being created. Nothing is reserved before the first request,
    /// so a scope whose copy is lost before it issued anything strands nothing.
    pub(crate) async fn open_reservation(&self, scope: &Scope) -> Result<Reservation, Error> {
        let (kind, id) = (scope.kind().as_str(), scope.id());
        scope_reservations::open(self.db(), kind, &id).await
    }

    /// Reserves past `ceiling` and raises the copy's ceiling; returns once the copy may issue
    /// further (or needs a rebuild first).
    pub(crate) async fn reserve(
        &self,
        scope: &Scope,
        keys: &ScopeKeys,
        total: i64,
        ceiling: i64,
    ) -> Result<(), Error> {
        let blocks = self.inner.reservations.blocks(&keys.meta);
        self.reserve_past(scope, keys, total, ceiling, &blocks).await
    }

    /// Whether the copy's ceiling is past `ceiling` already (raised while this waited).
    async fn raised_past(&self, keys: &ScopeKeys, ceiling: i64) -> Result<bool, Error> {
        let now: Option<i64> = self.redis().next().hget(&keys.meta, "ceiling").await?;
        Ok(now.is_some_and(|c| c > ceiling))
    }

    /// Starts reserving in the background once less than half a block is left past `issued`;
    /// nothing when this process is reserving for the scope already.
    pub(crate) fn reserve_ahead<T>(&self, cached: &Cached<T>, total: i64, issued: i64, ceiling: i64) {
        if ceiling >= total {
            return;
        }
        let blocks = cached
            .blocks
            .get_or_init(|| self.inner.reservations.blocks(&cached.keys.meta));
        if ceiling - issued > blocks.size.load(Ordering::Relaxed) / 2
            || blocks.ahead.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let blocks = Arc::clone(blocks);
        let (engine, scope, keys) = (self.clone(), cached.scope.clone(), cached.keys.clone());
        tokio::spawn(async move {
            let extended = engine.reserve_past(&scope, &keys, total, ceiling, &blocks);
            if let Err(e) = extended.await {
                tracing::warn!(scope = ?scope, error = %e, "could not reserve ahead; the next request will");
            }
            blocks.ahead.store(false, Ordering::Release);
        });
    }

    /// Reserves the scope's next block past `ceiling` in Postgres, then raises the copy's
    /// ceiling to it; nothing when the ceiling was raised past `ceiling` while this waited for
    /// the scope's other reservation in this process.
    async fn reserve_past(
        &self,
        scope: &Scope,
        keys: &ScopeKeys,
        total: i64,
        ceiling: i64,
        blocks: &Blocks,
    ) -> Result<(), Error> {
        let mut last = blocks.last.lock().await;
        if self.raised_past(keys, ceiling).await? {
            return Ok(());
        }
        let block = self.inner.reservations.next(blocks, *last, total);
        let redis = self.redis().next();
        let (kind, id) = (scope.kind().as_str(), scope.id());
        let reserved = scope_reservations::extend(self.db(), kind, &id, ceiling + block, total).await?;
        *last = Some(Instant::now());
        metrics::counter!("issuer_reservations_total").increment(1);
        let raised: i64 = Lua::RaiseCeiling
            .call(
                redis,
                vec![keys.meta.as_str()],
                vec![reserved.fence.to_string(), reserved.reserved.to_string()],
            )
            .await?;
        if raised < 0 {
            // The copy is missing, broken or of another fence than Postgres (then the script
            // marked it broken): the next request rebuilds it.
            tracing::warn!(scope = ?scope, "the Redis copy cannot take the reservation; rebuilding it");
        }
        Ok(())
    }
}
