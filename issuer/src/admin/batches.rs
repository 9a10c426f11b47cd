//! Coupon batches (rounds) of an inventory: how many codes, who claims them (SELF: users,
//! first come; MAPPED: handed out by the admin or a partner), and when they are valid.
//!
//! The batches of one inventory never allocate more than its `totalCount`; batch numbers count up
//! per inventory. Both are decided under the inventory's row lock, so concurrent creations are
//! numbered and checked one at a time. A batch changes only while PENDING and before any job
//! touched it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::listing::{Page, Paging, Period, Sort};
use crate::{
    Engine,
    error::{Error, Missing, Refusal},
    repo,
};

/// Most codes one batch may hold.
pub const MAX_ISSUE_COUNT: i64 = 10_000_000;

/// A batch's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "batch_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchStatus {
    /// Created, not active yet; the only status in which it may change.
    Pending,
    /// Ready to issue.
    Ready,
    /// Switched off.
    Disabled,
}

/// Who claims a batch's coupons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "issue_type", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueType {
    /// Users claim them, first come first served.
    #[serde(rename = "SELF")]
    #[sqlx(rename = "SELF")]
    SelfIssued,
    /// The admin or a partner hands them out.
    Mapped,
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
}

/// A batch with its live issued count.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The stored row.
    pub row: BatchRow,
    /// Coupons issued from it, live from Redis.
    pub issued_count: i64,
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
}

impl BatchFields {
    fn check(&self) -> Result<(), Error> {
        let name = self.batch_name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::Invalid("batchName must be 1-200 characters".into()));
        }
        if self.issue_count > MAX_ISSUE_COUNT {
            return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
        }
        if self.issue_count < 1 {
            return Err(Error::Invalid("issueCount must be at least 1".into()));
        }
        if let Some(daily) = self.daily_limit
            && !(1..=self.issue_count).contains(&daily)
        {
            return Err(Error::Invalid("dailyLimit must be 1 to issueCount".into()));
        }
        if self.valid_from_at >= self.valid_until_at {
            return Err(Error::Refused(Refusal::BatchInvalidPeriod));
        }
        Ok(())
    }
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

/// Sortable fields of the list.
pub const SORT_FIELDS: &[(&str, &str)] = &[
    ("batchId", "batch_id"),
    ("batchName", "batch_name"),
    ("batchNumber", "batch_number"),
    ("issueCount", "issue_count"),
    ("validFromAt", "valid_from_at"),
    ("validUntilAt", "valid_until_at"),
    ("batchStatus", "batch_status"),
    ("createdAt", "created_at"),
    ("updatedAt", "updated_at"),
];

/// Newest first.
pub const DEFAULT_SORT: Sort = Sort {
    column: "created_at",
    descending: true,
};

/// Creates a batch under a live inventory.
pub async fn create(engine: &Engine, actor: &str, inventory_id: i64, f: BatchFields) -> Result<Batch, Error> {
    f.check()?;
    let mut tx = engine.db().begin().await?;
    let (number, total) = repo::inventories::next_batch_number(&mut *tx, inventory_id)
        .await?
        .ok_or(Error::NotFound(Missing::Inventory))?;
    if repo::batches::allocated(&mut *tx, inventory_id, None).await? + f.issue_count > i64::from(total) {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    let status = f.batch_status.unwrap_or(BatchStatus::Pending);
    let row = repo::batches::insert(&mut *tx, actor, inventory_id, number, &f, status).await?;
    tx.commit().await?;
    Ok(Batch { row, issued_count: 0 })
}

/// Changes a PENDING batch that no job has touched.
pub async fn update(engine: &Engine, actor: &str, id: i64, f: BatchFields) -> Result<Batch, Error> {
    f.check()?;
    let mut tx = engine.db().begin().await?;
    let current = repo::batches::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    ensure_modifiable(&mut tx, &current).await?;
    let total = repo::inventories::lock_total(&mut *tx, current.inventory_id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    if repo::batches::allocated(&mut *tx, current.inventory_id, Some(id)).await? + f.issue_count
        > i64::from(total)
    {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    let status = f.batch_status.unwrap_or(current.batch_status);
    let row = repo::batches::update(&mut *tx, id, actor, &f, status).await?;
    tx.commit().await?;
    engine.refresh_coupon_batches(&[id]).await;
    Ok(Batch { row, issued_count: 0 })
}

/// Soft-deletes a PENDING batch that no job has touched; returns when.
pub async fn delete(engine: &Engine, actor: &str, id: i64) -> Result<DateTime<Utc>, Error> {
    let mut tx = engine.db().begin().await?;
    let current = repo::batches::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    ensure_modifiable(&mut tx, &current).await?;
    let at = repo::batches::soft_delete(&mut *tx, id, actor).await?;
    tx.commit().await?;
    engine.refresh_coupon_batches(&[id]).await;
    Ok(at)
}

async fn ensure_modifiable(tx: &mut sqlx::PgConnection, b: &BatchRow) -> Result<(), Error> {
    if b.batch_status != BatchStatus::Pending
        || b.code_count > 0
        || repo::jobs::has_live_job(&mut *tx, b.batch_id).await?
    {
        return Err(Error::Refused(Refusal::CannotModifyBatch));
    }
    Ok(())
}

/// One live batch with its issued count.
pub async fn find(engine: &Engine, id: i64) -> Result<Batch, Error> {
    let row = repo::batches::find(engine.db(), id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    with_issued(engine, vec![row]).await.map(|mut v| v.remove(0))
}

/// A page of live batches with their issued counts.
pub async fn list(engine: &Engine, f: &BatchFilter) -> Result<Page<Batch>, Error> {
    let mut page = repo::batches::list(engine.db(), f).await?;
    let rows = with_issued(engine, std::mem::take(&mut page.data)).await?;
    Ok(page.with_data(rows))
}

async fn with_issued(engine: &Engine, rows: Vec<BatchRow>) -> Result<Vec<Batch>, Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.batch_id).collect();
    let issued = super::issued_counts(engine, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| Batch {
            issued_count: issued.get(&row.batch_id).copied().unwrap_or(0),
            row,
        })
        .collect())
}
