//! Users and products of the shop, created by admins (the commerce API reads them).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::listing::{Page, Paging};
use crate::{
    error::{Error, Missing},
    repo,
};

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

/// A user.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    /// Its id (the `sub` of its tokens).
    pub user_id: i64,
    /// Display name.
    pub name: String,
    /// Unique when present.
    pub email: Option<String>,
    /// Where they came from.
    pub channel: UserChannel,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// A new user.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// 1–100 characters.
    pub name: String,
    /// Optional, unique.
    pub email: Option<String>,
    /// Default WEB.
    pub channel: Option<UserChannel>,
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

/// Creates a user.
pub async fn create_user(db: &PgPool, new: NewUser) -> Result<User, Error> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::Invalid("name must be 1-100 characters".into()));
    }
    if let Some(email) = &new.email
        && (email.len() > 254 || !email.contains('@'))
    {
        return Err(Error::Invalid("email must be an e-mail address".into()));
    }
    repo::users::insert(
        db,
        name,
        new.email.as_deref(),
        new.channel.unwrap_or(UserChannel::Web),
    )
    .await
}

/// One user.
pub async fn find_user(db: &PgPool, id: i64) -> Result<User, Error> {
    repo::users::find(db, id)
        .await?
        .ok_or(Error::NotFound(Missing::User))
}

/// A page of users.
pub async fn list_users(db: &PgPool, f: &CatalogFilter) -> Result<Page<User>, Error> {
    repo::users::list(db, f).await
}

/// Creates a product.
pub async fn create_product(db: &PgPool, new: NewProduct) -> Result<Product, Error> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Invalid("name must be 1-200 characters".into()));
    }
    if new.description.chars().count() > 5_000 {
        return Err(Error::Invalid(
            "description must be at most 5000 characters".into(),
        ));
    }
    if new.price < 0 || new.price > 1_000_000_000 {
        return Err(Error::Invalid("price must be 0 to 1,000,000,000".into()));
    }
    if new.stock < 0 || new.stock > i64::from(i32::MAX) {
        return Err(Error::Invalid("stock must be 0 or more".into()));
    }
    if new.images.len() > 20 || new.images.iter().any(|i| i.is_empty() || i.len() > 2_000) {
        return Err(Error::Invalid(
            "images: up to 20 URLs of 1-2000 characters".into(),
        ));
    }
    repo::products::insert(db, &new, name, new.status.unwrap_or(ProductStatus::OnSale)).await
}

/// One product.
pub async fn find_product(db: &PgPool, id: i64) -> Result<Product, Error> {
    repo::products::find(db, id)
        .await?
        .ok_or(Error::NotFound(Missing::Product))
}

/// A page of products.
pub async fn list_products(db: &PgPool, f: &CatalogFilter) -> Result<Page<Product>, Error> {
    repo::products::list(db, f).await
}
