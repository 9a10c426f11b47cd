//! `orders`, `order_items`, and the stock and coupon changes they make.
//!
//! Every function that locks rows takes them in the global order of the schema (order →
//! products by id → coupon issue → wallet); callers keep to it.

use chrono::{DateTime, Utc};
use issuance_core::{
    discount::DiscountType,
    enums::{CouponIssueStatus, OrderStatus, ProductStatus},
    error::Error,
};
use sqlx::PgConnection;

/// A product as an order sees it, locked.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StockRow {
    /// The product.
    pub product_id: i64,
    /// Its price.
    pub price: i64,
    /// Units left.
    pub stock: i32,
    /// Whether it is sold.
    pub status: ProductStatus,
}

/// A coupon as an order sees it, locked.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CouponRow {
    /// Its holder.
    pub user_id: i64,
    /// Stored status.
    pub status: CouponIssueStatus,
    /// Usable from.
    pub usable_from_at: DateTime<Utc>,
    /// Usable until.
    pub usable_until_at: DateTime<Utc>,
    /// Discount type.
    pub discount_type: Option<DiscountType>,
    /// Discount value.
    pub discount_value: Option<i64>,
    /// PERCENT cap.
    pub max_discount: Option<i64>,
}

const ORDER_COLUMNS: &str = "order_id, user_id, status, subtotal, discount, total, coupon_issue_id, \
                             created_at, expires_at, paid_at";

/// The products, locked in id order (`ids` sorted and distinct).
pub async fn lock_products(tx: &mut PgConnection, ids: &[i64]) -> Result<Vec<StockRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT product_id, price, stock, status FROM products
         WHERE product_id = ANY($1) ORDER BY product_id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?)
}

/// Adds `delta[i]` (negative to take) to the stock of `ids[i]`; rows must be locked already.
pub async fn move_stock(tx: &mut PgConnection, ids: &[i64], delta: &[i32]) -> Result<(), Error> {
    sqlx::query(
        "UPDATE products p SET stock = p.stock + x.d, updated_at = now()
         FROM UNNEST($1::int8[], $2::int4[]) AS x (id, d) WHERE p.product_id = x.id",
    )
    .bind(ids)
    .bind(delta)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The coupon issue with its policy, locked.
pub async fn lock_coupon(tx: &mut PgConnection, id: i64) -> Result<Option<CouponRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT ci.user_id, ci.status, i.usable_from_at, i.usable_until_at,
                i.discount_type, i.discount_value, i.max_discount
         FROM coupon_issues ci
         JOIN coupon_batches b USING (batch_id)
         JOIN coupon_inventories i USING (inventory_id)
         WHERE ci.coupon_issue_id = $1
         FOR UPDATE OF ci",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Marks the coupon used by `order_id` (or gives it back with `None`), and its code with it.
pub async fn set_coupon_use(tx: &mut PgConnection, id: i64, order_id: Option<i64>) -> Result<(), Error> {
    // The issue and its code carry the same label.
    let status = if order_id.is_some() { "USED" } else { "ISSUED" };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_issues SET status = '{status}', order_id = $2,
                used_at = CASE WHEN $2::int8 IS NULL THEN NULL ELSE now() END
         WHERE coupon_issue_id = $1"
    )))
    .bind(id)
    .bind(order_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_codes c SET status = '{status}' FROM coupon_issues ci
         WHERE ci.coupon_issue_id = $1 AND c.batch_id = ci.batch_id AND c.seq = ci.seq
           AND c.status IN ('ISSUED', 'USED')"
    )))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inserts an order and its lines; returns the order's id and creation time.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut PgConnection,
    user_id: i64,
    subtotal: i64,
    discount: i64,
    coupon_issue_id: Option<i64>,
    ttl_ms: i64,
    items: &[OrderItem],
) -> Result<Order, Error> {
    let mut order: Order = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders (user_id, subtotal, discount, total, coupon_issue_id, expires_at)
         VALUES ($1, $2, $3, $2 - $3, $4, now() + make_interval(secs => $5::float8 / 1000))
         RETURNING {ORDER_COLUMNS}"
    )))
    .bind(user_id)
    .bind(subtotal)
    .bind(discount)
    .bind(coupon_issue_id)
    .bind(ttl_ms as f64)
    .fetch_one(&mut *tx)
    .await?;
    let ids: Vec<i64> = items.iter().map(|i| i.product_id).collect();
    let qtys: Vec<i32> = items.iter().map(|i| i.qty).collect();
    let prices: Vec<i64> = items.iter().map(|i| i.unit_price).collect();
    sqlx::query(
        "INSERT INTO order_items (order_id, product_id, qty, unit_price)
         SELECT $1, * FROM UNNEST($2::int8[], $3::int4[], $4::int8[])",
    )
    .bind(order.order_id)
    .bind(&ids)
    .bind(&qtys)
    .bind(&prices)
    .execute(&mut *tx)
    .await?;
    order.items = items.to_vec();
    Ok(order)
}

/// The order with its lines, locked when `lock`.
pub async fn find(tx: &mut PgConnection, order_id: i64, lock: bool) -> Result<Option<Order>, Error> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    let order: Option<Order> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1{suffix}"
    )))
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(mut order) = order else {
        return Ok(None);
    };
    order.items = sqlx::query_as(
        "SELECT product_id, qty, unit_price FROM order_items WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    Ok(Some(order))
}

/// The user's orders, newest first, without lines.
pub async fn list_for_user(tx: &mut PgConnection, user_id: i64, limit: i64) -> Result<Vec<Order>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 ORDER BY order_id DESC LIMIT $2"
    )))
    .bind(user_id)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// What the orders hold: units per product (by id) and their coupons (sorted).
pub async fn held_by(
    tx: &mut PgConnection,
    order_ids: &[i64],
) -> Result<(std::collections::BTreeMap<i64, i32>, Vec<i64>), Error> {
    let units: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT product_id, sum(qty)::int8 FROM order_items WHERE order_id = ANY($1)
         GROUP BY product_id ORDER BY product_id",
    )
    .bind(order_ids)
    .fetch_all(&mut *tx)
    .await?;
    let coupons: Vec<i64> = sqlx::query_scalar(
        "SELECT coupon_issue_id FROM orders WHERE order_id = ANY($1) AND coupon_issue_id IS NOT NULL
         ORDER BY coupon_issue_id",
    )
    .bind(order_ids)
    .fetch_all(&mut *tx)
    .await?;
    let units = units
        .into_iter()
        .map(|(p, q)| {
            i32::try_from(q)
                .map(|q| (p, q))
                .map_err(|_| Error::protocol("order expiry", "units out of range"))
        })
        .collect::<Result<_, _>>()?;
    Ok((units, coupons))
}

/// Moves a locked order to `status`.
pub async fn set_status(tx: &mut PgConnection, order_id: i64, status: OrderStatus) -> Result<(), Error> {
    sqlx::query(
        "UPDATE orders SET status = $2,
                paid_at = CASE WHEN $2 = 'PAID'::order_status THEN now() END,
                failed_at = CASE WHEN $2 = 'FAILED'::order_status THEN now() END
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(status)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Up to `limit` unpaid orders past their deadline, locked; orders another transaction holds
/// (a payment, another worker) are skipped, not waited for.
pub async fn lock_due(tx: &mut PgConnection, limit: i64) -> Result<Vec<i64>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT order_id FROM orders WHERE status = 'NOT_PAID' AND expires_at <= now()
         ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// One line as ordered.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OrderItem {
    /// The product.
    pub product_id: i64,
    /// Units.
    pub qty: i32,
    /// Price per unit when ordered.
    pub unit_price: i64,
}

/// An order.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Order {
    /// Its id.
    pub order_id: i64,
    /// The buyer.
    pub user_id: i64,
    /// Status.
    pub status: OrderStatus,
    /// Sum of the lines.
    pub subtotal: i64,
    /// What the coupon took off.
    pub discount: i64,
    /// What is paid.
    pub total: i64,
    /// The coupon used, if any.
    pub coupon_issue_id: Option<i64>,
    /// When placed.
    pub created_at: DateTime<Utc>,
    /// Unpaid after this, it fails.
    pub expires_at: DateTime<Utc>,
    /// When paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Its lines (empty in lists).
    #[sqlx(skip)]
    pub items: Vec<OrderItem>,
}
