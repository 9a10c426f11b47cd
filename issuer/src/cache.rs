//! Per-process memory that keeps the hot path off Postgres and, after a sell-out, off Redis.
//!
//! * [`RulesCache`]: a scope's rules (an event, a coupon batch) for a short TTL (default 1 s). A
//!   change made through this process invalidates its entry at once; other processes see it
//!   within the TTL. Only one load runs at a time, so the first second of an opening costs one
//!   query, not thousands; while it runs, callers holding a stale entry keep using it.
//! * [`SoldOutBook`]: scopes this process has seen sold out, with the sorted ids of their
//!   holders once loaded. A sell-out is final (the quantity never changes, holders never leave),
//!   so the flood after it is answered here: a holder still goes to Redis for their ticket,
//!   everyone else gets the refusal the check order gives (inactive, not in period, sold out).
//!   Events larger than the configured bound keep asking Redis, to bound memory.
//!
//! Nothing here is a source of truth: losing it (a restart) only costs a few queries.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
    time::{Duration, Instant},
};

use crate::{
    keys::ScopeKeys,
    scope::{Rules, Scope},
};

/// A scope as this process knows it: the row behind it, the rules `issue.lua` enforces, and its
/// Redis keys.
#[derive(Debug)]
pub struct Cached<T> {
    /// The row (an event, a coupon batch with its inventory).
    pub detail: T,
    /// Which scope.
    pub scope: Scope,
    /// Its rules.
    pub rules: Rules,
    /// Its keys.
    pub keys: ScopeKeys,
}

struct Slot<T> {
    loaded: Instant,
    event: Option<Arc<Cached<T>>>,
}

/// What the cache knows of a key.
pub enum Lookup<T> {
    /// Fresh: use it (`None` = known not to exist).
    Fresh(Option<Arc<Cached<T>>>),
    /// Expired but usable while someone reloads it.
    Stale(Option<Arc<Cached<T>>>),
    /// Never loaded.
    Missing,
}

/// Scopes by key, for a short TTL.
pub struct RulesCache<T> {
    ttl: Duration,
    /// Misses are kept for a shorter time, so an event created on another process is found soon.
    miss_ttl: Duration,
    slots: RwLock<HashMap<String, Slot<T>>>,
    /// Held while a load runs; see the module doc.
    pub(crate) loading: tokio::sync::Mutex<()>,
}

impl<T> RulesCache<T> {
    /// A cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            miss_ttl: ttl.min(Duration::from_millis(200)),
            slots: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// What the cache holds for `key`.
    pub fn lookup(&self, key: &str) -> Lookup<T> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        match slots.get(key) {
            None => Lookup::Missing,
            Some(slot) => {
                let ttl = if slot.event.is_some() {
                    self.ttl
                } else {
                    self.miss_ttl
                };
                if slot.loaded.elapsed() < ttl {
                    Lookup::Fresh(slot.event.clone())
                } else {
                    Lookup::Stale(slot.event.clone())
                }
            }
        }
    }

    /// Stores what was loaded for `key`.
    pub fn put(&self, key: &str, event: Option<Arc<Cached<T>>>) {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        slots.insert(
            key.to_owned(),
            Slot {
                loaded: Instant::now(),
                event,
            },
        );
    }

    /// Forgets `key`, after a change made through this process.
    pub fn invalidate(&self, key: &str) {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        slots.remove(key);
    }
}

/// The sold-out memory of one event.
#[derive(Debug, Default)]
pub struct SoldOut {
    /// Sorted user ids of every holder, once loaded.
    holders: OnceLock<Vec<i64>>,
}

impl SoldOut {
    /// Whether `user` is known to hold nothing: `None` until the holders are loaded.
    pub fn is_outsider(&self, user: i64) -> Option<bool> {
        self.holders.get().map(|h| h.binary_search(&user).is_err())
    }

    /// Records the loaded holders.
    pub fn set_holders(&self, mut holders: Vec<i64>) {
        holders.sort_unstable();
        let _ = self.holders.set(holders);
    }
}

/// Scopes this process has seen sold out.
#[derive(Default)]
pub struct SoldOutBook {
    events: RwLock<HashMap<String, Arc<SoldOut>>>,
}

impl SoldOutBook {
    /// The entry of a sold-out event.
    pub fn get(&self, key: &str) -> Option<Arc<SoldOut>> {
        let events = self.events.read().unwrap_or_else(|e| e.into_inner());
        events.get(key).cloned()
    }

    /// Marks `key` sold out; returns the new entry when this call created it (so exactly one
    /// caller loads the holders).
    pub fn mark(&self, key: &str) -> Option<Arc<SoldOut>> {
        if self.get(key).is_some() {
            return None;
        }
        let mut events = self.events.write().unwrap_or_else(|e| e.into_inner());
        if events.contains_key(key) {
            return None;
        }
        let entry = Arc::new(SoldOut::default());
        events.insert(key.to_owned(), entry.clone());
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sold_out_knows_outsiders_only_after_loading() {
        let book = SoldOutBook::default();
        let entry = book.mark("e").expect("first mark creates");
        assert!(book.mark("e").is_none(), "second mark does not");
        assert_eq!(entry.is_outsider(7), None);
        entry.set_holders(vec![9, 3, 7]);
        assert_eq!(entry.is_outsider(7), Some(false));
        assert_eq!(entry.is_outsider(8), Some(true));
    }
}
