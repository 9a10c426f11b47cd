//! Idle leases handed back: a bucket that sees no demand returns what it leased and did not
//! issue to its pool, so the stock of a spread event or batch gathers where demand is.
//!
//! A bucket that runs dry takes back from the others on demand ([`crate::leases`]), so nothing
//! is stranded while demand continues either way; handing back ahead of it spares that request
//! the take-back's transaction and leaves the pool's count (`reserved`) at what the buckets
//! issued. The workers make a pass every few hundred milliseconds ([`IdleWatch`]): a bucket of
//! a scope that issues now, whose ceiling is above what it issued and whose issued count has not
//! moved for the idle time, is handed back under the pool row's lock exactly as a take-back (`lower_ceiling.lua`, then Postgres; a raise on its way is left
//! alone). Several workers processes may pass at once: each hand-back holds the lock and finds
//! what the one before it left.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::Utc;
use fred::interfaces::HashesInterface;
use issuance_core::error::Error;
use store::scope_reservations;

use crate::{
    cache::Part,
    engine::Engine,
    leases::{IN_FLIGHT_MS, Take},
    scope::Scope,
};

/// A scope spread over buckets that issues now.
#[derive(Debug)]
pub struct Spread {
    /// The event or batch (its pool's scope).
    pub scope: Scope,
    /// Its buckets.
    pub parts: Vec<Part>,
}

/// What a pass remembers of each bucket: its issued count, and since when it has not moved.
#[derive(Debug, Default)]
pub struct IdleWatch {
    seen: HashMap<String, (i64, Instant)>,
}

impl Engine {
    /// Every spread event running now (active, in its window) and every spread SELF batch
    /// READY in its validity, with its buckets.
    pub async fn spread_running(&self) -> Result<Vec<Spread>, Error> {
        let mut spread = Vec::new();
        for event in store::ticket_events::list_running(self.db(), Utc::now()).await? {
            let Ok(key) = issuance_core::ids::EventKey::parse(&event.event_key) else {
                continue;
            };
            let buckets = Scope::buckets(&key, event.shard_count());
            if !buckets.is_empty() {
                spread.push(Spread {
                    parts: Part::all(buckets, self.keys()),
                    scope: Scope::Ticket(key),
                });
            }
        }
        let issuing = store::coupon_batches::issuing(self.db()).await?;
        let ids: Vec<i64> = issuing.iter().map(|(id, _)| *id).collect();
        let sharded: HashMap<i64, i16> = store::coupon_batches::sharded(self.db(), &ids)
            .await?
            .into_iter()
            .collect();
        for (id, _) in issuing {
            if let Some(shards) = sharded.get(&id) {
                spread.push(Spread {
                    scope: Scope::Coupon(id),
                    parts: Part::all(Scope::coupon_buckets(id, *shards as u16), self.keys()),
                });
            }
        }
        Ok(spread)
    }

    /// One pass over every spread scope running now: hands back the unused leases of the
    /// buckets idle for `idle_for` (see the module doc). Returns the units handed back.
    pub async fn hand_back_idle(&self, watch: &mut IdleWatch, idle_for: Duration) -> Result<i64, Error> {
        let now = Instant::now();
        let mut handed = 0;
        let mut still = HashMap::new();
        for spread in self.spread_running().await? {
            let mut idle = Vec::new();
            for (i, part) in spread.parts.iter().enumerate() {
                let (issued, ceiling): (Option<i64>, Option<i64>) = self
                    .redis()
                    .next()
                    .hmget(&part.keys.meta, vec!["issued", "ceiling"])
                    .await?;
                let (Some(issued), Some(ceiling)) = (issued, ceiling) else {
                    continue;
                };
                let since = match watch.seen.get(&part.keys.meta) {
                    Some((before, since)) if *before == issued => *since,
                    _ => now,
                };
                still.insert(part.keys.meta.clone(), (issued, since));
                if ceiling > issued && now.duration_since(since) >= idle_for {
                    idle.push(i);
                }
            }
            if !idle.is_empty() {
                handed += self.hand_back(&spread, &idle).await?;
            }
        }
        watch.seen = still;
        Ok(handed)
    }

    /// Hands back the unused leases of the buckets `idle` of `spread`; returns the units.
    async fn hand_back(&self, spread: &Spread, idle: &[usize]) -> Result<i64, Error> {
        let pool = &spread.scope;
        let (kind, pool_id) = (pool.kind().as_str(), pool.id());
        let mut tx = self.db().begin().await?;
        scope_reservations::lock(&mut tx, kind, &pool_id).await?;
        let back = self
            .return_to_pool(&mut tx, pool, &spread.parts, idle, IN_FLIGHT_MS, Take::Everything)
            .await?;
        if back.units + back.daily == 0 {
            return Ok(0);
        }
        tx.commit().await?;
        metrics::counter!("issuer_lease_hand_backs_total").increment(1);
        tracing::debug!(scope = ?pool, units = back.units, "idle leases handed back");
        Ok(back.units)
    }
}
