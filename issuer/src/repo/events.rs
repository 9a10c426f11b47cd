//! `ticket_events`: golden-ticket events, the source of truth for their rules.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::{
    error::Error,
    model::{NewTicketEvent, TicketEvent},
};

const COLUMNS: &str =
    "event_key, name, total_quantity, daily_limit, start_at, end_at, is_active, version, created_at";

/// Inserts a new event; `DuplicateEvent` when the key is taken.
pub async fn insert(db: impl PgExecutor<'_>, e: &NewTicketEvent) -> Result<TicketEvent, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ticket_events (event_key, name, total_quantity, daily_limit, start_at, end_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(e.event_key.as_str())
    .bind(&e.name)
    .bind(e.total_quantity)
    .bind(e.daily_limit)
    .bind(e.start_at)
    .bind(e.end_at)
    .fetch_one(db)
    .await
    .map_err(|err| match super::constraint(&err) {
        Some("ticket_events_pkey") => Error::DuplicateEvent,
        _ => err.into(),
    })
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

/// Switches an event on or off and bumps its version; `None` when there is no such event.
pub async fn set_active(
    db: impl PgExecutor<'_>,
    key: &str,
    active: bool,
) -> Result<Option<TicketEvent>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE ticket_events SET is_active = $2, version = version + 1, updated_at = now()
         WHERE event_key = $1 RETURNING {COLUMNS}"
    )))
    .bind(key)
    .bind(active)
    .fetch_optional(db)
    .await?)
}
