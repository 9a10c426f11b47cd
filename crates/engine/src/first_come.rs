//! The hot path shared by every scope: one request, one decision.
//!
//! A request costs a share of one Redis round trip (`issue.lua`, batched with the requests
//! arriving alongside it, see [`crate::batch`]), and nothing else while the scope's rules are
//! cached. After a sell-out this process answers outsiders from memory (see [`crate::cache`]).
//! Golden tickets ([`crate::tickets`]) and first-come coupons ([`crate::coupons`]) differ only
//! in how they name the outcome.

use std::{future::Future, sync::Arc};

use chrono::Utc;
use fred::types::scan::Scanner;
use futures::StreamExt;
use issuance_core::{clock, error::Error};

use crate::{
    cache::{Cached, Lookup, RulesCache},
    engine::Engine,
    issue::{IssueRequest, Verdict},
    leases::{Leased, Need, ON_THE_WAY_WAITS},
};

/// Reservations one request waits for at the most before it answers 503 (a block doubles while
/// blocks last less than `RESERVE_AHEAD_MS`, so a burst catches up within a few).
const MAX_RESERVES: u32 = 16;

/// The scope of `key` when `cache` holds it fresh (found or known missing): the lookup of
/// [`cached`] without its future, for a caller whose key is borrowed from its own stack.
pub(crate) fn fresh<T: Send + Sync + 'static>(
    cache: &RulesCache<T>,
    key: &str,
) -> Option<Option<Arc<Cached<T>>>> {
    match cache.lookup(key) {
        Lookup::Fresh(found) => Some(found),
        _ => None,
    }
}

/// The scope under `key`, from `cache` when fresh, else from `load` (one load per key at a time;
/// while it runs, a stale entry is good enough). When the load fails because Postgres is away,
/// a known scope is served from its stale copy (see [`crate::cache`]).
///
/// The rare paths of the hot path (a load here, a rebuild or a reservation in
/// [`Engine::decide`]) are boxed: inlined, their Postgres futures would make the future of every
/// request several kilobytes larger, and it is moved (copied) whole as it is boxed and polled.
pub(crate) async fn cached<T, F, Fut>(
    cache: &RulesCache<T>,
    key: &str,
    db_down: bool,
    load: F,
) -> Result<Option<Arc<Cached<T>>>, Error>
where
    T: Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<Cached<T>>, Error>>,
{
    let stale = match cache.lookup(key) {
        Lookup::Fresh(found) => return Ok(found),
        Lookup::Stale(found) if db_down && found.is_some() => {
            metrics::counter!("issuer_rules_stale_served_total").increment(1);
            return Ok(found);
        }
        Lookup::Stale(found) => {
            // Someone is reloading it already: the stale copy is good enough meanwhile.
            let lock = cache.lock(key);
            let Ok(_guard) = lock.try_lock() else {
                return Ok(found);
            };
            return Box::pin(reload(cache, key, load, found)).await;
        }
        Lookup::Missing => None,
    };
    let lock = cache.lock(key);
    let _guard = lock.lock().await;
    match cache.lookup(key) {
        Lookup::Fresh(found) => Ok(found),
        _ => Box::pin(reload(cache, key, load, stale)).await,
    }
}

async fn reload<T, F, Fut>(
    cache: &RulesCache<T>,
    key: &str,
    load: F,
    stale: Option<Arc<Cached<T>>>,
) -> Result<Option<Arc<Cached<T>>>, Error>
where
    T: Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<Cached<T>>, Error>>,
{
    match load().await {
        Ok(found) => {
            let found = found.map(Arc::new);
            cache.put(key, found.clone());
            Ok(found)
        }
        Err(e) if stale.is_some() && e.is_unavailable() => {
            metrics::counter!("issuer_rules_stale_served_total").increment(1);
            tracing::warn!(key, error = %e, "Postgres unreachable: serving the last known rules");
            cache.keep(key);
            Ok(stale)
        }
        Err(e) => Err(e),
    }
}

impl Engine {
    /// Decides `user`'s request on a scope. Never answers [`Verdict::NoMeta`]: a missing Redis
    /// copy is rebuilt and the request asked again.
    pub(crate) async fn decide<T>(
        &self,
        cached: &Cached<T>,
        user: i64,
        clock_ms: Option<i64>,
    ) -> Result<Verdict, Error> {
        if !self.redis_fit() {
            return Err(Error::RedisUnfit("see the api's log".into()));
        }
        if let Some(refusal) = self.local_refusal(cached, user, clock_ms) {
            return Ok(refusal);
        }
        let request = IssueRequest { user, clock_ms };
        // The scope's own copy, or, for an event spread over buckets, the user's bucket.
        let (scope, keys, bucket, queue) = cached.copy_for(user);
        // Up to two rebuilds, as many reservations as a burst outrunning them needs (each one at
        // least doubles the block), and waits for stock on its way to another bucket.
        let (mut rebuilds, mut reserves, mut waits) = (0, 0, 0);
        while rebuilds < 2 && reserves < MAX_RESERVES && waits < ON_THE_WAY_WAITS {
            let verdict = self
                .inner
                .group_commit
                .issue(self.redis(), keys, scope, queue, request)
                .await?;
            match &verdict {
                // A bucket's counts are its own, not the event's: it sells out only when the
                // pool and every other bucket are empty (see `crate::leases`).
                Verdict::Issued {
                    issued,
                    total,
                    ceiling,
                    ..
                } if bucket.is_some() => {
                    if let (Some(bucket), Some(ceiling)) = (bucket, ceiling) {
                        self.lease_ahead(cached, bucket, *total, *issued, *ceiling);
                    }
                }
                Verdict::SoldOut if bucket.is_some() => {}
                // A bucket's share of the daily limit is used up: lease more of it, or answer for
                // the whole event.
                Verdict::DailyLimit if let Some(bucket) = bucket => {
                    let total = cached.rules.total;
                    match Box::pin(self.lease(cached, bucket, total, Need::Daily)).await? {
                        Leased::Raised => reserves += 1,
                        Leased::OnTheWay | Leased::Unsound => waits += 1,
                        Leased::SoldOut => {
                            self.mark_sold_out(cached);
                            return Ok(Verdict::SoldOut);
                        }
                        Leased::DailyLimit => return Ok(Verdict::DailyLimit),
                    }
                    continue;
                }
                Verdict::Issued {
                    issued,
                    total,
                    ceiling,
                    ..
                } => {
                    if issued >= total {
                        self.mark_sold_out(cached);
                    } else if let Some(ceiling) = ceiling {
                        self.reserve_ahead(cached, *total, *issued, *ceiling);
                    }
                }
                Verdict::SoldOut => self.mark_sold_out(cached),
                Verdict::NoMeta => {
                    rebuilds += 1;
                    Box::pin(self.rebuild(scope, &cached.rules, keys)).await?;
                    continue;
                }
                Verdict::Reserve { issued, total } => {
                    // The copy's quantity, not the cached rules': a raise made through another
                    // process reaches the copy before this process's cache.
                    let Some(bucket) = bucket else {
                        reserves += 1;
                        Box::pin(self.reserve(scope, keys, *total, *issued)).await?;
                        continue;
                    };
                    match Box::pin(self.lease(cached, bucket, *total, Need::Units)).await? {
                        Leased::Raised | Leased::DailyLimit => reserves += 1,
                        Leased::OnTheWay | Leased::Unsound => waits += 1,
                        Leased::SoldOut => {
                            // Nothing left in the pool nor in any bucket: the event is sold out.
                            self.mark_sold_out(cached);
                            return Ok(Verdict::SoldOut);
                        }
                    }
                    continue;
                }
                _ => {}
            }
            return Ok(verdict);
        }
        // Out of rebuilds (the copy missing or behind again right after one: the server changed
        // meanwhile), of reservations (a burst outrunning them) or of waits for stock on its
        // way: the request is answered 503, and which bound ended it is logged.
        tracing::warn!(
            scope = ?scope,
            user,
            rebuilds,
            reserves,
            waits,
            "an issue request gave up on Redis and is answered 503"
        );
        Err(Error::RedisUnsettled)
    }

    /// The answer for a user known to hold nothing of a sold-out scope, in the script's check
    /// order (active, then period, then quantity), without asking Redis.
    fn local_refusal<T>(&self, cached: &Cached<T>, user: i64, clock_ms: Option<i64>) -> Option<Verdict> {
        let sold_out = self.inner.sold_out.get(&cached.keys.stream)?;
        if !sold_out.holds_at(cached.rules.version) {
            // The rules changed since (a raised quantity among them): Redis decides again.
            self.inner.sold_out.forget(&cached.keys.stream);
            return None;
        }
        if !sold_out.is_outsider(user)? {
            return None;
        }
        let now = clock_ms.map_or_else(Utc::now, clock::from_ms);
        Some(if !cached.rules.active {
            Verdict::Inactive
        } else if !cached.rules.in_period(now) {
            Verdict::NotInPeriod
        } else {
            Verdict::SoldOut
        })
    }

    /// Remembers the sell-out and loads the holders in the background, without blocking Redis
    /// (HSCAN pages, not HKEYS).
    fn mark_sold_out<T>(&self, cached: &Cached<T>) {
        if cached.rules.total > self.inner.options.sold_out_holders_max as i64 {
            return;
        }
        let Some(entry) = self
            .inner
            .sold_out
            .mark(&cached.keys.stream, cached.rules.version)
        else {
            return;
        };
        let client = self.redis().next().clone();
        // The holders of every copy: the scope's own, or each bucket's.
        let holders_keys: Vec<String> = if cached.parts.is_empty() {
            vec![cached.keys.holders.clone()]
        } else {
            cached.parts.iter().map(|p| p.keys.holders.clone()).collect()
        };
        let capacity = cached.rules.total as usize;
        tokio::spawn(async move {
            let mut holders = Vec::with_capacity(capacity);
            for holders_key in holders_keys {
                let mut pages = std::pin::pin!(client.hscan(holders_key.as_str(), "*", Some(1_000)));
                while let Some(page) = pages.next().await {
                    let mut page = match page {
                        Ok(page) => page,
                        Err(e) => {
                            // The entry stays without holders: every request keeps asking Redis.
                            tracing::warn!(error = %e, "could not load the holders of a sold-out scope");
                            return;
                        }
                    };
                    if let Some(map) = page.take_results() {
                        holders.extend(map.inner().keys().filter_map(|k| k.as_str()?.parse::<i64>().ok()));
                    }
                }
            }
            entry.set_holders(holders);
        });
    }
}
