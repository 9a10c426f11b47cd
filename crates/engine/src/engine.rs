//! [`Engine`]: the issuance core as one value that the api holds and clones per request.

use std::{sync::Arc, time::Duration};

use fred::clients::Pool;
use issuance_core::{admission::AdmissionKeys, code_generator::CodeGenerator, config::Durability};
use sqlx::PgPool;
use store::{coupon_batches::CouponBatch, ticket_events::TicketEvent};

use crate::{
    blocks::{Reservations, ReserveOptions},
    cache::{KeyedLocks, RulesCache, SoldOutBook},
    confirm::Confirm,
    group_commit::GroupCommit,
    keys::Keys,
    room_memory::RoomMemory,
};

/// Tuning of the per-process caches.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How long an event's (or a coupon batch's) rules are reused before Postgres is asked again.
    pub event_cache_ttl: Duration,
    /// Largest sold-out event whose holders are kept in memory to answer the flood locally.
    pub sold_out_holders_max: usize,
    /// `issue.lua` calls in flight per event; requests arriving meanwhile join the next call.
    pub issue_calls_in_flight: usize,
    /// The coupon codes (the same secret as the workers' generation jobs).
    pub codes: CodeGenerator,
    /// The waiting room's pass and seed keys (from the same secret, see [`crate::admission`]).
    pub admission: AdmissionKeys,
    /// How long an order waits for its payment.
    pub order_ttl: Duration,
    /// How long a scope's rules are served from this process's last copy while Postgres cannot
    /// be reached.
    pub rules_stale_max: Duration,
    /// Most scopes (and misses) whose rules this process keeps.
    pub rules_cache_max: u64,
    /// What must hold in Redis before an issue is answered.
    pub durability: Durability,
    /// How far ahead of Redis Postgres reserves (see [`crate::reservations`]).
    pub reserve: ReserveOptions,
}

impl EngineOptions {
    /// The default tuning, with the coupon codes of `codes`.
    pub fn new(codes: CodeGenerator) -> Self {
        Self {
            event_cache_ttl: Duration::from_secs(1),
            sold_out_holders_max: 1_000_000,
            issue_calls_in_flight: 1,
            admission: codes.admission_keys(),
            codes,
            order_ttl: Duration::from_secs(300),
            rules_stale_max: Duration::from_secs(3_600),
            rules_cache_max: 100_000,
            durability: Durability::default(),
            reserve: ReserveOptions::default(),
        }
    }
}

/// Redis, Postgres, key naming and the per-process caches.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) redis: Pool,
    pub(crate) db: PgPool,
    pub(crate) keys: Keys,
    pub(crate) options: EngineOptions,
    pub(crate) events: RulesCache<TicketEvent>,
    pub(crate) coupons: RulesCache<CouponBatch>,
    pub(crate) sold_out: SoldOutBook,
    /// This process's copy of its waiting rooms' counts (see [`crate::admission`]).
    pub(crate) rooms: RoomMemory,
    pub(crate) group_commit: GroupCommit,
    /// Cleared while Redis does not keep what the durability needs (see [`crate::durability`]).
    pub(crate) redis_fit: std::sync::atomic::AtomicBool,
    /// Set by [`Engine::watch_db`] while Postgres does not answer.
    pub(crate) db_down: std::sync::atomic::AtomicBool,
    /// The running events' rows, read at most once per cache TTL.
    pub(crate) running: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Vec<TicketEvent>>)>>,
    /// One rebuild of a scope's Redis copy at a time in this process (per scope).
    pub(crate) rebuilding: KeyedLocks,
    /// Block sizes of the reservations this process makes.
    pub(crate) reservations: Reservations,
}

impl Engine {
    /// An engine over these connections.
    pub fn new(redis: Pool, db: PgPool, keys: Keys, options: EngineOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis,
                db,
                keys,
                events: RulesCache::new(
                    options.event_cache_ttl,
                    options.rules_stale_max,
                    options.rules_cache_max,
                ),
                coupons: RulesCache::new(
                    options.event_cache_ttl,
                    options.rules_stale_max,
                    options.rules_cache_max,
                ),
                sold_out: SoldOutBook::default(),
                rooms: Default::default(),
                group_commit: GroupCommit::new(
                    options.issue_calls_in_flight,
                    Confirm::of(&options.durability),
                ),
                running: tokio::sync::Mutex::new(None),
                db_down: std::sync::atomic::AtomicBool::new(false),
                redis_fit: std::sync::atomic::AtomicBool::new(true),
                rebuilding: KeyedLocks::new(10_000, Duration::from_secs(60)),
                reservations: Reservations::new(options.reserve),
                options,
            }),
        }
    }

    /// The Redis pool.
    pub fn redis(&self) -> &Pool {
        &self.inner.redis
    }

    /// The Postgres pool.
    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    /// The key naming.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The coupon codes.
    pub fn codes(&self) -> &CodeGenerator {
        &self.inner.options.codes
    }

    /// The tuning it was made with.
    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// Whether Postgres is known to be down (see [`Engine::watch_db`]); `false` when not watched.
    pub fn db_down(&self) -> bool {
        self.inner.db_down.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Probes Postgres every `every` (a `SELECT 1` that must answer within a second) and keeps
    /// [`Engine::db_down`] up to date, until the returned task is aborted. While it is down,
    /// routes that need Postgres answer at once and the hot path serves the rules it has
    /// without trying to reload them, instead of every request waiting out the pool's
    /// connection attempts.
    pub fn watch_db(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                let down = !issuance_core::connect::postgres_answers(engine.db()).await;
                let was = engine
                    .inner
                    .db_down
                    .swap(down, std::sync::atomic::Ordering::Relaxed);
                if down != was {
                    if down {
                        tracing::warn!("Postgres does not answer: issuing from Redis and cached rules");
                    } else {
                        tracing::info!("Postgres answers again");
                    }
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}
