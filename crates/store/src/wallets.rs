//! `wallets` and `point_history`.

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::PointKind,
    error::{Error, Missing},
};
use sqlx::PgExecutor;

/// Adds `delta` (negative to take) to the balance if it stays within `0..=max`; `None` when
/// the wallet does not exist or the bound would break. One statement, so concurrent changes
/// queue on the row lock and each checks the bound against the balance before it.
pub async fn add(
    db: impl PgExecutor<'_>,
    user_id: i64,
    delta: i64,
    max: i64,
) -> Result<Option<Wallet>, Error> {
    Ok(sqlx::query_as(
        "UPDATE wallets SET balance = balance + $2, updated_at = now()
         WHERE user_id = $1 AND balance + $2 BETWEEN 0 AND $3
         RETURNING user_id, balance, updated_at",
    )
    .bind(user_id)
    .bind(delta)
    .bind(max)
    .fetch_optional(db)
    .await?)
}

/// Opens an empty wallet for an existing user (no-op when it exists); USER_NOT_FOUND otherwise.
pub async fn open(db: impl PgExecutor<'_>, user_id: i64) -> Result<(), Error> {
    sqlx::query("INSERT INTO wallets (user_id, balance) VALUES ($1, 0) ON CONFLICT DO NOTHING")
        .bind(user_id)
        .execute(db)
        .await
        .map_err(|e| match crate::constraint(&e) {
            Some("wallets_user_fkey") => Error::NotFound(Missing::User),
            _ => e.into(),
        })?;
    Ok(())
}

/// Writes a history row.
pub async fn record(
    db: impl PgExecutor<'_>,
    user_id: i64,
    kind: PointKind,
    amount: i64,
    balance_after: i64,
    order_id: Option<i64>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO point_history (user_id, kind, amount, balance_after, order_id)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(kind)
    .bind(amount)
    .bind(balance_after)
    .bind(order_id)
    .execute(db)
    .await?;
    Ok(())
}

/// The user's balance (0 without a wallet); `None` when there is no such user.
pub async fn find(db: impl PgExecutor<'_>, user_id: i64) -> Result<Option<Wallet>, Error> {
    Ok(sqlx::query_as(
        "SELECT u.user_id, coalesce(w.balance, 0) AS balance,
                coalesce(w.updated_at, u.created_at) AS updated_at
         FROM users u LEFT JOIN wallets w USING (user_id)
         WHERE u.user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await?)
}

/// Up to `limit` history rows of the user, newest first, older than `before` when given.
pub async fn history(
    db: impl PgExecutor<'_>,
    user_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<PointEntry>, Error> {
    Ok(sqlx::query_as(
        "SELECT entry_id, kind, amount, balance_after, order_id, created_at
         FROM point_history
         WHERE user_id = $1 AND ($2::int8 IS NULL OR entry_id < $2)
         ORDER BY entry_id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// A user's balance.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Wallet {
    /// The user.
    pub user_id: i64,
    /// Points held.
    pub balance: i64,
    /// When it last changed (the user's creation when it never did).
    pub updated_at: DateTime<Utc>,
}

/// One change of a balance.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PointEntry {
    /// Its id (grows with time).
    pub entry_id: i64,
    /// What it was.
    pub kind: PointKind,
    /// Signed: positive adds, negative takes.
    pub amount: i64,
    /// The balance right after it.
    pub balance_after: i64,
    /// The order it paid or refunded.
    pub order_id: Option<i64>,
    /// When.
    pub created_at: DateTime<Utc>,
}
