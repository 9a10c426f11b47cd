//! The issuance-stream drain: Redis streams → Postgres, exactly once in effect.
//!
//! A workers process runs [`DrainConfig::consumers`] consumers ([`consumer`]) and one registry
//! task ([`registry`]). The registry keeps the list of streams (a new scope's stream is found
//! within `refresh_every`), retires the streams of ended scopes and publishes the lag. Every
//! consumer goes over every stream: it reads a batch of new entries through the consumer group
//! `drain` (the group hands each entry to one consumer), writes them in one transaction on its
//! own Postgres connection and only after the commit acknowledges them and trims the stream
//! head. So one hot stream is written by as many transactions at once as there are consumers
//! (in this process and in others), and while one consumer waits for its commit another reads.
//!
//! Writing: entries read for the first time go in with one binary COPY per table (no conflict
//! check per row); should one be in Postgres already (a replay: a consumer that died between its
//! commit and its acknowledgement, a rebuild that queued an entry again), the COPY fails as a
//! whole, the transaction is rolled back and the batch is written again with
//! `INSERT … ON CONFLICT DO NOTHING`, which skips what is there. Entries taken over from another
//! consumer or retried after a failure go that second way at once. A read takes up to
//! `batch_min` entries of a quiet stream; after every full read the size doubles, up to
//! `batch_max`, and it falls back to twice what the last read found: a backlog is written in
//! large transactions, a trickle in small ones within milliseconds. The transactions commit
//! with `synchronous_commit = on` whatever the server's default: an acknowledged entry is gone
//! from Redis, so its row must survive a Postgres crash.
//!
//! Liveness: every consumer keeps a key `drain:alive:<consumer>` with a short expiry
//! (`heartbeat`, 1.5 s) renewed by a task of its own every quarter of it, whatever its passes
//! are doing. Every `dead_check_every` (250 ms) the first consumer of each process looks at the
//! consumers of each stream that hold pending entries; one whose key is gone is dead, and its
//! entries are claimed at once (XCLAIM with no idle minimum) and persisted.
//!
//! What happens on a crash:
//! * before the commit: the entries stay pending under the consumer's name; its liveness key
//!   expires within `heartbeat`, and another consumer claims and persists them (about a second
//!   and a half after the crash). A consumer that stalls without dying (a stopped process)
//!   loses its liveness the same way; if it wakes up and commits too, its COPY fails on the
//!   rows now there and its fallback insert changes nothing. The idle-time claim (`claim_idle`,
//!   XAUTOCLAIM) stays as the fallback.
//! * between commit and acknowledgement: the entries are claimed and inserted again, which
//!   changes nothing.
//! * a process that is gone leaves its consumer names in the group: once one has nothing pending
//!   and has been idle for `forget_idle`, it is removed.
//! * Postgres down: nothing is acknowledged; each consumer re-reads its own pending entries on
//!   its next pass and retries, backing off.
//!
//! A stream that fails (a broken key, a record Postgres refuses) is logged and skipped for the
//! pass; the others are drained. Streams of scopes whose window has ended and that are fully
//! persisted are trimmed empty and leave the registry (`retire_stream.lua`), so neither a pass
//! nor a `/metrics` scrape grows with every scope ever created.
//!
//! Fence: a batch read from a Redis history that a rebuild has since replaced is dropped, not
//! committed behind the rebuild's back ([`write`]).
//!
//! Lag (entries not yet persisted, and the age of the oldest) is published as
//! `issuer_stream_lag_entries` and `issuer_stream_lag_seconds`, and per scope as
//! `issuer_scope_lag_entries{scope}` and `issuer_scope_lag_seconds{scope}`.

mod consumer;
mod registry;
pub mod write;

use engine::Keys;
use fred::clients::Pool;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::DrainConfig;

/// The drain of one process: its consumers and its registry task.
pub struct Drain {
    redis: Pool,
    db: PgPool,
    keys: Keys,
    cfg: DrainConfig,
}

impl Drain {
    /// A drain over these connections.
    pub fn new(redis: Pool, db: PgPool, keys: Keys, cfg: DrainConfig) -> Self {
        Self { redis, db, keys, cfg }
    }

    /// Runs until `shutdown`; passes under way finish (or leave their entries pending) first.
    pub async fn run(self, shutdown: CancellationToken) {
        let (registry, streams) = registry::Registry::new(self.redis.clone(), self.keys.clone(), &self.cfg);
        let mut tasks = vec![tokio::spawn(registry.run(shutdown.clone()))];
        for index in 0..self.cfg.consumers.max(1) {
            let consumer = consumer::Consumer::new(
                index,
                self.redis.clone(),
                self.db.clone(),
                self.keys.clone(),
                self.cfg.clone(),
                streams.clone(),
            );
            tasks.push(tokio::spawn(consumer.run(shutdown.clone())));
        }
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a drain task ended abnormally");
            }
        }
    }
}
