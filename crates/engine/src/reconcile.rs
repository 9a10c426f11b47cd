//! A scope's Redis copy against Postgres, holder by holder, and its repair.
//!
//! After an incident (a Redis restart or failover in a mode that can lose writes, keys deleted
//! by hand) an operator wants to know, per scope: which users Postgres says hold an issue that
//! Redis does not know (Redis is behind: without a rebuild it could hand their position or their
//! quantity out again), and which users Redis says hold one that Postgres lacks — either still
//! on their way (their record is in the stream, the drain will write them) or lost on the way
//! (no record left: an answer nobody will persist). [`Engine::reconcile`] reports both;
//! [`Engine::repair`] runs the rebuild ([`Engine::rebuild`]) at once, which merges the Postgres
//! holders into Redis and writes the records of the lost ones to the stream again.

use std::collections::{HashMap, HashSet};

use fred::interfaces::HashesInterface;
use futures::TryStreamExt;
use issuance_core::{error::Error, ids::EventKey};

use crate::{
    engine::Engine,
    scope::{Scope, shards_of},
    script::Lua,
    stream,
};

/// Users listed per kind of difference, at most (the counts are always complete).
pub const SAMPLE: usize = 10;

/// How one scope's Redis copy compares with Postgres.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeReport {
    /// Whether Redis has the scope's meta at all; without it the next decision rebuilds the
    /// copy from Postgres anyway, and the holder counts below compare with what is left.
    pub loaded: bool,
    /// Holders in Postgres.
    pub postgres: usize,
    /// Holders in Redis.
    pub redis: usize,
    /// Users Postgres says hold an issue that Redis does not know (a sample, and how many).
    pub missing_in_redis: Differences,
    /// Users Redis says hold an issue that Postgres lacks and whose record is still in the
    /// stream: the drain will write them.
    pub in_flight: usize,
    /// Users Redis says hold an issue that Postgres lacks, with no record left to write them.
    pub missing_in_postgres: Differences,
    /// Users both know with different issue ids.
    pub differ: Differences,
    /// What Postgres has reserved for the scope's copy (`scope_reservations.reserved`).
    pub reserved: i64,
    /// Units counted as issued that nobody holds: reserved before a loss of Redis and never
    /// answered, or answered and lost with it (the copy's `gap`). They are never issued again.
    pub stranded: i64,
}

impl ScopeReport {
    /// Whether the copy disagrees with Postgres beyond issues on their way.
    pub fn broken(&self) -> bool {
        self.missing_in_redis.count + self.missing_in_postgres.count + self.differ.count > 0
    }
}

/// Users of one kind of difference: how many, and the first [`SAMPLE`] of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Differences {
    /// How many.
    pub count: usize,
    /// Some of them, for the operator to look up.
    pub users: Vec<i64>,
}

impl Differences {
    fn add(&mut self, user: i64) {
        self.count += 1;
        if self.users.len() < SAMPLE {
            self.users.push(user);
        }
    }
}

impl Engine {
    /// Every scope Postgres knows: each golden-ticket event and each first-come coupon batch,
    /// or each bucket of one spread over several.
    pub async fn scopes(&self) -> Result<Vec<Scope>, Error> {
        let mut scopes = Vec::new();
        let sharded: HashMap<String, i16> = store::ticket_events::sharded(self.db())
            .await?
            .into_iter()
            .collect();
        for (event, _) in store::invariants::tickets_per_event(self.db()).await? {
            let key = EventKey::parse(&event)?;
            scopes.extend(Scope::Ticket(key).copies(shards_of(sharded.get(&event))));
        }
        let batches: Vec<i64> = store::invariants::coupons_per_batch(self.db())
            .await?
            .into_iter()
            .map(|(batch, _)| batch)
            .collect();
        let sharded: HashMap<i64, i16> = store::coupon_batches::sharded(self.db(), &batches)
            .await?
            .into_iter()
            .collect();
        for batch in batches {
            scopes.extend(Scope::Coupon(batch).copies(shards_of(sharded.get(&batch))));
        }
        Ok(scopes)
    }

    /// Compares `scope`'s holders in Redis with its rows in Postgres (see the module doc).
    pub async fn reconcile(&self, scope: &Scope) -> Result<ScopeReport, Error> {
        let keys = scope.keys(self.keys());
        let client = self.redis().next();
        let (ver, gap): (Option<String>, Option<i64>) = client.hmget(&keys.meta, vec!["ver", "gap"]).await?;
        let loaded = ver.is_some();
        let reserved = store::scope_reservations::find(self.db(), scope.kind().as_str(), &scope.id())
            .await?
            .map_or(0, |r| r.reserved);
        let redis: HashMap<String, String> = client.hgetall(&keys.holders).await?;
        let redis: HashMap<i64, String> = redis
            .into_iter()
            .filter_map(|(user, value)| {
                let id = value.split_once('|').map_or(value.as_str(), |(id, _)| id);
                Some((user.parse().ok()?, id.to_owned()))
            })
            .collect();
        let mut report = ScopeReport {
            loaded,
            redis: redis.len(),
            reserved,
            stranded: gap.unwrap_or(0),
            ..ScopeReport::default()
        };
        let mut persisted = HashSet::new();
        let mut rows = self.persisted_holders(scope);
        while let Some(row) = rows.try_next().await? {
            report.postgres += 1;
            persisted.insert(row.user_id);
            match redis.get(&row.user_id) {
                None => report.missing_in_redis.add(row.user_id),
                Some(id) if *id != row.issue_id => report.differ.add(row.user_id),
                Some(_) => {}
            }
        }
        let (kind, scope_id) = (scope.kind(), scope.id());
        let on_the_way: HashSet<i64> = stream::unpersisted(client, &keys.stream)
            .await?
            .into_iter()
            .filter_map(|entry| entry.records.ok())
            .flatten()
            .filter(|r| r.kind == kind && r.scope == scope_id)
            .map(|r| r.user_id)
            .collect();
        let mut only_redis: Vec<i64> = redis.keys().copied().filter(|u| !persisted.contains(u)).collect();
        only_redis.sort_unstable();
        for user in only_redis {
            if on_the_way.contains(&user) {
                report.in_flight += 1;
            } else {
                report.missing_in_postgres.add(user);
            }
        }
        Ok(report)
    }

    /// Repairs `scope`'s Redis copy from Postgres now: marks it broken (so no decision is made
    /// on it meanwhile) and rebuilds it, which also queues the records of holders Postgres
    /// lacks again. Reads the scope's rules from Postgres; `Ok(false)` when it no longer exists.
    pub async fn repair(&self, scope: &Scope) -> Result<bool, Error> {
        let Some(rules) = self.current_rules(self.db(), scope).await? else {
            return Ok(false);
        };
        let keys = scope.keys(self.keys());
        let _: i64 = Lua::MarkBroken
            .call(self.redis().next(), vec![keys.meta.as_str()], vec![])
            .await?;
        self.rebuild(scope, &rules, &keys).await?;
        Ok(true)
    }
}
