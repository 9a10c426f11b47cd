//! `best_product_snapshots` and `best_product_items`.

use chrono::{DateTime, NaiveDate, Utc};
use issuance_core::error::Error;
use sqlx::{PgConnection, PgExecutor};

const SNAPSHOT_COLUMNS: &str = "day, range_days, range_from, range_to, computed_at";

/// Writes (or rewrites) the day's header row, locking it for the rest of the transaction.
pub async fn upsert_snapshot(
    tx: &mut PgConnection,
    day: NaiveDate,
    range_days: i32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Snapshot, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO best_product_snapshots (day, range_days, range_from, range_to)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (day) DO UPDATE SET range_days = EXCLUDED.range_days,
                range_from = EXCLUDED.range_from, range_to = EXCLUDED.range_to, computed_at = now()
         RETURNING {SNAPSHOT_COLUMNS}"
    )))
    .bind(day)
    .bind(range_days)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *tx)
    .await?)
}

/// Replaces the day's ranking with the top `top` products by units in orders paid in
/// `[from, to)` (hidden products left out; ties by product id); returns it.
pub async fn replace_items(
    tx: &mut PgConnection,
    day: NaiveDate,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    top: i64,
) -> Result<Vec<BestProduct>, Error> {
    sqlx::query("DELETE FROM best_product_items WHERE day = $1")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query_as(
        "INSERT INTO best_product_items (day, rank, product_id, name, sold_qty)
         SELECT $1, row_number() OVER (ORDER BY s.sold DESC, s.product_id), s.product_id, p.name, s.sold
         FROM (SELECT i.product_id, sum(i.qty)::int8 AS sold
               FROM orders o JOIN order_items i USING (order_id)
               WHERE o.status = 'PAID' AND o.paid_at >= $2 AND o.paid_at < $3
               GROUP BY i.product_id) s
         JOIN products p USING (product_id)
         WHERE p.status <> 'HIDDEN'
         ORDER BY s.sold DESC, s.product_id
         LIMIT $4
         RETURNING rank::int4, product_id, name, sold_qty",
    )
    .bind(day)
    .bind(from)
    .bind(to)
    .bind(top)
    .fetch_all(&mut *tx)
    .await?)
    .map(|mut rows: Vec<BestProduct>| {
        rows.sort_by_key(|r| r.rank);
        rows
    })
}

/// The newest snapshot's header.
pub async fn latest(db: impl PgExecutor<'_>) -> Result<Option<Snapshot>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM best_product_snapshots ORDER BY day DESC LIMIT 1"
    )))
    .fetch_optional(db)
    .await?)
}

/// A day's ranking, best first.
pub async fn items(db: impl PgExecutor<'_>, day: NaiveDate) -> Result<Vec<BestProduct>, Error> {
    Ok(sqlx::query_as(
        "SELECT rank, product_id, name, sold_qty FROM best_product_items WHERE day = $1 ORDER BY rank",
    )
    .bind(day)
    .fetch_all(db)
    .await?)
}

/// One ranked product.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct BestProduct {
    /// Rank, from 1.
    pub rank: i32,
    /// The product.
    pub product_id: i64,
    /// Its name when computed.
    pub name: String,
    /// Units sold in the window.
    pub sold_qty: i64,
}

/// A day's ranking.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Snapshot {
    /// The KST day it was computed for.
    pub day: NaiveDate,
    /// Days covered.
    pub range_days: i32,
    /// Window start (inclusive).
    pub range_from: DateTime<Utc>,
    /// Window end (exclusive).
    pub range_to: DateTime<Utc>,
    /// When computed.
    pub computed_at: DateTime<Utc>,
    /// Best first; ties by product id.
    #[sqlx(skip)]
    pub items: Vec<BestProduct>,
}
