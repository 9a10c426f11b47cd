//! The issuance-stream drain: Redis streams → Postgres, exactly once in effect.
//!
//! Each pass reads up to a batch of new entries from every registered stream through the
//! consumer group `drain`, inserts them in one transaction (`ON CONFLICT DO NOTHING`, so a replay
//! changes nothing; tickets into `tickets`, coupons into `coupon_issues`), and only after the
//! commit acknowledges them and trims the stream head.
//!
//! Liveness: every consumer keeps a key `drain:alive:<consumer>` with a short expiry
//! (`heartbeat`, 1.5 s) renewed by a task of its own every quarter of it, whatever its passes
//! are doing. Every `dead_check_every` (250 ms) a consumer looks at the consumers of each stream
//! that hold pending entries; one whose key is gone is dead, and its entries are claimed at once
//! (XCLAIM with no idle minimum) and persisted.
//!
//! What happens on a crash:
//! * before the commit: the entries stay pending under this consumer's name; its liveness key
//!   expires within `heartbeat`, and another consumer claims and persists them (about a second
//!   and a half after the crash). A consumer that stalls without dying (a stopped process)
//!   loses its liveness the same way; if it wakes up and commits too, the inserts change
//!   nothing. The idle-time claim (`claim_idle`, XAUTOCLAIM) stays as the fallback.
//! * between commit and acknowledgement: the entries are claimed and inserted again, which
//!   changes nothing.
//! * a process that is gone leaves its consumer name in the group: once it has nothing pending
//!   and has been idle for `forget_idle`, the name is removed.
//! * Postgres down: nothing is acknowledged; this consumer re-reads its own pending entries on
//!   the next pass and retries, backing off.
//!
//! A stream that fails (a broken key, a record Postgres refuses) is logged and skipped for the
//! pass; the others are drained. Streams of scopes whose window has ended and that are fully
//! persisted are trimmed empty and leave the registry (`retire_stream.lua`), so neither a pass nor a
//! `/metrics` scrape grows with every scope ever created.
//!
//! Lag (entries not yet persisted, and the age of the oldest) is published as
//! `issuer_stream_lag_entries` and `issuer_stream_lag_seconds`.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use fred::{clients::Pool, interfaces::KeysInterface};
use issuer::{
    Error, Keys, clock,
    repo::{
        coupon_issues::{self, NewCouponIssue},
        tickets::{self, NewTicket},
    },
    stream::{self, Entry, IssueId},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::poll;

use crate::config::DrainConfig;

/// How often the streams of ended scopes are looked at for retirement.
const RETIRE_EVERY: Duration = Duration::from_secs(5);

/// Longest pause after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One drain consumer.
pub struct Drain {
    redis: Pool,
    db: PgPool,
    keys: Keys,
    cfg: DrainConfig,
    streams: Vec<String>,
    /// Streams where this consumer holds entries it read but could not commit.
    own_pending: HashSet<String>,
    /// When ended scopes' streams were last looked at for retirement.
    last_retire: Option<Instant>,
}

impl Drain {
    /// A consumer over these connections.
    pub fn new(redis: Pool, db: PgPool, keys: Keys, cfg: DrainConfig) -> Self {
        Self {
            redis,
            db,
            keys,
            cfg,
            streams: Vec::new(),
            own_pending: HashSet::new(),
            last_retire: None,
        }
    }

    /// Runs until `shutdown`; a pass under way finishes (or leaves its entries pending) first.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(consumer = %self.cfg.consumer, "drain started");
        let heartbeat = tokio::spawn(heartbeat(
            self.redis.clone(),
            self.keys.drain_alive(&self.cfg.consumer),
            self.cfg.heartbeat,
        ));
        let mut last_refresh: Option<Instant> = None;
        let mut last_claim = Instant::now();
        let mut last_dead_check = Instant::now();
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            if last_refresh.is_none_or(|t| t.elapsed() >= self.cfg.refresh_every) {
                if let Err(e) = self.refresh().await {
                    tracing::warn!(error = %e, "could not refresh the stream registry");
                }
                last_refresh = Some(Instant::now());
            }
            let claim = last_claim.elapsed() >= self.cfg.claim_every;
            if claim {
                last_claim = Instant::now();
            }
            let dead_check = last_dead_check.elapsed() >= self.cfg.dead_check_every;
            if dead_check {
                last_dead_check = Instant::now();
            }
            let pause = match self.pass(claim, dead_check).await {
                // A full batch means a backlog: go again at once.
                Ok(n) if n as u64 >= self.cfg.batch_size => {
                    failures = 0;
                    continue;
                }
                // Otherwise wait a little, so that under a steady stream each commit carries
                // many rows instead of a handful (Postgres CPU is shared with the hot path).
                Ok(_) => {
                    failures = 0;
                    self.cfg.idle
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, failures, "drain pass failed");
                    (self.cfg.idle * 2u32.saturating_pow(failures.min(10))).min(MAX_BACKOFF)
                }
            };
            poll::pause(&shutdown, pause).await;
        }
        heartbeat.abort();
        // Gone now: whatever is still pending under this name is taken over at once.
        let _ = self
            .redis
            .del::<(), _>(self.keys.drain_alive(&self.cfg.consumer))
            .await;
        tracing::info!(consumer = %self.cfg.consumer, "drain stopped");
    }

    /// Re-reads the registry, retires the streams of ended scopes, creates missing groups and
    /// publishes the lag.
    pub async fn refresh(&mut self) -> Result<(), Error> {
        let mut streams = stream::registered(&self.redis, &self.keys).await?;
        // A scope ends once; looking every few seconds is enough, not at every refresh.
        let retire = self.last_retire.is_none_or(|t| t.elapsed() >= RETIRE_EVERY);
        if retire {
            self.last_retire = Some(Instant::now());
        }
        let mut live = Vec::with_capacity(streams.len());
        for s in streams.drain(..) {
            let meta = Keys::meta_of_stream(&s).filter(|_| retire);
            let Some(meta) = meta else {
                live.push(s);
                continue;
            };
            match stream::retire(&self.redis, &self.keys, &s, &meta).await {
                Ok(true) => {
                    tracing::info!(stream = %s, "scope ended and persisted: stream retired");
                    metrics::counter!("issuer_drain_streams_retired_total").increment(1);
                }
                Ok(false) => live.push(s),
                Err(e) => {
                    tracing::warn!(stream = %s, error = %e, "could not check whether the stream can retire");
                    live.push(s);
                }
            }
        }
        let mut streams = Vec::with_capacity(live.len());
        for s in live {
            if !self.streams.contains(&s)
                && let Err(e) = stream::ensure_group(self.redis.next(), &s).await
            {
                // Not a stream (or Redis refused): skipped now, tried again next refresh.
                tracing::warn!(stream = %s, error = %e, "cannot read this stream; skipping it");
                continue;
            }
            streams.push(s);
        }
        streams.sort();
        self.streams = streams;
        issuer::telemetry::record_lag(&stream::total_lag(&self.redis, &self.keys).await?);
        Ok(())
    }

    /// One pass over every stream: takes over the entries of dead consumers (by liveness when
    /// `dead_check`, by idle time when `claim`), retries own pending entries, reads new ones.
    /// Returns how many entries were persisted; fails only when every stream failed.
    pub async fn pass(&mut self, claim: bool, dead_check: bool) -> Result<usize, Error> {
        let (mut done, mut failed, mut last_error) = (0, 0, None);
        let streams = self.streams.clone();
        for s in &streams {
            match self.drain_stream(s, claim, dead_check).await {
                Ok(n) => done += n,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(stream = %s, error = %e, "draining a stream failed; the others go on");
                    metrics::counter!("issuer_drain_stream_failures_total").increment(1);
                    last_error = Some(e);
                }
            }
        }
        match last_error {
            Some(e) if failed == streams.len() => Err(e),
            _ => Ok(done),
        }
    }

    async fn drain_stream(&mut self, s: &str, claim: bool, dead_check: bool) -> Result<usize, Error> {
        let client = self.redis.next().clone();
        let client = &client;
        let consumer = self.cfg.consumer.clone();
        let (consumer, count) = (consumer.as_str(), self.cfg.batch_size);
        let mut done = 0;
        if dead_check {
            for (other, _) in stream::consumers_with_pending(client, s).await? {
                if other == consumer || client.exists::<i64, _>(self.keys.drain_alive(&other)).await? == 1 {
                    continue;
                }
                let claimed = stream::claim_from(client, s, &other, consumer, count).await?;
                if !claimed.is_empty() {
                    tracing::warn!(stream = s, dead = %other, entries = claimed.len(), "took over the entries of a dead consumer");
                    metrics::counter!("issuer_drain_claimed_total").increment(claimed.len() as u64);
                }
                done += self.persist(s, claimed).await?;
            }
        }
        if claim {
            let idle = self.cfg.claim_idle.as_millis() as u64;
            let claimed = match stream::claim_idle(client, s, consumer, idle, count).await {
                Err(e) if stream::is_missing_group(&e) => Vec::new(),
                other => other?,
            };
            if !claimed.is_empty() {
                tracing::warn!(
                    stream = s,
                    entries = claimed.len(),
                    "claimed entries of a dead consumer"
                );
                metrics::counter!("issuer_drain_claimed_total").increment(claimed.len() as u64);
            }
            done += self.persist(s, claimed).await?;
            let forget = self.cfg.forget_idle.as_millis() as u64;
            let forgotten = stream::forget_idle_consumers(client, s, forget).await?;
            if forgotten > 0 {
                tracing::info!(stream = s, consumers = forgotten, "removed idle consumer names");
            }
        }
        let read = if self.own_pending.contains(s) {
            stream::read_own_pending(client, s, consumer, count).await
        } else {
            stream::read_new(client, s, consumer, count).await
        };
        let entries = match read {
            Err(e) if stream::is_missing_group(&e) => {
                // The stream (and its group) vanished, e.g. after a Redis restart.
                stream::ensure_group(client, s).await?;
                return Ok(done);
            }
            other => other?,
        };
        if entries.is_empty() {
            self.own_pending.remove(s);
        }
        done += self.persist(s, entries).await?;
        Ok(done)
    }

    /// Commits the records, then acknowledges them.
    async fn persist(&mut self, s: &str, entries: Vec<Entry>) -> Result<usize, Error> {
        if entries.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let (mut tickets, mut coupons) = (Vec::new(), Vec::new());
        for entry in entries {
            let record = entry.record.and_then(|r| {
                let issued_at = clock::from_ms(r.issued_at_ms);
                match r.issue_id {
                    IssueId::Uuid(ticket_id) => tickets.push(NewTicket {
                        ticket_id,
                        event_key: r.scope,
                        user_id: r.user_id,
                        issued_at,
                    }),
                    IssueId::Position(seq) => coupons.push(NewCouponIssue {
                        batch_id: r.scope.parse().map_err(|_| "bad batch id".to_owned())?,
                        seq,
                        user_id: r.user_id,
                        issued_at,
                    }),
                }
                Ok(())
            });
            if let Err(why) = record {
                // Only a bug writes such an entry; it can never be persisted, so it is logged
                // with its id and acknowledged rather than retried forever.
                tracing::error!(stream = s, id = %entry.id, why, "unreadable stream entry");
                metrics::counter!("issuer_drain_malformed_total").increment(1);
            }
        }
        if let Err(e) = self.commit(&tickets, &coupons).await {
            self.own_pending.insert(s.to_owned());
            return Err(e);
        }
        stream::ack(self.redis.next(), s, &ids).await?;
        metrics::histogram!("issuer_drain_batch_size").record(ids.len() as f64);
        metrics::histogram!("issuer_drain_persist_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("issuer_drain_persisted_total").increment(ids.len() as u64);
        Ok(ids.len())
    }

    async fn commit(&self, tickets: &[NewTicket], coupons: &[NewCouponIssue]) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        tickets::insert_batch(&mut *tx, tickets).await?;
        coupon_issues::insert_batch(&mut tx, coupons).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Keeps `key` alive while the consumer runs: set with an expiry of `ttl`, renewed every quarter
/// of it. Aborted on shutdown; a process that dies stops renewing and the key expires.
async fn heartbeat(redis: Pool, key: String, ttl: Duration) {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(4);
    loop {
        let set: Result<(), _> = redis
            .set(&key, "1", Some(fred::types::Expiration::PX(ms)), None, false)
            .await;
        if let Err(e) = set {
            tracing::warn!(error = %e, "drain heartbeat failed");
        }
        tokio::time::sleep(ttl / 4).await;
    }
}
