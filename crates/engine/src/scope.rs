//! An issuance scope: one thing handed out first come, first served, under one set of rules.
//!
//! Golden-ticket events and first-come coupon batches are both scopes. Everything about the
//! decision (quantity, one per user, daily limit, window, on/off, the stream record) is the same
//! for both and lives in `lua/issue.lua` and [`crate::first_come`]; a scope only says where its
//! keys are, what its records are called and how its issues are numbered.

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::{BatchStatus, InventoryStatus, IssueType},
    ids::EventKey,
};
use store::{coupon_batches::CouponBatch, ticket_events::TicketEvent};

use crate::{
    keys::{Keys, ScopeKeys},
    stream::RecordKind,
};

/// Which scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A golden-ticket event.
    Ticket(EventKey),
    /// A first-come coupon batch, by id.
    Coupon(i64),
    /// One bucket of a golden-ticket event spread over `shards` buckets (see
    /// [`crate::leases`]): a Redis copy of its own, deciding for the users that map to it, under
    /// a reservation of its own leased from the event's pool.
    TicketBucket {
        /// The event.
        key: EventKey,
        /// This bucket, `0..shards`.
        bucket: u16,
        /// The event's buckets.
        shards: u16,
    },
    /// One bucket of a first-come coupon batch spread over `shards` buckets: like an event's,
    /// but leasing positions (see [`crate::positions`]).
    CouponBucket {
        /// The batch.
        id: i64,
        /// This bucket, `0..shards`.
        bucket: u16,
        /// The batch's buckets.
        shards: u16,
    },
}

/// How the issues of a scope get their ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdMode {
    /// The caller supplies one per request (a UUIDv7 for tickets).
    Given,
    /// The issue's position in the scope, 0, 1, 2 …: the script numbers them, so positions are
    /// dense and never repeat (coupons take the code at their position).
    Position,
    /// A position the bucket leased (see [`crate::positions`]): the script takes the next one
    /// its lease names and sends it back.
    Leased,
}

impl IdMode {
    /// The script's argument.
    pub fn as_arg(self) -> &'static str {
        match self {
            IdMode::Given => "given",
            IdMode::Position => "position",
            IdMode::Leased => "leased",
        }
    }
}

impl Scope {
    /// The scope's Redis keys.
    pub fn keys(&self, keys: &Keys) -> ScopeKeys {
        match self {
            Scope::Ticket(key) => keys.ticket_event(key.as_str()),
            Scope::Coupon(id) => keys.coupon_batch(*id),
            Scope::TicketBucket { .. } | Scope::CouponBucket { .. } => keys.tagged(&self.tag()),
        }
    }

    /// Its hash tag's name: `gt:<event key>`, `cb:<batch id>` (also what a waiting room's seed
    /// and passes are bound to); a bucket's, `gt:<event key>#<bucket>.<n>` or
    /// `cb:<batch id>#<bucket>.<n>` (see [`bucket_tag`]).
    pub fn tag(&self) -> String {
        match self {
            Scope::Ticket(key) => format!("gt:{key}"),
            Scope::Coupon(id) => format!("cb:{id}"),
            Scope::TicketBucket { key, bucket, shards } => bucket_tag(&format!("gt:{key}"), *bucket, *shards),
            Scope::CouponBucket { id, bucket, shards } => bucket_tag(&format!("cb:{id}"), *bucket, *shards),
        }
    }

    /// The Redis Cluster slot of its keys (they share its hash tag).
    pub fn slot(&self) -> u16 {
        fred::util::redis_keyslot(self.tag().as_bytes())
    }

    /// The kind its stream records carry.
    pub fn kind(&self) -> RecordKind {
        match self {
            Scope::Ticket(_) | Scope::TicketBucket { .. } => RecordKind::Ticket,
            Scope::Coupon(_) | Scope::CouponBucket { .. } => RecordKind::Coupon,
        }
    }

    /// The scope id its stream records carry.
    pub fn id(&self) -> String {
        match self {
            Scope::Ticket(key) => key.to_string(),
            Scope::Coupon(id) => id.to_string(),
            Scope::TicketBucket { key, bucket, .. } => format!("{key}{BUCKET_MARK}{bucket}"),
            Scope::CouponBucket { id, bucket, .. } => format!("{id}{BUCKET_MARK}{bucket}"),
        }
    }

    /// How its issues are numbered.
    pub fn id_mode(&self) -> IdMode {
        match self {
            Scope::Ticket(_) | Scope::TicketBucket { .. } => IdMode::Given,
            Scope::Coupon(_) => IdMode::Position,
            Scope::CouponBucket { .. } => IdMode::Leased,
        }
    }

    /// The buckets of a golden-ticket event spread over `shards` (none for one shard: the event
    /// is its own copy, as it always was).
    pub fn buckets(key: &EventKey, shards: u16) -> Vec<Scope> {
        if shards <= 1 {
            return Vec::new();
        }
        (0..shards)
            .map(|bucket| Scope::TicketBucket {
                key: key.clone(),
                bucket,
                shards,
            })
            .collect()
    }

    /// The buckets of a first-come coupon batch spread over `shards` (none for one shard).
    pub fn coupon_buckets(id: i64, shards: u16) -> Vec<Scope> {
        if shards <= 1 {
            return Vec::new();
        }
        (0..shards)
            .map(|bucket| Scope::CouponBucket { id, bucket, shards })
            .collect()
    }

    /// The Redis copies of a whole event or batch spread over `shards`: its buckets, or itself
    /// (one shard, or a scope of another kind).
    pub fn copies(self, shards: u16) -> Vec<Scope> {
        let buckets = match &self {
            Scope::Ticket(key) => Scope::buckets(key, shards),
            Scope::Coupon(id) => Scope::coupon_buckets(*id, shards),
            _ => Vec::new(),
        };
        match buckets.is_empty() {
            true => vec![self],
            false => buckets,
        }
    }

    /// The scope a bucket belongs to (its event or batch); the scope itself otherwise.
    pub fn whole(&self) -> Scope {
        match self {
            Scope::TicketBucket { key, .. } => Scope::Ticket(key.clone()),
            Scope::CouponBucket { id, .. } => Scope::Coupon(*id),
            other => other.clone(),
        }
    }

    /// Whether this is one bucket of a scope spread over several.
    pub fn is_bucket(&self) -> bool {
        matches!(self, Scope::TicketBucket { .. } | Scope::CouponBucket { .. })
    }

    /// Whether `user`'s issue is decided by this scope's copy: always, but for a bucket, only
    /// for the users that map to it.
    pub fn decides_for(&self, user: i64) -> bool {
        match self {
            Scope::TicketBucket { bucket, shards, .. } | Scope::CouponBucket { bucket, shards, .. } => {
                bucket_of(user, *shards) == *bucket
            }
            _ => true,
        }
    }
}

pub use crate::keys::BUCKET_MARK;

/// The buckets a scope is spread over, from its row's `shards` column when the scope is listed
/// among those spread (see `store::ticket_events::sharded`), at least 1.
pub fn shards_of(shards: Option<&i16>) -> u16 {
    shards.map_or(1, |n| (*n).max(1) as u16)
}

/// The id of the whole scope (the event key, the batch id) of a record's scope id: the scope id
/// itself unless it names a bucket.
pub fn whole_scope_id(scope_id: &str) -> &str {
    scope_id
        .split_once(BUCKET_MARK)
        .map_or(scope_id, |(event, _)| event)
}

/// The bucket `user` maps to among `shards`: a fixed mix of the id (SplitMix64's finaliser),
/// so that consecutive ids spread evenly, and never another for the same user.
pub fn bucket_of(user: i64, shards: u16) -> u16 {
    if shards <= 1 {
        return 0;
    }
    let mut z = (user as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % u64::from(shards)) as u16
}

/// Redis Cluster's slot count.
const SLOTS: u32 = 16_384;

/// The hash tag of bucket `bucket` of `shards` of the scope tagged `whole` (`gt:<event key>`,
/// `cb:<batch id>`): `<whole>#<bucket>.<n>`, with the least `n`
/// whose slot falls in the bucket's share of the slot range (`bucket × 16384 / shards` up to the
/// next bucket's). A cluster whose masters split the slots evenly (as `redis-cli --cluster
/// create` does) so places the buckets on as many different masters as it has, up to `shards`.
fn bucket_tag(whole: &str, bucket: u16, shards: u16) -> String {
    let (shards, bucket) = (u32::from(shards.max(1)), u32::from(bucket));
    let (low, high) = (bucket * SLOTS / shards, (bucket + 1) * SLOTS / shards);
    (0..)
        .map(|n| format!("{whole}{BUCKET_MARK}{bucket}.{n}"))
        .find(|tag| {
            let slot = u32::from(fred::util::redis_keyslot(tag.as_bytes()));
            (low..high).contains(&slot)
        })
        .expect("some suffix lands in every share of the slots")
}

/// What `issue.lua` enforces, as copied into the scope's meta hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Grows with every change of the rows behind it; a stale copy never overwrites a newer one.
    pub version: i64,
    /// The quantity.
    pub total: i64,
    /// Most issues per KST day, if limited.
    pub daily: Option<i64>,
    /// First instant of the window.
    pub start: DateTime<Utc>,
    /// Last instant of the window (inclusive).
    pub end: DateTime<Utc>,
    /// Whether issuing is switched on.
    pub active: bool,
}

impl Rules {
    /// Whether `now` falls inside the window.
    pub fn in_period(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now <= self.end
    }
}

impl From<&TicketEvent> for Rules {
    fn from(e: &TicketEvent) -> Self {
        Self {
            version: e.version,
            total: i64::from(e.total_quantity),
            daily: e.daily_limit.map(i64::from),
            start: e.start_at,
            end: e.end_at,
            active: e.is_active,
        }
    }
}

impl From<&CouponBatch> for Rules {
    /// A batch issues while SELF, READY and its inventory not ended, within its validity cut at
    /// the end of the coupons' usable period (so no coupon is born expired).
    fn from(b: &CouponBatch) -> Self {
        Self {
            version: b.version,
            total: i64::from(b.issue_count),
            daily: b.daily_limit.map(i64::from),
            start: b.valid_from_at,
            end: b.valid_until_at.min(b.usable_until_at),
            active: b.issue_type == IssueType::SelfIssued
                && b.batch_status == BatchStatus::Ready
                && b.inventory_status != InventoryStatus::End,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_keeps_their_bucket_and_buckets_fill_evenly() {
        // Fixed for good: a user's bucket decides where their ticket is.
        assert_eq!(bucket_of(1, 3), bucket_of(1, 3));
        assert_eq!(bucket_of(42, 1), 0);
        let mut counts = [0_u32; 8];
        for user in 1..=80_000 {
            counts[usize::from(bucket_of(user, 8))] += 1;
        }
        for n in counts {
            assert!((9_000..11_000).contains(&n), "uneven buckets: {counts:?}");
        }
    }

    #[test]
    fn bucket_tags_fall_in_their_own_share_of_the_slots() {
        let key = EventKey::parse("opening-2027").unwrap();
        for shards in [2_u16, 3, 8, 16] {
            let slots: Vec<u32> = Scope::buckets(&key, shards)
                .iter()
                .chain(&Scope::coupon_buckets(42, shards))
                .map(|b| u32::from(fred::util::redis_keyslot(b.tag().as_bytes())))
                .collect();
            for (i, slot) in slots.iter().enumerate() {
                let share = *slot * u32::from(shards) / SLOTS;
                let bucket = i % usize::from(shards);
                assert_eq!(share as usize, bucket, "{shards} buckets: slots {slots:?}");
            }
        }
    }

    #[test]
    fn a_bucket_names_its_event() {
        let key = EventKey::parse("e1").unwrap();
        let bucket = &Scope::buckets(&key, 3)[2];
        assert_eq!(bucket.id(), "e1#2");
        assert_eq!(whole_scope_id(&bucket.id()), "e1");
        assert_eq!(whole_scope_id("e1"), "e1");
        assert_eq!(bucket.whole(), Scope::Ticket(key));
        assert!(Scope::buckets(&EventKey::parse("e1").unwrap(), 1).is_empty());
        let coupon = &Scope::coupon_buckets(7, 3)[1];
        assert_eq!((coupon.id().as_str(), whole_scope_id(&coupon.id())), ("7#1", "7"));
        assert_eq!(coupon.whole(), Scope::Coupon(7));
        assert!(coupon.tag().starts_with("cb:7#1."));
        assert_eq!(
            (coupon.kind(), coupon.id_mode()),
            (RecordKind::Coupon, IdMode::Leased)
        );
    }
}
