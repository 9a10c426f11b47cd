//! Orders and payments: `POST /api/v1/orders`, `POST /api/v1/payments`,
//! `POST /api/v1/orders/checkout` (both at once, the wallet seed's answer),
//! `GET /api/v1/orders/{orderId}`, `GET /api/v1/users/{userId}/orders`.

use axum::{Json, extract::State, http::StatusCode};
use issuance_core::{enums::OrderStatus, ids::UserId};
use serde::{Deserialize, Serialize};
use shop::orders::{self as shop_orders, NewOrder, Paid};
use store::orders::{Order, OrderItem};
use utoipa::ToSchema;

use crate::params::kst;
use crate::{
    error::{ApiError, ErrorBody},
    extract::{AppJson, AppPath, AuthUser},
    state::AppState,
};

/// One line of an order request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineBody {
    #[schema(minimum = 1)]
    product_id: i64,
    #[schema(minimum = 1, maximum = 1000)]
    qty: i64,
}

/// `POST /api/v1/orders` and `/orders/checkout` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"userId": 7, "items": [{"productId": 1, "qty": 2}]}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    #[schema(minimum = 1)]
    user_id: i64,
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<LineBody>,
    #[serde(default)]
    coupon_issue_id: Option<i64>,
}

impl OrderBody {
    fn into_new(self, auth: &AuthUser) -> Result<NewOrder, ApiError> {
        let user = UserId::new(self.user_id)?;
        auth.act_for(user.get())?;
        Ok(NewOrder {
            user,
            lines: self.items.into_iter().map(|l| (l.product_id, l.qty)).collect(),
            coupon_issue_id: self.coupon_issue_id,
        })
    }
}

/// `POST /api/v1/payments` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"userId": 7, "orderId": 1}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentBody {
    #[schema(minimum = 1)]
    user_id: i64,
    #[schema(minimum = 1)]
    order_id: i64,
}

/// `{subtotal, discount, total}`.
#[derive(Serialize, ToSchema)]
pub struct AmountView {
    subtotal: i64,
    discount: i64,
    total: i64,
}

/// A line with its prices.
#[derive(Serialize, ToSchema)]
#[schema(as = OrderItemView)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    product_id: i64,
    qty: i32,
    unit_price: i64,
    subtotal: i64,
}

impl From<&OrderItem> for ItemView {
    fn from(i: &OrderItem) -> Self {
        Self {
            product_id: i.product_id,
            qty: i.qty,
            unit_price: i.unit_price,
            subtotal: i.unit_price * i64::from(i.qty),
        }
    }
}

/// An order.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    order_id: i64,
    user_id: i64,
    status: OrderStatus,
    amount: AmountView,
    coupon_issue_id: Option<i64>,
    items: Vec<ItemView>,
    #[schema(format = DateTime)]
    expires_at: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    paid_at: Option<String>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            order_id: o.order_id,
            user_id: o.user_id,
            status: o.status,
            amount: AmountView {
                subtotal: o.subtotal,
                discount: o.discount,
                total: o.total,
            },
            coupon_issue_id: o.coupon_issue_id,
            items: o.items.iter().map(ItemView::from).collect(),
            expires_at: kst(o.expires_at),
            created_at: kst(o.created_at),
            paid_at: o.paid_at.map(kst),
        }
    }
}

/// `{balanceAfter}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletAfter {
    balance_after: i64,
}

/// A paid order, as the wallet seed's checkout answers it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaidView {
    #[serde(flatten)]
    order: OrderView,
    paid_by: &'static str,
    wallet: WalletAfter,
}

impl From<Paid> for PaidView {
    fn from(p: Paid) -> Self {
        Self {
            order: OrderView::from(&p.order),
            paid_by: "WALLET",
            wallet: WalletAfter {
                balance_after: p.balance_after,
            },
        }
    }
}

/// Places an order: 201 NOT_PAID with its deadline.
#[utoipa::path(
    post, path = "/api/v1/orders", tag = "shop", request_body = OrderBody,
    responses(
        (status = 201, description = "Placed, NOT_PAID until its deadline", body = OrderView),
        (status = 404, description = "`USER_NOT_FOUND`, `PRODUCT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`OUT_OF_STOCK`, `COUPON_ALREADY_USED`", body = ErrorBody),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<OrderBody>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let order = shop_orders::create(&st.engine, body.into_new(&auth)?).await?;
    Ok((StatusCode::CREATED, Json(OrderView::from(&order))))
}

/// Pays an order: 200 PAID.
#[utoipa::path(
    post, path = "/api/v1/payments", tag = "shop", request_body = PaymentBody,
    responses(
        (status = 200, description = "Paid", body = PaidView),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_EXPIRED`, `ORDER_ALREADY_PAID`, `WALLET_INSUFFICIENT_BALANCE`", body = ErrorBody),
    )
)]
pub async fn pay(
    State(st): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<PaymentBody>,
) -> Result<Json<PaidView>, ApiError> {
    let user = UserId::new(body.user_id)?;
    auth.act_for(user.get())?;
    Ok(Json(
        shop_orders::pay(&st.engine, user, body.order_id).await?.into(),
    ))
}

/// Orders and pays at once: 201 PAID, or nothing at all.
#[utoipa::path(
    post, path = "/api/v1/orders/checkout", tag = "shop", request_body = OrderBody,
    responses(
        (status = 201, description = "Ordered and paid", body = PaidView),
        (status = 404, description = "`USER_NOT_FOUND`, `PRODUCT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`OUT_OF_STOCK`, `COUPON_ALREADY_USED`, `WALLET_INSUFFICIENT_BALANCE`", body = ErrorBody),
    )
)]
pub async fn checkout(
    State(st): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<OrderBody>,
) -> Result<(StatusCode, Json<PaidView>), ApiError> {
    let paid = shop_orders::checkout(&st.engine, body.into_new(&auth)?).await?;
    Ok((StatusCode::CREATED, Json(paid.into())))
}

/// One order (its buyer or an admin; anyone else hears it does not exist).
#[utoipa::path(
    get, path = "/api/v1/orders/{orderId}", tag = "shop",
    params(("orderId" = i64, Path, minimum = 1, description = "The order")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "`ORDER_NOT_FOUND` (also for another user's order)", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(order_id): AppPath<i64>,
) -> Result<Json<OrderView>, ApiError> {
    let order = shop_orders::find(&st.engine, order_id).await?;
    if !auth.0.may_act_for(order.user_id) {
        return Err(issuance_core::Error::NotFound(issuance_core::error::Missing::Order).into());
    }
    Ok(Json(OrderView::from(&order)))
}

/// `{items}`.
#[derive(Serialize, ToSchema)]
pub struct OrderList {
    items: Vec<OrderView>,
}

/// A user's latest 100 orders, newest first, without lines.
#[utoipa::path(
    get, path = "/api/v1/users/{userId}/orders", tag = "shop",
    params(("userId" = i64, Path, minimum = 1, description = "The user")),
    responses((status = 200, description = "The latest 100 orders, newest first", body = OrderList))
)]
pub async fn list_for_user(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
) -> Result<Json<OrderList>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    let orders = shop_orders::list_for_user(&st.engine, user).await?;
    Ok(Json(OrderList {
        items: orders.iter().map(OrderView::from).collect(),
    }))
}
