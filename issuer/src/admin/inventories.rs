//! Coupon inventories: how many coupons an event may hand out, when they can be used, and the
//! discount they give. Changed or deleted only while READY.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::listing::{Page, Paging, Period, Sort};
use crate::{
    Engine,
    error::{Error, Missing, Refusal},
    repo,
};

/// Most coupons one inventory may hold.
pub const MAX_TOTAL_COUNT: i64 = 10_000_000;

/// An inventory's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "inventory_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InventoryStatus {
    /// Ready to issue; the only status in which it may change.
    Ready,
    /// Issuing.
    Ongoing,
    /// Done; its coupons are no longer issued.
    End,
}

/// How a discount is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "discount_type", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscountType {
    /// `value` percent of the order, capped by `maxDiscount` when set.
    Percent,
    /// `value` won off.
    Amount,
}

/// The discount policy a coupon of the inventory gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discount {
    /// PERCENT or AMOUNT.
    #[serde(rename = "type")]
    pub kind: DiscountType,
    /// Percent (1–100) or won (≥ 1).
    pub value: i64,
    /// Cap of a PERCENT discount, in won; not allowed with AMOUNT.
    #[serde(default)]
    pub max_discount: Option<i64>,
}

impl Discount {
    fn check(&self) -> Result<(), Error> {
        let ok = match self.kind {
            DiscountType::Percent => {
                (1..=100).contains(&self.value) && self.max_discount.is_none_or(|m| m >= 1)
            }
            DiscountType::Amount => self.value >= 1 && self.max_discount.is_none(),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid(
                "discount: PERCENT takes value 1-100 and an optional maxDiscount >= 1; AMOUNT takes value >= 1 and no maxDiscount".into(),
            ))
        }
    }

    /// The policy stored in the inventory's three columns, if it has one (a CHECK keeps the
    /// columns all set or all empty).
    pub fn from_columns(
        kind: Option<DiscountType>,
        value: Option<i64>,
        max_discount: Option<i64>,
    ) -> Option<Self> {
        Some(Self {
            kind: kind?,
            value: value?,
            max_discount,
        })
    }

    /// What this policy takes off `amount` won.
    pub fn apply(&self, amount: i64) -> i64 {
        let off = match self.kind {
            DiscountType::Percent => {
                let pct = amount * self.value / 100;
                self.max_discount.map_or(pct, |cap| pct.min(cap))
            }
            DiscountType::Amount => self.value,
        };
        off.clamp(0, amount.max(0))
    }
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

/// An inventory with its live issued count.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// The stored row.
    pub row: InventoryRow,
    /// Coupons issued over all its batches, live from Redis.
    pub issued_count: i64,
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

impl InventoryFields {
    fn check(&self) -> Result<(), Error> {
        let name = self.inventory_name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::Invalid("inventoryName must be 1-200 characters".into()));
        }
        if self.total_count > MAX_TOTAL_COUNT {
            return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
        }
        if self.total_count < 1 {
            return Err(Error::Invalid("totalCount must be at least 1".into()));
        }
        if self.usable_from_at >= self.usable_until_at {
            return Err(Error::Refused(Refusal::InventoryInvalidPeriod));
        }
        if let Some(d) = &self.discount {
            d.check()?;
        }
        Ok(())
    }
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

/// Creates an inventory for a live event.
pub async fn create(engine: &Engine, actor: &str, f: InventoryFields) -> Result<Inventory, Error> {
    f.check()?;
    let db = engine.db();
    if !repo::admin_events::exists(db, f.event_id).await? {
        return Err(Error::NotFound(Missing::AdminEvent));
    }
    let status = f.inventory_status.unwrap_or(InventoryStatus::Ready);
    let row = repo::inventories::insert(db, actor, &f, status).await?;
    Ok(Inventory { row, issued_count: 0 })
}

/// Changes a READY inventory; its total may not fall below what its batches hold.
pub async fn update(engine: &Engine, actor: &str, id: i64, f: InventoryFields) -> Result<Inventory, Error> {
    f.check()?;
    let mut tx = engine.db().begin().await?;
    let current = repo::inventories::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    if current.inventory_status != InventoryStatus::Ready {
        return Err(Error::Refused(Refusal::CannotModifyInventory));
    }
    if !repo::admin_events::exists(&mut *tx, f.event_id).await? {
        return Err(Error::NotFound(Missing::AdminEvent));
    }
    if repo::batches::allocated(&mut *tx, id, None).await? > f.total_count {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    let status = f.inventory_status.unwrap_or(current.inventory_status);
    let row = repo::inventories::update(&mut *tx, id, actor, &f, status).await?;
    tx.commit().await?;
    // Its batches' issuing follows its status and usable period at once.
    let batches: Vec<i64> = repo::batches::ids_by_inventory(engine.db(), &[id])
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
    let current = repo::inventories::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    if current.inventory_status != InventoryStatus::Ready
        || repo::batches::allocated(&mut *tx, id, None).await? > 0
    {
        return Err(Error::Refused(Refusal::CannotDeleteInventory));
    }
    let at = repo::inventories::soft_delete(&mut *tx, id, actor).await?;
    tx.commit().await?;
    Ok(at)
}

/// One live inventory with its issued count.
pub async fn find(engine: &Engine, id: i64) -> Result<Inventory, Error> {
    let row = repo::inventories::find(engine.db(), id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    with_issued(engine, vec![row]).await.map(|mut v| v.remove(0))
}

/// A page of live inventories with their issued counts.
pub async fn list(engine: &Engine, f: &InventoryFilter) -> Result<Page<Inventory>, Error> {
    let mut page = repo::inventories::list(engine.db(), f).await?;
    let rows = with_issued(engine, std::mem::take(&mut page.data)).await?;
    Ok(page.with_data(rows))
}

/// Adds the live issued count of each inventory: the sum over its batches.
async fn with_issued(engine: &Engine, rows: Vec<InventoryRow>) -> Result<Vec<Inventory>, Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.inventory_id).collect();
    let batches = repo::batches::ids_by_inventory(engine.db(), &ids).await?;
    let batch_ids: Vec<i64> = batches.iter().map(|(_, b)| *b).collect();
    let issued = super::issued_counts(engine, &batch_ids).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounts() {
        let pct = Discount {
            kind: DiscountType::Percent,
            value: 10,
            max_discount: Some(3_000),
        };
        assert_eq!(pct.apply(20_000), 2_000);
        assert_eq!(pct.apply(50_000), 3_000);
        let amount = Discount {
            kind: DiscountType::Amount,
            value: 5_000,
            max_discount: None,
        };
        assert_eq!(amount.apply(3_000), 3_000);
        assert!(
            Discount {
                kind: DiscountType::Amount,
                value: 5,
                max_discount: Some(1)
            }
            .check()
            .is_err()
        );
        assert!(
            Discount {
                kind: DiscountType::Percent,
                value: 101,
                max_discount: None
            }
            .check()
            .is_err()
        );
    }
}
