//! Per-process memory that keeps the hot path off Postgres and, after a sell-out, off Redis.
//!
//! * [`RulesCache`]: a scope's rules (an event, a coupon batch) for a short TTL (default 1 s). A
//!   change made through this process invalidates its entry at once; other processes see it
//!   within the TTL. Loads run one per key at a time (different keys load in parallel), so the
//!   first second of an opening costs one query, not thousands; while one runs, callers holding
//!   a stale entry keep using it. When Postgres cannot be reached, a scope whose rules were
//!   loaded keeps being served from its last copy for up to the stale limit (default an hour):
//!   the script enforces the rules from Redis anyway, so issuing goes on through a database
//!   outage. Scopes that exist are bounded by the rows in Postgres and dropped when nobody asked
//!   for them within the stale limit; misses, which any client can make up, live [`MISS_TTL`]
//!   in a bounded cache.
//! * [`KeyedLocks`]: one async lock per key, forgotten when idle, so work on one scope (a load,
//!   a rebuild) runs once at a time without making other scopes wait.
//! * [`SoldOutBook`]: scopes this process has seen sold out, with the sorted ids of their
//!   holders once loaded. A sell-out lasts until the rules change (holders never leave; a raised
//!   quantity, seen in rules fresh within the TTL, ends it), so the flood after it is
//!   answered here: a holder still goes to Redis for their ticket,
//!   everyone else gets the refusal the check order gives (inactive, not in period, sold out).
//!   Scopes larger than the configured bound keep asking Redis, to bound memory; entries nobody
//!   asked about for one to two [`SOLD_OUT_IDLE`] periods are dropped.
//!
//! Nothing here is a source of truth: losing it (a restart) only costs a few queries.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use issuance_core::clock;
use moka::sync::Cache;

use crate::{
    blocks::Blocks,
    group_commit::QueueCell,
    keys::ScopeKeys,
    scope::{Rules, Scope},
};

/// A map by scope key on the hot path, hashed with foldhash rather than SipHash (a few hundred
/// instructions a lookup less): the keys are those of scopes that exist (their number is bounded
/// by Postgres rows), so a client can look up any key it likes but cannot insert the colliding
/// keys that SipHash's resistance is for.
pub(crate) type FastMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// How long "no such scope" is remembered: short, so a scope created on another process is
/// found soon, and a flood of unknown keys costs a bounded number of queries per key.
pub const MISS_TTL: Duration = Duration::from_millis(200);
/// Sold-out entries nobody asked about for this long are dropped (their scope has ended).
pub const SOLD_OUT_IDLE: Duration = Duration::from_secs(600);

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
    /// Its reservation blocks in this process, looked up on the first issue of this copy: the
    /// lookup (a moka read) cost an issue about a thousand instructions.
    pub(crate) blocks: OnceLock<Arc<Blocks>>,
    /// Its group-commit queue in this process, found on its first issue.
    pub(crate) queue: QueueCell,
    /// Its waiting room's names, made on the room's first call with this copy (a poll made a
    /// dozen key names before).
    pub(crate) room: OnceLock<Arc<crate::room_memory::RoomLayout>>,
    /// The buckets of an event spread over several (see [`crate::leases`]), in bucket order;
    /// empty when the scope is its own single copy.
    pub parts: Vec<Part>,
    /// What its buckets' leases last found, taken at its word for a moment (see
    /// [`crate::leases`]).
    pub(crate) findings: Findings,
    /// Set once a lease ahead found the pool empty: from then on only a bucket that runs dry
    /// leases (taking back from the others), so the end of a sale costs no transaction per issue.
    pub(crate) pool_empty: Arc<std::sync::atomic::AtomicBool>,
}

/// What a scope's leases found that holds for a while, so that the flood after it costs no
/// Postgres transaction per request: nothing left anywhere (sold out), or today's share of the
/// daily limit all leased and issued. Each is an epoch ms, 0 for never; a finding stands for
/// [`FINDING_STANDS_MS`], a daily one only within its KST day. Nothing left of units or of the
/// daily limit but what is on its way to a bucket stands for as long as the caller waits before
/// it asks again.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    sold_out_at: AtomicU64,
    day_full_at: AtomicU64,
    /// Nothing left but stock on its way to a bucket: of units, of the daily limit.
    on_the_way_at: [AtomicU64; 2],
}

/// How long a lease's finding stands (ms).
pub(crate) const FINDING_STANDS_MS: u64 = 1_000;

impl Findings {
    /// Whether a lease found nothing left anywhere less than [`FINDING_STANDS_MS`] before
    /// `now_ms`.
    pub(crate) fn sold_out(&self, now_ms: u64) -> bool {
        stands(self.sold_out_at.load(Ordering::Relaxed), now_ms)
    }

    /// Whether a lease found today's share of the daily limit all leased and issued less than
    /// [`FINDING_STANDS_MS`] before `now_ms`, the same KST day.
    pub(crate) fn day_full(&self, now_ms: u64) -> bool {
        let at = self.day_full_at.load(Ordering::Relaxed);
        stands(at, now_ms) && clock::kst_day(at as i64) == clock::kst_day(now_ms as i64)
    }

    /// Whether a lease found nothing left of units (of the daily limit: `daily`) but what is on
    /// its way to a bucket less than `within_ms` before `now_ms`.
    pub(crate) fn on_the_way(&self, daily: bool, now_ms: u64, within_ms: u64) -> bool {
        let at = self.on_the_way_at[usize::from(daily)].load(Ordering::Relaxed);
        at != 0 && now_ms.saturating_sub(at) < within_ms
    }

    /// Records that a lease found nothing left of units (of the daily limit: `daily`) but what
    /// is on its way to a bucket at `at_ms`.
    pub(crate) fn found_on_the_way(&self, daily: bool, at_ms: u64) {
        self.on_the_way_at[usize::from(daily)].store(at_ms, Ordering::Relaxed);
    }

    /// Records that a lease found nothing left anywhere at `at_ms`.
    pub(crate) fn found_sold_out(&self, at_ms: u64) {
        self.sold_out_at.store(at_ms, Ordering::Relaxed);
    }

    /// Records that a lease found today's share all leased and issued at `at_ms`.
    pub(crate) fn found_day_full(&self, at_ms: u64) {
        self.day_full_at.store(at_ms, Ordering::Relaxed);
    }
}

/// Whether a finding made at `at_ms` (0: none) still stands at `now_ms`.
fn stands(at_ms: u64, now_ms: u64) -> bool {
    at_ms != 0 && now_ms.saturating_sub(at_ms) < FINDING_STANDS_MS
}

/// One bucket of a scope spread over several: its own copy in Redis.
#[derive(Debug)]
pub struct Part {
    /// The bucket.
    pub scope: Scope,
    /// Its keys.
    pub keys: ScopeKeys,
    /// Its lease blocks in this process, looked up on its first issue (see [`Cached::blocks`]).
    pub(crate) blocks: OnceLock<Arc<Blocks>>,
    /// Its group-commit queue in this process (see [`Cached::queue`]).
    pub(crate) queue: QueueCell,
}

impl Clone for Part {
    fn clone(&self) -> Self {
        Part {
            scope: self.scope.clone(),
            keys: self.keys.clone(),
            blocks: self.blocks.get().cloned().map(OnceLock::from).unwrap_or_default(),
            queue: self.queue.clone(),
        }
    }
}

impl Part {
    /// The parts of the buckets `scopes`, keyed under `keys`.
    pub fn all(scopes: Vec<Scope>, keys: &crate::keys::Keys) -> Vec<Part> {
        scopes
            .into_iter()
            .map(|scope| Part {
                keys: scope.keys(keys),
                scope,
                blocks: OnceLock::new(),
                queue: QueueCell::default(),
            })
            .collect()
    }
}

impl<T> Cached<T> {
    /// The copy that decides `user`'s issue: the scope's own, or the user's bucket's, with its
    /// index among [`Cached::parts`] and its group-commit queue.
    pub fn copy_for(&self, user: i64) -> (&Scope, &ScopeKeys, Option<usize>, &QueueCell) {
        if self.parts.is_empty() {
            return (&self.scope, &self.keys, None, &self.queue);
        }
        let index = usize::from(crate::scope::bucket_of(user, self.parts.len() as u16));
        let part = &self.parts[index];
        (&part.scope, &part.keys, Some(index), &part.queue)
    }
}

/// A scope held, with the two instants that decide what a lookup makes of it, kept as
/// deadlines so that a lookup compares instants (an elapsed time taken twice cost an issue
/// request about 110 instructions).
struct Slot<T> {
    /// Fresh until then: one TTL after Postgres was last asked (successfully or not).
    fresh_until: Instant,
    /// Usable until then: the stale limit after this copy was read from Postgres.
    usable_until: Instant,
    scope: Option<Arc<Cached<T>>>,
}

/// `d` after `at`, or as far as an instant reaches when that overflows (a limit so long it never
/// passes).
fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(at)
}

/// What the cache knows of a key.
pub enum Lookup<T> {
    /// Fresh: use it (`None` = known not to exist).
    Fresh(Option<Arc<Cached<T>>>),
    /// Expired but usable while someone reloads it, or while Postgres is away.
    Stale(Option<Arc<Cached<T>>>),
    /// Never loaded (or forgotten).
    Missing,
}

/// Scopes by key, for a short TTL (see the module doc).
///
/// Scopes that exist sit in a plain map behind a read-write lock — their number is bounded by
/// the rows in Postgres, which no client can grow — so a lookup on the hot path costs what a
/// `HashMap` read does; entries not reloaded within the stale limit are swept out. Misses are
/// the part a client controls (any key can be asked for), so they live in a bounded moka cache
/// with TinyLFU admission and a [`MISS_TTL`] expiry.
pub struct RulesCache<T> {
    ttl: Duration,
    stale_max: Duration,
    found: RwLock<FastMap<Slot<T>>>,
    last_sweep: std::sync::Mutex<Instant>,
    missing: Cache<String, Instant>,
    /// One load per key at a time.
    locks: KeyedLocks,
}

/// One async lock per key; a lock nobody took for `idle` is forgotten (the next caller gets a
/// fresh one), so the map does not grow with every key ever locked.
pub struct KeyedLocks {
    locks: Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

impl KeyedLocks {
    /// At most `capacity` locks, each forgotten after `idle` unused.
    pub fn new(capacity: u64, idle: Duration) -> Self {
        Self {
            locks: Cache::builder().max_capacity(capacity).time_to_idle(idle).build(),
        }
    }

    /// The lock of `key`.
    pub fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .get_with(key.to_owned(), || Arc::new(tokio::sync::Mutex::new(())))
    }
}

impl<T: Send + Sync + 'static> RulesCache<T> {
    /// A cache whose entries are fresh for `ttl`, served stale for up to `stale_max` when
    /// Postgres is away, with at most `capacity` misses (and load locks) remembered.
    pub fn new(ttl: Duration, stale_max: Duration, capacity: u64) -> Self {
        Self {
            ttl,
            stale_max: stale_max.max(ttl),
            found: RwLock::default(),
            last_sweep: std::sync::Mutex::new(Instant::now()),
            missing: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(MISS_TTL)
                .build(),
            // A lock only coalesces loads that overlap; one idle for a second has done its job.
            locks: KeyedLocks::new(capacity.min(10_000), Duration::from_secs(1)),
        }
    }

    /// What the cache holds for `key`.
    pub fn lookup(&self, key: &str) -> Lookup<T> {
        if let Some(slot) = self.found.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            // One clock read for both deadlines (each read cost an issue request about 90
            // instructions).
            let now = Instant::now();
            if now >= slot.usable_until {
                return Lookup::Missing;
            }
            return if now < slot.fresh_until {
                Lookup::Fresh(slot.scope.clone())
            } else {
                Lookup::Stale(slot.scope.clone())
            };
        }
        match self.missing.get(key) {
            Some(checked) if checked.elapsed() < MISS_TTL => Lookup::Fresh(None),
            _ => Lookup::Missing,
        }
    }

    /// The lock that serializes loads of `key`.
    pub(crate) fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.get(key)
    }

    /// Stores what was loaded for `key`.
    pub fn put(&self, key: &str, scope: Option<Arc<Cached<T>>>) {
        let now = Instant::now();
        match scope {
            Some(scope) => {
                self.missing.invalidate(key);
                let mut found = self.found.write().unwrap_or_else(|e| e.into_inner());
                found.insert(
                    key.to_owned(),
                    Slot {
                        fresh_until: after(now, self.ttl),
                        usable_until: after(now, self.stale_max),
                        scope: Some(scope),
                    },
                );
                self.sweep(&mut found);
            }
            None => {
                self.found.write().unwrap_or_else(|e| e.into_inner()).remove(key);
                self.missing.insert(key.to_owned(), now);
            }
        }
    }

    /// Drops scopes not reloaded within the stale limit (nobody asked for them), at most once a
    /// minute.
    fn sweep(&self, found: &mut FastMap<Slot<T>>) {
        let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < Duration::from_secs(60) {
            return;
        }
        let now = Instant::now();
        *last = now;
        found.retain(|_, slot| now < slot.usable_until);
    }

    /// Keeps serving the copy of `key` after a failed reload, without asking again for one TTL.
    pub(crate) fn keep(&self, key: &str) {
        if let Some(slot) = self.found.write().unwrap_or_else(|e| e.into_inner()).get_mut(key) {
            slot.fresh_until = after(Instant::now(), self.ttl);
        }
    }

    /// Forgets `key`, after a change made through this process.
    pub fn invalidate(&self, key: &str) {
        self.found.write().unwrap_or_else(|e| e.into_inner()).remove(key);
        self.missing.invalidate(key);
    }

    /// Keys held now.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.missing.run_pending_tasks();
        self.found.read().unwrap_or_else(|e| e.into_inner()).len() as u64 + self.missing.entry_count()
    }
}

/// The sold-out memory of one scope.
#[derive(Debug, Default)]
pub struct SoldOut {
    /// The version of the rules it sold out under: any later change of the rules (a raised
    /// quantity among them) ends this memory, and the next answer from Redis decides again.
    version: i64,
    /// Sorted user ids of every holder, once loaded.
    holders: OnceLock<Vec<i64>>,
    /// Asked about since the book's last sweep ([`SoldOutBook::mark`]).
    used: AtomicBool,
}

impl SoldOut {
    /// Whether the sell-out still holds under rules of `version` (not changed since).
    pub fn holds_at(&self, version: i64) -> bool {
        version <= self.version
    }

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

/// Most sold-out scopes remembered at once.
const SOLD_OUT_MAX: usize = 10_000;

/// Scopes this process has seen sold out (bounded; idle entries dropped when a new one comes).
#[derive(Default)]
pub struct SoldOutBook {
    scopes: RwLock<FastMap<Arc<SoldOut>>>,
    /// When idle scopes were last dropped (`None`: never).
    swept: std::sync::Mutex<Option<Instant>>,
}

impl SoldOutBook {
    /// The entry of a sold-out scope.
    pub fn get(&self, key: &str) -> Option<Arc<SoldOut>> {
        let scopes = self.scopes.read().unwrap_or_else(|e| e.into_inner());
        let entry = scopes.get(key)?;
        // A flag, not a time: every answer of a sold-out flood comes here, and reading the
        // clock cost more than the rest of the lookup. Written only when it changes, so the
        // flood's threads do not take the line from one another.
        if !entry.used.load(Ordering::Relaxed) {
            entry.used.store(true, Ordering::Relaxed);
        }
        Some(Arc::clone(entry))
    }

    /// Marks `key` sold out; returns the new entry when this call created it (so exactly one
    /// caller loads the holders). Scopes idle for [`SOLD_OUT_IDLE`] are dropped first; when
    /// [`SOLD_OUT_MAX`] are still remembered, the new one is not (its requests keep asking
    /// Redis).
    pub fn mark(&self, key: &str, version: i64) -> Option<Arc<SoldOut>> {
        self.mark_at(key, version, Instant::now())
    }

    /// [`SoldOutBook::mark`] at `now`. At most once per [`SOLD_OUT_IDLE`] it drops the scopes
    /// nobody asked about since the sweep before, so a scope is dropped after one to two idle
    /// periods without a question.
    fn mark_at(&self, key: &str, version: i64, now: Instant) -> Option<Arc<SoldOut>> {
        if self.get(key).is_some() {
            return None;
        }
        let mut scopes = self.scopes.write().unwrap_or_else(|e| e.into_inner());
        if scopes.contains_key(key) {
            return None;
        }
        let mut swept = self.swept.lock().unwrap_or_else(|e| e.into_inner());
        match *swept {
            Some(at) if now.saturating_duration_since(at) < SOLD_OUT_IDLE => {}
            Some(_) => {
                scopes.retain(|_, e| e.used.swap(false, Ordering::Relaxed));
                *swept = Some(now);
            }
            None => *swept = Some(now),
        }
        drop(swept);
        if scopes.len() >= SOLD_OUT_MAX {
            return None;
        }
        let entry = Arc::new(SoldOut {
            version,
            used: AtomicBool::new(true),
            ..SoldOut::default()
        });
        scopes.insert(key.to_owned(), Arc::clone(&entry));
        Some(entry)
    }

    /// Forgets a sell-out (its rules changed).
    pub fn forget(&self, key: &str) {
        self.scopes.write().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_stands_a_second_and_a_full_day_only_its_own_kst_day() {
        const DAY: u64 = 86_400_000;
        // 100 ms before a KST midnight (15:00 UTC).
        let at = 20_000 * DAY - 9 * 3_600_000 - 100;
        let findings = Findings::default();
        assert!(
            !findings.sold_out(at) && !findings.day_full(at),
            "nothing found yet"
        );
        findings.found_sold_out(at);
        findings.found_day_full(at);
        assert!(findings.sold_out(at + 50) && findings.day_full(at + 50));
        assert!(findings.sold_out(at + 200), "a sell-out outlives the day");
        assert!(!findings.day_full(at + 200), "a new KST day has a new share");
        assert!(
            !findings.sold_out(at + FINDING_STANDS_MS),
            "a second later, asked again"
        );
    }

    fn cached() -> Arc<Cached<()>> {
        let scope = Scope::Coupon(1);
        Arc::new(Cached {
            detail: (),
            keys: scope.keys(&crate::keys::Keys::new("")),
            blocks: OnceLock::new(),
            queue: QueueCell::default(),
            room: OnceLock::new(),
            parts: Vec::new(),
            findings: Default::default(),
            pool_empty: Default::default(),
            scope,
            rules: Rules {
                version: 1,
                total: 1,
                daily: None,
                start: chrono::Utc::now(),
                end: chrono::Utc::now(),
                active: true,
            },
        })
    }

    #[test]
    fn unknown_keys_do_not_grow_the_cache_without_bound() {
        let cache: RulesCache<()> = RulesCache::new(Duration::from_secs(1), Duration::from_secs(60), 1_000);
        cache.put("hot", Some(cached()));
        for _ in 0..5 {
            assert!(matches!(cache.lookup("hot"), Lookup::Fresh(Some(_))));
        }
        for i in 0..50_000 {
            cache.put(&format!("unknown-{i}"), None);
        }
        assert!(
            cache.len() <= 1_000 + 1,
            "misses bounded, plus the one real scope: {}",
            cache.len()
        );
        assert!(
            matches!(cache.lookup("hot"), Lookup::Fresh(Some(_))),
            "the hot key stays"
        );
    }

    #[test]
    fn a_failed_reload_keeps_the_copy_fresh_for_one_ttl() {
        let cache: RulesCache<()> = RulesCache::new(Duration::from_millis(20), Duration::from_secs(60), 100);
        cache.put("k", Some(cached()));
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(cache.lookup("k"), Lookup::Stale(Some(_))));
        cache.keep("k");
        assert!(matches!(cache.lookup("k"), Lookup::Fresh(Some(_))));
    }

    #[test]
    fn a_copy_is_fresh_then_stale_then_missing_and_endless_limits_hold() {
        let cache: RulesCache<()> =
            RulesCache::new(Duration::from_millis(200), Duration::from_millis(600), 100);
        cache.put("k", Some(cached()));
        assert!(matches!(cache.lookup("k"), Lookup::Fresh(Some(_))));
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            matches!(cache.lookup("k"), Lookup::Stale(Some(_))),
            "past its TTL"
        );
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            matches!(cache.lookup("k"), Lookup::Missing),
            "past the stale limit"
        );

        // Limits too long to add to an instant are limits that never pass.
        let endless: RulesCache<()> = RulesCache::new(Duration::MAX, Duration::MAX, 100);
        endless.put("k", Some(cached()));
        endless.keep("k");
        assert!(matches!(endless.lookup("k"), Lookup::Fresh(Some(_))));
    }

    #[test]
    fn a_sold_out_scope_nobody_asks_about_is_dropped_after_one_to_two_idle_periods() {
        let book = SoldOutBook::default();
        let kept = |k: &str| book.scopes.read().unwrap().contains_key(k);
        let t0 = Instant::now();
        assert!(book.mark_at("a", 1, t0).is_some());
        assert!(book.mark_at("b", 1, t0 + SOLD_OUT_IDLE / 2).is_some());
        // A sweep: both were marked since the last one.
        assert!(book.mark_at("c", 1, t0 + SOLD_OUT_IDLE).is_some());
        assert!(kept("a") && kept("b"));
        assert!(book.get("a").is_some());
        // The next sweep: `b` was not asked about since the one before.
        assert!(book.mark_at("d", 1, t0 + SOLD_OUT_IDLE * 2).is_some());
        assert!(kept("a"), "asked about since the sweep before");
        assert!(!kept("b"), "idle since the sweep before");
        assert!(kept("c") && kept("d"), "marked since the sweep before");
    }

    #[test]
    fn sold_out_knows_outsiders_only_after_loading() {
        let book = SoldOutBook::default();
        let entry = book.mark("e", 1).expect("first mark creates");
        assert!(book.mark("e", 1).is_none(), "second mark does not");
        assert_eq!(entry.is_outsider(7), None);
        entry.set_holders(vec![9, 3, 7]);
        assert_eq!(entry.is_outsider(7), Some(false));
        assert_eq!(entry.is_outsider(8), Some(true));
    }
}
