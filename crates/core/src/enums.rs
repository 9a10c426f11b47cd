//! Every Postgres enum (`CREATE TYPE`), as the tables, the API and the rules share it.

use serde::{Deserialize, Serialize};

/// An event's place in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "event_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Not started.
    Ready,
    /// Running.
    Ongoing,
    /// Ended normally (final).
    Completed,
    /// Switched off by an admin (final).
    Disabled,
}

impl EventStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [EventStatus; 4] = [Self::Ready, Self::Ongoing, Self::Completed, Self::Disabled];

    /// Whether the lifecycle allows `self → to`.
    pub fn can_become(self, to: EventStatus) -> bool {
        use EventStatus::*;
        matches!(
            (self, to),
            (Ready, Ongoing) | (Ongoing, Completed) | (Ready, Disabled) | (Ongoing, Disabled)
        )
    }

    /// COMPLETED and DISABLED: nothing changes any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Disabled)
    }

    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Ongoing => "ONGOING",
            Self::Completed => "COMPLETED",
            Self::Disabled => "DISABLED",
        }
    }
}

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

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "job_type", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobType {
    /// Makes `issueCount` codes for a batch.
    CouponGeneration,
    /// Stores a partner's CSV of codes for a MAPPED batch.
    PartnerCouponUpload,
}

impl JobType {
    /// Every job type.
    pub const ALL: [Self; 2] = [Self::CouponGeneration, Self::PartnerCouponUpload];

    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CouponGeneration => "COUPON_GENERATION",
            Self::PartnerCouponUpload => "PARTNER_COUPON_UPLOAD",
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "job_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting for a worker.
    Pending,
    /// A worker is on it.
    InProgress,
    /// Done.
    Completed,
    /// Stopped by an error; `message` says which.
    Failed,
    /// Stopped by an admin.
    Cancelled,
}

impl JobStatus {
    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// Where a code is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "code_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CodeStatus {
    /// In stock.
    Available,
    /// Given to a user, not used yet.
    Issued,
    /// Used.
    Used,
    /// Past its validity.
    Expired,
}

impl CodeStatus {
    /// The seed's spelling (also the Postgres enum label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "AVAILABLE",
            Self::Issued => "ISSUED",
            Self::Used => "USED",
            Self::Expired => "EXPIRED",
        }
    }
}

/// Where a user came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "user_channel", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserChannel {
    /// The web site.
    Web,
    /// The app.
    App,
    /// A shop or an event venue.
    Offline,
}

/// Whether a product can be ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "product_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    /// On sale.
    OnSale,
    /// Out of stock.
    SoldOut,
    /// Not shown.
    Hidden,
}

/// The stored part of a coupon's status (EXPIRED is a matter of time, not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "coupon_issue_status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponIssueStatus {
    /// Held.
    Issued,
    /// Spent.
    Used,
}

/// What changed a balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "point_kind", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PointKind {
    /// A charge.
    Charge,
    /// A payment.
    Use,
    /// A payment given back.
    Refund,
}

/// An order's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "order_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Waiting for payment.
    NotPaid,
    /// Paid.
    Paid,
    /// Not paid in time; its stock and coupon were given back.
    Failed,
}

/// Where a record is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "outbox_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboxStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// The platform accepted it.
    Delivered,
    /// Every attempt failed; waits for an admin's retry.
    Dead,
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

#[cfg(test)]
mod tests {
    use super::EventStatus::{self, *};

    #[test]
    fn lifecycle() {
        let allowed: Vec<(EventStatus, EventStatus)> = EventStatus::ALL
            .iter()
            .flat_map(|a| EventStatus::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Ready, Ongoing),
                (Ready, Disabled),
                (Ongoing, Completed),
                (Ongoing, Disabled)
            ]
        );
    }
}

/// What a marketing campaign is for (the event-marketing seed's objectives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "campaign_objective", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignObjective {
    /// 신규 고객 유치.
    NewCustomer,
    /// 재방문 유도.
    Revisit,
    /// 매출 증대.
    SalesIncrease,
    /// 인지도 향상.
    BrandAwareness,
}

impl CampaignObjective {
    /// Every objective.
    pub const ALL: [Self; 4] = [
        Self::NewCustomer,
        Self::Revisit,
        Self::SalesIncrease,
        Self::BrandAwareness,
    ];
}

/// A campaign's place in its lifecycle: DRAFT → APPROVED (prize on the engine) → ACTIVE
/// (distributed) → COMPLETED (its period ended; derived, never stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "campaign_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// Being prepared by its owner.
    Draft,
    /// Approved: its prize exists on the engine; not yet on any channel.
    Approved,
    /// On at least one channel.
    Active,
    /// Its period ended.
    Completed,
}

/// What a campaign's prize is on the issuance engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "prize_kind", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrizeKind {
    /// A golden-ticket event: one ticket per person, `quantity` in all.
    GoldenTicket,
    /// A first-come coupon batch (SELF): one coupon per person, `quantity` in all.
    Coupon,
}

/// The two asynchronous campaign jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "campaign_job_kind", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignJobKind {
    /// Three event recommendations.
    Recommendation,
    /// Banners in three styles.
    Images,
}

/// A campaign job's status, as the seed spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "campaign_job_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignJobStatus {
    /// Waiting for a worker.
    Pending,
    /// A worker holds it.
    Processing,
    /// Done, with its result (final).
    Completed,
    /// Failed, with its reason (final).
    Failed,
}

impl CampaignJobStatus {
    /// COMPLETED and FAILED never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// The three banner styles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "banner_style", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum BannerStyle {
    /// Plain background, one accent line.
    Simple,
    /// Gradient, confetti, a framed prize.
    Fancy,
    /// Bold diagonal blocks and a sticker.
    Trendy,
}

impl BannerStyle {
    /// Every style, in the seed's order.
    pub const ALL: [Self; 3] = [Self::Simple, Self::Fancy, Self::Trendy];

    /// The seed's key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simple => "simple",
            Self::Fancy => "fancy",
            Self::Trendy => "trendy",
        }
    }
}

/// A distribution channel of the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "channel_type", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelType {
    /// 우리동네TV.
    UrineighborTv,
    /// 링고비즈.
    RingoBiz,
    /// 지니TV.
    GenieTv,
    /// Instagram.
    Instagram,
    /// Naver Blog.
    NaverBlog,
    /// Kakao Channel.
    KakaoChannel,
}

impl ChannelType {
    /// Every channel.
    pub const ALL: [Self; 6] = [
        Self::UrineighborTv,
        Self::RingoBiz,
        Self::GenieTv,
        Self::Instagram,
        Self::NaverBlog,
        Self::KakaoChannel,
    ];

    /// The seed's spelling (also the channel's configuration suffix and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UrineighborTv => "URINEIGHBOR_TV",
            Self::RingoBiz => "RINGO_BIZ",
            Self::GenieTv => "GENIE_TV",
            Self::Instagram => "INSTAGRAM",
            Self::NaverBlog => "NAVER_BLOG",
            Self::KakaoChannel => "KAKAO_CHANNEL",
        }
    }
}

/// What a channel answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "distribution_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DistributionStatus {
    /// The channel took the campaign.
    Success,
    /// It did not (or could not be reached, or its circuit is open).
    Failed,
}
