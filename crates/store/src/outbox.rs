//! `outbox`: events written in the transaction of the change they announce, the relay's claims
//! and outcomes, and the row types they read (the policy around them is `crate::outbox`).

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::OutboxStatus,
    error::Error,
    paging::{Page, Paging},
};
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};

/// A record as admins see it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxRecord {
    /// Its id (the `eventId` the platform receives).
    pub outbox_id: i64,
    /// `ORDER_PAID`.
    pub event_type: String,
    /// The order it is about.
    pub order_id: i64,
    /// The event body.
    pub payload: serde_json::Value,
    /// Status.
    pub status: OutboxStatus,
    /// Attempts made since it was written (or last retried by an admin).
    pub attempts: i32,
    /// When the next attempt is due (PENDING).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When the platform accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A record claimed for one attempt.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Delivery {
    /// Its id.
    pub outbox_id: i64,
    /// The order it is about.
    pub order_id: i64,
    /// Its type.
    pub event_type: String,
    /// Attempts including this one.
    pub attempts: i32,
    /// What is sent: the payload with its `eventId`.
    pub body: serde_json::Value,
}

const COLUMNS: &str = "outbox_id, event_type, order_id, payload, status, attempts, next_attempt_at, \
                       last_error, created_at, delivered_at";

/// Records an event for the data platform, in the caller's transaction.
pub async fn insert(
    tx: &mut PgConnection,
    event_type: &str,
    order_id: i64,
    payload: &serde_json::Value,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO outbox (event_type, order_id, payload) VALUES ($1, $2, $3)")
        .bind(event_type)
        .bind(order_id)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Claims up to `limit` due records for `lease_secs`: PENDING, due, and the oldest undelivered
/// record of their order (a later event of an order waits for the earlier one, dead or not).
/// Claiming counts an attempt and moves `next_attempt_at` past the lease, so other relays skip
/// the record while it is in flight and retake it if this one dies.
pub async fn claim(db: &PgPool, limit: i64, lease_secs: f64) -> Result<Vec<Delivery>, Error> {
    Ok(sqlx::query_as(
        "WITH due AS (
             SELECT o.outbox_id FROM outbox o
             WHERE o.status = 'PENDING' AND o.next_attempt_at <= now()
               AND NOT EXISTS (
                   SELECT 1 FROM outbox e
                   WHERE e.order_id = o.order_id AND e.outbox_id < o.outbox_id
                     AND e.status <> 'DELIVERED')
             ORDER BY o.next_attempt_at, o.outbox_id
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         UPDATE outbox o SET attempts = o.attempts + 1,
                next_attempt_at = now() + make_interval(secs => $2)
         FROM due WHERE o.outbox_id = due.outbox_id
         RETURNING o.outbox_id, o.order_id, o.event_type, o.attempts,
                   o.payload || jsonb_build_object('eventId', o.outbox_id) AS body",
    )
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(db)
    .await?)
}

/// Extends the lease of records still in flight: `(outbox_id, attempts)` pairs as claimed. A
/// record another relay has claimed since (its attempts moved on) is left alone.
pub async fn renew(db: impl PgExecutor<'_>, claims: &[(i64, i32)], lease_secs: f64) -> Result<(), Error> {
    let (ids, attempts): (Vec<i64>, Vec<i32>) = claims.iter().copied().unzip();
    sqlx::query(
        "UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => $3)
         FROM UNNEST($1::int8[], $2::int4[]) AS c(outbox_id, attempts)
         WHERE o.outbox_id = c.outbox_id AND o.attempts = c.attempts AND o.status = 'PENDING'",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(lease_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks a claimed record delivered. `attempts` is the claim's count: the fence that keeps a
/// relay whose lease ran out from overwriting the outcome of the one that took over.
pub async fn delivered(db: impl PgExecutor<'_>, outbox_id: i64, attempts: i32) -> Result<(), Error> {
    sqlx::query(
        "UPDATE outbox SET status = 'DELIVERED', delivered_at = now(), last_error = NULL
         WHERE outbox_id = $1 AND status = 'PENDING' AND attempts = $2",
    )
    .bind(outbox_id)
    .bind(attempts)
    .execute(db)
    .await?;
    Ok(())
}

/// Records a failed attempt: retried after `retry_in_secs`, or DEAD when `None` (fenced by the
/// claim's `attempts`, as [`delivered`]).
pub async fn failed(
    db: impl PgExecutor<'_>,
    outbox_id: i64,
    attempts: i32,
    error: &str,
    retry_in_secs: Option<f64>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE outbox SET last_error = $3,
                status = CASE WHEN $4::float8 IS NULL THEN 'DEAD'::outbox_status ELSE 'PENDING' END,
                next_attempt_at = now() + make_interval(secs => coalesce($4, 0))
         WHERE outbox_id = $1 AND status = 'PENDING' AND attempts = $2",
    )
    .bind(outbox_id)
    .bind(attempts)
    .bind(error)
    .bind(retry_in_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// A DEAD record back to PENDING, due now, with a fresh count of attempts; `None` when it is
/// not DEAD (or does not exist).
pub async fn revive(db: impl PgExecutor<'_>, outbox_id: i64) -> Result<Option<OutboxRecord>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE outbox SET status = 'PENDING', attempts = 0, next_attempt_at = now()
         WHERE outbox_id = $1 AND status = 'DEAD' RETURNING {COLUMNS}"
    )))
    .bind(outbox_id)
    .fetch_optional(db)
    .await?)
}

/// Every DEAD record back to PENDING; how many.
pub async fn revive_all(db: impl PgExecutor<'_>) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE outbox SET status = 'PENDING', attempts = 0, next_attempt_at = now()
         WHERE status = 'DEAD'",
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// One record.
pub async fn find(db: impl PgExecutor<'_>, outbox_id: i64) -> Result<Option<OutboxRecord>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE outbox_id = $1"
    )))
    .bind(outbox_id)
    .fetch_optional(db)
    .await?)
}

/// A page of records, newest first, of one status or all.
pub async fn list(
    db: &PgPool,
    status: Option<OutboxStatus>,
    order_id: Option<i64>,
    paging: Paging,
) -> Result<Page<OutboxRecord>, Error> {
    let filter = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(status) = status {
            qb.push(" AND status = ").push_bind(status);
        }
        if let Some(order_id) = order_id {
            qb.push(" AND order_id = ").push_bind(order_id);
        }
    };
    crate::page(db, "outbox", COLUMNS, filter, " ORDER BY outbox_id DESC", paging).await
}

/// What waits: PENDING and DEAD counts, and when the oldest PENDING record was written.
pub async fn backlog(db: impl PgExecutor<'_>) -> Result<(i64, i64, Option<DateTime<Utc>>), Error> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox WHERE status = 'PENDING'),
                (SELECT count(*) FROM outbox WHERE status = 'DEAD'),
                (SELECT min(created_at) FROM outbox WHERE status = 'PENDING')",
    )
    .fetch_one(db)
    .await?)
}
