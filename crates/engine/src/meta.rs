//! The Redis copy of a scope's rules (`meta`), its live figures, and rebuilding it.
//!
//! Postgres holds a scope's rules (an event row; a coupon batch with its inventory); Redis holds
//! a copy (`meta`) that `issue.lua` reads. When the copy is missing (eviction, a Redis restart,
//! a deleted key, or a coupon batch nobody claimed yet) or marked `broken` (the script found
//! other keys of the scope lost), `issue.lua` answers NO_META and [`Engine::rebuild`] restores
//! it before anyone is answered. While `meta` is missing or broken no issue can succeed, so the
//! holders can be restored first without a race: entries still in the stream are merged, then
//! the Postgres rows (in that order, so an entry persisted and trimmed in between is found in
//! Postgres); holders found in neither are written to the stream again; only then `meta` is
//! written. Its issued count is the largest of the restored holders, the highest persisted
//! position and the high-water mark a broken meta kept, so a rebuild can never let the count
//! pass the quantity nor hand out a coupon position again. When this server's history of the
//! scope may have lost answers (the server lost its data, came back from an older copy, or is a
//! promoted replica: its replication id is not the meta's), the count also resumes at what
//! Postgres had reserved for the lost copy ([`crate::reservations`]), above every unit and
//! position that could have been answered; what was reserved and never answered is stranded.
//!
//! Across processes, a rebuild holds the scope's `scope_reservations` row locked from before it
//! reads anything until its copy is written, and gives the scope a new fence: the drain writes
//! only records of the current fence or a later one, and its transaction takes the same row's
//! lock, so a drain batch read from the replaced history either committed before the rebuild
//! read Postgres (and is restored) or is dropped. The rebuild writes every holder Postgres
//! lacks to the stream again under the new fence.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use fred::{
    interfaces::{HashesInterface, StreamsInterface},
    types::scan::Scanner,
};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use issuance_core::{clock, error::Error};
use sqlx::PgConnection;
use store::{Holder, scope_reservations::Reservation};

use crate::{
    engine::Engine,
    keys::ScopeKeys,
    positions::Ranges,
    scope::{Rules, Scope},
    script::Lua,
    stream,
};

/// Pairs sent to `restore_holders.lua` per call.
const RESTORE_CHUNK: usize = 1_000;

/// Live figures of a scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Issued in all.
    pub issued: i64,
    /// Issued today (KST).
    pub today: i64,
}

impl Engine {
    /// Writes `rules` into the scope's meta hash (see `load_meta.lua`): creates it for a new
    /// scope with its reservation (`create`), or only updates an existing one (`None`). Returns
    /// whether it was written.
    pub(crate) async fn load_meta(
        &self,
        rules: &Rules,
        keys: &ScopeKeys,
        create: Option<Reservation>,
        dcap: Option<i64>,
    ) -> Result<bool, Error> {
        let copy = create.map(|reservation| NewCopy {
            reservation,
            issued_floor: 0,
            dcap,
            positions: Ranges::default(),
        });
        self.write_meta(rules, keys, copy, &[]).await
    }

    async fn write_meta(
        &self,
        rules: &Rules,
        keys: &ScopeKeys,
        copy: Option<NewCopy>,
        day_counts: &[(i64, i64)],
    ) -> Result<bool, Error> {
        let create = copy.is_some();
        let copy = copy.unwrap_or(NewCopy {
            reservation: Reservation {
                reserved: 0,
                fence: 0,
            },
            issued_floor: 0,
            dcap: None,
            positions: Ranges::default(),
        });
        let mut args = vec![
            rules.version.to_string(),
            rules.total.to_string(),
            rules.daily.unwrap_or(0).to_string(),
            rules.start.timestamp_millis().to_string(),
            rules.end.timestamp_millis().to_string(),
            if rules.active { "1" } else { "0" }.to_owned(),
            if create { "1" } else { "0" }.to_owned(),
            copy.issued_floor.to_string(),
            copy.reservation.fence.to_string(),
            copy.reservation.reserved.to_string(),
            copy.dcap.map(|d| d.to_string()).unwrap_or_default(),
            copy.positions.to_arg(),
        ];
        for (day, count) in day_counts {
            args.push(day.to_string());
            args.push(count.to_string());
        }
        let written: i64 = Lua::LoadMeta
            .call(
                self.redis().next(),
                vec![
                    keys.meta.as_str(),
                    keys.day_prefix.as_str(),
                    keys.holders.as_str(),
                ],
                args,
            )
            .await?;
        Ok(written == 1)
    }

    /// The scope's live figures (today as of `clock_ms`, or Redis `TIME`), rebuilding its Redis
    /// copy first when it is missing.
    pub(crate) async fn scope_counts(
        &self,
        scope: &Scope,
        rules: &Rules,
        clock_ms: Option<i64>,
    ) -> Result<Counts, Error> {
        let keys = scope.keys(self.keys());
        for _ in 0..2 {
            let (present, issued, today): (i64, i64, i64) = Lua::ScopeCounts
                .call(
                    self.redis().next(),
                    vec![
                        keys.meta.as_str(),
                        keys.holders.as_str(),
                        keys.day_prefix.as_str(),
                    ],
                    vec![clock_ms.map(|ms| ms.to_string()).unwrap_or_default()],
                )
                .await?;
            if present == 1 {
                return Ok(Counts { issued, today });
            }
            self.rebuild(scope, rules, &keys).await?;
        }
        Err(Error::RedisUnsettled)
    }

    /// Restores a scope's Redis copy from the stream and Postgres (see the module doc).
    pub async fn rebuild(&self, scope: &Scope, rules: &Rules, keys: &ScopeKeys) -> Result<(), Error> {
        let lock = self.inner.rebuilding.get(&keys.meta);
        let _guard = lock.lock().await;
        if self.copy_is_sound(keys).await? {
            return Ok(()); // rebuilt meanwhile
        }
        // The scope's row stays locked until the copy is written: other processes' rebuilds of
        // the scope and the drain's commits of it wait; drain commits under way end first.
        let (kind, scope_id) = (scope.kind(), scope.id());
        let mut tx = self.db().begin().await?;
        let reserved = store::scope_reservations::lock(&mut tx, kind.as_str(), &scope_id).await?;
        if self.copy_is_sound(keys).await? {
            return Ok(()); // rebuilt by another process while this one waited
        }
        // The rules as Postgres holds them now: the caller's may be a cached copy from before a
        // change (a lowered quantity), and changes take this lock before they commit.
        let current = self.current_rules(&mut *tx, scope).await?;
        let rules = current.as_ref().unwrap_or(rules);
        let redis = self.redis().next();
        let whole: i64 = Lua::CopyWhole
            .call(
                redis,
                vec![keys.meta.as_str(), keys.holders.as_str(), keys.stream.as_str()],
                vec![reserved.fence.to_string()],
            )
            .await?;
        let fence = store::scope_reservations::raise_fence(&mut tx, kind.as_str(), &scope_id).await?;
        tracing::info!(scope = ?scope, fence, whole = whole == 1, "Redis copy of the scope is missing or damaged, rebuilding");
        metrics::counter!("issuer_meta_rebuilds_total").increment(1);

        // A coupon bucket's positions: its issues are numbered by their index in its lease.
        let leased = match scope {
            Scope::CouponBucket { .. } => Some(Ranges::from_flat(
                &store::scope_reservations::positions(&mut *tx, kind.as_str(), &scope_id)
                    .await?
                    .leased,
            )),
            _ => None,
        };
        // The count a known position proves: a batch's position + 1, or in a bucket, its index
        // in the lease + 1 (a position it was not leased proves nothing about it).
        let proven = |position: i64| match &leased {
            Some(leased) => leased.index_of(position).map_or(0, |index| index + 1),
            None => position + 1,
        };
        // The stream first, then Postgres: see the module doc.
        let pending = stream::unpersisted(redis, &keys.stream).await?;
        let mut days = DayCounts::new(Utc::now().timestamp_millis());
        let mut persisted = HashSet::new();
        let mut next_position = 0_i64;
        let mut chunk = Vec::with_capacity(RESTORE_CHUNK * 2);
        for record in pending
            .into_iter()
            .filter_map(|entry| entry.records.ok())
            .flatten()
        {
            if record.kind != kind || record.scope != scope_id {
                continue;
            }
            days.add(record.user_id, record.issued_at_ms);
            if let stream::IssueId::Position(p) = record.issue_id {
                next_position = next_position.max(proven(i64::from(p)));
            }
            chunk.push(record.user_id.to_string());
            chunk.push(format!("{}|{}", record.issue_id, record.issued_at_ms));
        }
        {
            let mut rows = holders_in(&mut tx, scope);
            while let Some(row) = rows.try_next().await? {
                let at_ms = row.issued_at.timestamp_millis();
                days.add(row.user_id, at_ms);
                persisted.insert(row.user_id);
                if scope.kind() == stream::RecordKind::Coupon
                    && let Ok(p) = row.issue_id.parse::<i64>()
                {
                    next_position = next_position.max(proven(p));
                }
                chunk.push(row.user_id.to_string());
                chunk.push(format!("{}|{}", row.issue_id, at_ms));
                if chunk.len() >= RESTORE_CHUNK * 2 {
                    self.restore_holders(keys, std::mem::take(&mut chunk)).await?;
                }
            }
        }
        self.restore_holders(keys, chunk).await?;
        // Every holder Postgres lacks is written to the stream again under the new fence, so the
        // drain persists it (its older records, of the replaced fence, are dropped).
        self.requeue_unpersisted(scope, keys, &persisted, fence, &mut days)
            .await?;
        stream::ensure_group(redis, &keys.stream).await?;
        // A history that may have lost answers resumes above all that was reserved for it.
        let lost_floor = if whole == 1 { 0 } else { reserved.reserved };
        // A bucket of a scope with a daily limit takes its share back from Postgres.
        let dcap = match (scope.is_bucket(), rules.daily) {
            (true, Some(_)) => Some(
                store::scope_reservations::lease(&mut tx, kind.as_str(), &scope_id, 0)
                    .await?
                    .daily,
            ),
            _ => None,
        };
        let copy = NewCopy {
            reservation: Reservation {
                reserved: reserved.reserved,
                fence,
            },
            issued_floor: next_position.max(lost_floor),
            dcap,
            positions: leased.unwrap_or_default(),
        };
        self.write_meta(rules, keys, Some(copy), &days.into_pairs())
            .await?;
        tx.commit().await?;
        stream::register(self.redis(), self.keys(), &keys.stream).await?;
        Ok(())
    }

    /// The scope's rules as Postgres holds them; `None` when it no longer exists.
    pub(crate) async fn current_rules(
        &self,
        db: impl sqlx::PgExecutor<'_>,
        scope: &Scope,
    ) -> Result<Option<Rules>, Error> {
        Ok(match scope {
            Scope::Ticket(key) | Scope::TicketBucket { key, .. } => {
                store::ticket_events::find(db, key.as_str())
                    .await?
                    .map(|e| Rules::from(&e))
            }
            Scope::Coupon(id) | Scope::CouponBucket { id, .. } => store::coupon_batches::find_batch(db, *id)
                .await?
                .map(|b| Rules::from(&b)),
        })
    }

    /// Whether the scope's copy is there and not marked broken.
    async fn copy_is_sound(&self, keys: &ScopeKeys) -> Result<bool, Error> {
        let (ver, broken): (Option<String>, Option<String>) = self
            .redis()
            .next()
            .hmget(&keys.meta, vec!["ver", "broken"])
            .await?;
        Ok(ver.is_some() && broken.is_none())
    }

    /// Appends a stream record under `fence` for every holder not in `persisted` (see
    /// [`Engine::rebuild`]), and counts it in `days`.
    async fn requeue_unpersisted(
        &self,
        scope: &Scope,
        keys: &ScopeKeys,
        persisted: &HashSet<i64>,
        fence: i64,
        days: &mut DayCounts,
    ) -> Result<(), Error> {
        let client = self.redis().next().clone();
        let mut pages = std::pin::pin!(client.hscan(keys.holders.as_str(), "*", Some(1_000)));
        let mut requeued = 0;
        while let Some(page) = pages.next().await {
            let mut page = page?;
            let Some(map) = page.take_results() else { continue };
            for (user, value) in map.inner() {
                let (Some(user), Some(value)) = (
                    user.as_str().and_then(|u| u.parse::<i64>().ok()),
                    value.as_string(),
                ) else {
                    continue;
                };
                if persisted.contains(&user) {
                    continue;
                }
                let Some((id, at)) = value.split_once('|') else {
                    continue;
                };
                let (Some(issue_id), Ok(issued_at_ms)) =
                    (stream::IssueId::parse(scope.kind(), id), at.parse())
                else {
                    continue;
                };
                days.add(user, issued_at_ms);
                let record = stream::IssueRecord {
                    kind: scope.kind(),
                    scope: scope.id(),
                    user_id: user,
                    issue_id,
                    issued_at_ms,
                    fence: Some(fence),
                };
                let _: String = client
                    .xadd(keys.stream.as_str(), false, None, "*", record.to_fields())
                    .await?;
                requeued += 1;
            }
        }
        if requeued > 0 {
            tracing::info!(scope = ?scope, requeued, fence, "holders not yet in Postgres are queued again");
            metrics::counter!("issuer_meta_requeued_total").increment(requeued);
        }
        Ok(())
    }

    pub(crate) fn persisted_holders(&self, scope: &Scope) -> BoxStream<'_, Result<Holder, Error>> {
        let rows = match scope {
            Scope::Ticket(key) | Scope::TicketBucket { key, .. } => {
                store::tickets::stream_for_event(self.db(), key.to_string()).boxed()
            }
            Scope::Coupon(id) | Scope::CouponBucket { id, .. } => {
                store::coupon_issues::stream_for_batch(self.db(), *id).boxed()
            }
        };
        of_copy(rows, scope.clone())
    }

    async fn restore_holders(&self, keys: &ScopeKeys, pairs: Vec<String>) -> Result<(), Error> {
        if pairs.is_empty() {
            return Ok(());
        }
        let _: i64 = Lua::RestoreHolders
            .call(self.redis().next(), vec![keys.holders.as_str()], pairs)
            .await?;
        Ok(())
    }
}

/// What a created copy starts from (see `load_meta.lua`).
#[derive(Clone, Debug)]
struct NewCopy {
    /// The scope's fence and what Postgres reserved for it (the ceiling).
    reservation: Reservation,
    /// The least count to resume at: issues known from Postgres (a coupon batch's highest
    /// position + 1), and all that was reserved for a history that may have lost answers.
    issued_floor: i64,
    /// A bucket's share of its scope's daily limit (see [`crate::leases`]); `None` otherwise.
    dcap: Option<i64>,
    /// A coupon bucket's leased positions (see [`crate::positions`]); empty otherwise.
    positions: Ranges,
}

/// The scope's rows in Postgres, read on `conn` (the rebuild's locked transaction).
fn holders_in<'c>(conn: &'c mut PgConnection, scope: &Scope) -> BoxStream<'c, Result<Holder, Error>> {
    let rows = match scope {
        Scope::Ticket(key) | Scope::TicketBucket { key, .. } => {
            store::tickets::stream_for_event(conn, key.to_string()).boxed()
        }
        Scope::Coupon(id) | Scope::CouponBucket { id, .. } => {
            store::coupon_issues::stream_for_batch(conn, *id).boxed()
        }
    };
    of_copy(rows, scope.clone())
}

/// The rows of `rows` whose users `scope`'s copy decides for (a bucket's, of its event's rows).
fn of_copy<'c>(
    rows: BoxStream<'c, Result<Holder, Error>>,
    scope: Scope,
) -> BoxStream<'c, Result<Holder, Error>> {
    if !scope.is_bucket() {
        return rows;
    }
    rows.try_filter(move |row| std::future::ready(scope.decides_for(row.user_id)))
        .boxed()
}

/// Issues per KST day for today and yesterday, each user counted once (a record can be both in
/// the stream and in Postgres while the drain is between commit and acknowledgement).
struct DayCounts {
    since_day: i64,
    users: HashMap<i64, i64>,
}

impl DayCounts {
    fn new(now_ms: i64) -> Self {
        Self {
            since_day: clock::kst_day(now_ms) - 1,
            users: HashMap::new(),
        }
    }

    fn add(&mut self, user: i64, at_ms: i64) {
        let day = clock::kst_day(at_ms);
        if day >= self.since_day {
            self.users.insert(user, day);
        }
    }

    fn into_pairs(self) -> Vec<(i64, i64)> {
        let mut counts: HashMap<i64, i64> = HashMap::new();
        for day in self.users.into_values() {
            *counts.entry(day).or_default() += 1;
        }
        counts.into_iter().collect()
    }
}
