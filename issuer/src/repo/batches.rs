//! `coupon_batches` (soft-deleted rows are invisible here).

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

use crate::{
    admin::{
        batches::{BatchFields, BatchFilter, BatchRow, BatchStatus},
        listing::{Page, like_pattern},
    },
    error::Error,
};

const COLUMNS: &str = "batch_id, inventory_id, batch_number, batch_name, issue_count, issue_type, \
                       daily_limit, valid_from_at, valid_until_at, batch_status, code_count, \
                       created_by, updated_by, created_at, updated_at";

/// Inserts a batch with its number.
pub async fn insert(
    db: impl PgExecutor<'_>,
    actor: &str,
    inventory_id: i64,
    number: i32,
    f: &BatchFields,
    status: BatchStatus,
) -> Result<BatchRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO coupon_batches (inventory_id, batch_number, batch_name, issue_count, issue_type,
             daily_limit, valid_from_at, valid_until_at, batch_status, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING {COLUMNS}"
    )))
    .bind(inventory_id)
    .bind(number)
    .bind(f.batch_name.trim())
    .bind(f.issue_count as i32)
    .bind(f.issue_type)
    .bind(f.daily_limit.map(|d| d as i32))
    .bind(f.valid_from_at)
    .bind(f.valid_until_at)
    .bind(status)
    .bind(actor)
    .fetch_one(db)
    .await?)
}

/// The live batch, locked for the rest of the transaction.
pub async fn lock(db: impl PgExecutor<'_>, id: i64) -> Result<Option<BatchRow>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupon_batches WHERE batch_id = $1 AND deleted_at IS NULL FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// The live batch.
pub async fn find(db: impl PgExecutor<'_>, id: i64) -> Result<Option<BatchRow>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupon_batches WHERE batch_id = $1 AND deleted_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Rewrites a batch's fields.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: i64,
    actor: &str,
    f: &BatchFields,
    status: BatchStatus,
) -> Result<BatchRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_batches SET batch_name = $2, issue_count = $3, issue_type = $4, daily_limit = $5,
                valid_from_at = $6, valid_until_at = $7, batch_status = $8, updated_by = $9,
                updated_at = now(), version = version + 1
         WHERE batch_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(f.batch_name.trim())
    .bind(f.issue_count as i32)
    .bind(f.issue_type)
    .bind(f.daily_limit.map(|d| d as i32))
    .bind(f.valid_from_at)
    .bind(f.valid_until_at)
    .bind(status)
    .bind(actor)
    .fetch_one(db)
    .await?)
}

/// Marks the batch deleted; returns when.
pub async fn soft_delete(db: impl PgExecutor<'_>, id: i64, actor: &str) -> Result<DateTime<Utc>, Error> {
    Ok(sqlx::query_scalar(
        "UPDATE coupon_batches SET deleted_at = now(), updated_by = $2, updated_at = now(),
                version = version + 1
         WHERE batch_id = $1 RETURNING deleted_at",
    )
    .bind(id)
    .bind(actor)
    .fetch_one(db)
    .await?)
}

/// Codes the inventory's live batches allocate, leaving out `except`.
pub async fn allocated(
    db: impl PgExecutor<'_>,
    inventory_id: i64,
    except: Option<i64>,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(issue_count), 0)::int8 FROM coupon_batches
         WHERE inventory_id = $1 AND deleted_at IS NULL AND batch_id IS DISTINCT FROM $2",
    )
    .bind(inventory_id)
    .bind(except)
    .fetch_one(db)
    .await?)
}

/// `(inventory id, batch id)` of every live batch of these inventories.
pub async fn ids_by_inventory(
    db: impl PgExecutor<'_>,
    inventories: &[i64],
) -> Result<Vec<(i64, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT inventory_id, batch_id FROM coupon_batches
         WHERE inventory_id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(inventories)
    .fetch_all(db)
    .await?)
}

/// The batch's code count, locked, deleted or not (cleanup works on deleted batches too).
pub async fn lock_code_count(db: impl PgExecutor<'_>, id: i64) -> Result<Option<i32>, Error> {
    Ok(
        sqlx::query_scalar("SELECT code_count FROM coupon_batches WHERE batch_id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Raises the batch's code count (a job completed), in the job's transaction.
pub async fn add_codes(db: impl PgExecutor<'_>, id: i64, added: i32) -> Result<(), Error> {
    sqlx::query(
        "UPDATE coupon_batches SET code_count = code_count + $2, updated_at = now() WHERE batch_id = $1",
    )
    .bind(id)
    .bind(added)
    .execute(db)
    .await?;
    Ok(())
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &BatchFilter) {
    qb.push(" WHERE deleted_at IS NULL");
    if let Some(status) = f.status {
        qb.push(" AND batch_status = ").push_bind(status);
    }
    if let Some(inventory) = f.inventory_id {
        qb.push(" AND inventory_id = ").push_bind(inventory);
    }
    if let Some(kind) = f.issue_type {
        qb.push(" AND issue_type = ").push_bind(kind);
    }
    if let Some(keyword) = &f.keyword {
        qb.push(" AND batch_name ILIKE ").push_bind(like_pattern(keyword));
    }
    if let Some(from) = f.period.from {
        qb.push(" AND valid_from_at >= ").push_bind(from);
    }
    if let Some(before) = f.period.until_before {
        qb.push(" AND valid_until_at < ").push_bind(before);
    }
}

/// A page of live batches.
pub async fn list(db: &PgPool, f: &BatchFilter) -> Result<Page<BatchRow>, Error> {
    super::page(
        db,
        "coupon_batches",
        COLUMNS,
        |qb| push_filters(qb, f),
        &f.sort.order_by("batch_id"),
        f.paging,
    )
    .await
}

/// First-come (SELF) batches that are READY and within their period now: `(id, issue count)`.
pub async fn issuing(db: &PgPool) -> Result<Vec<(i64, i32)>, Error> {
    Ok(sqlx::query_as(
        "SELECT batch_id, issue_count FROM coupon_batches
         WHERE issue_type = 'SELF' AND batch_status = 'READY' AND deleted_at IS NULL
           AND now() >= valid_from_at AND now() < valid_until_at
         ORDER BY batch_id",
    )
    .fetch_all(db)
    .await?)
}
