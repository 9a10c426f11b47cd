//! Users and products of the shop, created by admins (the commerce API reads them).

use issuance_core::{
    enums::{ProductStatus, UserChannel},
    error::{Error, Missing},
};
use sqlx::PgPool;
use store::{
    products::{NewProduct, Product},
    users::{NewUser, User},
};

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
    store::users::insert(
        db,
        name,
        new.email.as_deref(),
        new.channel.unwrap_or(UserChannel::Web),
    )
    .await
}

/// One user.
pub async fn find_user(db: &PgPool, id: i64) -> Result<User, Error> {
    store::users::find(db, id)
        .await?
        .ok_or(Error::NotFound(Missing::User))
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
    store::products::insert(db, &new, name, new.status.unwrap_or(ProductStatus::OnSale)).await
}

/// One product.
pub async fn find_product(db: &PgPool, id: i64) -> Result<Product, Error> {
    store::products::find(db, id)
        .await?
        .ok_or(Error::NotFound(Missing::Product))
}
