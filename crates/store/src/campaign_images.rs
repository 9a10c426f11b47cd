//! `campaign_images`: rendered banners (PNG).

use issuance_core::{enums::BannerStyle, error::Error};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A banner's identity and size, without its bytes.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ImageInfo {
    /// Its id (its URL's last segment).
    pub image_id: Uuid,
    /// The campaign it was made for.
    pub campaign_id: Uuid,
    /// Its style.
    pub style: BannerStyle,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// The generated banner an edited one re-renders.
    pub source_id: Option<Uuid>,
}

/// A new banner.
#[derive(Clone, Debug)]
pub struct NewImage<'a> {
    /// Its id.
    pub image_id: Uuid,
    /// Its campaign.
    pub campaign_id: Uuid,
    /// Its style.
    pub style: BannerStyle,
    /// The PNG.
    pub png: &'a [u8],
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
    /// The generated banner it re-renders.
    pub source_id: Option<Uuid>,
}

/// Stores a banner.
pub async fn insert(db: impl PgExecutor<'_>, i: &NewImage<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO campaign_images (image_id, campaign_id, style, png, width, height, source_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (image_id) DO NOTHING",
    )
    .bind(i.image_id)
    .bind(i.campaign_id)
    .bind(i.style)
    .bind(i.png)
    .bind(i.width)
    .bind(i.height)
    .bind(i.source_id)
    .execute(db)
    .await?;
    Ok(())
}

/// A banner's description.
pub async fn info(db: impl PgExecutor<'_>, image_id: Uuid) -> Result<Option<ImageInfo>, Error> {
    Ok(sqlx::query_as(
        "SELECT image_id, campaign_id, style, width, height, source_id FROM campaign_images WHERE image_id = $1",
    )
    .bind(image_id)
    .fetch_optional(db)
    .await?)
}

/// A banner's PNG and its campaign.
pub async fn png(db: impl PgExecutor<'_>, image_id: Uuid) -> Result<Option<(Vec<u8>, Uuid)>, Error> {
    Ok(
        sqlx::query_as("SELECT png, campaign_id FROM campaign_images WHERE image_id = $1")
            .bind(image_id)
            .fetch_optional(db)
            .await?,
    )
}
