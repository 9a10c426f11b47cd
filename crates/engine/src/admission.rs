//! The waiting room (admission gate) of a golden-ticket event.
//!
//! Users join from the pre-queue opening on; everyone who joined before the event's start is
//! placed at the start in the order of a keyed shuffle ([`issuance_core::admission`]), later
//! arrivals at the back in arrival order. The room admits `admitPerSecond` a second from the
//! start on (`lua/room.lua` counts the outflow on every call); an admitted user gets a signed
//! pass, which the issue endpoint checks in memory. Nothing per user is written but the join
//! index and, once admitted, the pass's expiry.
//!
//! Settings and the live control (running, paused, closed) live in the event's row; every room
//! call passes them from this process's rules cache, so a change takes effect everywhere within
//! the cache's TTL. The room's keys share the event's hash tag.
//!
//! **A Redis loss of the room's keys.** The counts and join indexes are gone: the room starts
//! empty, everyone joins again (at the back, in arrival order, once the start has passed), and
//! the outflow counts from the loss. Passes already given stay valid until they expire (they
//! are checked by signature, not looked up). Nothing about issuing depends on the room: the
//! quantity and one-per-user are `issue.lua`'s, so a loss can never issue more than the
//! quantity nor twice to a user; at worst it admits again someone admitted before, whose second
//! pass gets them the ticket they already hold.

use chrono::{DateTime, Utc};
use fred::{interfaces::HashesInterface, types::Value};
use issuance_core::{
    admission::{Gate, GateState, PassError},
    clock,
    error::{Denial, Error, Missing, Refusal},
    ids::{EventKey, UserId},
};
use store::ticket_events::{EventChange, TicketEvent};

use crate::{engine::Engine, script::Lua, tickets::LiveEvent};

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
}

impl Engine {
    /// Joins `user` to the event's room (again: the same place); their place.
    pub async fn join_queue(&self, key: &EventKey, user: UserId) -> Result<Place, Error> {
        self.room(key, user, Mode::Join).await
    }

    /// `user`'s place in the event's room.
    pub async fn queue_place(&self, key: &EventKey, user: UserId) -> Result<Place, Error> {
        self.room(key, user, Mode::Place).await
    }

    /// The seed of the event's shuffle, once the start has passed.
    pub async fn queue_seed(&self, key: &EventKey) -> Result<SeedReveal, Error> {
        let event = self.gated_event(key).await?;
        if Utc::now() < event.start_at {
            return Err(Error::Refused(Refusal::SeedNotRevealed));
        }
        let gate = event.gate().ok_or(Error::NotFound(Missing::Queue))?;
        // One call counts the pre-queue, should nobody have called since the start.
        let place = self
            .room_call(key, &event, gate, UserId::new(1)?, Mode::Place)
            .await?;
        Ok(SeedReveal {
            seed: self.inner.options.admission.seed(&room_scope(key)).hex(),
            prequeue_size: place.npre.max(0),
        })
    }

    /// Pauses, resumes or closes the event's room (admin); the event as it now is.
    pub async fn set_gate_state(&self, key: &EventKey, state: GateState) -> Result<LiveEvent, Error> {
        let event = self.gated_event(key).await?;
        let gate = event.gate().ok_or(Error::NotFound(Missing::Queue))?;
        // Count the outflow up to now under the old state, so the new one starts from now (a
        // resume must not admit for the time it was paused).
        self.room_call(key, &event, gate, UserId::new(1)?, Mode::Place)
            .await?;
        let change = EventChange {
            admission_state: Some(state),
            ..EventChange::default()
        };
        self.change_event(key, change).await
    }

    /// Whether `user` may issue on `event` with `pass` (an event without a room: always).
    pub(crate) fn admit(&self, event: &TicketEvent, user: i64, pass: Option<&str>) -> Result<(), Denial> {
        if event.gate().is_none() {
            return Ok(());
        }
        let scope = room_scope_str(&event.event_key);
        let now = Utc::now().timestamp_millis();
        self.inner
            .options
            .admission
            .verify(&scope, user, pass, now)
            .map_err(|e| match e {
                PassError::Missing => Denial::AdmissionRequired,
                PassError::Invalid => Denial::AdmissionInvalid,
            })
    }

    /// The event, which must have a room.
    async fn gated_event(&self, key: &EventKey) -> Result<TicketEvent, Error> {
        let cached = self
            .cached_event(key)
            .await?
            .ok_or(Error::NotFound(Missing::TicketEvent))?;
        if cached.detail.gate().is_none() {
            return Err(Error::NotFound(Missing::Queue));
        }
        Ok(cached.detail.clone())
    }

    async fn room(&self, key: &EventKey, user: UserId, mode: Mode) -> Result<Place, Error> {
        let event = self.gated_event(key).await?;
        let gate = event.gate().ok_or(Error::NotFound(Missing::Queue))?;
        let reply = self.room_call(key, &event, gate, user, mode).await?;
        match reply.status.as_str() {
            "OK" => {}
            "NOT_OPEN" => return Err(Error::Refused(Refusal::QueueNotOpen)),
            "CLOSED" => return Err(Error::Refused(Refusal::QueueClosed)),
            "NONE" => return Err(Error::NotFound(Missing::QueuePlace)),
            other => return Err(Error::protocol("room.lua", format!("status {other:?}"))),
        }
        self.place(key, gate, user, reply).await
    }

    async fn room_call(
        &self,
        key: &EventKey,
        event: &TicketEvent,
        gate: Gate,
        user: UserId,
        mode: Mode,
    ) -> Result<RoomReply, Error> {
        let room = self.keys().ticket_room(key.as_str());
        let scope = self.keys().ticket_event(key.as_str());
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
            event.start_at.timestamp_millis().to_string(),
            gate.admit_per_second.to_string(),
            state.to_owned(),
            String::new(),
        ];
        let reply: Vec<Value> = Lua::Room
            .call(
                self.redis().next(),
                vec![room.room, room.queue, room.passes, scope.meta, scope.holders],
                args,
            )
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
        })
    }

    /// Reads a reply as a place, giving an admitted user their pass.
    async fn place(&self, key: &EventKey, gate: Gate, user: UserId, r: RoomReply) -> Result<Place, Error> {
        let slot = (r.npre >= 0).then(|| {
            if r.index < r.npre {
                let shuffle = self
                    .inner
                    .options
                    .admission
                    .seed(&room_scope(key))
                    .shuffle(r.npre as u64);
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
            expiry = self.grant(key, gate, user).await?;
        }
        let pass = (state == PlaceState::Admitted && expiry > r.now_ms).then(|| {
            self.inner
                .options
                .admission
                .sign(&room_scope(key), user.get(), expiry)
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

    /// Gives `user` a pass (the one given already, if any); when it expires.
    async fn grant(&self, key: &EventKey, gate: Gate, user: UserId) -> Result<i64, Error> {
        let room = self.keys().ticket_room(key.as_str());
        let scope = self.keys().ticket_event(key.as_str());
        let ttl_ms = i64::from(gate.pass_ttl_seconds) * 1_000;
        Lua::Room
            .call(
                self.redis().next(),
                vec![room.room, room.queue, room.passes, scope.meta, scope.holders],
                vec![
                    "grant".into(),
                    user.get().to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    ttl_ms.to_string(),
                ],
            )
            .await
    }

    /// The ticket `user` holds of the event, if any (a holder is answered with it, pass or not).
    pub(crate) async fn held_entry(&self, key: &EventKey, user: i64) -> Result<Option<(String, i64)>, Error> {
        let holders = self.keys().ticket_event(key.as_str()).holders;
        let entry: Option<String> = self.redis().next().hget(holders, user).await?;
        Ok(entry.and_then(|e| {
            let (id, at) = e.split_once('|')?;
            Some((id.to_owned(), at.parse().ok()?))
        }))
    }
}

/// The name a room's seed and passes are bound to.
fn room_scope(key: &EventKey) -> String {
    room_scope_str(key.as_str())
}

fn room_scope_str(key: &str) -> String {
    format!("gt:{key}")
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
