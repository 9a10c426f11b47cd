//! Leases: one golden-ticket event or first-come coupon batch spread over `shards` buckets, each
//! a Redis copy of its own, and still exact.
//!
//! One copy decides on one Redis core. An event or batch created with `shards` > 1 gets that
//! many buckets instead ([`Scope::TicketBucket`], [`Scope::CouponBucket`]): each has keys of its
//! own hash tag, chosen so that
//! the buckets fall on different cluster masters, and decides for the users that hash to it, so
//! "one per user" and a repeat answer stay single-bucket decisions. A bucket is a copy in every
//! other sense too: `issue.lua` runs on it unchanged, it has its own stream (drained like any
//! other, its records naming `<event>#<bucket>` or `<batch>#<bucket>`), its own
//! `scope_reservations` row and fence, and it is rebuilt on its own after a loss. Below, "event"
//! stands for either.
//!
//! **A batch's positions.** A coupon's position is its code, so a batch's buckets lease
//! positions, not only a count: every lease grants the bucket ranges of positions with its
//! units, and a take-back returns the ranges it cuts off to the pool (see [`crate::positions`]),
//! in the same transaction as the units.
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
//! out" while a unit is left anywhere; with nothing left anywhere the answer is SOLD_OUT. A
//! bucket whose copy a take-back cannot read (missing, broken, or of another history: its count
//! may be below what it answered) keeps its lease, so when it holds the rest it is rebuilt
//! first and the lease asked again ([`Leased::Unsound`]): after a rebuild its lease is what it
//! issued, or stranded.
//!
//! **The daily limit** is leased the same way: a bucket's share of it (`dcap` in its meta,
//! `daily_reserved` in its row; the pool row holds the sum) bounds what `issue.lua` lets it
//! issue in any KST day. A bucket at its share answers DAILY_LIMIT and leases more, taking back
//! today's unused shares of the others when the pool's is gone (only those while units are
//! left: the others' units stay theirs, so they need not lease them again). A share stands from day to day:
//! the shares' sum stays within the limit, so nothing has to reset every bucket at midnight.
//!
//! **The end of a day's share.** A lease that finds today's share all leased and issued (after
//! taking back every other bucket's unused share) is taken at its word for a second within its
//! KST day, as one that finds nothing left anywhere is ([`crate::cache::Findings`]): nothing
//! more can be issued that day until the limit changes, and a change makes new rules and a new
//! cached copy. So the rest of a day's burst is answered DAILY_LIMIT from memory, by the
//! requests queued behind that lease too, instead of one Postgres transaction each, queued on
//! the pool row (a burst of 400 over 8 buckets queued some past the request timeout that way).
//! A bucket whose copy was missing at the take-back keeps its share until its rebuild, with or
//! without the finding.
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
use issuance_core::{
    clock,
    error::{Error, Refusal},
};
use sqlx::PgConnection;
use store::scope_reservations;

use crate::{
    cache::{Cached, Findings, Part},
    engine::Engine,
    positions::{Ranges, grant},
    scope::{IdMode, Scope},
    script::Lua,
};

/// How long after a bucket's reservation changed a ceiling below it counts as a raise on its
/// way rather than one that was skipped (ms): a lease's commit is followed by its raise within
/// one Redis round trip.
pub(crate) const IN_FLIGHT_MS: i64 = 200;

/// How long a bucket that found the rest of the stock on its way to another bucket waits before
/// it asks again (a raise lands within one Redis round trip; one that failed counts as idle
/// after [`IN_FLIGHT_MS`]).
const ON_THE_WAY_RETRY: std::time::Duration = std::time::Duration::from_millis(25);

/// How many times one request waits [`ON_THE_WAY_RETRY`] for stock on its way to another
/// bucket before it answers 503 (2 s). At the end of a day's share, buckets lease and give back
/// one after another, and the next lease in the pool row's queue finds the last one's raise
/// still on its way; each of those waits is progress elsewhere (a raise lands and its bucket
/// issues), so they are bounded apart from a request's reservations, by time, and far beyond
/// [`IN_FLIGHT_MS`].
pub(crate) const ON_THE_WAY_WAITS: u32 = 80;

/// The answer a scope's standing finding gives a lease of what it `need`s, if any: sold out
/// first, as the check order says. Stock on its way is to be waited for ([`ON_THE_WAY_RETRY`])
/// as by a lease that finds it: the requests waiting with it ask Postgres once between them.
fn standing(findings: &Findings, need: Need) -> Option<Leased> {
    let now_ms = Utc::now().timestamp_millis() as u64;
    let daily = need == Need::Daily;
    if findings.sold_out(now_ms) {
        Some(Leased::SoldOut)
    } else if daily && findings.day_full(now_ms) {
        Some(Leased::DailyLimit)
    } else if findings.on_the_way(daily, now_ms, ON_THE_WAY_RETRY.as_millis() as u64) {
        Some(Leased::OnTheWay)
    } else {
        None
    }
}

/// `answer`, once waited for when it is stock on its way.
async fn waited(answer: Leased) -> Leased {
    if answer == Leased::OnTheWay {
        tokio::time::sleep(ON_THE_WAY_RETRY).await;
    }
    answer
}

/// What a lease did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leased {
    /// The bucket may issue further (or its copy needs a rebuild first): ask it again.
    Raised,
    /// Nothing is left but what is on its way to another bucket; the lease waited
    /// [`ON_THE_WAY_RETRY`] for it to land: ask again.
    OnTheWay,
    /// Nothing is left in the pool nor in any other bucket.
    SoldOut,
    /// Nothing is left but what a bucket whose copy must be rebuilt first still holds (missing,
    /// broken or of another history): rebuild the buckets, then ask again.
    Unsound,
    /// Today's share of the daily limit is all leased and issued.
    DailyLimit,
}

impl Engine {
    /// Leases quantity of `cached`'s pool to its bucket `index`, which reached its ceiling on an
    /// event of quantity `total` (see the module doc).
    pub(crate) async fn lease<T>(
        &self,
        cached: &Cached<T>,
        index: usize,
        total: i64,
        need: Need,
    ) -> Result<Leased, Error> {
        if let Some(answer) = standing(&cached.findings, need) {
            return Ok(waited(answer).await);
        }
        let lease = Lease {
            total,
            daily: cached.rules.daily,
            need,
            ahead: false,
        };
        let leased = self
            .lease_to(&cached.scope, &cached.parts, index, lease, Some(&cached.findings))
            .await?;
        if leased != Leased::Unsound {
            return Ok(leased);
        }
        // The rest is held by copies a take-back could not read: rebuilt (each checks it is
        // still unsound first), their leases are what they issued or stranded, and the next
        // lease takes back the rest. A rebuild that fails answers the request 503, not
        // SOLD_OUT: stock may be left.
        for part in &cached.parts {
            Box::pin(self.rebuild(&part.scope, &cached.rules, &part.keys)).await?;
        }
        Ok(Leased::OnTheWay)
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
        let lease = Lease {
            total,
            daily: cached.rules.daily,
            need: Need::Units,
            ahead: true,
        };
        tokio::spawn(async move {
            match engine.lease_to(&pool, &parts, index, lease, None).await {
                Ok(Leased::SoldOut) => empty.store(true, Ordering::Relaxed),
                Ok(Leased::Raised | Leased::OnTheWay | Leased::DailyLimit | Leased::Unsound) => {}
                Err(e) => {
                    tracing::warn!(scope = ?pool, bucket = index, error = %e, "could not lease ahead; the bucket will when it runs dry");
                }
            }
            blocks.ahead.store(false, Ordering::Release);
        });
    }

    /// The lease itself: to bucket `index` of `parts`, from `pool`'s row, of what it `needs`;
    /// `daily` is the event's daily limit. `ahead`: the bucket has not run dry yet, so an empty
    /// pool is left at that (no take-back; [`Leased::SoldOut`] then means only that the pool is
    /// empty). `findings`, for a bucket that ran dry: the scope's, read once this lease's turn
    /// comes and written when it finds the scope sold out or the day's share full.
    async fn lease_to(
        &self,
        pool: &Scope,
        parts: &[Part],
        index: usize,
        lease: Lease,
        findings: Option<&Findings>,
    ) -> Result<Leased, Error> {
        let Lease {
            total,
            daily,
            need,
            ahead,
        } = lease;
        let part = &parts[index];
        let blocks = self.inner.reservations.blocks(&part.keys.meta);
        // One lease per bucket at a time in this process; others wait and find it raised.
        let mut last = blocks.last.lock().await;
        // The requests of a bucket that ran dry queue here: once one of them found the scope
        // sold out, the day's share full or the rest on its way, the rest take its word.
        if let Some(answer) = findings.and_then(|f| standing(f, need)) {
            drop(last);
            return Ok(waited(answer).await);
        }
        let redis = self.redis().next();
        let (ceiling, issued, lgen, dcap, day, today): Fields = redis
            .hmget(
                &part.keys.meta,
                vec!["ceiling", "issued", "lgen", "dcap", "day", "today"],
            )
            .await?;
        let (Some(ceiling), Some(issued)) = (ceiling, issued) else {
            return Ok(Leased::Raised); // missing: the next call rebuilds it
        };
        let dcap = dcap.unwrap_or(0);
        let today = match day {
            Some(day) if day == clock::kst_day(Utc::now().timestamp_millis()) => today.unwrap_or(0),
            _ => 0,
        };
        let raised_meanwhile = match need {
            Need::Units => issued < ceiling,
            Need::Daily => today < dcap,
        };
        if raised_meanwhile && !ahead {
            return Ok(Leased::Raised);
        }
        let (kind, pool_id, bucket_id) = (pool.kind().as_str(), pool.id(), part.scope.id());
        let mut tx = self.db().begin().await?;
        scope_reservations::lock(&mut tx, kind, &pool_id).await?;
        // The quantity as committed: a change takes the pool row's lock too, so a lowering
        // committed while this lease waited is the one it grants within.
        let total = self
            .current_rules(&mut *tx, pool)
            .await?
            .map_or(total, |rules| rules.total);
        let pool_row = scope_reservations::lease(&mut tx, kind, &pool_id, 0).await?;
        let mine = scope_reservations::lease(&mut tx, kind, &bucket_id, 0).await?;
        // A batch's buckets lease positions with their units.
        let mut positions = match part.scope.id_mode() {
            IdMode::Leased => Some(leased_positions(&mut tx, kind, &bucket_id).await?),
            _ => None,
        };
        let (mut pool_units, mut pool_daily) = (pool_row.reserved, pool_row.daily);
        let (mut units, mut share) = (mine.reserved, mine.daily);
        // What was leased before and never raised (a raise skipped, a take-back not committed)
        // is raised now; otherwise what the bucket needs is leased.
        let synced = mine.reserved > ceiling || (daily.is_some() && mine.daily > dcap);
        if !synced {
            let (units_left, daily_left) = (total - pool_units, daily.map_or(1, |d| d - pool_daily));
            // Out of what it needs, or of units while at its ceiling (a bucket out of its daily
            // share may be sold out too, and sold out comes first).
            let empty = match need {
                Need::Units => units_left <= 0,
                Need::Daily => daily_left <= 0,
            } || (units_left <= 0 && issued >= ceiling);
            let (mut on_the_way, mut unsound) = (false, false);
            if empty && !ahead {
                // The pool gets back what the others gave, in the same transaction, whatever
                // this lease then grants: only their shares of the daily limit while units are
                // left (their units are theirs to issue, once the day allows).
                let others: Vec<usize> = (0..parts.len()).filter(|i| *i != index).collect();
                let take = match units_left > 0 {
                    true => Take::DailyShares,
                    false => Take::Everything,
                };
                let back = self
                    .return_to_pool(&mut tx, pool, parts, &others, IN_FLIGHT_MS, take)
                    .await?;
                pool_units -= back.units;
                pool_daily -= back.daily;
                on_the_way = back.on_the_way;
                unsound = back.unsound;
            }
            let shards = parts.len() as i64;
            let share_of = |left: i64, block: i64| block.min((left + shards - 1) / shards).clamp(1, left);
            let block = self.inner.reservations.next(&blocks, *last, total);
            let units_left = total - pool_units;
            let daily_empty = need == Need::Daily && daily.is_some_and(|d| d - pool_daily <= 0);
            let answer = if ahead {
                (units_left <= 0).then_some(Leased::SoldOut)
            } else if units_left <= 0 && issued >= ceiling {
                // Sold out before the daily limit, as the check order says.
                Some(Leased::SoldOut)
            } else if daily_empty {
                Some(Leased::DailyLimit)
            } else {
                None
            };
            if let Some(answer) = answer {
                tx.commit().await?;
                if unsound && !on_the_way {
                    // Not a finding: what the unsound copies hold is known after their rebuild.
                    return Ok(Leased::Unsound);
                }
                if let Some(findings) = findings {
                    let now_ms = Utc::now().timestamp_millis() as u64;
                    match answer {
                        _ if on_the_way => findings.found_on_the_way(need == Need::Daily, now_ms),
                        Leased::SoldOut => findings.found_sold_out(now_ms),
                        Leased::DailyLimit => findings.found_day_full(now_ms),
                        Leased::Raised | Leased::OnTheWay | Leased::Unsound => {}
                    }
                }
                if on_the_way {
                    // What is left is on its way to a bucket that just leased it: ask again
                    // once it has landed (or, should its raise have failed, once it counts as
                    // idle).
                    drop(last);
                    tokio::time::sleep(ON_THE_WAY_RETRY).await;
                    return Ok(Leased::OnTheWay);
                }
                return Ok(answer);
            }
            if need == Need::Units && units_left > 0 {
                let granted = share_of(units_left, block);
                if let Some(mine) = positions.as_mut() {
                    // The pool's next position never leased follows all it leased and got back.
                    let mut free = free_positions(&mut tx, kind, &pool_id).await?;
                    let next = pool_units + free.len();
                    mine.extend(grant(&mut free, next, granted));
                    write_positions(&mut tx, kind, &pool_id, &Ranges::default(), &free).await?;
                    write_positions(&mut tx, kind, &bucket_id, mine, &Ranges::default()).await?;
                }
                pool_units += granted;
                units += granted;
            }
            if let Some(d) = daily
                && d - pool_daily > 0
                && (need == Need::Daily || today + 1 >= dcap)
            {
                let grant = share_of(d - pool_daily, block);
                pool_daily += grant;
                share += grant;
            }
            scope_reservations::set_lease(&mut tx, kind, &pool_id, pool_units, pool_daily).await?;
            scope_reservations::set_lease(&mut tx, kind, &bucket_id, units, share).await?;
        }
        tx.commit().await?;
        *last = Some(Instant::now());
        metrics::counter!("issuer_leases_total").increment(1);
        let mut args = vec![
            mine.fence.to_string(),
            units.to_string(),
            lgen.unwrap_or(0).to_string(),
            daily.map(|_| share.to_string()).unwrap_or_default(),
        ];
        if let Some(mine) = &positions {
            args.push(mine.to_arg());
        }
        let raised: i64 = Lua::RaiseCeiling
            .call(redis, vec![part.keys.meta.as_str()], args)
            .await?;
        if raised < 0 {
            tracing::warn!(bucket = %bucket_id, "the bucket's copy cannot take the lease; rebuilding it");
        }
        Ok(Leased::Raised)
    }

    /// Takes back from the buckets `from` of `parts` what each leased and has not issued
    /// (units, and today's unused share of the daily limit; only the latter for
    /// [`Take::DailyShares`]) and gives it to `pool`, inside `tx`, which holds the pool row;
    /// returns how much of each. A bucket whose lease changed within `in_flight_ms` and that
    /// has not issued all it is to give is left alone (a fresh lease, its requests about to
    /// issue it; 0: none is). A batch's buckets give their positions beyond what they keep to
    /// the pool's handed-back positions.
    pub(crate) async fn return_to_pool(
        &self,
        tx: &mut PgConnection,
        pool: &Scope,
        parts: &[Part],
        from: &[usize],
        in_flight_ms: i64,
        take: Take,
    ) -> Result<TakenBack, Error> {
        let (kind, pool_id) = (pool.kind().as_str(), pool.id());
        let pool_row = scope_reservations::lease(&mut *tx, kind, &pool_id, 0).await?;
        let positional = parts.iter().any(|p| p.scope.id_mode() == IdMode::Leased);
        let mut free = match positional {
            true => Some(free_positions(tx, kind, &pool_id).await?),
            false => None,
        };
        let back = self
            .take_back(tx, parts, from, (in_flight_ms, take), free.as_mut())
            .await?;
        if back.units + back.daily > 0 {
            let (units, daily) = (pool_row.reserved - back.units, pool_row.daily - back.daily);
            scope_reservations::set_lease(&mut *tx, kind, &pool_id, units, daily).await?;
            if let Some(free) = &free {
                write_positions(tx, kind, &pool_id, &Ranges::default(), free).await?;
            }
        }
        Ok(back)
    }

    /// The take-back of [`Engine::return_to_pool`], the buckets' side: their leases lowered,
    /// their positions cut, what they gave counted (and its positions added to `free`).
    async fn take_back(
        &self,
        tx: &mut PgConnection,
        parts: &[Part],
        from: &[usize],
        (in_flight_ms, take): (i64, Take),
        mut free: Option<&mut Ranges>,
    ) -> Result<TakenBack, Error> {
        let Some(kind) = parts.first().map(|p| p.scope.kind().as_str()) else {
            return Ok(TakenBack {
                units: 0,
                daily: 0,
                on_the_way: false,
                unsound: false,
            });
        };
        let redis = self.redis().next();
        let (mut units, mut daily, mut on_the_way, mut unsound) = (0, 0, false, false);
        for part in from.iter().filter_map(|i| parts.get(*i)) {
            let lease = scope_reservations::lease(&mut *tx, kind, &part.scope.id(), in_flight_ms).await?;
            let (ceiling, share): (i64, i64) = Lua::LowerCeiling
                .call(
                    redis,
                    vec![part.keys.meta.as_str(), part.keys.day_prefix.as_str()],
                    vec![
                        lease.fence.to_string(),
                        if lease.recent { "1" } else { "" }.to_owned(),
                        lease.reserved.to_string(),
                        lease.daily.to_string(),
                        take.as_arg().to_owned(),
                    ],
                )
                .await?;
            // A copy that is missing, broken or of another history keeps its lease until its
            // rebuild; a fresh one keeps it too.
            match ceiling {
                -2 => on_the_way = true,
                -1 => unsound = true,
                _ => {}
            }
            if ceiling < 0 {
                continue;
            }
            let ceiling = match take {
                Take::Everything => ceiling.min(lease.reserved),
                Take::DailyShares => lease.reserved,
            };
            let share = if share < 0 {
                lease.daily
            } else {
                share.min(lease.daily)
            };
            if (ceiling, share) == (lease.reserved, lease.daily) {
                continue;
            }
            scope_reservations::set_lease(&mut *tx, kind, &part.scope.id(), ceiling, share).await?;
            if let Some(free) = free.as_deref_mut().filter(|_| ceiling < lease.reserved) {
                let id = part.scope.id();
                let mut leased = leased_positions(tx, kind, &id).await?;
                free.extend(leased.split_off(ceiling));
                write_positions(tx, kind, &id, &leased, &Ranges::default()).await?;
            }
            units += lease.reserved - ceiling;
            daily += lease.daily - share;
        }
        if units + daily > 0 {
            metrics::counter!("issuer_lease_take_backs_total").increment(1);
        }
        Ok(TakenBack {
            units,
            daily,
            on_the_way,
            unsound,
        })
    }
}

impl Engine {
    /// Lowers the quantity of `pool`, spread over `parts`, to `total`, inside `tx`, which holds
    /// the pool row locked and then writes the new quantity (see [`crate::quantity`]): every
    /// bucket's unused lease is taken back (a raise on its way included: the lease generation
    /// makes it land on nothing), so the pool holds what the buckets issued, and the lowering
    /// is refused ([`Refusal::QuantityBelowIssued`]) when that is more than `total` — or, for a
    /// batch, when a position at `total` or above was issued; the pool's handed-back positions
    /// from `total` on are dropped. A bucket whose copy is missing keeps its lease (counted as
    /// issued) until its rebuild. Leases granted after the commit read the new quantity.
    pub(crate) async fn lower_spread(
        &self,
        tx: &mut PgConnection,
        pool: &Scope,
        parts: &[Part],
        total: i64,
    ) -> Result<(), Error> {
        let (kind, pool_id) = (pool.kind().as_str(), pool.id());
        let every: Vec<usize> = (0..parts.len()).collect();
        self.return_to_pool(tx, pool, parts, &every, 0, Take::Everything)
            .await?;
        let pool_row = scope_reservations::lease(&mut *tx, kind, &pool_id, 0).await?;
        if pool_row.reserved > total {
            tracing::info!(
                total,
                issued = pool_row.reserved,
                "quantity change refused: the buckets issued more"
            );
            return Err(Error::Refused(Refusal::QuantityBelowIssued));
        }
        if parts.iter().any(|p| p.scope.id_mode() == IdMode::Leased) {
            for part in parts {
                let leased = leased_positions(tx, kind, &part.scope.id()).await?;
                if leased.highest().is_some_and(|p| p >= total) {
                    tracing::info!(total, bucket = %part.scope.id(), "quantity change refused: a position above it was issued");
                    return Err(Error::Refused(Refusal::QuantityBelowIssued));
                }
            }
            let mut free = free_positions(tx, kind, &pool_id).await?;
            free.keep_below(total);
            write_positions(tx, kind, &pool_id, &Ranges::default(), &free).await?;
        }
        Ok(())
    }
}

/// A coupon bucket's leased positions.
async fn leased_positions(tx: &mut PgConnection, kind: &str, bucket: &str) -> Result<Ranges, Error> {
    let positions = scope_reservations::positions(&mut *tx, kind, bucket).await?;
    Ok(Ranges::from_flat(&positions.leased))
}

/// A batch's pool's handed-back positions.
async fn free_positions(tx: &mut PgConnection, kind: &str, pool: &str) -> Result<Ranges, Error> {
    let positions = scope_reservations::positions(&mut *tx, kind, pool).await?;
    Ok(Ranges::from_flat(&positions.free))
}

/// Writes a scope's positions: a bucket's `leased`, a pool's `free` (the other empty).
async fn write_positions(
    tx: &mut PgConnection,
    kind: &str,
    scope: &str,
    leased: &Ranges,
    free: &Ranges,
) -> Result<(), Error> {
    let positions = scope_reservations::Positions {
        leased: leased.to_flat(),
        free: free.to_flat(),
    };
    scope_reservations::set_positions(tx, kind, scope, &positions).await
}

/// What a take-back takes from a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Its units and today's share of the daily limit it has not issued.
    Everything,
    /// Only today's share of the daily limit it has not issued: a bucket short of its share
    /// while units are left takes nothing else, so the others need not lease their units again.
    DailyShares,
}

impl Take {
    /// Its name for `lower_ceiling.lua`.
    fn as_arg(self) -> &'static str {
        match self {
            Take::Everything => "",
            Take::DailyShares => "daily",
        }
    }
}

/// What a take-back freed, and whether it left a bucket alone because a fresh lease was on its
/// way to it (or landed and not yet issued), or because its copy was unsound (missing, broken or
/// of another history).
pub(crate) struct TakenBack {
    pub(crate) units: i64,
    pub(crate) daily: i64,
    on_the_way: bool,
    unsound: bool,
}

/// The bucket fields a lease reads: ceiling, issued, lease generation, daily share, the KST day
/// of the last issue and the count issued that day.
type Fields = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// What a bucket ran out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Units: it reached its ceiling (RESERVE).
    Units,
    /// Its share of the daily limit (DAILY_LIMIT from the bucket).
    Daily,
}

/// One lease's terms.
#[derive(Clone, Copy, Debug)]
struct Lease {
    /// The event's quantity.
    total: i64,
    /// The event's daily limit.
    daily: Option<i64>,
    /// What the bucket ran out of.
    need: Need,
    /// A lease ahead, before the bucket runs dry.
    ahead: bool,
}
