//! Coupon batches (rounds) of an inventory: how many codes, who claims them (SELF: users,
//! first come; MAPPED: handed out by the admin or a partner), and when they are valid.
//!
//! The batches of one inventory never allocate more than its `totalCount`; batch numbers count up
//! per inventory. Both are decided under the inventory's row lock, so concurrent creations are
//! numbered and checked one at a time. A batch changes only while PENDING and before any job
//! touched it, except for the quantity and the waiting room of a SELF batch, which change live
//! ([`change`]).

use chrono::{DateTime, Utc};
use engine::{Engine, quantity::RowChange, scope::Scope};
use issuance_core::{
    admission::AdmissionFields,
    enums::{BatchStatus, IssueType},
    error::{Error, Missing, Refusal},
    paging::{Page, Sort},
};
use sqlx::PgConnection;
use store::coupon_batches::{BatchFields, BatchFilter, BatchRow};

/// Most codes one batch may hold.
pub const MAX_ISSUE_COUNT: i64 = 10_000_000;

/// Most buckets one SELF batch may be spread over (as an event, see `engine::leases`).
pub const MAX_SHARDS: i64 = 16;

/// A batch with its live issued count.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The stored row.
    pub row: BatchRow,
    /// Coupons issued from it, live from Redis.
    pub issued_count: i64,
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

/// Checks the fields an admin sets against the rules of SPEC §3.
fn check(f: &BatchFields) -> Result<(), Error> {
    let name = f.batch_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Invalid("batchName must be 1-200 characters".into()));
    }
    if f.issue_count > MAX_ISSUE_COUNT {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    if f.issue_count < 1 {
        return Err(Error::Invalid("issueCount must be at least 1".into()));
    }
    if let Some(daily) = f.daily_limit
        && !(1..=f.issue_count).contains(&daily)
    {
        return Err(Error::Invalid("dailyLimit must be 1 to issueCount".into()));
    }
    if f.valid_from_at >= f.valid_until_at {
        return Err(Error::Refused(Refusal::BatchInvalidPeriod));
    }
    if !f.admission.is_empty() && f.issue_type != IssueType::SelfIssued {
        return Err(Error::Invalid("admission is for SELF batches only".into()));
    }
    if let Some(shards) = f.shards {
        if !(1..=MAX_SHARDS).contains(&shards) {
            return Err(Error::Invalid(format!(
                "shards must be between 1 and {MAX_SHARDS}"
            )));
        }
        if shards > 1 && f.issue_type != IssueType::SelfIssued {
            return Err(Error::Invalid("shards is for SELF batches only".into()));
        }
    }
    f.admission.check_complete()?;
    f.admission.check_opening(f.valid_from_at, "validFromAt")
}

/// Creates a batch under a live inventory.
pub async fn create(engine: &Engine, actor: &str, inventory_id: i64, f: BatchFields) -> Result<Batch, Error> {
    check(&f)?;
    let mut tx = engine.db().begin().await?;
    let (number, total) = store::coupon_inventories::next_batch_number(&mut *tx, inventory_id)
        .await?
        .ok_or(Error::NotFound(Missing::Inventory))?;
    if store::coupon_batches::allocated(&mut *tx, inventory_id, None).await? + f.issue_count
        > i64::from(total)
    {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    let status = f.batch_status.unwrap_or(BatchStatus::Pending);
    let row = store::coupon_batches::insert(&mut *tx, actor, inventory_id, number, &f, status).await?;
    tx.commit().await?;
    Ok(Batch { row, issued_count: 0 })
}

/// Changes a PENDING batch that no job has touched.
pub async fn update(engine: &Engine, actor: &str, id: i64, f: BatchFields) -> Result<Batch, Error> {
    check(&f)?;
    let mut tx = engine.db().begin().await?;
    let current = store::coupon_batches::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    ensure_modifiable(&mut tx, &current).await?;
    let total = store::coupon_inventories::lock_total(&mut *tx, current.inventory_id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponInventory))?;
    if store::coupon_batches::allocated(&mut *tx, current.inventory_id, Some(id)).await? + f.issue_count
        > i64::from(total)
    {
        return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
    }
    let status = f.batch_status.unwrap_or(current.batch_status);
    let row = store::coupon_batches::update(&mut *tx, id, actor, &f, status).await?;
    tx.commit().await?;
    engine.refresh_coupon_batches(&[id]).await;
    Ok(Batch { row, issued_count: 0 })
}

/// Changes a SELF batch while it issues (PENDING or READY): its quantity, up within its
/// inventory or down to what it issued and no further (see `engine::quantity`), and its waiting
/// room's settings; either or both.
pub async fn change(
    engine: &Engine,
    actor: &str,
    id: i64,
    issue_count: Option<i64>,
    admission: AdmissionFields,
) -> Result<Batch, Error> {
    if issue_count.is_none() && admission.is_empty() {
        return Err(Error::Invalid("give issueCount, admission or both".into()));
    }
    if issue_count.is_some_and(|count| !(1..=MAX_ISSUE_COUNT).contains(&count)) {
        return Err(Error::Invalid("issueCount must be between 1 and 10000000".into()));
    }
    let change = BatchChange {
        id,
        actor,
        // Fits in i32: checked against MAX_ISSUE_COUNT above.
        issue_count: issue_count.map(|count| count as i32),
        admission,
    };
    let (_, row) = engine
        .change_scope(&Scope::Coupon(id), issue_count, change)
        .await?;
    engine.refresh_coupon_batches(&[id]).await;
    with_issued(engine, vec![row]).await.map(|mut v| v.remove(0))
}

/// A change of a batch while it issues (see [`RowChange`]).
struct BatchChange<'a> {
    id: i64,
    actor: &'a str,
    issue_count: Option<i32>,
    admission: AdmissionFields,
}

impl RowChange for BatchChange<'_> {
    type Row = BatchRow;

    async fn lock(&mut self, tx: &mut PgConnection) -> Result<i64, Error> {
        let current = store::coupon_batches::lock(&mut *tx, self.id)
            .await?
            .ok_or(Error::NotFound(Missing::CouponBatch))?;
        // A MAPPED batch's quantity is the codes a job made for it; a DISABLED one issues no more.
        if current.issue_type != IssueType::SelfIssued
            || current.batch_status == BatchStatus::Disabled
            || store::coupon_jobs::has_live_job(&mut *tx, self.id).await?
        {
            return Err(Error::Refused(Refusal::CannotModifyBatch));
        }
        self.admission
            .check_opening(current.valid_from_at, "validFromAt")?;
        if let Some(count) = self.issue_count {
            if current.daily_limit.is_some_and(|daily| daily > count) {
                return Err(Error::Invalid("dailyLimit must be 1 to issueCount".into()));
            }
            let total = store::coupon_inventories::lock_total(&mut *tx, current.inventory_id)
                .await?
                .ok_or(Error::NotFound(Missing::CouponInventory))?;
            let others =
                store::coupon_batches::allocated(&mut *tx, current.inventory_id, Some(self.id)).await?;
            if others + i64::from(count) > i64::from(total) {
                return Err(Error::Refused(Refusal::MaxCouponLimitExceeded));
            }
        }
        Ok(i64::from(current.issue_count))
    }

    async fn write(&mut self, tx: &mut PgConnection) -> Result<BatchRow, Error> {
        let mut row = None;
        if let Some(count) = self.issue_count {
            row = Some(store::coupon_batches::set_issue_count(&mut *tx, self.id, self.actor, count).await?);
        }
        if !self.admission.is_empty() || row.is_none() {
            row = Some(
                store::coupon_batches::set_admission(&mut *tx, self.id, self.actor, &self.admission, None)
                    .await?,
            );
        }
        Ok(row.expect("one of the two writes ran"))
    }
}

/// Soft-deletes a PENDING batch that no job has touched; returns when.
pub async fn delete(engine: &Engine, actor: &str, id: i64) -> Result<DateTime<Utc>, Error> {
    let mut tx = engine.db().begin().await?;
    let current = store::coupon_batches::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    ensure_modifiable(&mut tx, &current).await?;
    let at = store::coupon_batches::soft_delete(&mut *tx, id, actor).await?;
    tx.commit().await?;
    engine.refresh_coupon_batches(&[id]).await;
    Ok(at)
}

async fn ensure_modifiable(tx: &mut sqlx::PgConnection, b: &BatchRow) -> Result<(), Error> {
    if b.batch_status != BatchStatus::Pending
        || b.code_count > 0
        || store::coupon_jobs::has_live_job(&mut *tx, b.batch_id).await?
    {
        return Err(Error::Refused(Refusal::CannotModifyBatch));
    }
    Ok(())
}

/// One live batch with its issued count.
pub async fn find(engine: &Engine, id: i64) -> Result<Batch, Error> {
    let row = store::coupon_batches::find(engine.db(), id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    with_issued(engine, vec![row]).await.map(|mut v| v.remove(0))
}

/// A page of live batches with their issued counts.
pub async fn list(engine: &Engine, f: &BatchFilter) -> Result<Page<Batch>, Error> {
    let mut page = store::coupon_batches::list(engine.db(), f).await?;
    let rows = with_issued(engine, std::mem::take(&mut page.data)).await?;
    Ok(page.with_data(rows))
}

async fn with_issued(engine: &Engine, rows: Vec<BatchRow>) -> Result<Vec<Batch>, Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.batch_id).collect();
    let issued = engine.issued_counts(&ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| Batch {
            issued_count: issued.get(&row.batch_id).copied().unwrap_or(0),
            row,
        })
        .collect())
}
