//! `users`.

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::UserChannel,
    error::Error,
    paging::{Page, like_pattern},
};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

use crate::products::CatalogFilter;

const COLUMNS: &str = "user_id, name, email, channel, created_at";

/// Inserts a user; a taken e-mail is a client error.
pub async fn insert(
    db: impl PgExecutor<'_>,
    name: &str,
    email: Option<&str>,
    channel: UserChannel,
) -> Result<User, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (name, email, channel) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    )))
    .bind(name)
    .bind(email)
    .bind(channel)
    .fetch_one(db)
    .await
    .map_err(|err| match crate::constraint(&err) {
        Some("users_email_key") => Error::Invalid("email is taken".into()),
        _ => err.into(),
    })
}

/// One user.
pub async fn find(db: impl PgExecutor<'_>, id: i64) -> Result<Option<User>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE user_id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &CatalogFilter) {
    qb.push(" WHERE true");
    if let Some(keyword) = &f.keyword {
        let pattern = like_pattern(keyword);
        qb.push(" AND (name ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR email ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
}

/// A page of users by id.
pub async fn list(db: &PgPool, f: &CatalogFilter) -> Result<Page<User>, Error> {
    crate::page(
        db,
        "users",
        COLUMNS,
        |qb| push_filters(qb, f),
        " ORDER BY user_id",
        f.paging,
    )
    .await
}

/// Whether the user exists.
pub async fn exists(db: impl PgExecutor<'_>, id: i64) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)")
            .bind(id)
            .fetch_one(db)
            .await?,
    )
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
