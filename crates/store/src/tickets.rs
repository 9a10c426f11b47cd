//! `tickets`: every golden ticket issued, written by the stream drain.

use chrono::{DateTime, Utc};
use futures::{Stream, TryStreamExt};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Holder, copy::BinaryRows};
use issuance_core::error::Error;

/// A ticket row to write.
#[derive(Clone, Debug)]
pub struct NewTicket {
    /// Its id.
    pub ticket_id: Uuid,
    /// Its event.
    pub event_key: String,
    /// Its holder.
    pub user_id: i64,
    /// When Redis issued it.
    pub issued_at: DateTime<Utc>,
}

/// Writes tickets none of which is in Postgres yet with one binary COPY: the drain's fast path
/// (no conflict check per row). A ticket that is there already breaks a unique constraint and
/// fails the whole statement ([`crate::is_unique_violation`]); the caller then rolls back and
/// writes the batch with [`insert_batch`]. Returns the number of rows written.
pub async fn copy_batch(conn: &mut PgConnection, tickets: &[NewTicket]) -> Result<u64, Error> {
    let mut rows = BinaryRows::with_capacity(tickets.len(), 90);
    for t in tickets {
        rows.row(4)
            .uuid(t.ticket_id)
            .text(&t.event_key)
            .int8(t.user_id)
            .timestamptz(t.issued_at);
    }
    rows.copy(
        conn,
        "COPY tickets (ticket_id, event_key, user_id, issued_at) FROM STDIN (FORMAT binary)",
    )
    .await
}

/// Inserts tickets in one statement; rows already there (same ticket, or same event and user)
/// are skipped, so a replayed batch changes nothing. Returns the number of rows inserted.
pub async fn insert_batch(db: impl PgExecutor<'_>, tickets: &[NewTicket]) -> Result<u64, Error> {
    if tickets.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = tickets.iter().map(|t| t.ticket_id).collect();
    let events: Vec<&str> = tickets.iter().map(|t| t.event_key.as_str()).collect();
    let users: Vec<i64> = tickets.iter().map(|t| t.user_id).collect();
    let times: Vec<DateTime<Utc>> = tickets.iter().map(|t| t.issued_at).collect();
    let done = sqlx::query(
        "INSERT INTO tickets (ticket_id, event_key, user_id, issued_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&events)
    .bind(&users)
    .bind(&times)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A user's tickets with their events' names, newest first.
pub async fn list_for_user(db: impl PgExecutor<'_>, user_id: i64) -> Result<Vec<UserTicket>, Error> {
    Ok(sqlx::query_as(
        "SELECT t.ticket_id, t.event_key, e.name AS event_name, t.issued_at
         FROM tickets t JOIN ticket_events e USING (event_key)
         WHERE t.user_id = $1
         ORDER BY t.issued_at DESC, t.ticket_id",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

/// Every ticket of an event, streamed (an event may hold millions).
pub fn stream_for_event<'e>(
    db: impl PgExecutor<'e> + 'e,
    event_key: String,
) -> impl Stream<Item = Result<Holder, Error>> + 'e {
    sqlx::query_as("SELECT user_id, ticket_id::text AS issue_id, issued_at FROM tickets WHERE event_key = $1")
        .bind(event_key)
        .fetch(db)
        .map_err(Error::from)
}

/// How many tickets an event has in Postgres.
pub async fn count_for_event(db: impl PgExecutor<'_>, event_key: &str) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE event_key = $1")
            .bind(event_key)
            .fetch_one(db)
            .await?,
    )
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
