//! `coupon_batches` (soft-deleted rows are invisible here).

use chrono::{DateTime, Utc};
use issuance_core::{
    admission::{AdmissionFields, Gate, GateState},
    discount::{Discount, DiscountType},
    enums::{BatchStatus, InventoryStatus, IssueType},
    error::Error,
    paging::{Page, Paging, Period, Sort, like_pattern},
};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

pub use crate::admission::AdmissionColumns;

const COLUMNS: &str = "batch_id, inventory_id, batch_number, batch_name, issue_count, issue_type, \
                       daily_limit, valid_from_at, valid_until_at, batch_status, code_count, \
                       created_by, updated_by, created_at, updated_at, admission_enabled, \
                       prequeue_opens_at, admit_per_second, pass_ttl_seconds, max_unused_passes, \
                       admission_state, shards";

/// Inserts a batch with its number.
pub async fn insert(
    db: impl PgExecutor<'_>,
    actor: &str,
    inventory_id: i64,
    number: i32,
    f: &BatchFields,
    status: BatchStatus,
) -> Result<BatchRow, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO coupon_batches (inventory_id, batch_number, batch_name, issue_count, issue_type,
             daily_limit, valid_from_at, valid_until_at, batch_status, created_by, updated_by,
             admission_enabled, prequeue_opens_at, admit_per_second, pass_ttl_seconds,
             max_unused_passes, shards)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15, $16)
         RETURNING {COLUMNS}"
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
    .bind(f.admission.enabled.unwrap_or(false))
    .bind(f.admission.prequeue_opens_at)
    .bind(f.admission.admit_per_second)
    .bind(f.admission.pass_ttl_seconds)
    .bind(f.admission.max_unused_passes)
    .bind(f.shards.unwrap_or(1) as i16)
    .fetch_one(db)
    .await
    .map_err(crate::admission_refused)
}

/// The batches among `ids` spread over more than one bucket, with their bucket counts.
pub async fn sharded(db: impl PgExecutor<'_>, ids: &[i64]) -> Result<Vec<(i64, i16)>, Error> {
    Ok(sqlx::query_as(
        "SELECT batch_id, shards FROM coupon_batches WHERE batch_id = ANY($1) AND shards > 1 ORDER BY batch_id",
    )
    .bind(ids)
    .fetch_all(db)
    .await?)
}

/// Changes a batch's waiting room (each `None` stays) and its live control.
pub async fn set_admission(
    db: impl PgExecutor<'_>,
    id: i64,
    actor: &str,
    admission: &AdmissionFields,
    state: Option<GateState>,
) -> Result<BatchRow, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_batches
         SET admission_enabled = coalesce($3, admission_enabled),
             prequeue_opens_at = coalesce($4, prequeue_opens_at),
             admit_per_second = coalesce($5, admit_per_second),
             pass_ttl_seconds = coalesce($6, pass_ttl_seconds),
             admission_state = coalesce($7, admission_state),
             max_unused_passes = coalesce($8, max_unused_passes),
             updated_by = $2, updated_at = now(), version = version + 1
         WHERE batch_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(actor)
    .bind(admission.enabled)
    .bind(admission.prequeue_opens_at)
    .bind(admission.admit_per_second)
    .bind(admission.pass_ttl_seconds)
    .bind(state.map(GateState::as_str))
    .bind(admission.max_unused_passes)
    .fetch_one(db)
    .await
    .map_err(crate::admission_refused)
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

/// Sets a batch's quantity (its other fields stay).
pub async fn set_issue_count(
    db: impl PgExecutor<'_>,
    id: i64,
    actor: &str,
    issue_count: i32,
) -> Result<BatchRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_batches SET issue_count = $2, updated_by = $3, updated_at = now(),
                version = version + 1
         WHERE batch_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(issue_count)
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
    crate::page(
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

/// A batch as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BatchRow {
    /// Its id.
    pub batch_id: i64,
    /// Its inventory.
    pub inventory_id: i64,
    /// 1, 2, 3 … within the inventory.
    pub batch_number: i32,
    /// Its name.
    pub batch_name: String,
    /// Codes it holds when complete.
    pub issue_count: i32,
    /// SELF or MAPPED.
    pub issue_type: IssueType,
    /// Most issues per KST day, if limited.
    pub daily_limit: Option<i32>,
    /// Valid from.
    pub valid_from_at: DateTime<Utc>,
    /// Valid until.
    pub valid_until_at: DateTime<Utc>,
    /// Status.
    pub batch_status: BatchStatus,
    /// Codes that count (made by a completed job).
    pub code_count: i32,
    /// Who created it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
    /// Its waiting room.
    #[sqlx(flatten)]
    pub admission: AdmissionColumns,
    /// The buckets it is spread over (1: one copy).
    pub shards: i16,
}

/// The fields an admin sets.
#[derive(Clone, Debug)]
pub struct BatchFields {
    /// 1–200 characters.
    pub batch_name: String,
    /// 1..=10,000,000 and within the inventory's remaining allocation.
    pub issue_count: i64,
    /// SELF or MAPPED.
    pub issue_type: IssueType,
    /// Valid from.
    pub valid_from_at: DateTime<Utc>,
    /// Valid until, after the start.
    pub valid_until_at: DateTime<Utc>,
    /// Status (default PENDING).
    pub batch_status: Option<BatchStatus>,
    /// 1..=issueCount, or none.
    pub daily_limit: Option<i64>,
    /// The waiting room (on creation; changed live through [`set_admission`]).
    pub admission: AdmissionFields,
    /// The buckets a SELF batch is spread over, 1..=16 (on creation only; default 1).
    pub shards: Option<i64>,
}

/// The list filters.
#[derive(Clone, Debug)]
pub struct BatchFilter {
    /// `batchStatus`.
    pub status: Option<BatchStatus>,
    /// `inventoryId`.
    pub inventory_id: Option<i64>,
    /// `issueType`.
    pub issue_type: Option<IssueType>,
    /// `keyword`: in the name.
    pub keyword: Option<String>,
    /// `from`/`to` on `validFromAt`/`validUntilAt`.
    pub period: Period,
    /// `sort`.
    pub sort: Sort,
    /// `page`, `size`.
    pub paging: Paging,
}

/// A coupon batch with what issuing needs of its inventory.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CouponBatch {
    /// The batch.
    pub batch_id: i64,
    /// SELF or MAPPED.
    pub issue_type: IssueType,
    /// Its status.
    pub batch_status: BatchStatus,
    /// The quantity.
    pub issue_count: i32,
    /// Most issues per KST day.
    pub daily_limit: Option<i32>,
    /// Issuing opens.
    pub valid_from_at: DateTime<Utc>,
    /// Issuing closes.
    pub valid_until_at: DateTime<Utc>,
    /// Batch version + inventory version.
    pub version: i64,
    /// The inventory's status.
    pub inventory_status: InventoryStatus,
    /// Coupons usable from.
    pub usable_from_at: DateTime<Utc>,
    /// Coupons usable until: an issued coupon's `expiresAt`.
    pub usable_until_at: DateTime<Utc>,
    /// The inventory's discount type.
    pub discount_type: Option<DiscountType>,
    /// Its value.
    pub discount_value: Option<i64>,
    /// Its PERCENT cap.
    pub max_discount: Option<i64>,
    /// Its waiting room.
    #[sqlx(flatten)]
    pub admission: AdmissionColumns,
    /// The buckets it is spread over (1: one copy).
    pub shards: i16,
}

/// A live batch with what issuing needs of its live inventory.
pub async fn find_batch(db: impl PgExecutor<'_>, batch_id: i64) -> Result<Option<CouponBatch>, Error> {
    Ok(sqlx::query_as(
        "SELECT b.batch_id, b.issue_type, b.batch_status, b.issue_count, b.daily_limit,
                b.valid_from_at, b.valid_until_at, b.version + i.version AS version,
                i.inventory_status, i.usable_from_at, i.usable_until_at,
                i.discount_type, i.discount_value, i.max_discount,
                b.admission_enabled, b.prequeue_opens_at, b.admit_per_second, b.pass_ttl_seconds,
                b.max_unused_passes, b.admission_state, b.shards
         FROM coupon_batches b JOIN coupon_inventories i USING (inventory_id)
         WHERE b.batch_id = $1 AND b.deleted_at IS NULL AND i.deleted_at IS NULL",
    )
    .bind(batch_id)
    .fetch_optional(db)
    .await?)
}

impl CouponBatch {
    /// The waiting room, when it is on.
    pub fn gate(&self) -> Option<Gate> {
        self.admission.gate()
    }

    /// The buckets it is spread over, at least 1.
    pub fn shard_count(&self) -> u16 {
        self.shards.max(1) as u16
    }

    /// The discount policy, if the inventory has one.
    pub fn discount(&self) -> Option<Discount> {
        Discount::from_columns(self.discount_type, self.discount_value, self.max_discount)
    }
}
