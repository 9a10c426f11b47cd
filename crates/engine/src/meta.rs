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
//! pass the quantity nor hand out a coupon position again.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use fred::{
    interfaces::{HashesInterface, StreamsInterface},
    types::scan::Scanner,
};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use issuance_core::{clock, error::Error};
use store::Holder;

use crate::{
    engine::Engine,
    keys::ScopeKeys,
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
    /// Writes `rules` into the scope's meta hash (see `load_meta.lua`); `create` only after the
    /// holders are in. Returns whether it was written.
    pub(crate) async fn load_meta(
        &self,
        rules: &Rules,
        keys: &ScopeKeys,
        create: bool,
        day_counts: &[(i64, i64)],
    ) -> Result<bool, Error> {
        self.write_meta(rules, keys, create, 0, day_counts).await
    }

    /// [`Engine::load_meta`] with the least number of issues ever made (`issued_floor`), for a
    /// rebuild.
    async fn write_meta(
        &self,
        rules: &Rules,
        keys: &ScopeKeys,
        create: bool,
        issued_floor: i64,
        day_counts: &[(i64, i64)],
    ) -> Result<bool, Error> {
        let mut args = vec![
            rules.version.to_string(),
            rules.total.to_string(),
            rules.daily.unwrap_or(0).to_string(),
            rules.start.timestamp_millis().to_string(),
            rules.end.timestamp_millis().to_string(),
            if rules.active { "1" } else { "0" }.to_owned(),
            if create { "1" } else { "0" }.to_owned(),
            issued_floor.to_string(),
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
        let redis = self.redis().next();
        let (ver, broken): (Option<String>, Option<String>) =
            redis.hmget(&keys.meta, vec!["ver", "broken"]).await?;
        if ver.is_some() && broken.is_none() {
            return Ok(()); // rebuilt meanwhile
        }
        tracing::info!(scope = ?scope, broken = broken.is_some(), "Redis copy of the scope is missing or damaged, rebuilding");
        metrics::counter!("issuer_meta_rebuilds_total").increment(1);

        // The stream first, then Postgres: see the module doc.
        let pending = stream::unpersisted(redis, &keys.stream).await?;
        let mut days = DayCounts::new(Utc::now().timestamp_millis());
        let mut seen = HashSet::new();
        let mut next_position = 0_i64;
        let mut chunk = Vec::with_capacity(RESTORE_CHUNK * 2);
        let (kind, scope_id) = (scope.kind(), scope.id());
        for entry in pending {
            let Ok(record) = entry.record else { continue };
            if record.kind != kind || record.scope != scope_id {
                continue;
            }
            days.add(record.user_id, record.issued_at_ms);
            seen.insert(record.user_id);
            if let stream::IssueId::Position(p) = record.issue_id {
                next_position = next_position.max(i64::from(p) + 1);
            }
            chunk.push(record.user_id.to_string());
            chunk.push(format!("{}|{}", record.issue_id, record.issued_at_ms));
        }
        let mut rows = self.persisted_holders(scope);
        while let Some(row) = rows.try_next().await? {
            let at_ms = row.issued_at.timestamp_millis();
            days.add(row.user_id, at_ms);
            seen.insert(row.user_id);
            if matches!(scope, Scope::Coupon(_))
                && let Ok(p) = row.issue_id.parse::<i64>()
            {
                next_position = next_position.max(p + 1);
            }
            chunk.push(row.user_id.to_string());
            chunk.push(format!("{}|{}", row.issue_id, at_ms));
            if chunk.len() >= RESTORE_CHUNK * 2 {
                self.restore_holders(keys, std::mem::take(&mut chunk)).await?;
            }
        }
        self.restore_holders(keys, chunk).await?;
        // Holders that are neither in the stream nor in Postgres: their stream entries were
        // lost. Written to the stream again, so the drain persists them.
        self.requeue_unseen(scope, keys, &seen, &mut days).await?;
        stream::ensure_group(redis, &keys.stream).await?;
        self.write_meta(rules, keys, true, next_position, &days.into_pairs())
            .await?;
        stream::register(self.redis(), self.keys(), &keys.stream).await?;
        Ok(())
    }

    /// Appends a stream record for every holder not in `seen` (see [`Engine::rebuild`]), and
    /// counts it in `days`.
    async fn requeue_unseen(
        &self,
        scope: &Scope,
        keys: &ScopeKeys,
        seen: &HashSet<i64>,
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
                if seen.contains(&user) {
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
                };
                let _: String = client
                    .xadd(keys.stream.as_str(), false, None, "*", record.to_fields())
                    .await?;
                requeued += 1;
            }
        }
        if requeued > 0 {
            tracing::warn!(scope = ?scope, requeued, "holders whose stream entries were lost are queued again");
            metrics::counter!("issuer_meta_requeued_total").increment(requeued);
        }
        Ok(())
    }

    pub(crate) fn persisted_holders(&self, scope: &Scope) -> BoxStream<'_, Result<Holder, Error>> {
        match scope {
            Scope::Ticket(key) => store::tickets::stream_for_event(self.db(), key.to_string()).boxed(),
            Scope::Coupon(id) => store::coupon_issues::stream_for_batch(self.db(), *id).boxed(),
        }
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
