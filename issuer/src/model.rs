//! The nouns of the issuance core.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Error;

/// An event's public key: 1–64 characters of `[a-z0-9-]`, safe inside a Redis key and a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey(Arc<str>);

impl EventKey {
    /// Checks the format.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(Error::Invalid(
                "eventKey must be 1-64 characters of a-z, 0-9 and '-'".into(),
            ))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user id: a positive 64-bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(i64);

impl UserId {
    /// Refuses zero and negatives.
    pub fn new(id: i64) -> Result<Self, Error> {
        if id > 0 {
            Ok(Self(id))
        } else {
            Err(Error::Invalid("userId must be a positive number".into()))
        }
    }

    /// The id as a number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A golden-ticket event as Postgres holds it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TicketEvent {
    /// The public key.
    pub event_key: String,
    /// Display name.
    pub name: String,
    /// How many tickets exist in all.
    pub total_quantity: i32,
    /// How many may be issued per KST day; `None` for no limit.
    pub daily_limit: Option<i32>,
    /// First instant of the window.
    pub start_at: DateTime<Utc>,
    /// Last instant of the window (inclusive).
    pub end_at: DateTime<Utc>,
    /// Whether issuing is switched on.
    pub is_active: bool,
    /// Grows with every change of the row.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl TicketEvent {
    /// Whether `now` falls inside the window.
    pub fn in_period(&self, now: DateTime<Utc>) -> bool {
        self.start_at <= now && now <= self.end_at
    }
}

/// What an admin gives to create an event.
#[derive(Clone, Debug)]
pub struct NewTicketEvent {
    /// The public key.
    pub event_key: EventKey,
    /// Display name, 1–200 characters.
    pub name: String,
    /// 1..=10,000,000.
    pub total_quantity: i32,
    /// 1..=total_quantity, or none.
    pub daily_limit: Option<i32>,
    /// Window start.
    pub start_at: DateTime<Utc>,
    /// Window end, after the start.
    pub end_at: DateTime<Utc>,
}

impl NewTicketEvent {
    /// Largest quantity one event may have.
    pub const MAX_QUANTITY: i64 = 10_000_000;

    /// Checks every rule of SPEC §2 and builds the value.
    pub fn new(
        event_key: EventKey,
        name: String,
        total_quantity: i64,
        daily_limit: Option<i64>,
        start_at: DateTime<Utc>,
        end_at: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::Invalid("name must be 1-200 characters".into()));
        }
        if !(1..=Self::MAX_QUANTITY).contains(&total_quantity) {
            return Err(Error::Invalid(
                "totalQuantity must be between 1 and 10000000".into(),
            ));
        }
        if let Some(daily) = daily_limit
            && !(1..=total_quantity).contains(&daily)
        {
            return Err(Error::Invalid(
                "dailyLimit must be between 1 and totalQuantity".into(),
            ));
        }
        if start_at >= end_at {
            return Err(Error::Invalid("startAt must be before endAt".into()));
        }
        // Both fit in i32: checked against MAX_QUANTITY above.
        Ok(Self {
            event_key,
            name,
            total_quantity: total_quantity as i32,
            daily_limit: daily_limit.map(|d| d as i32),
            start_at,
            end_at,
        })
    }
}

/// An event with its live figures from Redis.
#[derive(Clone, Debug)]
pub struct EventStatus {
    /// The event's rules.
    pub event: TicketEvent,
    /// Tickets issued in all.
    pub issued: i64,
    /// Tickets issued today (KST).
    pub today: i64,
}

impl EventStatus {
    /// `totalQuantity − issued`, never below zero.
    pub fn remaining(&self) -> i64 {
        (i64::from(self.event.total_quantity) - self.issued).max(0)
    }
}

/// One user's ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Its id (UUIDv7).
    pub ticket_id: Uuid,
    /// Its holder.
    pub user_id: i64,
    /// Its event.
    pub event_key: EventKey,
    /// When Redis issued it.
    pub issued_at: DateTime<Utc>,
}

/// The answer to an issue request that got a ticket.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The ticket.
    pub ticket: Ticket,
    /// `true` when this call issued it; `false` when the user already held it.
    pub fresh: bool,
}

/// A ticket as a user's list shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserTicket {
    /// Its id.
    pub ticket_id: Uuid,
    /// Its event.
    pub event_key: String,
    /// The event's name.
    pub event_name: String,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_key_accepts_only_its_alphabet() {
        assert!(EventKey::parse("golden-2026-summer").is_ok());
        assert!(EventKey::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "Upper", "with space", "under_score", "{tag}", &"a".repeat(65)] {
            assert!(EventKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn new_event_checks_ranges() {
        let key = EventKey::parse("e").unwrap();
        let t0 = DateTime::from_timestamp(0, 0).unwrap();
        let t1 = DateTime::from_timestamp(60, 0).unwrap();
        let mk = |total, daily, s, e| NewTicketEvent::new(key.clone(), "n".into(), total, daily, s, e);
        assert!(mk(1, None, t0, t1).is_ok());
        assert!(mk(10_000_000, Some(10_000_000), t0, t1).is_ok());
        assert!(mk(0, None, t0, t1).is_err());
        assert!(mk(10_000_001, None, t0, t1).is_err());
        assert!(mk(10, Some(11), t0, t1).is_err());
        assert!(mk(10, Some(0), t0, t1).is_err());
        assert!(mk(10, None, t1, t0).is_err());
        assert!(mk(10, None, t0, t0).is_err());
    }
}
