//! `coupon_issues`: every first-come coupon issued, written by the stream drain; and the batch
//! rows the issuance core reads.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::{Stream, TryStreamExt};
use sqlx::{PgConnection, PgExecutor, QueryBuilder};

use crate::{Holder, copy::BinaryRows};
use issuance_core::{
    discount::{Discount, DiscountType},
    enums::{CouponIssueStatus, CouponStatus},
    error::Error,
    ids::issue_id,
};

/// A coupon issue to write.
#[derive(Clone, Debug)]
pub struct NewCouponIssue {
    /// Its batch.
    pub batch_id: i64,
    /// Its position in the batch.
    pub seq: i32,
    /// Its holder.
    pub user_id: i64,
    /// When Redis issued it.
    pub issued_at: DateTime<Utc>,
}

/// A user's coupon with its batch's usable period and discount.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserCouponRow {
    /// Its id.
    pub coupon_issue_id: i64,
    /// Its batch.
    pub batch_id: i64,
    /// Its position.
    pub seq: i32,
    /// Stored status.
    pub status: CouponIssueStatus,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// Usable from.
    pub usable_from_at: DateTime<Utc>,
    /// Usable until.
    pub usable_until_at: DateTime<Utc>,
    /// Discount type.
    pub discount_type: Option<DiscountType>,
    /// Discount value.
    pub discount_value: Option<i64>,
    /// PERCENT cap.
    pub max_discount: Option<i64>,
}

impl UserCouponRow {
    /// The discount policy, if any.
    pub fn discount(&self) -> Option<Discount> {
        Discount::from_columns(self.discount_type, self.discount_value, self.max_discount)
    }
}

/// Whether the coupon issue is in Postgres.
pub async fn exists(db: impl PgExecutor<'_>, coupon_issue_id: i64) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM coupon_issues WHERE coupon_issue_id = $1)")
            .bind(coupon_issue_id)
            .fetch_one(db)
            .await?,
    )
}

/// Writes coupon issues none of which is in Postgres yet with one binary COPY: the drain's fast
/// path. One that is there already breaks a unique constraint and fails the whole statement
/// ([`crate::is_unique_violation`]); the caller then rolls back and uses [`insert_batch`]. The
/// codes at their positions become ISSUED as with [`insert_batch`]. Returns the number written.
pub async fn copy_batch(tx: &mut PgConnection, issues: &[NewCouponIssue]) -> Result<u64, Error> {
    if issues.is_empty() {
        return Ok(0);
    }
    let counted = lock_batches(tx, issues).await?;
    let mut rows = BinaryRows::with_capacity(issues.len(), 60);
    for c in issues {
        rows.row(5)
            .int8(issue_id(c.batch_id, c.seq))
            .int8(c.batch_id)
            .int4(c.seq)
            .int8(c.user_id)
            .timestamptz(c.issued_at);
    }
    let done = rows
        .copy(
            tx,
            "COPY coupon_issues (coupon_issue_id, batch_id, seq, user_id, issued_at) \
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    mark_codes_issued(tx, issues, &counted).await?;
    Ok(done)
}

/// Inserts coupon issues; rows already there are skipped, so a replayed batch changes nothing.
/// The codes at their positions, if a generation job wrote them, become ISSUED. Returns the
/// number of issues inserted.
pub async fn insert_batch(tx: &mut PgConnection, issues: &[NewCouponIssue]) -> Result<u64, Error> {
    if issues.is_empty() {
        return Ok(0);
    }
    let counted = lock_batches(tx, issues).await?;
    let batches: Vec<i64> = issues.iter().map(|c| c.batch_id).collect();
    let seqs: Vec<i32> = issues.iter().map(|c| c.seq).collect();
    let users: Vec<i64> = issues.iter().map(|c| c.user_id).collect();
    let times: Vec<DateTime<Utc>> = issues.iter().map(|c| c.issued_at).collect();
    let done = sqlx::query(
        "INSERT INTO coupon_issues (coupon_issue_id, batch_id, seq, user_id, issued_at)
         SELECT b * 10000000 + s, b, s, u, t
         FROM UNNEST($1::int8[], $2::int4[], $3::int8[], $4::timestamptz[]) AS x (b, s, u, t)
         ON CONFLICT DO NOTHING",
    )
    .bind(&batches)
    .bind(&seqs)
    .bind(&users)
    .bind(&times)
    .execute(&mut *tx)
    .await?;
    mark_codes_issued(tx, issues, &counted).await?;
    Ok(done.rows_affected())
}

/// Share-locks the issues' batches and returns each one's `code_count` (its codes that count
/// are those below it).
///
/// A generation job completes by raising its batch's `code_count` under the row lock and then
/// syncing the statuses of the issues it finds ([`sync_code_statuses`]): whichever of the two
/// commits second sees the other's rows, so no issued code stays AVAILABLE.
async fn lock_batches(tx: &mut PgConnection, issues: &[NewCouponIssue]) -> Result<HashMap<i64, i32>, Error> {
    let mut distinct: Vec<i64> = issues.iter().map(|c| c.batch_id).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let counted: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT batch_id, code_count FROM coupon_batches WHERE batch_id = ANY($1)
         ORDER BY batch_id FOR SHARE",
    )
    .bind(&distinct)
    .fetch_all(&mut *tx)
    .await?;
    Ok(counted.into_iter().collect())
}

/// Marks ISSUED the codes at the issues' positions, among those that count. Most first-come
/// batches have no codes, and then there is nothing to look up.
async fn mark_codes_issued(
    tx: &mut PgConnection,
    issues: &[NewCouponIssue],
    counted: &HashMap<i64, i32>,
) -> Result<(), Error> {
    let (batches, seqs): (Vec<i64>, Vec<i32>) = issues
        .iter()
        .filter(|c| counted.get(&c.batch_id).is_some_and(|n| c.seq < *n))
        .map(|c| (c.batch_id, c.seq))
        .unzip();
    if batches.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE coupon_codes c SET status = 'ISSUED'
         FROM UNNEST($1::int8[], $2::int4[]) AS x (b, s)
         WHERE c.batch_id = x.b AND c.seq = x.s AND c.status = 'AVAILABLE'",
    )
    .bind(&batches)
    .bind(&seqs)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Marks the batch's codes that were issued before they were written (a generation job that
/// completes while the batch is being claimed).
pub async fn sync_code_statuses(db: impl PgExecutor<'_>, batch_id: i64) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE coupon_codes c
         SET status = CASE WHEN i.status = 'USED' THEN 'USED'::code_status ELSE 'ISSUED' END
         FROM coupon_issues i
         WHERE i.batch_id = $1 AND c.batch_id = $1 AND c.seq = i.seq AND c.status = 'AVAILABLE'",
    )
    .bind(batch_id)
    .execute(db)
    .await?
    .rows_affected())
}

/// Every issue of a batch, streamed, for rebuilding its holders.
pub fn stream_for_batch<'e>(
    db: impl PgExecutor<'e> + 'e,
    batch_id: i64,
) -> impl Stream<Item = Result<Holder, Error>> + 'e {
    sqlx::query_as("SELECT user_id, seq::text AS issue_id, issued_at FROM coupon_issues WHERE batch_id = $1")
        .bind(batch_id)
        .fetch(db)
        .map_err(Error::from)
}

/// How many issues a batch has in Postgres.
pub async fn count_for_batch(db: impl PgExecutor<'_>, batch_id: i64) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM coupon_issues WHERE batch_id = $1")
            .bind(batch_id)
            .fetch_one(db)
            .await?,
    )
}

/// A user's coupons, newest first, optionally of one status as of `now`.
pub async fn list_for_user(
    db: impl PgExecutor<'_>,
    user_id: i64,
    status: Option<CouponStatus>,
    now: DateTime<Utc>,
) -> Result<Vec<UserCouponRow>, Error> {
    let mut qb = QueryBuilder::new(
        "SELECT ci.coupon_issue_id, ci.batch_id, ci.seq, ci.status, ci.issued_at,
                i.usable_from_at, i.usable_until_at, i.discount_type, i.discount_value, i.max_discount
         FROM coupon_issues ci
         JOIN coupon_batches b USING (batch_id)
         JOIN coupon_inventories i USING (inventory_id)
         WHERE ci.user_id = ",
    );
    qb.push_bind(user_id);
    match status {
        None => {}
        Some(CouponStatus::Used) => {
            qb.push(" AND ci.status = 'USED'");
        }
        Some(CouponStatus::Issued) => {
            qb.push(" AND ci.status = 'ISSUED' AND i.usable_until_at >= ")
                .push_bind(now);
        }
        Some(CouponStatus::Expired) => {
            qb.push(" AND ci.status = 'ISSUED' AND i.usable_until_at < ")
                .push_bind(now);
        }
    }
    qb.push(" ORDER BY ci.issued_at DESC, ci.coupon_issue_id");
    Ok(qb.build_query_as().fetch_all(db).await?)
}
