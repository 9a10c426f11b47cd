//! First-come coupons: a SELF coupon batch handed out through the same core as golden tickets
//! ([`crate::first_come`], `lua/issue.lua`), and a user's coupons.
//!
//! A batch is a scope whose quantity is its `issueCount`, whose window is its validity (cut at
//! the end of its inventory's usable period, so no coupon is born expired) and which is on only
//! while the batch is READY and its inventory not END. Issues are numbered by position, so the
//! `n`-th coupon of a batch takes the batch's code at position `n` (the same code a generation
//! job writes into `coupon_codes`, or the one it would write) and its id is
//! `batch id × 10,000,000 + n`: both known the moment Redis decides, before any row exists.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fred::interfaces::HashesInterface;

use crate::{
    admin::{
        batches::{BatchStatus, IssueType},
        inventories::{Discount, DiscountType, InventoryStatus},
    },
    cache::Cached,
    engine::Engine,
    error::{Error, Refusal},
    first_come,
    issue::Verdict,
    model::UserId,
    repo,
    scope::{Rules, Scope},
};

/// Positions per batch in a coupon issue id (a batch holds at most 10,000,000 codes).
pub const ID_STRIDE: i64 = 10_000_000;

/// A coupon issue id from its batch and position.
pub fn issue_id(batch_id: i64, seq: i32) -> i64 {
    batch_id * ID_STRIDE + i64::from(seq)
}

/// The batch and position of a coupon issue id.
pub fn split_issue_id(id: i64) -> Option<(i64, i32)> {
    (id > 0).then_some((id / ID_STRIDE, (id % ID_STRIDE) as i32))
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
}

impl CouponBatch {
    /// The rules `issue.lua` enforces for it.
    pub fn rules(&self) -> Rules {
        Rules {
            version: self.version,
            total: i64::from(self.issue_count),
            daily: self.daily_limit.map(i64::from),
            start: self.valid_from_at,
            end: self.valid_until_at.min(self.usable_until_at),
            active: self.issue_type == IssueType::SelfIssued
                && self.batch_status == BatchStatus::Ready
                && self.inventory_status != InventoryStatus::End,
        }
    }

    /// The discount policy, if the inventory has one.
    pub fn discount(&self) -> Option<Discount> {
        Discount::from_columns(self.discount_type, self.discount_value, self.max_discount)
    }
}

/// A coupon just issued.
#[derive(Clone, Debug)]
pub struct IssuedCoupon {
    /// `batch id × 10,000,000 + position`.
    pub coupon_issue_id: i64,
    /// The batch.
    pub coupon_id: i64,
    /// The holder.
    pub user_id: i64,
    /// Its code.
    pub code: String,
    /// What it takes off an order.
    pub discount: Option<Discount>,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
    /// When Redis issued it.
    pub issued_at: DateTime<Utc>,
}

/// A coupon's status as a user sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponStatus {
    /// Held, not used, not expired.
    Issued,
    /// Spent on an order.
    Used,
    /// Held, not used, past its usable period.
    Expired,
}

/// Why a held coupon cannot be used now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Unusable {
    /// Used already.
    Used,
    /// Past its usable period.
    Expired,
    /// Its usable period has not begun.
    NotYetUsable,
}

/// A coupon in a user's list.
#[derive(Clone, Debug)]
pub struct UserCoupon {
    /// Its id.
    pub coupon_issue_id: i64,
    /// Its batch.
    pub coupon_id: i64,
    /// Its code.
    pub code: String,
    /// Its status.
    pub status: CouponStatus,
    /// What it takes off an order.
    pub discount: Option<Discount>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
    /// `None` when usable now; why not otherwise.
    pub unusable: Option<Unusable>,
}

impl Engine {
    /// Issues `user` a coupon of batch `coupon_id`. A user who holds one already gets
    /// [`Error::CouponAlreadyIssued`] with its id.
    pub async fn issue_coupon(&self, coupon_id: i64, user: UserId) -> Result<IssuedCoupon, Error> {
        self.issue_coupon_at(coupon_id, user, None).await
    }

    /// [`Engine::issue_coupon`] with the clock overridden (epoch ms), for tests.
    pub async fn issue_coupon_at(
        &self,
        coupon_id: i64,
        user: UserId,
        clock_ms: Option<i64>,
    ) -> Result<IssuedCoupon, Error> {
        let cached = self
            .cached_coupon(coupon_id)
            .await?
            .filter(|c| c.detail.issue_type == IssueType::SelfIssued)
            .ok_or(Error::NotFound(crate::error::Missing::Coupon))?;
        let batch = &cached.detail;
        let position = |id: &str| -> Result<i32, Error> {
            id.parse::<i32>()
                .ok()
                .filter(|p| (0..batch.issue_count).contains(p))
                .ok_or_else(|| Error::protocol("issue.lua", format!("coupon position {id:?}")))
        };
        let now = clock_ms.map_or_else(Utc::now, crate::clock::from_ms);
        match self.decide(&cached, user.get(), String::new(), clock_ms).await? {
            Verdict::Issued { id, at_ms, .. } => {
                let seq = position(&id)?;
                Ok(IssuedCoupon {
                    coupon_issue_id: issue_id(coupon_id, seq),
                    coupon_id,
                    user_id: user.get(),
                    code: self.inner.options.codes.code(coupon_id, seq as u32),
                    discount: batch.discount(),
                    expires_at: batch.usable_until_at,
                    issued_at: crate::clock::from_ms(at_ms),
                })
            }
            Verdict::Held { id, .. } => Err(Error::CouponAlreadyIssued(issue_id(coupon_id, position(&id)?))),
            Verdict::Inactive if batch.batch_status == BatchStatus::Pending => {
                Err(Error::Refused(Refusal::CouponNotInPeriod))
            }
            Verdict::Inactive => Err(Error::Refused(Refusal::CouponExpired)),
            Verdict::NotInPeriod if now < cached.rules.start => {
                Err(Error::Refused(Refusal::CouponNotInPeriod))
            }
            Verdict::NotInPeriod => Err(Error::Refused(Refusal::CouponExpired)),
            Verdict::SoldOut => Err(Error::Refused(Refusal::CouponSoldOut)),
            Verdict::DailyLimit => Err(Error::DailyLimitReached),
            Verdict::NoMeta => Err(Error::protocol("issue.lua", "meta missing after a rebuild")),
        }
    }

    /// Makes sure a coupon `user` was issued is in Postgres before an order uses it. The drain
    /// writes every issue milliseconds after Redis makes it; an order placed in between would
    /// not find the row. When the row is missing, the user's entry in the batch's holders hash
    /// is the proof of the issue, and the row is written now exactly as the drain will write it
    /// (the drain's insert then skips it). A coupon Redis never issued to the user is left
    /// alone; the order then answers `COUPON_INVALID`.
    pub(crate) async fn persist_issued_coupon(&self, user: i64, coupon_issue_id: i64) -> Result<(), Error> {
        let Some((batch_id, seq)) = split_issue_id(coupon_issue_id) else {
            return Ok(());
        };
        if repo::coupon_issues::exists(self.db(), coupon_issue_id).await? {
            return Ok(());
        }
        let holders = self.keys().coupon_batch(batch_id).holders;
        let held: Option<String> = self.redis().next().hget(&holders, user.to_string()).await?;
        let issued_at = held
            .as_deref()
            .and_then(|h| h.split_once('|'))
            .filter(|(position, _)| position.parse() == Ok(seq))
            .and_then(|(_, at)| at.parse().ok())
            .map(crate::clock::from_ms);
        let Some(issued_at) = issued_at else {
            return Ok(());
        };
        let mut tx = self.db().begin().await?;
        let issue = repo::coupon_issues::NewCouponIssue {
            batch_id,
            seq,
            user_id: user,
            issued_at,
        };
        if repo::coupon_issues::insert_batch(&mut tx, &[issue]).await? == 1 {
            metrics::counter!("issuer_coupon_read_repairs_total").increment(1);
        }
        tx.commit().await?;
        Ok(())
    }

    /// A user's coupons, newest first, optionally of one status.
    pub async fn user_coupons(
        &self,
        user: UserId,
        status: Option<CouponStatus>,
    ) -> Result<Vec<UserCoupon>, Error> {
        let now = Utc::now();
        let rows = repo::coupon_issues::list_for_user(self.db(), user.get(), status, now).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let status = match r.status {
                    repo::coupon_issues::StoredStatus::Used => CouponStatus::Used,
                    _ if now > r.usable_until_at => CouponStatus::Expired,
                    _ => CouponStatus::Issued,
                };
                let unusable = match status {
                    CouponStatus::Used => Some(Unusable::Used),
                    CouponStatus::Expired => Some(Unusable::Expired),
                    CouponStatus::Issued if now < r.usable_from_at => Some(Unusable::NotYetUsable),
                    CouponStatus::Issued => None,
                };
                UserCoupon {
                    coupon_issue_id: r.coupon_issue_id,
                    coupon_id: r.batch_id,
                    code: self.inner.options.codes.code(r.batch_id, r.seq as u32),
                    status,
                    discount: r.discount(),
                    issued_at: r.issued_at,
                    expires_at: r.usable_until_at,
                    unusable,
                }
            })
            .collect())
    }

    /// Makes an admin change of a batch (or of its inventory) take effect at once in this
    /// process and in Redis. The change is committed already, so a failure here is only logged:
    /// other processes see the change within the rules cache's TTL, and the Redis copy is
    /// rewritten on the next change or rebuild.
    pub async fn refresh_coupon_batches(&self, batch_ids: &[i64]) {
        for id in batch_ids {
            self.inner.coupons.invalidate(&id.to_string());
            let refreshed = async {
                if let Some(batch) = repo::coupon_issues::find_batch(self.db(), *id).await? {
                    // Only updates an existing copy: a missing one is rebuilt on next use. The
                    // stream is registered again: one retired after the window ended comes back
                    // if the change reopens the window.
                    let keys = self.keys().coupon_batch(*id);
                    if self.load_meta(&batch.rules(), &keys, false, &[]).await? {
                        crate::stream::register(self.redis(), self.keys(), &keys.stream).await?;
                    }
                }
                Ok::<_, Error>(())
            };
            if let Err(e) = refreshed.await {
                tracing::warn!(batch = id, error = %e, "coupon batch changed, Redis copy not refreshed");
            }
        }
    }

    /// The batch's rules, from this process's cache when fresh.
    async fn cached_coupon(&self, batch_id: i64) -> Result<Option<Arc<Cached<CouponBatch>>>, Error> {
        first_come::cached(
            &self.inner.coupons,
            &batch_id.to_string(),
            self.db_down(),
            || async {
                Ok(repo::coupon_issues::find_batch(self.db(), batch_id)
                    .await?
                    .map(|batch| Cached {
                        scope: Scope::Coupon(batch_id),
                        rules: batch.rules(),
                        keys: self.keys().coupon_batch(batch_id),
                        detail: batch,
                    }))
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_ids_split_back() {
        assert_eq!(issue_id(12, 5), 120_000_005);
        assert_eq!(split_issue_id(120_000_005), Some((12, 5)));
        assert_eq!(split_issue_id(issue_id(1, 9_999_999)), Some((1, 9_999_999)));
        assert_eq!(split_issue_id(0), None);
        assert_eq!(split_issue_id(-3), None);
    }
}
