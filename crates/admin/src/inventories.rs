//! Coupon inventories: how many coupons an event may hand out, when they can be used, and the
//! discount they give. Changed or deleted only while READY.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use engine::Engine;
use issuance_core::{
    enums::InventoryStatus,
    error::{Error, Missing, Refusal},
    paging::{Page, Sort},
};
use store::coupon_inventories::{InventoryFields, InventoryFilter, InventoryRow};

/// Most coupons one inventory may hold.
pub const MAX_TOTAL_COUNT: i64 = 10_000_000;

/// An inventory with its live issued count.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// The stored row.
    pub row: InventoryRow,
    /// Coupons issued over all its batches, live from Redis.
    pub issued_count: i64,
}

/// Sortable fields of the list.
pub const SORT_FIELDS: &[(&str, &str)] = &[
    ("inventoryId", "inventory_id"),
    ("inventoryName", "inventory_name"),
    ("totalCount", "total_count"),
    ("usableFromAt", "usable_from_at"),
    ("usableUntilAt", "usable_until_at"),
    ("inventoryStatus", "inventory_status"),
    ("createdAt", "created_at"),
    ("updatedAt", "updated_at"),
];

/// Newest first.
pub const DEFAULT_SORT: Sort = Sort {
    column: "created_at",
    descending: true,
};

/// Checks the fields an admin sets against the rules of SPEC §3.
fn check(f: &InventoryFields) -> Result<(), Error> {
    let name = f.inventory_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Invalid("inventoryName must be 1-200 characters".into()));
    }
    if f.total_count > MAX_TOTAL_COUNT {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    if f.total_count < 1 {
        return Err(Error::Invalid("totalCount must be at least 1".into()));
    }
    if f.usable_from_at >= f.usable_until_at {
        return Err(Error::Refused(Refusal::InventoryInvalidPeriod));
    }
    if let Some(d) = &f.discount {
        d.check()?;
    }
    Ok(())
}

/// Creates an inventory for a live event.
pub async fn create(engine: &Engine, actor: &str, f: InventoryFields) -> Result<Inventory, Error> {
    check(&f)?;
    let db = engine.db();
    if !store::events::exists(db, f.event_id).await? {
        return Err(Error::NotFound(Missing::AdminEvent));
    }
    let status = f.inventory_status.unwrap_or(InventoryStatus::Ready);
    let row = store::coupon_inventories::insert(db, actor, &f, status).await?;
    Ok(Inventory { row, issued_count: 0 })
}

/// Changes a READY inventory; its total may not fall below what its batches hold.
pub async fn update(engine: &Engine, actor: &str, id: i64, f: InventoryFields) -> Result<Inventory, Error> {
    check(&f)?;
    let mut tx = engine.db().begin().await?;
    let current = store::coupon_inventories::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    if current.inventory_status != InventoryStatus::Ready {
        return Err(Error::Refused(Refusal::CannotModifyInventory));
    }
    if !store::events::exists(&mut *tx, f.event_id).await? {
        return Err(Error::NotFound(Missing::AdminEvent));
    }
    if store::coupon_batches::allocated(&mut *tx, id, None).await? > f.total_count {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    let status = f.inventory_status.unwrap_or(current.inventory_status);
    let row = store::coupon_inventories::update(&mut *tx, id, actor, &f, status).await?;
    tx.commit().await?;
    // Its batches' issuing follows its status and usable period at once.
    let batches: Vec<i64> = store::coupon_batches::ids_by_inventory(engine.db(), &[id])
        .await?
        .into_iter()
        .map(|(_, batch)| batch)
        .collect();
    engine.refresh_coupon_batches(&batches).await;
    with_issued(engine, vec![row]).await.map(|mut v| v.remove(0))
}

/// Soft-deletes a READY inventory that has no batches; returns when.
pub async fn delete(engine: &Engine, actor: &str, id: i64) -> Result<DateTime<Utc>, Error> {
    let mut tx = engine.db().begin().await?;
    let current = store::coupon_inventories::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    if current.inventory_status != InventoryStatus::Ready
        || store::coupon_batches::allocated(&mut *tx, id, None).await? > 0
    {
        return Err(Error::Refused(Refusal::CannotDeleteInventory));
    }
    let at = store::coupon_inventories::soft_delete(&mut *tx, id, actor).await?;
    tx.commit().await?;
    Ok(at)
}

/// One live inventory with its issued count.
pub async fn find(engine: &Engine, id: i64) -> Result<Inventory, Error> {
    let row = store::coupon_inventories::find(engine.db(), id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    with_issued(engine, vec![row]).await.map(|mut v| v.remove(0))
}

/// A page of live inventories with their issued counts.
pub async fn list(engine: &Engine, f: &InventoryFilter) -> Result<Page<Inventory>, Error> {
    let mut page = store::coupon_inventories::list(engine.db(), f).await?;
    let rows = with_issued(engine, std::mem::take(&mut page.data)).await?;
    Ok(page.with_data(rows))
}

/// Adds the live issued count of each inventory: the sum over its batches.
async fn with_issued(engine: &Engine, rows: Vec<InventoryRow>) -> Result<Vec<Inventory>, Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.inventory_id).collect();
    let batches = store::coupon_batches::ids_by_inventory(engine.db(), &ids).await?;
    let batch_ids: Vec<i64> = batches.iter().map(|(_, b)| *b).collect();
    let issued = engine.issued_counts(&batch_ids).await?;
    let mut per_inventory: HashMap<i64, i64> = HashMap::new();
    for (inventory, batch) in batches {
        *per_inventory.entry(inventory).or_default() += issued.get(&batch).copied().unwrap_or(0);
    }
    Ok(rows
        .into_iter()
        .map(|row| Inventory {
            issued_count: per_inventory.get(&row.inventory_id).copied().unwrap_or(0),
            row,
        })
        .collect())
}
