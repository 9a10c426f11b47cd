//! The codes of a batch, as the admin sees them: a page, or the whole list as a CSV stream.

use issuance_core::{
    enums::CodeStatus,
    error::{Error, Missing},
    paging::{Page, Paging},
};
use sqlx::PgPool;
use store::coupon_codes::CodeRow;

/// A page of a batch's codes.
pub async fn page(
    db: &PgPool,
    batch_id: i64,
    status: Option<CodeStatus>,
    paging: Paging,
) -> Result<Page<CodeRow>, Error> {
    let batch = store::coupon_batches::find(db, batch_id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    let (total, rows) = store::coupon_codes::page(db, batch_id, batch.code_count, status, paging).await?;
    Ok(Page::new(paging, total, rows))
}

/// The batch's codes as a CSV byte stream.
pub async fn export(
    db: &PgPool,
    batch_id: i64,
    status: Option<CodeStatus>,
) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes, Error>>, Error> {
    let batch = store::coupon_batches::find(db, batch_id)
        .await?
        .ok_or(Error::NotFound(Missing::CouponBatch))?;
    store::coupon_codes::export_csv(db, batch_id, batch.code_count, status).await
}
