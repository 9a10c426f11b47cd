//! A user's coupons: what they hold, each with its code, its discount and whether it can be
//! used now.

use chrono::{DateTime, Utc};
use engine::Engine;
use issuance_core::{
    discount::Discount,
    enums::{CouponIssueStatus, CouponStatus},
    error::Error,
    ids::UserId,
};

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
    /// Its batch (the API's `couponId`).
    pub batch_id: i64,
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

/// A user's coupons, newest first, optionally of one status.
pub async fn user_coupons(
    engine: &Engine,
    user: UserId,
    status: Option<CouponStatus>,
) -> Result<Vec<UserCoupon>, Error> {
    let now = Utc::now();
    let rows = store::coupon_issues::list_for_user(engine.db(), user.get(), status, now).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let status = match r.status {
                CouponIssueStatus::Used => CouponStatus::Used,
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
                batch_id: r.batch_id,
                code: engine.codes().code(r.batch_id, r.seq as u32).into(),
                status,
                discount: r.discount(),
                issued_at: r.issued_at,
                expires_at: r.usable_until_at,
                unusable,
            }
        })
        .collect())
}
