//! The shop's product reads: a keyset-paged list and one product. Stock is read from Postgres at
//! request time, never cached, so it is exact when read. HIDDEN products are not shown.

use crate::{
    admin::catalog::Product,
    cursor::{self, Slice},
    engine::Engine,
    error::{Error, Missing},
    repo,
};

impl Engine {
    /// A page of visible products by id, optionally only names containing `keyword`.
    pub async fn products(
        &self,
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
        let rows = repo::products::list_visible(self.db(), keyword, after, limit + 1).await?;
        Ok(Slice::cut(rows, limit, |p| p.product_id))
    }

    /// One visible product.
    pub async fn product(&self, id: i64) -> Result<Product, Error> {
        repo::products::find_visible(self.db(), id)
            .await?
            .ok_or(Error::NotFound(Missing::Product))
    }
}
