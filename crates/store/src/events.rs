//! `events`: the marketing events of the admin API (soft-deleted rows are invisible here).

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::EventStatus,
    error::{Error, Refusal},
    paging::{Page, Paging, Period, Sort, like_pattern},
};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

const COLUMNS: &str = "event_id, event_name, description, from_at, until_at, event_status, \
                       created_by, updated_by, created_at, updated_at";

fn duplicate_name(err: sqlx::Error) -> Error {
    match crate::constraint(&err) {
        Some("events_live_name_key") => Error::Refused(Refusal::DuplicateEventName),
        _ => err.into(),
    }
}

/// Inserts an event.
pub async fn insert(
    db: impl PgExecutor<'_>,
    actor: &str,
    f: &EventFields,
    status: EventStatus,
) -> Result<AdminEvent, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO events (event_name, description, from_at, until_at, event_status, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}"
    )))
    .bind(f.event_name.trim())
    .bind(&f.description)
    .bind(f.from_at)
    .bind(f.until_at)
    .bind(status)
    .bind(actor)
    .fetch_one(db)
    .await
    .map_err(duplicate_name)
}

/// The live event, locked for the rest of the transaction.
pub async fn lock(db: impl PgExecutor<'_>, id: i64) -> Result<Option<AdminEvent>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE event_id = $1 AND deleted_at IS NULL FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// The live event.
pub async fn find(db: impl PgExecutor<'_>, id: i64) -> Result<Option<AdminEvent>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE event_id = $1 AND deleted_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Whether a live event has this id.
pub async fn exists(db: impl PgExecutor<'_>, id: i64) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1 AND deleted_at IS NULL)")
            .bind(id)
            .fetch_one(db)
            .await?,
    )
}

/// Rewrites an event's fields.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: i64,
    actor: &str,
    f: &EventFields,
    status: EventStatus,
) -> Result<AdminEvent, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE events SET event_name = $2, description = $3, from_at = $4, until_at = $5,
                event_status = $6, updated_by = $7, updated_at = now()
         WHERE event_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(f.event_name.trim())
    .bind(&f.description)
    .bind(f.from_at)
    .bind(f.until_at)
    .bind(status)
    .bind(actor)
    .fetch_one(db)
    .await
    .map_err(duplicate_name)
}

/// Sets the status.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: i64,
    actor: &str,
    status: EventStatus,
) -> Result<AdminEvent, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE events SET event_status = $2, updated_by = $3, updated_at = now()
         WHERE event_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(actor)
    .fetch_one(db)
    .await
    .map_err(duplicate_name)
}

/// Marks the event deleted; returns when.
pub async fn soft_delete(db: impl PgExecutor<'_>, id: i64, actor: &str) -> Result<DateTime<Utc>, Error> {
    Ok(sqlx::query_scalar(
        "UPDATE events SET deleted_at = now(), updated_by = $2, updated_at = now()
         WHERE event_id = $1 RETURNING deleted_at",
    )
    .bind(id)
    .bind(actor)
    .fetch_one(db)
    .await?)
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &EventFilter) {
    qb.push(" WHERE deleted_at IS NULL");
    if let Some(status) = f.status {
        qb.push(" AND event_status = ").push_bind(status);
    }
    if let Some(keyword) = &f.keyword {
        let pattern = like_pattern(keyword);
        qb.push(" AND (event_name ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR description ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(from) = f.period.from {
        qb.push(" AND from_at >= ").push_bind(from);
    }
    if let Some(before) = f.period.until_before {
        qb.push(" AND until_at < ").push_bind(before);
    }
}

/// A page of live events.
pub async fn list(db: &PgPool, f: &EventFilter) -> Result<Page<AdminEvent>, Error> {
    crate::page(
        db,
        "events",
        COLUMNS,
        |qb| push_filters(qb, f),
        &f.sort.order_by("event_id"),
        f.paging,
    )
    .await
}

/// An event as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AdminEvent {
    /// Its id.
    pub event_id: i64,
    /// Its name; unique among live events.
    pub event_name: String,
    /// Free text.
    pub description: String,
    /// Start.
    pub from_at: DateTime<Utc>,
    /// End.
    pub until_at: DateTime<Utc>,
    /// Lifecycle status.
    pub event_status: EventStatus,
    /// Who created it (token `sub`).
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
}

/// The fields an admin sets, on create and on update.
#[derive(Clone, Debug)]
pub struct EventFields {
    /// 1–200 characters.
    pub event_name: String,
    /// Up to 2,000 characters.
    pub description: String,
    /// Start.
    pub from_at: DateTime<Utc>,
    /// End, after the start.
    pub until_at: DateTime<Utc>,
    /// Status; on create READY (default) or ONGOING.
    pub event_status: Option<EventStatus>,
}

/// The list filters.
#[derive(Clone, Debug)]
pub struct EventFilter {
    /// `eventStatus`.
    pub status: Option<EventStatus>,
    /// `keyword`: in the name or the description.
    pub keyword: Option<String>,
    /// `from`/`to` on `fromAt`/`untilAt`.
    pub period: Period,
    /// `sort`.
    pub sort: Sort,
    /// `page`, `size`.
    pub paging: Paging,
}
