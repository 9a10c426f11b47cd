//! The points wallet: `POST /api/v1/points/{userId}` charges, `GET /api/v1/points/{userId}` reads
//! the balance, `GET /api/v1/points/{userId}/history` pages the history. The wallet seed's
//! `POST /api/v1/wallets/{userId}/charge` and `GET /api/v1/wallets/{userId}` are the same
//! handlers. The user themself or an admin.

use axum::{Json, extract::State};
use issuer::{
    model::UserId,
    points::{PointEntry, PointKind, Wallet},
};
use serde::{Deserialize, Serialize};

use super::admin::kst;
use crate::{
    error::ApiError,
    extract::{AppJson, AppPath, AppQuery, AuthUser},
    state::AppState,
};

/// A charge.
#[derive(Deserialize)]
pub struct ChargeBody {
    amount: i64,
}

/// A balance.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    user_id: i64,
    balance: i64,
    updated_at: String,
}

impl From<Wallet> for WalletView {
    fn from(w: Wallet) -> Self {
        Self {
            user_id: w.user_id,
            balance: w.balance,
            updated_at: kst(w.updated_at),
        }
    }
}

/// Charges points: 200 with the new balance.
pub async fn charge(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
    AppJson(body): AppJson<ChargeBody>,
) -> Result<Json<WalletView>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    Ok(Json(st.engine.charge_points(user, body.amount).await?.into()))
}

/// The balance.
pub async fn balance(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
) -> Result<Json<WalletView>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    Ok(Json(st.engine.wallet(user).await?.into()))
}

/// `?cursor=&limit=`.
#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// One change of the balance.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    entry_id: i64,
    #[serde(rename = "type")]
    kind: PointKind,
    amount: i64,
    balance_after: i64,
    order_id: Option<i64>,
    created_at: String,
}

impl From<PointEntry> for EntryView {
    fn from(e: PointEntry) -> Self {
        Self {
            entry_id: e.entry_id,
            kind: e.kind,
            amount: e.amount,
            balance_after: e.balance_after,
            order_id: e.order_id,
            created_at: kst(e.created_at),
        }
    }
}

/// `{items, nextCursor}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    items: Vec<EntryView>,
    next_cursor: Option<String>,
}

/// The history, newest first.
pub async fn history(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> Result<Json<HistoryView>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    let page = st
        .engine
        .point_history(user, q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Json(HistoryView {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}
