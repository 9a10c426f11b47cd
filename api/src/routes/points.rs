//! The points wallet: `POST /api/v1/points/{userId}` charges, `GET /api/v1/points/{userId}` reads
//! the balance, `GET /api/v1/points/{userId}/history` pages the history. The wallet seed's
//! `POST /api/v1/wallets/{userId}/charge` and `GET /api/v1/wallets/{userId}` are the same
//! handlers. The user themself or an admin.

use axum::{Json, extract::State};
use issuance_core::{enums::PointKind, ids::UserId};
use serde::{Deserialize, Serialize};
use shop::points;
use store::wallets::{PointEntry, Wallet};
use utoipa::{IntoParams, ToSchema};

use crate::params::kst;
use crate::{
    error::{ApiError, ErrorBody},
    extract::{AppJson, AppPath, AppQuery, AuthUser},
    state::AppState,
};

/// A charge.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"amount": 10000}))]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    /// Points to add (1 to 1,000,000; the balance may not pass 5,000,000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    amount: i64,
}

/// A balance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    user_id: i64,
    balance: i64,
    #[schema(format = DateTime)]
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
#[utoipa::path(
    post, path = "/api/v1/points/{userId}", tag = "shop", request_body = ChargeBody,
    params(("userId" = i64, Path, minimum = 1, description = "The user")),
    responses(
        (status = 200, description = "The new balance", body = WalletView),
        (status = 404, description = "`USER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`POINT_LIMIT_EXCEEDED`", body = ErrorBody),
    )
)]
pub async fn charge(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
    AppJson(body): AppJson<ChargeBody>,
) -> Result<Json<WalletView>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    Ok(Json(
        points::charge(st.engine.db(), user, body.amount).await?.into(),
    ))
}

/// The balance.
#[utoipa::path(
    get, path = "/api/v1/points/{userId}", tag = "shop",
    params(("userId" = i64, Path, minimum = 1, description = "The user")),
    responses(
        (status = 200, description = "The balance", body = WalletView),
        (status = 404, description = "`USER_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn balance(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
) -> Result<Json<WalletView>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    Ok(Json(points::wallet(st.engine.db(), user).await?.into()))
}

/// `?cursor=&limit=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// One change of the balance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    entry_id: i64,
    #[serde(rename = "type")]
    kind: PointKind,
    amount: i64,
    balance_after: i64,
    order_id: Option<i64>,
    #[schema(format = DateTime)]
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
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    items: Vec<EntryView>,
    next_cursor: Option<String>,
}

/// The history, newest first.
#[utoipa::path(
    get, path = "/api/v1/points/{userId}/history", tag = "shop",
    params(("userId" = i64, Path, minimum = 1, description = "The user"), HistoryQuery),
    responses(
        (status = 200, description = "Changes of the balance, newest first", body = HistoryView),
        (status = 404, description = "`USER_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn history(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> Result<Json<HistoryView>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    let page = points::history(st.engine.db(), user, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(HistoryView {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}
