//! The waiting room (admission gate) of a scope: a golden-ticket event or a first-come coupon
//! batch.
//!
//! Users join from the pre-queue opening on; everyone who joined before the scope's start (an
//! event's `startAt`, a batch's `validFromAt`) is
//! placed at the start in the order of a keyed shuffle ([`issuance_core::admission`]), later
//! arrivals at the back in arrival order. The room admits `admitPerSecond` a second from the
//! start on (`lua/room.lua` counts the outflow on every call); an admitted user gets a signed
//! pass, which the issue endpoint checks in memory. Nothing per user is written but the join
//! index and, once admitted, the pass's expiry.
//!
//! Settings and the live control (running, paused, closed) live in the scope's row; every room
//! call passes them from this process's rules cache, so a change takes effect everywhere within
//! the cache's TTL. The room's keys share the scope's hash tag.
//!
//! **Polls from memory.** A poll is answered from this process's copy of the room's counts
//! (at most [`crate::room_memory::SNAPSHOT_TTL`] old, the outflow since counted by the same rule as `room.lua`)
//! and of the user's join index, once this process has seen both; otherwise, and for every
//! join, pass and control, `room.lua` is called. The copy is never ahead of Redis: its joined
//! count caps the admissions; once the scope sold out (as the copy or this process's sold-out
//! memory knows) polls go to Redis, which knows who holds an issue; a sell-out this process did
//! not see shows within the copy's age. A user whose index is not below the copy's joined count (the
//! room's keys were lost) is asked about in Redis again.
//!
//! **A Redis loss of the room's keys.** The counts and join indexes are gone: the room starts
//! empty, everyone joins again (at the back, in arrival order, once the start has passed), and
//! the outflow counts from the loss. Passes already given stay valid until they expire (they
//! are checked by signature, not looked up). Nothing about issuing depends on the room: the
//! quantity and one-per-user are `issue.lua`'s, so a loss can never issue more than the
//! quantity nor twice to a user; at worst it admits again someone admitted before, whose second
//! pass gets them the ticket they already hold.

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Utc};
use fred::{
    interfaces::{HashesInterface, SortedSetsInterface},
    types::Value,
};
use issuance_core::{
    admission::{self, AdmissionFields, Gate, GateState, PassError},
    clock,
    enums::IssueType,
    error::{Denial, Error, Missing, Refusal},
    ids::UserId,
};
use store::ticket_events::EventChange;

use crate::{
    engine::Engine,
    issue::IssueId,
    keys::ScopeKeys,
    room_memory::{Known, RoomLayout, RoomSnapshot, room_id},
    scope::Scope,
    script::Lua,
};

/// Shortest and longest poll interval suggested.
const POLL_MIN_MS: i64 = 1_000;
const POLL_MAX_MS: i64 = 30_000;

/// Where a user stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceState {
    /// Joined before the start: the order is drawn at the start.
    Prequeue,
    /// In line.
    Waiting,
    /// Let through: holds a pass (or the issue already).
    Admitted,
    /// The quantity is gone.
    SoldOut,
    /// The room was closed before this user's turn.
    Closed,
}

impl PlaceState {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaceState::Prequeue => "PREQUEUE",
            PlaceState::Waiting => "WAITING",
            PlaceState::Admitted => "ADMITTED",
            PlaceState::SoldOut => "SOLD_OUT",
            PlaceState::Closed => "CLOSED",
        }
    }
}

/// A user's place in a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Where the user stands.
    pub state: PlaceState,
    /// People ahead (while waiting; 0 once admitted; none before the draw or after the end).
    pub position: Option<i64>,
    /// Admitted so far.
    pub admitted: i64,
    /// Joined so far.
    pub joined: i64,
    /// The wait at the configured rate (none while paused, or when not waiting).
    pub eta_seconds: Option<i64>,
    /// When to ask again.
    pub poll_after_ms: i64,
    /// The pass, while admitted and it is valid.
    pub pass: Option<String>,
    /// When the pass expires (also one that has).
    pub pass_expires_at: Option<DateTime<Utc>>,
}

/// The shuffle's seed, once revealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedReveal {
    /// 32 hex digits.
    pub seed: String,
    /// Joined before the start: the shuffled ones.
    pub prequeue_size: i64,
}

/// How to recompute the order from a revealed seed.
pub const SEED_ALGORITHM: &str = "The i-th user to join before the start (i from 0, in join order) takes slot \
     P(i) of the prequeueSize slots; later arrivals follow in arrival order. k0 and k1 are the seed's first and \
     last 16 hex digits as u64. Let h = max(1, ceil(b / 2)) with b the bit length of prequeueSize - 1, and \
     F(r, x) = SipHash-1-3 with keys (k0, k1) of the 8-byte little-endian r followed by the 8-byte \
     little-endian x, masked to h bits. E(x): split x into L = x >> h and R = x & (2^h - 1); for r = 0..5 set \
     (L, R) = (R, L xor F(r, R)); return (L << h) | R. P(i): x = E(i); while x >= prequeueSize, x = E(x).";

/// A scope's room as this process knows it (its rules and names from the cache).
struct Room {
    gate: Gate,
    start: DateTime<Utc>,
    layout: Arc<RoomLayout>,
}

impl RoomLayout {
    fn new(engine: &Engine, scope: &Scope, scope_keys: &ScopeKeys) -> Self {
        let tag = scope.tag();
        let keys = engine.keys().room(&tag);
        Self {
            seed: engine.inner.options.admission.seed(&tag),
            keys: vec![
                keys.room,
                keys.queue,
                keys.passes,
                scope_keys.meta.clone(),
                scope_keys.holders.clone(),
                keys.steps,
                keys.used,
            ],
            stream: scope_keys.stream.clone(),
            id: room_id(&tag),
            tag: tag.into(),
        }
    }
}

/// What a room call asks.
#[derive(Clone, Copy)]
enum Mode {
    Join,
    Place,
}

/// One `room.lua` answer.
struct RoomReply {
    status: String,
    index: i64,
    npre: i64,
    joined: i64,
    admitted: i64,
    now_ms: i64,
    expiry_ms: i64,
    holds: bool,
    sold_out: bool,
    /// When the user joined (0 when not joined).
    joined_at_ms: i64,
    /// This call joined the user.
    fresh: bool,
    /// This call gave up a pass that expired unused.
    forfeit: bool,
    /// The outflow's clock.
    at_ms: i64,
    /// The cap's bound on `admitted` (-1: no cap).
    limit: i64,
}

impl Engine {
    /// Joins `user` to the scope's room (again: the same place); their place.
    pub async fn join_queue(&self, scope: &Scope, user: UserId) -> Result<Place, Error> {
        self.room(scope, user, Mode::Join).await
    }

    /// `user`'s place in the scope's room.
    pub async fn queue_place(&self, scope: &Scope, user: UserId) -> Result<Place, Error> {
        self.room(scope, user, Mode::Place).await
    }

    /// The seed of the scope's shuffle, once the start has passed.
    pub async fn queue_seed(&self, scope: &Scope) -> Result<SeedReveal, Error> {
        let room = self.room_of(scope).await?;
        if Utc::now() < room.start {
            return Err(Error::Refused(Refusal::SeedNotRevealed));
        }
        // One call counts the pre-queue, should nobody have called since the start.
        let reply = self.room_call(&room, UserId::new(1)?, Mode::Place).await?;
        Ok(SeedReveal {
            seed: room.layout.seed.hex(),
            prequeue_size: reply.npre.max(0),
        })
    }

    /// Pauses, resumes or closes the scope's room (admin, as `actor`).
    pub async fn set_gate_state(&self, scope: &Scope, state: GateState, actor: &str) -> Result<(), Error> {
        let room = self.room_of(scope).await?;
        // Count the outflow up to now under the old state, so the new one starts from now (a
        // resume must not admit for the time it was paused).
        self.room_call(&room, UserId::new(1)?, Mode::Place).await?;
        self.inner.rooms.forget_snapshot(room.layout.id);
        match scope {
            Scope::Ticket(key) => {
                let change = EventChange {
                    admission_state: Some(state),
                    ..EventChange::default()
                };
                self.change_event(key, change).await?;
            }
            Scope::Coupon(id) => {
                store::coupon_batches::set_admission(
                    self.db(),
                    *id,
                    actor,
                    &AdmissionFields::default(),
                    Some(state),
                )
                .await?;
                self.refresh_coupon_batches(&[*id]).await;
            }
            // A bucket has no room of its own: its event's room admits to every bucket.
            Scope::TicketBucket { .. } | Scope::CouponBucket { .. } => {
                return Err(Error::NotFound(Missing::Queue));
            }
        }
        Ok(())
    }

    /// Whether `user` may issue on `scope`, whose room is `gate`, with `pass` (no room: always).
    pub(crate) fn admit(
        &self,
        scope: &Scope,
        gate: Option<Gate>,
        user: i64,
        pass: Option<&str>,
    ) -> Result<(), Denial> {
        if gate.is_none() {
            return Ok(());
        }
        let now = Utc::now().timestamp_millis();
        self.inner
            .options
            .admission
            .verify(&scope.tag(), user, pass, now)
            .map_err(|e| match e {
                PassError::Missing => Denial::AdmissionRequired,
                PassError::Invalid => Denial::AdmissionInvalid,
            })
    }

    /// The scope's room; `QUEUE_NOT_FOUND` when it has none.
    async fn room_of(&self, scope: &Scope) -> Result<Room, Error> {
        let (gate, start, layout) = match scope {
            Scope::Ticket(key) => {
                let cached = self
                    .cached_event(key)
                    .await?
                    .ok_or(Error::NotFound(Missing::TicketEvent))?;
                let layout = cached
                    .room
                    .get_or_init(|| Arc::new(RoomLayout::new(self, scope, &cached.keys)));
                (cached.detail.gate(), cached.detail.start_at, layout.clone())
            }
            Scope::Coupon(id) => {
                let cached = self
                    .cached_coupon(*id)
                    .await?
                    .filter(|c| c.detail.issue_type == IssueType::SelfIssued)
                    .ok_or(Error::NotFound(Missing::Coupon))?;
                let layout = cached
                    .room
                    .get_or_init(|| Arc::new(RoomLayout::new(self, scope, &cached.keys)));
                (cached.detail.gate(), cached.detail.valid_from_at, layout.clone())
            }
            Scope::TicketBucket { .. } | Scope::CouponBucket { .. } => {
                return Err(Error::NotFound(Missing::Queue));
            }
        };
        Ok(Room {
            gate: gate.ok_or(Error::NotFound(Missing::Queue))?,
            start,
            layout,
        })
    }

    async fn room(&self, scope: &Scope, user: UserId, mode: Mode) -> Result<Place, Error> {
        let room = self.room_of(scope).await?;
        let remembered = match mode {
            Mode::Place => self.remembered(&room, user.get()),
            Mode::Join => None,
        };
        let reply = match remembered {
            Some(reply) => reply,
            None => {
                let reply = self.room_call(&room, user, mode).await?;
                match reply.status.as_str() {
                    "OK" => self.remember(&room, user.get(), &reply),
                    "NOT_OPEN" => return Err(Error::Refused(Refusal::QueueNotOpen)),
                    "CLOSED" => return Err(Error::Refused(Refusal::QueueClosed)),
                    "NONE" => {
                        self.inner.rooms.forget_place(room.layout.id, user.get());
                        return Err(Error::NotFound(Missing::QueuePlace));
                    }
                    other => return Err(Error::protocol("room.lua", format!("status {other:?}"))),
                }
                reply
            }
        };
        let kind = kind_label(scope);
        if reply.fresh {
            metrics::counter!("issuer_room_joins_total", "kind" => kind).increment(1);
        }
        if reply.forfeit {
            metrics::counter!("issuer_room_passes_total", "kind" => kind, "outcome" => "expired")
                .increment(1);
        }
        self.place(&room, kind, user, reply).await
    }

    /// Keeps what a `room.lua` answer says of the room and of the user.
    fn remember(&self, room: &Room, user: i64, r: &RoomReply) {
        let memory = &self.inner.rooms;
        memory.keep_snapshot(
            room.layout.id,
            RoomSnapshot {
                joined: r.joined,
                npre: r.npre,
                admitted: r.admitted,
                at_ms: r.at_ms,
                now_ms: r.now_ms,
                taken: Instant::now(),
                sold_out: r.sold_out,
                limit: r.limit,
            },
        );
        memory.keep_place(
            room.layout.id,
            user,
            Known {
                index: r.index,
                joined_at_ms: r.joined_at_ms,
                expiry_ms: r.expiry_ms,
                holds: r.holds,
            },
        );
    }

    /// A poll answered from this process's copy, when it has one fresh enough (see the module
    /// doc): the outflow since the copy counted by `room.lua`'s rule.
    fn remembered(&self, room: &Room, user: i64) -> Option<RoomReply> {
        let memory = &self.inner.rooms;
        let snap = memory.snapshot(room.layout.id)?;
        let known = memory.place(room.layout.id, user)?;
        let now_ms = snap.now_ms + snap.taken.elapsed().as_millis() as i64;
        let start_ms = room.start.timestamp_millis();
        if known.index >= snap.joined || (snap.npre < 0 && now_ms >= start_ms) {
            return None;
        }
        // After a sell-out the answer depends on whether the user holds an issue, which only
        // Redis knows (and the crowd then polls rarely).
        if snap.sold_out || self.inner.sold_out.get(&room.layout.stream).is_some() {
            return None;
        }
        let mut admitted = snap.admitted;
        if snap.npre >= 0 && room.gate.state == GateState::Running {
            let at = snap.at_ms.max(start_ms);
            let k = (now_ms - at).max(0) * i64::from(room.gate.admit_per_second) / 1_000;
            admitted = snap.joined.min(admitted + k);
            if snap.limit >= 0 {
                // The bound only grows (passes expire, get used), so the copy's is never ahead.
                admitted = admitted.min(snap.limit).max(snap.admitted);
            }
        }
        Some(RoomReply {
            status: "OK".into(),
            index: known.index,
            npre: snap.npre,
            joined: snap.joined,
            admitted,
            now_ms,
            expiry_ms: known.expiry_ms,
            holds: known.holds,
            sold_out: false,
            joined_at_ms: known.joined_at_ms,
            fresh: false,
            forfeit: false,
            at_ms: snap.at_ms,
            limit: snap.limit,
        })
    }

    async fn room_call(&self, room: &Room, user: UserId, mode: Mode) -> Result<RoomReply, Error> {
        let gate = room.gate;
        let state = match gate.state {
            GateState::Running => "R",
            GateState::Paused => "P",
            GateState::Closed => "C",
        };
        let args = vec![
            match mode {
                Mode::Join => "join",
                Mode::Place => "place",
            }
            .to_owned(),
            user.get().to_string(),
            gate.prequeue_opens_at.timestamp_millis().to_string(),
            room.start.timestamp_millis().to_string(),
            gate.admit_per_second.to_string(),
            state.to_owned(),
            (i64::from(gate.pass_ttl_seconds) * 1_000).to_string(),
            gate.max_unused_passes.unwrap_or(0).to_string(),
        ];
        let reply: Vec<Value> = Lua::Room
            .call(self.redis().next(), room.layout.keys.clone(), args)
            .await?;
        let int = |i: usize| -> Result<i64, Error> {
            reply
                .get(i)
                .and_then(Value::as_i64)
                .ok_or_else(|| Error::protocol("room.lua", format!("reply {reply:?}")))
        };
        Ok(RoomReply {
            status: reply
                .first()
                .and_then(Value::as_string)
                .ok_or_else(|| Error::protocol("room.lua", format!("reply {reply:?}")))?,
            index: int(1)?,
            npre: int(2)?,
            joined: int(3)?,
            admitted: int(4)?,
            now_ms: int(5)?,
            expiry_ms: int(6)?,
            holds: int(7)? == 1,
            sold_out: int(8)? == 1,
            joined_at_ms: int(9).unwrap_or(0),
            fresh: int(10).unwrap_or(0) == 1,
            forfeit: int(11).unwrap_or(0) == 1,
            at_ms: int(12).unwrap_or(0),
            limit: int(13).unwrap_or(-1),
        })
    }

    /// Reads a reply as a place, giving an admitted user their pass.
    async fn place(
        &self,
        room: &Room,
        kind: &'static str,
        user: UserId,
        r: RoomReply,
    ) -> Result<Place, Error> {
        let gate = room.gate;
        let slot = (r.npre >= 0).then(|| {
            if r.index < r.npre {
                let shuffle = room.layout.seed.shuffle(r.npre as u64);
                shuffle.slot(r.index as u64) as i64
            } else {
                r.index
            }
        });
        let admitted = slot.is_some_and(|s| s < r.admitted);
        let state = if r.holds {
            PlaceState::Admitted
        } else if r.sold_out {
            PlaceState::SoldOut
        } else if admitted {
            PlaceState::Admitted
        } else if gate.state == GateState::Closed {
            PlaceState::Closed
        } else if slot.is_none() {
            PlaceState::Prequeue
        } else {
            PlaceState::Waiting
        };
        let mut expiry = r.expiry_ms;
        if state == PlaceState::Admitted && !r.holds && expiry == 0 {
            // Admitted means a slot, which is below `npre` or the join index itself.
            expiry = self.grant(room, user, slot.unwrap_or(r.index)).await?;
            self.inner.rooms.keep_expiry(room.layout.id, user.get(), expiry);
            metrics::counter!("issuer_room_passes_total", "kind" => kind, "outcome" => "given").increment(1);
            let waited_ms = r.now_ms - r.joined_at_ms.max(room.start.timestamp_millis());
            metrics::histogram!("issuer_room_wait_seconds", "kind" => kind)
                .record(waited_ms.max(0) as f64 / 1_000.0);
        }
        let pass = (state == PlaceState::Admitted && expiry > r.now_ms).then(|| {
            self.inner
                .options
                .admission
                .sign(&room.layout.tag, user.get(), expiry)
        });
        let rate = i64::from(gate.admit_per_second);
        let position = match state {
            PlaceState::Waiting => slot.map(|s| s - r.admitted),
            PlaceState::Admitted => Some(0),
            _ => None,
        };
        let eta_seconds = match (state, gate.state) {
            (PlaceState::Waiting, GateState::Running) => position.map(|p| (p + 1 + rate - 1) / rate),
            _ => None,
        };
        Ok(Place {
            state,
            position,
            admitted: r.admitted,
            joined: r.joined,
            eta_seconds,
            poll_after_ms: poll_after(state, position, rate, r.now_ms, user.get()),
            pass,
            pass_expires_at: (expiry > 0).then(|| clock::from_ms(expiry)),
        })
    }

    /// Gives `user`, admitted at `slot`, a pass (the one given already, if any); when it
    /// expires (its admission's time plus the lifetime).
    async fn grant(&self, room: &Room, user: UserId, slot: i64) -> Result<i64, Error> {
        let ttl_ms = i64::from(room.gate.pass_ttl_seconds) * 1_000;
        Lua::Room
            .call(
                self.redis().next(),
                room.layout.keys.clone(),
                vec![
                    "grant".into(),
                    user.get().to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    ttl_ms.to_string(),
                    String::new(),
                    slot.to_string(),
                ],
            )
            .await
    }

    /// Joined and admitted so far in the scope's room, if it has been used (for the gauges).
    pub async fn room_counts(&self, scope: &Scope) -> Result<Option<(i64, i64)>, Error> {
        let room = self.keys().room(&scope.tag()).room;
        let (joined, admitted): (Option<i64>, Option<i64>) =
            self.redis().next().hmget(room, vec!["n", "adm"]).await?;
        Ok(joined.map(|n| (n, admitted.unwrap_or(0))))
    }

    /// Counts an issue made with `pass` by `user`, and, when the room caps unused passes,
    /// frees its slot: the pass goes into the room's used set until it expires. A failure there
    /// only keeps the slot taken until the pass expires, so it is logged, not answered.
    pub(crate) async fn pass_used(&self, scope: &Scope, gate: Option<Gate>, user: i64, pass: Option<&str>) {
        metrics::counter!("issuer_room_passes_total", "kind" => kind_label(scope), "outcome" => "used")
            .increment(1);
        let (Some(gate), Some(expiry)) = (gate, pass.and_then(admission::pass_expiry)) else {
            return;
        };
        if gate.max_unused_passes.is_none() {
            return;
        }
        let used = self.keys().room(&scope.tag()).used;
        // Boxed: an issue's future should not carry the command's for every request.
        let added: Result<i64, _> =
            Box::pin(
                self.redis()
                    .next()
                    .zadd(used, None, None, false, false, (expiry as f64, user)),
            )
            .await;
        if let Err(e) = added {
            tracing::warn!(error = %e, "a used pass was not recorded; its slot frees when it expires");
        }
    }

    /// What `user` holds of the scope, if anything: `(issue id, issued at ms)` (a holder is
    /// answered as a holder, pass or not). The id is read as `issue.lua`'s reply is
    /// ([`IssueId::parse`]); one that is not of the scope's kind is a protocol error.
    pub(crate) async fn held_entry(&self, scope: &Scope, user: i64) -> Result<Option<(IssueId, i64)>, Error> {
        let holders = scope.keys(self.keys()).holders;
        let entry: Option<String> = self.redis().next().hget(holders, user).await?;
        let Some((id, at)) = entry.as_deref().and_then(|e| {
            let (id, at) = e.split_once('|')?;
            Some((id, at.parse().ok()?))
        }) else {
            return Ok(None);
        };
        let id = IssueId::parse(id, scope.id_mode())
            .ok_or_else(|| Error::protocol("holders", format!("issue id {id:?}")))?;
        Ok(Some((id, at)))
    }
}

/// The `kind` label of the room's metrics.
fn kind_label(scope: &Scope) -> &'static str {
    match scope {
        Scope::Ticket(_) | Scope::TicketBucket { .. } => "ticket",
        Scope::Coupon(_) | Scope::CouponBucket { .. } => "coupon",
    }
}

/// The suggested poll interval: about a quarter of the wait, within 1–30 s, with a jitter of
/// ±20 % from the user and the clock so the polls of a crowd spread out; right away for those
/// admitted (to take the pass), rarely once it is over.
fn poll_after(state: PlaceState, position: Option<i64>, rate: i64, now_ms: i64, user: i64) -> i64 {
    let base = match state {
        PlaceState::Admitted => return 0,
        PlaceState::SoldOut | PlaceState::Closed => return POLL_MAX_MS,
        PlaceState::Prequeue => POLL_MIN_MS * 5,
        PlaceState::Waiting => {
            (position.unwrap_or(0) * 1_000 / rate.max(1) / 4).clamp(POLL_MIN_MS, POLL_MAX_MS)
        }
    };
    let spread = (user.wrapping_mul(0x9E37_79B9).wrapping_add(now_ms / 1_000)).rem_euclid(41) - 20;
    (base + base * spread / 100).clamp(POLL_MIN_MS * 4 / 5, POLL_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_sooner_near_the_front_and_spread_out() {
        let near = poll_after(PlaceState::Waiting, Some(10), 100, 0, 1);
        let far = poll_after(PlaceState::Waiting, Some(100_000), 100, 0, 1);
        assert!(near < far, "{near} {far}");
        assert!((800..=30_000).contains(&near) && (800..=30_000).contains(&far));
        let spread: std::collections::HashSet<i64> = (1..50)
            .map(|u| poll_after(PlaceState::Waiting, Some(4_000), 100, 0, u))
            .collect();
        assert!(spread.len() > 10, "jittered: {spread:?}");
        assert_eq!(poll_after(PlaceState::Admitted, Some(0), 100, 0, 1), 0);
    }
}
