//! This process's copy of its waiting rooms, so that polls are answered without Redis (see
//! [`crate::admission`]): each room's names ([`RoomLayout`], made once per cached copy of the
//! scope's rules), its counts as the last `room.lua` call saw them ([`RoomSnapshot`], used for
//! [`SNAPSHOT_TTL`]), and each user's join index ([`Known`]).
//!
//! Plain maps under locks, sharded by user: a poll made three lookups in bounded moka caches,
//! whose bookkeeping (access order, idle expiry, pending tasks) cost a poll more than the
//! lookups. Each map is bounded and emptied when full; what is lost only sends a poll to Redis.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use issuance_core::admission::Seed;

/// How long a poll may be answered from this process's copy of a room's counts.
pub const SNAPSHOT_TTL: Duration = Duration::from_millis(100);

/// Most rooms remembered.
const ROOMS_MAX: usize = 10_000;
/// Shards of the users' places.
const SHARDS: usize = 32;
/// Most places remembered per shard (a million in all).
const PLACES_PER_SHARD: usize = 1_000_000 / SHARDS;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The names of a scope's waiting room: its tag, its seed, and its keys in `room.lua`'s order.
pub(crate) struct RoomLayout {
    /// `gt:<event key>`, `cb:<batch id>`: what the seed and passes are bound to.
    pub(crate) tag: Arc<str>,
    /// The tag as a number, for this process's maps.
    pub(crate) id: u64,
    /// The shuffle's seed.
    pub(crate) seed: Seed,
    /// room, queue, passes, meta, holders, steps, used.
    pub(crate) keys: Vec<String>,
    /// The scope's stream (the sold-out memory's key).
    pub(crate) stream: String,
}

impl std::fmt::Debug for RoomLayout {
    // The seed stays secret until the start: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomLayout")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// A number for a room's tag: a 64-bit hash, the same in every process and run.
pub(crate) fn room_id(tag: &str) -> u64 {
    let mut h = foldhash::quality::FixedState::with_seed(0x726f_6f6d).build_hasher();
    h.write(tag.as_bytes());
    h.finish()
}

/// A room's counts as one `room.lua` call saw them.
#[derive(Clone, Copy)]
pub(crate) struct RoomSnapshot {
    pub(crate) joined: i64,
    pub(crate) npre: i64,
    pub(crate) admitted: i64,
    pub(crate) at_ms: i64,
    pub(crate) now_ms: i64,
    pub(crate) taken: Instant,
    pub(crate) sold_out: bool,
    /// The cap's bound on the admitted count (-1: no cap).
    pub(crate) limit: i64,
}

/// A user's place as one `room.lua` call saw it.
#[derive(Clone, Copy)]
pub(crate) struct Known {
    pub(crate) index: i64,
    pub(crate) joined_at_ms: i64,
    pub(crate) expiry_ms: i64,
    pub(crate) holds: bool,
}

/// The copy: rooms' counts and users' places.
pub struct RoomMemory {
    rooms: RwLock<FastMap<u64, RoomSnapshot>>,
    places: Vec<RwLock<FastMap<(u64, i64), Known>>>,
}

impl Default for RoomMemory {
    fn default() -> Self {
        Self {
            rooms: RwLock::default(),
            places: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

impl RoomMemory {
    /// The room's counts, if taken within [`SNAPSHOT_TTL`].
    pub(crate) fn snapshot(&self, room: u64) -> Option<RoomSnapshot> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms
            .get(&room)
            .filter(|s| s.taken.elapsed() < SNAPSHOT_TTL)
            .copied()
    }

    /// Keeps the room's counts.
    pub(crate) fn keep_snapshot(&self, room: u64, snapshot: RoomSnapshot) {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        if rooms.len() >= ROOMS_MAX && !rooms.contains_key(&room) {
            rooms.clear();
        }
        rooms.insert(room, snapshot);
    }

    /// Forgets the room's counts (its state changed).
    pub(crate) fn forget_snapshot(&self, room: u64) {
        self.rooms
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&room);
    }

    fn shard(&self, user: i64) -> &RwLock<FastMap<(u64, i64), Known>> {
        &self.places[user.rem_euclid(SHARDS as i64) as usize]
    }

    /// The user's place in the room, if known.
    pub(crate) fn place(&self, room: u64, user: i64) -> Option<Known> {
        let shard = self.shard(user).read().unwrap_or_else(|e| e.into_inner());
        shard.get(&(room, user)).copied()
    }

    /// Keeps the user's place.
    pub(crate) fn keep_place(&self, room: u64, user: i64, known: Known) {
        let mut shard = self.shard(user).write().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= PLACES_PER_SHARD && !shard.contains_key(&(room, user)) {
            shard.clear();
        }
        shard.insert((room, user), known);
    }

    /// Sets the expiry of the user's pass in a place already known.
    pub(crate) fn keep_expiry(&self, room: u64, user: i64, expiry_ms: i64) {
        let mut shard = self.shard(user).write().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = shard.get_mut(&(room, user)) {
            known.expiry_ms = expiry_ms;
        }
    }

    /// Forgets the user's place (they are not in the room).
    pub(crate) fn forget_place(&self, room: u64, user: i64) {
        let mut shard = self.shard(user).write().unwrap_or_else(|e| e.into_inner());
        shard.remove(&(room, user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(index: i64) -> Known {
        Known {
            index,
            joined_at_ms: 0,
            expiry_ms: 0,
            holds: false,
        }
    }

    #[test]
    fn places_are_kept_per_room_and_user_and_bounded() {
        let memory = RoomMemory::default();
        let (a, b) = (room_id("gt:a"), room_id("gt:b"));
        assert_ne!(a, b);
        memory.keep_place(a, 7, known(3));
        assert_eq!(memory.place(a, 7).map(|k| k.index), Some(3));
        assert!(memory.place(b, 7).is_none());
        memory.keep_expiry(a, 7, 99);
        assert_eq!(memory.place(a, 7).map(|k| k.expiry_ms), Some(99));
        memory.forget_place(a, 7);
        assert!(memory.place(a, 7).is_none());
        // One shard full is emptied before it grows past its bound.
        for i in 0..=PLACES_PER_SHARD as i64 {
            memory.keep_place(a, i * SHARDS as i64, known(i));
        }
        assert!(memory.shard(0).read().unwrap().len() <= PLACES_PER_SHARD);
    }

    #[test]
    fn a_snapshot_is_used_for_its_ttl_only() {
        let memory = RoomMemory::default();
        let snap = |taken| RoomSnapshot {
            joined: 1,
            npre: 0,
            admitted: 0,
            at_ms: 0,
            now_ms: 0,
            taken,
            sold_out: false,
            limit: -1,
        };
        memory.keep_snapshot(1, snap(Instant::now()));
        assert!(memory.snapshot(1).is_some());
        memory.keep_snapshot(2, snap(Instant::now() - SNAPSHOT_TTL));
        assert!(memory.snapshot(2).is_none());
        memory.forget_snapshot(1);
        assert!(memory.snapshot(1).is_none());
    }
}
