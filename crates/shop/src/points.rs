//! The points wallet: charges, the balance, and the history of every change.
//!
//! A balance changes only by one conditional `UPDATE` (the bound is in its `WHERE`, so two
//! concurrent charges can never both pass it: the second re-checks against the first's result
//! under the row lock), in the transaction that writes the history row with the balance after
//! it. Payments (`orders`) change balances the same way, so per user the signed sum of the
//! history always equals the balance.

use issuance_core::{
    cursor::{self, Slice},
    enums::PointKind,
    error::{Error, Missing, Refusal},
    ids::UserId,
};
use sqlx::PgPool;
use store::wallets::{PointEntry, Wallet};

/// Most one charge may add.
pub const MAX_CHARGE: i64 = 1_000_000;
/// Most a balance may hold.
pub const MAX_BALANCE: i64 = 5_000_000;

/// Adds `amount` points to `user`'s balance.
pub async fn charge(db: &PgPool, user: UserId, amount: i64) -> Result<Wallet, Error> {
    if !(1..=MAX_CHARGE).contains(&amount) {
        return Err(Error::Refused(Refusal::InvalidAmount));
    }
    let mut tx = db.begin().await?;
    let wallet = match store::wallets::add(&mut *tx, user.get(), amount, MAX_BALANCE).await? {
        Some(w) => w,
        None => {
            // No wallet yet (opened on the first charge), or the cap.
            store::wallets::open(&mut *tx, user.get()).await?;
            store::wallets::add(&mut *tx, user.get(), amount, MAX_BALANCE)
                .await?
                .ok_or(Error::Refused(Refusal::PointLimitExceeded))?
        }
    };
    store::wallets::record(
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
pub async fn wallet(db: &PgPool, user: UserId) -> Result<Wallet, Error> {
    store::wallets::find(db, user.get())
        .await?
        .ok_or(Error::NotFound(Missing::User))
}

/// A page of `user`'s history, newest first.
pub async fn history(
    db: &PgPool,
    user: UserId,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Slice<PointEntry>, Error> {
    let limit = cursor::limit(limit)?;
    let before = cursor.map(cursor::decode).transpose()?;
    if !store::users::exists(db, user.get()).await? {
        return Err(Error::NotFound(Missing::User));
    }
    let rows = store::wallets::history(db, user.get(), before, limit + 1).await?;
    Ok(Slice::cut(rows, limit, |e| e.entry_id))
}
