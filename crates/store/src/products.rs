//! `products`.

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::ProductStatus,
    error::Error,
    paging::{Page, Paging, like_pattern},
};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

const COLUMNS: &str = "product_id, name, description, price, stock, status, images, created_at, updated_at";

/// Inserts a product.
pub async fn insert(
    db: impl PgExecutor<'_>,
    p: &NewProduct,
    name: &str,
    status: ProductStatus,
) -> Result<Product, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO products (name, description, price, stock, status, images)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(name)
    .bind(&p.description)
    .bind(p.price)
    .bind(p.stock as i32)
    .bind(status)
    .bind(&p.images)
    .fetch_one(db)
    .await?)
}

/// One product.
pub async fn find(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Product>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products WHERE product_id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &CatalogFilter) {
    qb.push(" WHERE true");
    if let Some(keyword) = &f.keyword {
        qb.push(" AND name ILIKE ").push_bind(like_pattern(keyword));
    }
    if let Some(status) = f.status {
        qb.push(" AND status = ").push_bind(status);
    }
}

/// A page of products by id.
pub async fn list(db: &PgPool, f: &CatalogFilter) -> Result<Page<Product>, Error> {
    crate::page(
        db,
        "products",
        COLUMNS,
        |qb| push_filters(qb, f),
        " ORDER BY product_id",
        f.paging,
    )
    .await
}

/// Up to `limit` visible products with ids above `after`, by id.
pub async fn list_visible(
    db: impl PgExecutor<'_>,
    keyword: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<Product>, Error> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM products WHERE status <> 'HIDDEN' AND product_id > "
    ));
    qb.push_bind(after);
    if let Some(keyword) = keyword {
        qb.push(" AND name ILIKE ").push_bind(like_pattern(keyword));
    }
    qb.push(" ORDER BY product_id LIMIT ").push_bind(limit);
    Ok(qb.build_query_as().fetch_all(db).await?)
}

/// One visible product.
pub async fn find_visible(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Product>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products WHERE product_id = $1 AND status <> 'HIDDEN'"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// A product.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Product {
    /// Its id.
    pub product_id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price in won.
    pub price: i64,
    /// Units in stock.
    pub stock: i32,
    /// Status.
    pub status: ProductStatus,
    /// Image URLs (may be empty).
    pub images: Vec<String>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A new product.
#[derive(Clone, Debug)]
pub struct NewProduct {
    /// 1–200 characters.
    pub name: String,
    /// Up to 5,000 characters.
    pub description: String,
    /// ≥ 0 won.
    pub price: i64,
    /// ≥ 0 units.
    pub stock: i64,
    /// Default ON_SALE.
    pub status: Option<ProductStatus>,
    /// Up to 20 URLs.
    pub images: Vec<String>,
}

/// A list filter of users or products.
#[derive(Clone, Debug)]
pub struct CatalogFilter {
    /// In the name (users: also the email).
    pub keyword: Option<String>,
    /// Products only.
    pub status: Option<ProductStatus>,
    /// `page`, `size` (by id).
    pub paging: Paging,
}
