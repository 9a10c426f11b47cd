//! [`Engine`]: the issuance core as one value that the api holds and clones per request.

use std::{sync::Arc, time::Duration};

use fred::clients::Pool;
use sqlx::PgPool;

use crate::{
    batch::Batchers,
    cache::{RulesCache, SoldOutBook},
    codes::CodeGenerator,
    coupons::CouponBatch,
    keys::Keys,
    model::TicketEvent,
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
    /// How long an order waits for its payment.
    pub order_ttl: Duration,
}

impl EngineOptions {
    /// The default tuning, with the coupon codes of `codes`.
    pub fn new(codes: CodeGenerator) -> Self {
        Self {
            event_cache_ttl: Duration::from_secs(1),
            sold_out_holders_max: 1_000_000,
            issue_calls_in_flight: 4,
            codes,
            order_ttl: Duration::from_secs(300),
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
    pub(crate) batchers: Batchers,
    /// One rebuild of Redis metadata at a time in this process.
    pub(crate) rebuilding: tokio::sync::Mutex<()>,
}

impl Engine {
    /// An engine over these connections.
    pub fn new(redis: Pool, db: PgPool, keys: Keys, options: EngineOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis,
                db,
                keys,
                events: RulesCache::new(options.event_cache_ttl),
                coupons: RulesCache::new(options.event_cache_ttl),
                sold_out: SoldOutBook::default(),
                batchers: Batchers::new(options.issue_calls_in_flight),
                rebuilding: tokio::sync::Mutex::new(()),
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
}
