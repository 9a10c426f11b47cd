//! `ticket_events`: golden-ticket events, the source of truth for their rules.

use chrono::{DateTime, Utc};
pub use issuance_core::admission::AdmissionFields;
use issuance_core::{
    admission::{Gate, GateState},
    error::Error,
    ids::EventKey,
};
use sqlx::{PgConnection, PgExecutor};

pub use crate::admission::AdmissionColumns;

const COLUMNS: &str = "event_key, name, total_quantity, daily_limit, start_at, end_at, is_active, version, \
    created_at, admission_enabled, prequeue_opens_at, admit_per_second, pass_ttl_seconds, max_unused_passes, \
    admission_state, shards";

/// Inserts a new event; `DuplicateEvent` when the key is taken.
pub async fn insert(db: impl PgExecutor<'_>, e: &NewTicketEvent) -> Result<TicketEvent, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ticket_events (event_key, name, total_quantity, daily_limit, start_at, end_at,
                                    admission_enabled, prequeue_opens_at, admit_per_second, pass_ttl_seconds,
                                    max_unused_passes, shards)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
    )))
    .bind(e.event_key.as_str())
    .bind(&e.name)
    .bind(e.total_quantity)
    .bind(e.daily_limit)
    .bind(e.start_at)
    .bind(e.end_at)
    .bind(e.admission.enabled.unwrap_or(false))
    .bind(e.admission.prequeue_opens_at)
    .bind(e.admission.admit_per_second)
    .bind(e.admission.pass_ttl_seconds)
    .bind(e.admission.max_unused_passes)
    .bind(e.shards)
    .fetch_one(db)
    .await
    .map_err(|err| match crate::constraint(&err) {
        Some("ticket_events_pkey") => Error::DuplicateEvent,
        _ => err.into(),
    })
}

/// The events spread over more than one bucket, with their bucket counts.
pub async fn sharded(db: impl PgExecutor<'_>) -> Result<Vec<(String, i16)>, Error> {
    Ok(
        sqlx::query_as("SELECT event_key, shards FROM ticket_events WHERE shards > 1 ORDER BY event_key")
            .fetch_all(db)
            .await?,
    )
}

/// The event with this key.
pub async fn find(db: impl PgExecutor<'_>, key: &str) -> Result<Option<TicketEvent>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ticket_events WHERE event_key = $1"
    )))
    .bind(key)
    .fetch_optional(db)
    .await?)
}

/// Active events whose window contains `now`, earliest end first.
pub async fn list_running(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> Result<Vec<TicketEvent>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ticket_events
         WHERE is_active AND start_at <= $1 AND end_at >= $1
         ORDER BY end_at, event_key"
    )))
    .bind(now)
    .fetch_all(db)
    .await?)
}

/// The event with this key, locked until the transaction ends (a change of its quantity).
pub async fn lock(tx: &mut PgConnection, key: &str) -> Result<Option<TicketEvent>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ticket_events WHERE event_key = $1 FOR UPDATE"
    )))
    .bind(key)
    .fetch_optional(tx)
    .await?)
}

/// Changes what `change` names (the rest stays) and bumps the version; `None` when there is
/// no such event.
pub async fn update(
    db: impl PgExecutor<'_>,
    key: &str,
    change: &EventChange,
) -> Result<Option<TicketEvent>, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE ticket_events
         SET is_active = coalesce($2, is_active), total_quantity = coalesce($3, total_quantity),
             admission_enabled = coalesce($4, admission_enabled),
             prequeue_opens_at = coalesce($5, prequeue_opens_at),
             admit_per_second = coalesce($6, admit_per_second),
             pass_ttl_seconds = coalesce($7, pass_ttl_seconds),
             admission_state = coalesce($8, admission_state),
             max_unused_passes = coalesce($9, max_unused_passes),
             version = version + 1, updated_at = now()
         WHERE event_key = $1 RETURNING {COLUMNS}"
    )))
    .bind(key)
    .bind(change.active)
    .bind(change.total_quantity)
    .bind(change.admission.enabled)
    .bind(change.admission.prequeue_opens_at)
    .bind(change.admission.admit_per_second)
    .bind(change.admission.pass_ttl_seconds)
    .bind(change.admission_state.map(GateState::as_str))
    .bind(change.admission.max_unused_passes)
    .fetch_optional(db)
    .await
    .map_err(crate::admission_refused)
}

/// A change of an event: each field `None` stays as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventChange {
    /// Switch on or off.
    pub active: Option<bool>,
    /// The new quantity (1..=[`NewTicketEvent::MAX_QUANTITY`], not below the daily limit).
    pub total_quantity: Option<i32>,
    /// The waiting room's settings.
    pub admission: AdmissionFields,
    /// The waiting room's live control.
    pub admission_state: Option<GateState>,
}

impl EventChange {
    /// Checks the fields on their own (the daily limit is the event's, checked against the row)
    /// and that something changes.
    pub fn new(
        active: Option<bool>,
        total_quantity: Option<i64>,
        admission: AdmissionFields,
    ) -> Result<Self, Error> {
        if active.is_none() && total_quantity.is_none() && admission.is_empty() {
            return Err(Error::Invalid("give active, totalQuantity or admission".into()));
        }
        if let Some(total) = total_quantity
            && !(1..=NewTicketEvent::MAX_QUANTITY).contains(&total)
        {
            return Err(Error::Invalid(
                "totalQuantity must be between 1 and 10000000".into(),
            ));
        }
        Ok(Self {
            active,
            // Fits in i32: checked against MAX_QUANTITY above.
            total_quantity: total_quantity.map(|t| t as i32),
            admission,
            admission_state: None,
        })
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
    /// Its waiting room.
    #[sqlx(flatten)]
    pub admission: AdmissionColumns,
    /// The buckets it is spread over (1: one copy).
    pub shards: i16,
}

impl TicketEvent {
    /// The buckets it is spread over, at least 1.
    pub fn shard_count(&self) -> u16 {
        self.shards.max(1) as u16
    }

    /// The waiting room, when it is on.
    pub fn gate(&self) -> Option<Gate> {
        self.admission.gate()
    }

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
    /// The waiting room's settings (none: no room).
    pub admission: AdmissionFields,
    /// The buckets it is spread over, 1..=16.
    pub shards: i16,
}

impl NewTicketEvent {
    /// With a waiting room: when switched on, every setting given, its pre-queue opening at or
    /// before the start.
    pub fn with_admission(mut self, admission: AdmissionFields) -> Result<Self, Error> {
        admission.check_complete()?;
        admission.check_opening(self.start_at, "startAt")?;
        self.admission = admission;
        Ok(self)
    }

    /// Spread over `shards` buckets (1..=[`Self::MAX_SHARDS`]).
    pub fn with_shards(mut self, shards: i64) -> Result<Self, Error> {
        if !(1..=i64::from(Self::MAX_SHARDS)).contains(&shards) {
            return Err(Error::Invalid(format!(
                "shards must be between 1 and {}",
                Self::MAX_SHARDS
            )));
        }
        self.shards = shards as i16;
        Ok(self)
    }

    /// Most buckets one event may be spread over.
    pub const MAX_SHARDS: i16 = 16;

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
            admission: AdmissionFields::default(),
            shards: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(mk(10, None, t0, t1).unwrap().with_shards(16).unwrap().shards, 16);
        assert!(mk(10, None, t0, t1).unwrap().with_shards(0).is_err());
        assert!(mk(10, None, t0, t1).unwrap().with_shards(17).is_err());
        assert!(mk(10, Some(5), t0, t1).unwrap().with_shards(2).is_ok());
    }
}
