//! `coupon_inventories` (soft-deleted rows are invisible here).

use chrono::{DateTime, Utc};
use issuance_core::{
    discount::{Discount, DiscountType},
    enums::InventoryStatus,
    error::Error,
    paging::{Page, Paging, Period, Sort, like_pattern},
};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

const COLUMNS: &str = "inventory_id, event_id, inventory_name, usable_from_at, usable_until_at, \
                       total_count, inventory_status, discount_type, discount_value, max_discount, \
                       created_by, updated_by, created_at, updated_at";

/// Inserts an inventory.
pub async fn insert(
    db: impl PgExecutor<'_>,
    actor: &str,
    f: &InventoryFields,
    status: InventoryStatus,
) -> Result<InventoryRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO coupon_inventories (event_id, inventory_name, usable_from_at, usable_until_at,
             total_count, inventory_status, discount_type, discount_value, max_discount, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING {COLUMNS}"
    )))
    .bind(f.event_id)
    .bind(f.inventory_name.trim())
    .bind(f.usable_from_at)
    .bind(f.usable_until_at)
    .bind(f.total_count as i32)
    .bind(status)
    .bind(f.discount.map(|d| d.kind))
    .bind(f.discount.map(|d| d.value))
    .bind(f.discount.and_then(|d| d.max_discount))
    .bind(actor)
    .fetch_one(db)
    .await?)
}

/// The live inventory, locked for the rest of the transaction.
pub async fn lock(db: impl PgExecutor<'_>, id: i64) -> Result<Option<InventoryRow>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupon_inventories WHERE inventory_id = $1 AND deleted_at IS NULL FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// The live inventory.
pub async fn find(db: impl PgExecutor<'_>, id: i64) -> Result<Option<InventoryRow>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupon_inventories WHERE inventory_id = $1 AND deleted_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Rewrites an inventory's fields.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: i64,
    actor: &str,
    f: &InventoryFields,
    status: InventoryStatus,
) -> Result<InventoryRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_inventories SET event_id = $2, inventory_name = $3, usable_from_at = $4,
                usable_until_at = $5, total_count = $6, inventory_status = $7, discount_type = $8,
                discount_value = $9, max_discount = $10, updated_by = $11, updated_at = now(),
                version = version + 1
         WHERE inventory_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(f.event_id)
    .bind(f.inventory_name.trim())
    .bind(f.usable_from_at)
    .bind(f.usable_until_at)
    .bind(f.total_count as i32)
    .bind(status)
    .bind(f.discount.map(|d| d.kind))
    .bind(f.discount.map(|d| d.value))
    .bind(f.discount.and_then(|d| d.max_discount))
    .bind(actor)
    .fetch_one(db)
    .await?)
}

/// Marks the inventory deleted; returns when.
pub async fn soft_delete(db: impl PgExecutor<'_>, id: i64, actor: &str) -> Result<DateTime<Utc>, Error> {
    Ok(sqlx::query_scalar(
        "UPDATE coupon_inventories SET deleted_at = now(), updated_by = $2, updated_at = now(),
                version = version + 1
         WHERE inventory_id = $1 RETURNING deleted_at",
    )
    .bind(id)
    .bind(actor)
    .fetch_one(db)
    .await?)
}

/// Hands out the inventory's next batch number and returns it with the inventory's total, under
/// the row lock (so concurrent batch creations are numbered 1, 2, 3 … and checked one at a time);
/// `None` when there is no live inventory.
pub async fn next_batch_number(db: impl PgExecutor<'_>, id: i64) -> Result<Option<(i32, i32)>, Error> {
    Ok(sqlx::query_as(
        "UPDATE coupon_inventories SET last_batch_number = last_batch_number + 1
         WHERE inventory_id = $1 AND deleted_at IS NULL
         RETURNING last_batch_number, total_count",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// The inventory's total, locked (a batch change checks its allocation against it).
pub async fn lock_total(db: impl PgExecutor<'_>, id: i64) -> Result<Option<i32>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT total_count FROM coupon_inventories WHERE inventory_id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &InventoryFilter) {
    qb.push(" WHERE deleted_at IS NULL");
    if let Some(status) = f.status {
        qb.push(" AND inventory_status = ").push_bind(status);
    }
    if let Some(event) = f.event_id {
        qb.push(" AND event_id = ").push_bind(event);
    }
    if let Some(keyword) = &f.keyword {
        qb.push(" AND inventory_name ILIKE ")
            .push_bind(like_pattern(keyword));
    }
    if let Some(from) = f.period.from {
        qb.push(" AND usable_from_at >= ").push_bind(from);
    }
    if let Some(before) = f.period.until_before {
        qb.push(" AND usable_until_at < ").push_bind(before);
    }
}

/// A page of live inventories.
pub async fn list(db: &PgPool, f: &InventoryFilter) -> Result<Page<InventoryRow>, Error> {
    crate::page(
        db,
        "coupon_inventories",
        COLUMNS,
        |qb| push_filters(qb, f),
        &f.sort.order_by("inventory_id"),
        f.paging,
    )
    .await
}

/// An inventory as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InventoryRow {
    /// Its id.
    pub inventory_id: i64,
    /// Its event.
    pub event_id: i64,
    /// Its name.
    pub inventory_name: String,
    /// Coupons usable from.
    pub usable_from_at: DateTime<Utc>,
    /// Coupons usable until.
    pub usable_until_at: DateTime<Utc>,
    /// Most coupons its batches may hold together.
    pub total_count: i32,
    /// Status.
    pub inventory_status: InventoryStatus,
    /// Discount type, if it has a policy.
    pub discount_type: Option<DiscountType>,
    /// Discount value.
    pub discount_value: Option<i64>,
    /// PERCENT cap.
    pub max_discount: Option<i64>,
    /// Who created it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
}

impl InventoryRow {
    /// The discount policy, if any.
    pub fn discount(&self) -> Option<Discount> {
        Discount::from_columns(self.discount_type, self.discount_value, self.max_discount)
    }
}

/// The fields an admin sets.
#[derive(Clone, Debug)]
pub struct InventoryFields {
    /// Its event (must exist).
    pub event_id: i64,
    /// 1–200 characters.
    pub inventory_name: String,
    /// Usable from.
    pub usable_from_at: DateTime<Utc>,
    /// Usable until, after the start.
    pub usable_until_at: DateTime<Utc>,
    /// 1..=10,000,000.
    pub total_count: i64,
    /// Status (default READY).
    pub inventory_status: Option<InventoryStatus>,
    /// The discount policy.
    pub discount: Option<Discount>,
}

/// The list filters.
#[derive(Clone, Debug)]
pub struct InventoryFilter {
    /// `inventoryStatus`.
    pub status: Option<InventoryStatus>,
    /// `eventId`.
    pub event_id: Option<i64>,
    /// `keyword`: in the name.
    pub keyword: Option<String>,
    /// `from`/`to` on `usableFromAt`/`usableUntilAt`.
    pub period: Period,
    /// `sort`.
    pub sort: Sort,
    /// `page`, `size`.
    pub paging: Paging,
}
