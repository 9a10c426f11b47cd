//! Golden-ticket events: creation, status, switching on and off, and rebuilding their Redis copy.
//!
//! Postgres holds an event's rules; Redis holds a copy (`meta`) that `issue.lua` reads. When the
//! copy is missing (eviction, a Redis restart, a deleted key) `issue.lua` answers NO_META and
//! [`Engine::rebuild`] restores it before anyone is answered. While `meta` is missing no issue
//! can succeed, so the holders can be restored first without a race: entries still in the
//! stream are merged, then the Postgres rows (in that order, so an entry persisted and trimmed
//! in between is found in Postgres), and only then `meta` is written. The issued count is the
//! size of the restored holders hash, so a rebuild can never let the count pass the quantity.

use std::{collections::HashMap, sync::Arc};

use chrono::Utc;
use fred::interfaces::KeysInterface;
use futures::TryStreamExt;

use crate::{
    cache::{CachedEvent, Lookup},
    clock,
    engine::Engine,
    error::Error,
    keys::ScopeKeys,
    model::{EventKey, EventStatus, NewTicketEvent, TicketEvent},
    repo,
    script::Lua,
    stream,
};

/// Pairs sent to `restore_holders.lua` per call.
const RESTORE_CHUNK: usize = 1_000;

impl Engine {
    /// Creates an event and copies its rules into Redis.
    pub async fn create_event(&self, new: NewTicketEvent) -> Result<EventStatus, Error> {
        let event = repo::events::insert(self.db(), &new).await?;
        let keys = self.keys().ticket_event(&event.event_key);
        // Postgres has the event now; should Redis fail here, the first issue rebuilds the copy.
        if let Err(e) = self.load_meta(&event, &keys, true, &[]).await {
            tracing::warn!(event = %event.event_key, error = %e, "event created, Redis copy deferred");
        }
        if let Err(e) = stream::register(self.redis(), self.keys(), &keys.stream).await {
            tracing::warn!(event = %event.event_key, error = %e, "stream registration deferred");
        }
        self.inner.events.invalidate(&event.event_key);
        Ok(EventStatus {
            event,
            issued: 0,
            today: 0,
        })
    }

    /// An event with its live figures.
    pub async fn event_status(&self, key: &EventKey) -> Result<EventStatus, Error> {
        let event = repo::events::find(self.db(), key.as_str())
            .await?
            .ok_or(Error::EventNotFound)?;
        self.with_counts(event, None).await
    }

    /// Events running now (active, inside their window) with their live figures.
    pub async fn running_events(&self) -> Result<Vec<EventStatus>, Error> {
        let events = repo::events::list_running(self.db(), Utc::now()).await?;
        futures::future::try_join_all(events.into_iter().map(|e| self.with_counts(e, None))).await
    }

    /// Switches an event on or off, in Postgres and then in the Redis copy.
    pub async fn set_active(&self, key: &EventKey, active: bool) -> Result<EventStatus, Error> {
        let event = repo::events::set_active(self.db(), key.as_str(), active)
            .await?
            .ok_or(Error::EventNotFound)?;
        let keys = self.keys().ticket_event(&event.event_key);
        // Only updates an existing copy: a missing one is rebuilt, holders first, on next use.
        self.load_meta(&event, &keys, false, &[]).await?;
        self.inner.events.invalidate(&event.event_key);
        self.with_counts(event, None).await
    }

    /// The live figures of `event` (today as of `clock_ms`, or Redis `TIME`).
    pub async fn with_counts(&self, event: TicketEvent, clock_ms: Option<i64>) -> Result<EventStatus, Error> {
        let keys = self.keys().ticket_event(&event.event_key);
        for _ in 0..2 {
            let (present, issued, today): (i64, i64, i64) = Lua::EventCounts
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
                return Ok(EventStatus { event, issued, today });
            }
            self.rebuild(&event, &keys).await?;
        }
        Err(Error::protocol(
            "event_counts.lua",
            "meta still missing after a rebuild",
        ))
    }

    /// The event's rules, from this process's cache when fresh.
    pub(crate) async fn cached_event(&self, key: &EventKey) -> Result<Option<Arc<CachedEvent>>, Error> {
        let cache = &self.inner.events;
        match cache.lookup(key.as_str()) {
            Lookup::Fresh(found) => return Ok(found),
            Lookup::Stale(found) => {
                // Someone is reloading it already: the stale copy is good enough meanwhile.
                let Ok(_guard) = cache.loading.try_lock() else {
                    return Ok(found);
                };
                return self.load_event(key).await;
            }
            Lookup::Missing => {}
        }
        let _guard = cache.loading.lock().await;
        if let Lookup::Fresh(found) = cache.lookup(key.as_str()) {
            return Ok(found);
        }
        self.load_event(key).await
    }

    async fn load_event(&self, key: &EventKey) -> Result<Option<Arc<CachedEvent>>, Error> {
        let found = repo::events::find(self.db(), key.as_str()).await?.map(|event| {
            let keys = self.keys().ticket_event(&event.event_key);
            Arc::new(CachedEvent { event, keys })
        });
        self.inner.events.put(key.as_str(), found.clone());
        Ok(found)
    }

    /// Writes the rules into Redis (see `load_meta.lua`); `create` only after the holders are in.
    async fn load_meta(
        &self,
        event: &TicketEvent,
        keys: &ScopeKeys,
        create: bool,
        day_counts: &[(i64, i64)],
    ) -> Result<bool, Error> {
        let mut args = vec![
            event.version.to_string(),
            event.total_quantity.to_string(),
            event.daily_limit.unwrap_or(0).to_string(),
            event.start_at.timestamp_millis().to_string(),
            event.end_at.timestamp_millis().to_string(),
            if event.is_active { "1" } else { "0" }.to_owned(),
            if create { "1" } else { "0" }.to_owned(),
        ];
        for (day, count) in day_counts {
            args.push(day.to_string());
            args.push(count.to_string());
        }
        let written: i64 = Lua::LoadMeta
            .call(
                self.redis().next(),
                vec![keys.meta.as_str(), keys.day_prefix.as_str()],
                args,
            )
            .await?;
        Ok(written == 1)
    }

    /// Restores an event's Redis copy from the stream and Postgres (see the module doc).
    pub async fn rebuild(&self, event: &TicketEvent, keys: &ScopeKeys) -> Result<(), Error> {
        let _guard = self.inner.rebuilding.lock().await;
        let redis = self.redis().next();
        if redis.exists::<i64, _>(&keys.meta).await? == 1 {
            return Ok(()); // rebuilt meanwhile
        }
        tracing::warn!(event = %event.event_key, "Redis copy of the event is missing, rebuilding");
        metrics::counter!("issuer_meta_rebuilds_total").increment(1);

        // The stream first, then Postgres: see the module doc.
        let pending = stream::unpersisted(redis, &keys.stream).await?;
        let mut days = DayCounts::new(Utc::now().timestamp_millis());
        let mut chunk = Vec::with_capacity(RESTORE_CHUNK * 2);
        for entry in pending {
            let Ok(record) = entry.record else { continue };
            if record.scope != event.event_key {
                continue;
            }
            days.add(record.user_id, record.issued_at_ms);
            chunk.push(record.user_id.to_string());
            chunk.push(format!("{}|{}", record.issue_id, record.issued_at_ms));
        }
        let mut rows = repo::tickets::stream_for_event(self.db(), &event.event_key);
        while let Some(row) = rows.try_next().await? {
            let at_ms = row.issued_at.timestamp_millis();
            days.add(row.user_id, at_ms);
            chunk.push(row.user_id.to_string());
            chunk.push(format!("{}|{}", row.ticket_id, at_ms));
            if chunk.len() >= RESTORE_CHUNK * 2 {
                self.restore_holders(keys, std::mem::take(&mut chunk)).await?;
            }
        }
        self.restore_holders(keys, chunk).await?;
        self.load_meta(event, keys, true, &days.into_pairs()).await?;
        stream::register(self.redis(), self.keys(), &keys.stream).await?;
        Ok(())
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
