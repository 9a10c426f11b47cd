//! `coupon_inventories` (soft-deleted rows are invisible here).

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

use crate::{
    admin::{
        inventories::{InventoryFields, InventoryFilter, InventoryRow, InventoryStatus},
        listing::{Page, like_pattern},
    },
    error::Error,
};

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
    super::page(
        db,
        "coupon_inventories",
        COLUMNS,
        |qb| push_filters(qb, f),
        &f.sort.order_by("inventory_id"),
        f.paging,
    )
    .await
}
