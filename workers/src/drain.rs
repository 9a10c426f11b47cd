//! The issuance-stream drain: Redis streams → Postgres, exactly once in effect.
//!
//! Each pass reads up to a batch of new entries from every registered stream through the
//! consumer group `drain`, inserts them in one transaction (`ON CONFLICT DO NOTHING`, so a replay
//! changes nothing; tickets into `tickets`, coupons into `coupon_issues`), and only after the
//! commit acknowledges them and trims the stream head.
//!
//! What happens on a crash:
//! * before the commit: the entries stay pending under this consumer's name; after
//!   `claim_idle` another consumer (or this one restarted under a new name) claims them with
//!   XAUTOCLAIM and persists them.
//! * between commit and acknowledgement: the entries are claimed and inserted again, which
//!   changes nothing.
//! * a process that is gone leaves its consumer name in the group: once it has nothing pending
//!   and has been idle for `forget_idle`, the name is removed.
//! * Postgres down: nothing is acknowledged; this consumer re-reads its own pending entries on
//!   the next pass and retries, backing off.
//!
//! Lag (entries not yet persisted, and the age of the oldest) is published as
//! `issuer_stream_lag_entries` and `issuer_stream_lag_seconds`.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use fred::clients::Pool;
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
        }
    }

    /// Runs until `shutdown`; a pass under way finishes (or leaves its entries pending) first.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(consumer = %self.cfg.consumer, "drain started");
        let mut last_refresh: Option<Instant> = None;
        let mut last_claim = Instant::now();
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
            let pause = match self.pass(claim).await {
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
        tracing::info!(consumer = %self.cfg.consumer, "drain stopped");
    }

    /// Re-reads the registry, creates missing groups and publishes the lag.
    pub async fn refresh(&mut self) -> Result<(), Error> {
        let mut streams = stream::registered(&self.redis, &self.keys).await?;
        streams.sort();
        for s in &streams {
            if !self.streams.contains(s) {
                stream::ensure_group(self.redis.next(), s).await?;
            }
        }
        self.streams = streams;
        issuer::telemetry::record_lag(&stream::total_lag(&self.redis, &self.keys).await?);
        Ok(())
    }

    /// One pass over every stream: claims dead consumers' entries when `claim`, retries own
    /// pending entries, reads new ones. Returns how many entries were persisted.
    pub async fn pass(&mut self, claim: bool) -> Result<usize, Error> {
        let mut done = 0;
        for s in self.streams.clone() {
            done += self.drain_stream(&s, claim).await?;
        }
        Ok(done)
    }

    async fn drain_stream(&mut self, s: &str, claim: bool) -> Result<usize, Error> {
        let client = self.redis.next().clone();
        let client = &client;
        let consumer = self.cfg.consumer.clone();
        let (consumer, count) = (consumer.as_str(), self.cfg.batch_size);
        let mut done = 0;
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
