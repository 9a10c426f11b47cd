//! The shop's product reads: a keyset-paged list and one product. Stock is read from Postgres at
//! request time, never cached, so it is exact when read. HIDDEN products are not shown.

use issuance_core::{
    cursor::{self, Slice},
    error::{Error, Missing},
};
use sqlx::PgPool;
use store::products::Product;

/// A page of visible products by id, optionally only names containing `keyword`.
pub async fn list(
    db: &PgPool,
    keyword: Option<&str>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Slice<Product>, Error> {
    let limit = cursor::limit(limit)?;
    let after = cursor.map(cursor::decode).transpose()?.unwrap_or(0);
    let keyword = keyword.map(str::trim).filter(|k| !k.is_empty());
    if keyword.is_some_and(|k| k.chars().count() > 100) {
        return Err(Error::Invalid("keyword must be at most 100 characters".into()));
    }
    let rows = store::products::list_visible(db, keyword, after, limit + 1).await?;
    Ok(Slice::cut(rows, limit, |p| p.product_id))
}

/// One visible product.
pub async fn find(db: &PgPool, id: i64) -> Result<Product, Error> {
    store::products::find_visible(db, id)
        .await?
        .ok_or(Error::NotFound(Missing::Product))
}
