//! The waiting room's pure parts: its settings, the fair order of the pre-queue, and the pass.
//!
//! * **Order.** Everyone who joined before the start is placed at the start in an order drawn
//!   from a seed per scope: the `i`-th to join (from 0) takes slot [`Shuffle::slot`]`(i)` of the
//!   `n` who joined before the start. The order is computed on read, never written. The seed is
//!   a keyed hash of the scope under `CODE_SECRET`, so it survives any loss of Redis, and is
//!   revealed once the start has passed, so anyone can recompute the order from it.
//! * **Pass.** A short-lived, signed right to issue: `<expires at, epoch ms>.<tag>`, the tag a
//!   128-bit SipHash-1-3 of scope, user and expiry under a key derived from `CODE_SECRET`. It is
//!   checked in memory, with no Redis or Postgres round trip.

use std::hash::Hasher;

use chrono::{DateTime, Utc};
use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

/// The request header that carries a pass.
pub const PASS_HEADER: &str = "x-admission-pass";

/// Feistel rounds of the shuffle; four already make a strong pseudo-random permutation.
const ROUNDS: u64 = 6;

/// The admin's live control of a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateState {
    /// Admits at the configured rate.
    Running,
    /// Admits nobody; joins and polls go on.
    Paused,
    /// Admits nobody and takes no new joins; those admitted keep their passes.
    Closed,
}

impl GateState {
    /// As Postgres and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            GateState::Running => "RUNNING",
            GateState::Paused => "PAUSED",
            GateState::Closed => "CLOSED",
        }
    }

    /// From [`GateState::as_str`]; anything else is running (the column's check allows no other).
    pub fn parse(s: &str) -> Self {
        match s {
            "PAUSED" => GateState::Paused,
            "CLOSED" => GateState::Closed,
            _ => GateState::Running,
        }
    }
}

/// A room that is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    /// From when users may join; those who join before the scope's start are shuffled.
    pub prequeue_opens_at: DateTime<Utc>,
    /// Admissions per second.
    pub admit_per_second: i32,
    /// How long a pass lasts.
    pub pass_ttl_seconds: i32,
    /// Most passes given and neither used nor expired; `None`: no cap.
    pub max_unused_passes: Option<i32>,
    /// The live control.
    pub state: GateState,
}

impl Gate {
    /// The room a row's admission columns describe, when it is on and complete.
    pub fn from_columns(
        enabled: bool,
        prequeue_opens_at: Option<DateTime<Utc>>,
        admit_per_second: Option<i32>,
        pass_ttl_seconds: Option<i32>,
        max_unused_passes: Option<i32>,
        state: &str,
    ) -> Option<Self> {
        if !enabled {
            return None;
        }
        Some(Self {
            prequeue_opens_at: prequeue_opens_at?,
            admit_per_second: admit_per_second?,
            pass_ttl_seconds: pass_ttl_seconds?,
            max_unused_passes: max_unused_passes.filter(|&m| m > 0),
            state: GateState::parse(state),
        })
    }
}

/// The waiting room's settings as an admin gives them; each `None` stays as it is (or, on
/// creation, unset). Switching the room on needs all of them set, given now or before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionFields {
    /// On or off.
    pub enabled: Option<bool>,
    /// From when users may join.
    pub prequeue_opens_at: Option<DateTime<Utc>>,
    /// 1..=1,000,000.
    pub admit_per_second: Option<i32>,
    /// 1..=86,400.
    pub pass_ttl_seconds: Option<i32>,
    /// 0..=1,000,000; 0 is no cap.
    pub max_unused_passes: Option<i32>,
}

impl AdmissionFields {
    /// Checks each given field on its own.
    pub fn new(
        enabled: Option<bool>,
        prequeue_opens_at: Option<DateTime<Utc>>,
        admit_per_second: Option<i64>,
        pass_ttl_seconds: Option<i64>,
        max_unused_passes: Option<i64>,
    ) -> Result<Self, crate::error::Error> {
        if admit_per_second.is_some_and(|r| !(1..=MAX_ADMIT_PER_SECOND).contains(&r)) {
            return Err(crate::error::Error::Invalid(
                "admitPerSecond must be between 1 and 1000000".into(),
            ));
        }
        if pass_ttl_seconds.is_some_and(|t| !(1..=MAX_PASS_TTL_SECONDS).contains(&t)) {
            return Err(crate::error::Error::Invalid(
                "passTtlSeconds must be between 1 and 86400".into(),
            ));
        }
        if max_unused_passes.is_some_and(|m| !(0..=MAX_UNUSED_PASSES).contains(&m)) {
            return Err(crate::error::Error::Invalid(
                "maxUnusedPasses must be between 0 (no cap) and 1000000".into(),
            ));
        }
        // All fit in i32: checked above.
        Ok(Self {
            enabled,
            prequeue_opens_at,
            admit_per_second: admit_per_second.map(|r| r as i32),
            pass_ttl_seconds: pass_ttl_seconds.map(|t| t as i32),
            max_unused_passes: max_unused_passes.map(|m| m as i32),
        })
    }

    /// What a room switched on without all of its settings is told.
    pub const INCOMPLETE: &'static str =
        "admission needs prequeueOpensAt, admitPerSecond and passTtlSeconds to be enabled";

    /// On creation: switched on only with all of its settings.
    pub fn check_complete(&self) -> Result<(), crate::error::Error> {
        if self.enabled == Some(true)
            && (self.prequeue_opens_at.is_none()
                || self.admit_per_second.is_none()
                || self.pass_ttl_seconds.is_none())
        {
            return Err(crate::error::Error::Invalid(Self::INCOMPLETE.into()));
        }
        Ok(())
    }

    /// The pre-queue, when given, opens at or before the scope's start (`start_name`, as the
    /// API names it: an event's `startAt`, a batch's `validFromAt`).
    pub fn check_opening(&self, start: DateTime<Utc>, start_name: &str) -> Result<(), crate::error::Error> {
        if self.prequeue_opens_at.is_some_and(|at| at > start) {
            return Err(crate::error::Error::Invalid(format!(
                "prequeueOpensAt must not be after {start_name}"
            )));
        }
        Ok(())
    }

    /// Whether nothing is given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Largest admission rate.
pub const MAX_ADMIT_PER_SECOND: i64 = 1_000_000;
/// Longest pass.
pub const MAX_PASS_TTL_SECONDS: i64 = 86_400;
/// Largest cap on unused passes.
pub const MAX_UNUSED_PASSES: i64 = 1_000_000;

/// Why a pass does not let its bearer through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassError {
    /// No pass.
    Missing,
    /// Forged, of another user or scope, malformed, or expired.
    Invalid,
}

/// The keys of the room: the pass key and the seed key, both derived from one secret.
#[derive(Clone)]
pub struct AdmissionKeys {
    pass: (u64, u64),
    seed: (u64, u64),
}

impl std::fmt::Debug for AdmissionKeys {
    // The keys never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionKeys").finish_non_exhaustive()
    }
}

fn sip_bytes(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(k0, k1);
    h.write(bytes);
    h.finish()
}

impl AdmissionKeys {
    /// Keys derived from `secret` under fixed domain keys of their own (distinct from the
    /// coupon codes').
    pub fn new(secret: &str) -> Self {
        Self::derived(
            sip_bytes(0x0072_6f6f_6d30, 9, secret.as_bytes()),
            sip_bytes(0x0072_6f6f_6d31, 10, secret.as_bytes()),
        )
    }

    /// Keys derived from a root key pair (the coupon codes' round key: see
    /// [`crate::code_generator::CodeGenerator::admission_keys`]).
    pub fn derived(k0: u64, k1: u64) -> Self {
        let s = [k0.to_le_bytes(), k1.to_le_bytes()].concat();
        Self {
            pass: (
                sip_bytes(0x0070_6173_7330, 11, &s),
                sip_bytes(0x0070_6173_7331, 12, &s),
            ),
            seed: (
                sip_bytes(0x0073_6565_6430, 13, &s),
                sip_bytes(0x0073_6565_6431, 14, &s),
            ),
        }
    }

    /// The seed of a scope's shuffle (`scope` as `gt:<event key>`).
    pub fn seed(&self, scope: &str) -> Seed {
        let (k0, k1) = self.seed;
        Seed {
            k0: sip_bytes(k0, k1, format!("{scope}|0").as_bytes()),
            k1: sip_bytes(k0, k1, format!("{scope}|1").as_bytes()),
        }
    }

    fn tag(&self, scope: &str, user: i64, expires_ms: i64) -> u128 {
        let mut h = SipHasher13x128::new_with_keys(self.pass.0, self.pass.1);
        h.write(scope.as_bytes());
        h.write(b"|");
        h.write(&user.to_le_bytes());
        h.write(&expires_ms.to_le_bytes());
        h.finish128().as_u128()
    }

    /// A pass for `user` on `scope`, valid until `expires_ms`.
    pub fn sign(&self, scope: &str, user: i64, expires_ms: i64) -> String {
        format!("{expires_ms}.{:032x}", self.tag(scope, user, expires_ms))
    }

    /// Checks `pass` for `user` on `scope` at `now_ms`.
    pub fn verify(&self, scope: &str, user: i64, pass: Option<&str>, now_ms: i64) -> Result<(), PassError> {
        let pass = pass.ok_or(PassError::Missing)?;
        let (expires, tag) = pass.split_once('.').ok_or(PassError::Invalid)?;
        let expires_ms: i64 = expires.parse().map_err(|_| PassError::Invalid)?;
        if tag.len() != 32 {
            return Err(PassError::Invalid);
        }
        let tag = u128::from_str_radix(tag, 16).map_err(|_| PassError::Invalid)?;
        // Compared whole (a u128 compare): no early exit on the first differing byte to time.
        if tag != self.tag(scope, user, expires_ms) || expires_ms <= now_ms {
            return Err(PassError::Invalid);
        }
        Ok(())
    }
}

/// When `pass` (as [`AdmissionKeys::sign`] makes it) expires, read without checking it.
pub fn pass_expiry(pass: &str) -> Option<i64> {
    pass.split_once('.')?.0.parse().ok()
}

/// The secret of one scope's shuffle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed {
    k0: u64,
    k1: u64,
}

impl Seed {
    /// As revealed: 32 hex digits, `k0` then `k1`.
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.k0, self.k1)
    }

    /// From [`Seed::hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        Some(Self {
            k0: u64::from_str_radix(&s[..16], 16).ok()?,
            k1: u64::from_str_radix(&s[16..], 16).ok()?,
        })
    }

    /// The order of a pre-queue of `size`.
    pub fn shuffle(self, size: u64) -> Shuffle {
        let bits = 64 - size.saturating_sub(1).leading_zeros();
        Shuffle {
            seed: self,
            size,
            half: bits.div_ceil(2).max(1),
        }
    }
}

/// A permutation of `0..size`: a balanced Feistel network on `2 × half` bits whose round
/// function is SipHash-1-3 under the seed of the round number and the right half (each as a
/// little-endian u64, the low `half` bits kept), walked again while it lands at or past `size`.
#[derive(Clone, Copy, Debug)]
pub struct Shuffle {
    seed: Seed,
    size: u64,
    half: u32,
}

impl Shuffle {
    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half) - 1;
        let (mut left, mut right) = (x >> self.half, x & mask);
        for round in 0..ROUNDS {
            let mut h = SipHasher13::new_with_keys(self.seed.k0, self.seed.k1);
            h.write(&round.to_le_bytes());
            h.write(&right.to_le_bytes());
            let f = h.finish() & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half) | right
    }

    /// The slot of the `index`-th to join (both from 0, below the size).
    pub fn slot(&self, index: u64) -> u64 {
        debug_assert!(index < self.size);
        let mut x = self.feistel(index);
        while x >= self.size {
            x = self.feistel(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shuffle_is_a_permutation_of_every_size() {
        let seed = AdmissionKeys::new("secret").seed("gt:e");
        for size in [1u64, 2, 3, 7, 64, 65, 1000, 4097] {
            let shuffle = seed.shuffle(size);
            let mut slots: Vec<u64> = (0..size).map(|i| shuffle.slot(i)).collect();
            slots.sort_unstable();
            assert_eq!(slots, (0..size).collect::<Vec<_>>(), "size {size}");
        }
    }

    #[test]
    fn the_order_depends_on_the_seed_and_reads_back_from_its_hex() {
        let keys = AdmissionKeys::new("secret");
        let (a, b) = (keys.seed("gt:a"), keys.seed("gt:b"));
        let order = |s: Seed| (0..100).map(|i| s.shuffle(100).slot(i)).collect::<Vec<_>>();
        assert_ne!(order(a), order(b));
        assert_ne!(order(a), (0..100).collect::<Vec<_>>(), "not the arrival order");
        assert_eq!(Seed::from_hex(&a.hex()), Some(a));
        assert_eq!(order(Seed::from_hex(&a.hex()).unwrap()), order(a));
    }

    #[test]
    fn a_pass_is_bound_to_its_user_scope_expiry_and_key() {
        let keys = AdmissionKeys::new("secret");
        let pass = keys.sign("gt:e", 7, 2_000);
        assert_eq!(keys.verify("gt:e", 7, Some(&pass), 1_999), Ok(()));
        assert_eq!(
            keys.verify("gt:e", 7, Some(&pass), 2_000),
            Err(PassError::Invalid),
            "expired"
        );
        assert_eq!(
            keys.verify("gt:e", 8, Some(&pass), 1_000),
            Err(PassError::Invalid),
            "another user"
        );
        assert_eq!(
            keys.verify("gt:f", 7, Some(&pass), 1_000),
            Err(PassError::Invalid),
            "another scope"
        );
        let longer = pass.replacen("2000", "9000", 1);
        assert_eq!(
            keys.verify("gt:e", 7, Some(&longer), 1_000),
            Err(PassError::Invalid),
            "expiry moved"
        );
        let other = AdmissionKeys::new("other").sign("gt:e", 7, 2_000);
        assert_eq!(
            keys.verify("gt:e", 7, Some(&other), 1_000),
            Err(PassError::Invalid),
            "another key"
        );
        assert_eq!(keys.verify("gt:e", 7, None, 1_000), Err(PassError::Missing));
        for junk in ["", ".", "2000.", "x.y", "2000.zz"] {
            assert_eq!(
                keys.verify("gt:e", 7, Some(junk), 1_000),
                Err(PassError::Invalid),
                "{junk:?}"
            );
        }
    }
}
