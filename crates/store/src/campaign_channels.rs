//! `campaign_channels`: what each distribution channel answered for a campaign.

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::{ChannelType, DistributionStatus},
    error::Error,
};
use sqlx::PgExecutor;
use uuid::Uuid;

/// One channel's latest answer.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ChannelRow {
    /// The channel.
    pub channel_type: ChannelType,
    /// SUCCESS or FAILED.
    pub status: DistributionStatus,
    /// The settings the owner gave for it.
    pub settings: serde_json::Value,
    /// The channel's id of the distribution.
    pub distribution_id: Option<String>,
    /// The channel's estimate of its reach.
    pub estimated_reach: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it answered.
    pub updated_at: DateTime<Utc>,
}

/// Records a channel's answer (replacing an earlier one).
pub async fn upsert(db: impl PgExecutor<'_>, campaign_id: Uuid, r: &ChannelRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO campaign_channels
             (campaign_id, channel_type, status, settings, distribution_id, estimated_reach, error, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (campaign_id, channel_type) DO UPDATE SET status = excluded.status,
             settings = excluded.settings, distribution_id = excluded.distribution_id,
             estimated_reach = excluded.estimated_reach, error = excluded.error,
             updated_at = excluded.updated_at",
    )
    .bind(campaign_id)
    .bind(r.channel_type)
    .bind(r.status)
    .bind(&r.settings)
    .bind(&r.distribution_id)
    .bind(r.estimated_reach)
    .bind(&r.error)
    .bind(r.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A campaign's channels.
pub async fn of(db: impl PgExecutor<'_>, campaign_id: Uuid) -> Result<Vec<ChannelRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT channel_type, status, settings, distribution_id, estimated_reach, error, updated_at
         FROM campaign_channels WHERE campaign_id = $1 ORDER BY channel_type",
    )
    .bind(campaign_id)
    .fetch_all(db)
    .await?)
}
