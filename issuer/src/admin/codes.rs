//! The codes of a batch, as the admin sees them: a page, or the whole list as a CSV stream.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::listing::{Page, Paging};
use crate::{
    error::{Error, Missing},
    repo,
};

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

/// One code.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CodeRow {
    /// Its position in the batch.
    pub seq: i32,
    /// The code.
    pub code: String,
    /// Its status.
    pub status: CodeStatus,
}

/// A page of a batch's codes.
pub async fn page(
    db: &PgPool,
    batch_id: i64,
    status: Option<CodeStatus>,
    paging: Paging,
) -> Result<Page<CodeRow>, Error> {
    let batch = repo::batches::find(db, batch_id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    let (total, rows) = repo::codes::page(db, batch_id, batch.code_count, status, paging).await?;
    Ok(Page::new(paging, total, rows))
}

/// The batch's codes as a CSV byte stream.
pub async fn export(
    db: &PgPool,
    batch_id: i64,
    status: Option<CodeStatus>,
) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes, Error>>, Error> {
    let batch = repo::batches::find(db, batch_id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    repo::codes::export_csv(db, batch_id, batch.code_count, status).await
}
