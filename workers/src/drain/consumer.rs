//! One drain consumer: reads its share of every stream, writes it, acknowledges it (see the
//! module above for the whole design).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use engine::{
    Keys,
    confirm::Connection,
    stream::{self, Entry, IssueRecord},
};
use fred::{clients::Pool, interfaces::KeysInterface, types::Expiration};
use issuance_core::Error;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{
    registry::Streams,
    write::{self, Write},
};
use crate::{config::DrainConfig, poll};

/// Batches of one stream written in a row, each read while the one before commits, before the
/// other streams get their turn.
const READ_AHEAD_ROUNDS: u32 = 16;

/// Longest pause after repeated failures. Short, so that issues answered while Redis or
/// Postgres was away are persisted (and visible) within a second of its return: a failed pass
/// costs one refused connection attempt.
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// What one pass did.
#[derive(Clone, Copy, Debug, Default)]
struct Pass {
    /// Records persisted.
    persisted: usize,
    /// Whether some stream had more than one read took: go again at once.
    more: bool,
}

/// One consumer of the drain group.
pub(super) struct Consumer {
    redis: Pool,
    db: PgPool,
    keys: Keys,
    cfg: DrainConfig,
    /// Its name in the group: the process's, with its index.
    name: String,
    /// The first consumer of a process also takes over the entries of dead consumers and
    /// forgets the names of long-gone ones.
    caretaker: bool,
    /// Where this consumer starts its passes, so that consumers of one process do not walk the
    /// streams in step.
    offset: usize,
    streams: Streams,
    /// Streams where this consumer holds entries it read but could not commit.
    own_pending: HashSet<String>,
    /// The next read size of each stream.
    read_sizes: HashMap<String, u64>,
}

impl Consumer {
    /// The `index`th consumer of this process.
    pub(super) fn new(
        index: usize,
        redis: Pool,
        db: PgPool,
        keys: Keys,
        cfg: DrainConfig,
        streams: Streams,
    ) -> Self {
        Self {
            name: format!("{}.{index}", cfg.consumer),
            caretaker: index == 0,
            offset: index,
            redis,
            db,
            keys,
            cfg,
            streams,
            own_pending: HashSet::new(),
            read_sizes: HashMap::new(),
        }
    }

    /// Runs until `shutdown`; a pass under way finishes (or leaves its entries pending) first.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(consumer = %self.name, "drain consumer started");
        let alive = self.keys.drain_alive(&self.name);
        let heartbeat = tokio::spawn(heartbeat(self.redis.clone(), alive.clone(), self.cfg.heartbeat));
        let mut last_claim = Instant::now();
        let mut last_dead_check = Instant::now();
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let claim = self.caretaker && last_claim.elapsed() >= self.cfg.claim_every;
            if claim {
                last_claim = Instant::now();
            }
            let dead_check = self.caretaker && last_dead_check.elapsed() >= self.cfg.dead_check_every;
            if dead_check {
                last_dead_check = Instant::now();
            }
            let pause = match self.pass(claim, dead_check).await {
                // A backlog: go again at once.
                Ok(p) if p.more => {
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
                    // Every failure at first, then one in a hundred (four a second at most).
                    if failures <= 3 || failures.is_multiple_of(100) {
                        tracing::error!(consumer = %self.name, error = %e, failures, "drain pass failed");
                    }
                    (self.cfg.idle.max(Duration::from_millis(10)) * 2u32.saturating_pow(failures.min(10)))
                        .min(MAX_BACKOFF)
                }
            };
            poll::pause(&shutdown, pause).await;
        }
        heartbeat.abort();
        // Gone now: whatever is still pending under this name is taken over at once.
        let _ = self.redis.del::<(), _>(alive).await;
        tracing::info!(consumer = %self.name, "drain consumer stopped");
    }

    /// One pass over every stream: takes over the entries of dead consumers (by liveness when
    /// `dead_check`, by idle time when `claim`), retries own pending entries, reads new ones.
    /// Fails only when every stream failed.
    async fn pass(&mut self, claim: bool, dead_check: bool) -> Result<Pass, Error> {
        let streams = self.streams.borrow().clone();
        let (mut pass, mut failed, mut last_error) = (Pass::default(), 0, None);
        for i in 0..streams.len() {
            let s = &streams[(i + self.offset) % streams.len()];
            match self.drain_stream(s, claim, dead_check).await {
                Ok(p) => {
                    pass.persisted += p.persisted;
                    pass.more |= p.more;
                }
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
            _ => Ok(pass),
        }
    }

    async fn drain_stream(&mut self, s: &str, claim: bool, dead_check: bool) -> Result<Pass, Error> {
        let client = self.redis.next().clone();
        let client = &client;
        let me = self.name.clone();
        let me = me.as_str();
        let max = self.cfg.batch_max;
        let mut pass = Pass::default();
        if dead_check {
            for (other, _) in stream::consumers_with_pending(client, s).await? {
                if other == me || client.exists::<i64, _>(self.keys.drain_alive(&other)).await? == 1 {
                    continue;
                }
                let claimed = stream::claim_from(client, s, &other, me, max).await?;
                pass.persisted += self.persist_taken_over(s, claimed, &other).await?;
            }
        }
        if claim {
            let idle = self.cfg.claim_idle.as_millis() as u64;
            let claimed = match stream::claim_idle(client, s, me, idle, max).await {
                Err(e) if stream::is_missing_group(&e) => Vec::new(),
                other => other?,
            };
            pass.persisted += self.persist_taken_over(s, claimed, "idle entries").await?;
            let forget = self.cfg.forget_idle.as_millis() as u64;
            let forgotten = stream::forget_idle_consumers(client, s, forget).await?;
            if forgotten > 0 {
                tracing::info!(stream = s, consumers = forgotten, "removed idle consumer names");
            }
        }
        let retry = self.own_pending.contains(s);
        let mut size = self.read_size(s);
        let read = if retry {
            stream::read_own_pending(client, s, me, size).await
        } else {
            stream::read_new(client, s, me, size).await
        };
        let mut entries = match read {
            Err(e) if stream::is_missing_group(&e) => {
                // The stream (and its group) vanished, e.g. after a Redis restart.
                stream::ensure_group(client, s).await?;
                return Ok(pass);
            }
            Err(e) => {
                // Redis may have handed the entries over before the answer was lost.
                self.own_pending.insert(s.to_owned());
                return Err(e);
            }
            Ok(entries) => entries,
        };
        if entries.is_empty() {
            self.own_pending.remove(s);
        }
        let write = if retry { Write::Replay } else { Write::Fresh };
        // A backlog: while one batch commits, the next is read (up to READ_AHEAD_ROUNDS
        // batches, then the other streams get their turn).
        for round in 1.. {
            let found = entries.len() as u64;
            let next_size = next_read_size(size, found, &self.cfg);
            self.read_sizes.insert(s.to_owned(), next_size);
            let full = found == size;
            if !full || retry || round >= READ_AHEAD_ROUNDS {
                pass.more = full;
                pass.persisted += self.persist_or_keep(s, entries, write).await?;
                break;
            }
            let (persisted, next) = tokio::join!(
                self.persist(s, entries, write),
                stream::read_new(client, s, me, next_size)
            );
            if next.is_err() {
                self.own_pending.insert(s.to_owned());
            }
            pass.persisted += self.kept_on_failure(s, persisted)?;
            entries = next?;
            size = next_size;
        }
        Ok(pass)
    }

    /// Persists entries taken over from a dead consumer (`from`: its name, or how they were
    /// found), as a replay.
    async fn persist_taken_over(&mut self, s: &str, claimed: Vec<Entry>, from: &str) -> Result<usize, Error> {
        if !claimed.is_empty() {
            tracing::warn!(
                stream = s,
                from,
                entries = claimed.len(),
                "took over the entries of a dead consumer"
            );
            metrics::counter!("issuer_drain_claimed_total").increment(claimed.len() as u64);
        }
        self.persist_or_keep(s, claimed, Write::Replay).await
    }

    /// [`Self::persist`], remembering a failure so the entries are read again.
    async fn persist_or_keep(&mut self, s: &str, entries: Vec<Entry>, write: Write) -> Result<usize, Error> {
        let persisted = self.persist(s, entries, write).await;
        self.kept_on_failure(s, persisted)
    }

    /// After a failed commit the entries stay pending under this consumer: its next pass reads
    /// them again (with everything read ahead) before any new ones.
    fn kept_on_failure(&mut self, s: &str, persisted: Result<usize, Error>) -> Result<usize, Error> {
        if persisted.is_err() {
            self.own_pending.insert(s.to_owned());
        }
        persisted
    }

    fn read_size(&self, s: &str) -> u64 {
        self.read_sizes.get(s).copied().unwrap_or(self.cfg.batch_min)
    }

    /// Commits the records, then acknowledges them.
    async fn persist(&self, s: &str, entries: Vec<Entry>, write: Write) -> Result<usize, Error> {
        if entries.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        self.confirm_replicated(s).await?;
        let (ids, records): (Vec<String>, Vec<_>) = entries.into_iter().map(|e| (e.id, e.records)).unzip();
        let records = readable(s, &ids, records);
        write::commit(&self.db, &records, write).await?;
        stream::ack(self.redis.next(), s, &ids).await?;
        metrics::histogram!("issuer_drain_batch_size").record(records.len() as f64);
        metrics::histogram!("issuer_drain_persist_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("issuer_drain_persisted_total").increment(records.len() as u64);
        Ok(records.len())
    }

    /// Replica mode: waits until the replicas of stream `s`'s server hold everything written
    /// to it so far, so also every entry about to be committed (a replica promoted later has
    /// them). Marking the scope as drained first is a write on that server (the mark shares
    /// the stream's hash tag, so on a Redis Cluster too), which brings the connection's
    /// replication offset up to the server's; `WAIT` then waits for that offset there.
    async fn confirm_replicated(&self, s: &str) -> Result<(), Error> {
        let Some(confirm) = self.cfg.confirm else {
            return Ok(());
        };
        let Some(mark) = Keys::drained_of_stream(s) else {
            return Err(Error::protocol(
                "stream registry",
                format!("not a stream key: {s}"),
            ));
        };
        let client = self.redis.next();
        let connection = Connection::of(client, s);
        let _: () = client
            .set(
                mark.as_str(),
                self.name.as_str(),
                Some(Expiration::PX(60_000)),
                None,
                false,
            )
            .await?;
        confirm.wait(client, &connection).await
    }
}

/// The read size after a read of `size` that found `found` entries: doubled after a full read,
/// otherwise twice what was found; within the configured bounds.
fn next_read_size(size: u64, found: u64, cfg: &DrainConfig) -> u64 {
    let next = if found >= size { size * 2 } else { found * 2 };
    next.clamp(cfg.batch_min, cfg.batch_max)
}

/// The records of stream `s` that can be read, from entries with their ids beside them. An
/// entry that cannot be read is logged and left out (it is acknowledged with the others rather
/// than retried forever: only a bug writes one).
fn readable(s: &str, ids: &[String], entries: Vec<Result<Vec<IssueRecord>, String>>) -> Vec<IssueRecord> {
    ids.iter()
        .zip(entries)
        .filter_map(|(id, records)| match records {
            Ok(records) => Some(records),
            Err(why) => {
                tracing::error!(stream = s, id = %id, why, "unreadable stream entry");
                metrics::counter!("issuer_drain_malformed_total").increment(1);
                None
            }
        })
        .flatten()
        .collect()
}

/// Keeps `key` alive while the consumer runs: set with an expiry of `ttl`, renewed every quarter
/// of it. Aborted on shutdown; a process that dies stops renewing and the key expires.
async fn heartbeat(redis: Pool, key: String, ttl: Duration) {
    loop {
        if let Err(e) = renew_alive(&redis, &key, ttl).await {
            tracing::warn!(error = %e, "drain heartbeat failed");
        }
        tokio::time::sleep(ttl / 4).await;
    }
}

/// Sets a consumer's liveness key `key` to expire in `ttl` (at least 4 ms, so a quarter of it is
/// a pause), through `redis` (the pool, or the one client that must make the write).
async fn renew_alive<R: KeysInterface + Sync>(redis: &R, key: &str, ttl: Duration) -> Result<(), Error> {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(4);
    let _: () = redis.set(key, "1", Some(Expiration::PX(ms)), None, false).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_with_the_backlog_and_shrink_with_the_trickle() {
        let cfg = DrainConfig {
            batch_min: 500,
            batch_max: 20_000,
            ..DrainConfig::default()
        };
        assert_eq!(next_read_size(500, 500, &cfg), 1_000);
        assert_eq!(next_read_size(16_000, 16_000, &cfg), 20_000);
        assert_eq!(next_read_size(20_000, 20_000, &cfg), 20_000);
        assert_eq!(next_read_size(20_000, 3_000, &cfg), 6_000);
        assert_eq!(next_read_size(6_000, 10, &cfg), 500);
        assert_eq!(next_read_size(500, 0, &cfg), 500);
    }
}
