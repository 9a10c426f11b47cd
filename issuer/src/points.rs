//! The points wallet: charges, the balance, and the history of every change.
//!
//! A balance changes only by one conditional `UPDATE` (the bound is in its `WHERE`, so two
//! concurrent charges can never both pass it: the second re-checks against the first's result
//! under the row lock), in the transaction that writes the history row with the balance after
//! it. Payments (`orders`) change balances the same way, so per user the signed sum of the
//! history always equals the balance.

use chrono::{DateTime, Utc};

use crate::{
    cursor::{self, Slice},
    engine::Engine,
    error::{Error, Missing, Refusal},
    model::UserId,
    repo,
};

/// Most one charge may add.
pub const MAX_CHARGE: i64 = 1_000_000;
/// Most a balance may hold.
pub const MAX_BALANCE: i64 = 5_000_000;

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

/// What changed a balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "point_kind", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PointKind {
    /// A charge.
    Charge,
    /// A payment.
    Use,
    /// A payment given back.
    Refund,
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

impl Engine {
    /// Adds `amount` points to `user`'s balance.
    pub async fn charge_points(&self, user: UserId, amount: i64) -> Result<Wallet, Error> {
        if !(1..=MAX_CHARGE).contains(&amount) {
            return Err(Error::Refused(Refusal::InvalidAmount));
        }
        let mut tx = self.db().begin().await?;
        let wallet = match repo::wallets::add(&mut *tx, user.get(), amount, MAX_BALANCE).await? {
            Some(w) => w,
            None => {
                // No wallet yet (opened on the first charge), or the cap.
                repo::wallets::open(&mut *tx, user.get()).await?;
                repo::wallets::add(&mut *tx, user.get(), amount, MAX_BALANCE)
                    .await?
                    .ok_or(Error::Refused(Refusal::PointLimitExceeded))?
            }
        };
        repo::wallets::record(
            &mut *tx,
            user.get(),
            PointKind::Charge,
            amount,
            wallet.balance,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(wallet)
    }

    /// `user`'s balance.
    pub async fn wallet(&self, user: UserId) -> Result<Wallet, Error> {
        repo::wallets::find(self.db(), user.get())
            .await?
            .ok_or(Error::NotFound(Missing::User))
    }

    /// A page of `user`'s history, newest first.
    pub async fn point_history(
        &self,
        user: UserId,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Slice<PointEntry>, Error> {
        let limit = cursor::limit(limit)?;
        let before = cursor.map(cursor::decode).transpose()?;
        if !repo::users::exists(self.db(), user.get()).await? {
            return Err(Error::NotFound(Missing::User));
        }
        let rows = repo::wallets::history(self.db(), user.get(), before, limit + 1).await?;
        Ok(Slice::cut(rows, limit, |e| e.entry_id))
    }
}
