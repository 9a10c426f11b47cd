//! The read-only queries of the invariant check (`issuer::invariants`): each counts the rows
//! that break one rule, next to how many it looked at.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::error::Error;

/// `(looked at, breaking)`.
pub type Tally = (i64, i64);

async fn tally(db: &PgPool, sql: &'static str) -> Result<Tally, Error> {
    Ok(sqlx::query_as(sql).fetch_one(db).await?)
}

/// Products, and those with negative stock.
pub async fn negative_stock(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE stock < 0) FROM products",
    )
    .await
}

/// Per product: stock plus the units held by unpaid and paid orders. Only orders move stock,
/// so this is the stock the product was created with.
pub async fn stock_with_held(db: &PgPool) -> Result<BTreeMap<i64, i64>, Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT p.product_id, p.stock + coalesce(h.held, 0)
         FROM products p
         LEFT JOIN (SELECT i.product_id, sum(i.qty)::int8 AS held
                    FROM order_items i JOIN orders o USING (order_id)
                    WHERE o.status IN ('NOT_PAID', 'PAID')
                    GROUP BY i.product_id) h USING (product_id)",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Wallets, and those outside 0..=5,000,000.
pub async fn balance_out_of_bounds(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE balance < 0 OR balance > 5000000) FROM wallets",
    )
    .await
}

/// Wallets, and those whose balance is not the sum of their history.
pub async fn balance_not_history(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE w.balance <> coalesce(h.total, 0))
         FROM wallets w
         LEFT JOIN (SELECT user_id, sum(amount) AS total FROM point_history GROUP BY user_id) h
         USING (user_id)",
    )
    .await
}

/// Paid orders with a total, and those without exactly one point use of that total.
pub async fn payment_not_one_use(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE coalesce(u.uses, 0) <> 1 OR u.amount <> -o.total)
         FROM orders o
         LEFT JOIN (SELECT order_id, count(*) AS uses, sum(amount) AS amount
                    FROM point_history WHERE kind = 'USE' GROUP BY order_id) u USING (order_id)
         WHERE o.status = 'PAID' AND o.total > 0",
    )
    .await
}

/// Point uses, and those of an order that is not PAID (a refund would have to follow).
pub async fn use_without_payment(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE o.status IS DISTINCT FROM 'PAID')
         FROM point_history h LEFT JOIN orders o USING (order_id)
         WHERE h.kind = 'USE'",
    )
    .await
}

/// Paid orders, and those without exactly one `ORDER_PAID` record.
pub async fn paid_without_outbox(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE coalesce(e.n, 0) <> 1)
         FROM orders o
         LEFT JOIN (SELECT order_id, count(*) AS n FROM outbox
                    WHERE event_type = 'ORDER_PAID' GROUP BY order_id) e USING (order_id)
         WHERE o.status = 'PAID'",
    )
    .await
}

/// `ORDER_PAID` records, and those of an order that is not PAID.
pub async fn outbox_without_payment(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE o.status IS DISTINCT FROM 'PAID')
         FROM outbox e LEFT JOIN orders o USING (order_id)
         WHERE e.event_type = 'ORDER_PAID'",
    )
    .await
}

/// Coupons in use, and those whose use does not match a live (unpaid or paid) order of theirs:
/// a coupon of a FAILED order must have come back.
pub async fn coupon_use_mismatch(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE o.order_id IS NULL
                                             OR o.status = 'FAILED'
                                             OR o.coupon_issue_id IS DISTINCT FROM c.coupon_issue_id)
         FROM coupon_issues c LEFT JOIN orders o ON o.order_id = c.order_id
         WHERE c.status = 'USED'",
    )
    .await
}

/// Orders holding a coupon, and those whose coupon is not marked used by them.
pub async fn order_coupon_not_used(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE c.status IS DISTINCT FROM 'USED'
                                             OR c.order_id IS DISTINCT FROM o.order_id)
         FROM orders o LEFT JOIN coupon_issues c USING (coupon_issue_id)
         WHERE o.coupon_issue_id IS NOT NULL AND o.status IN ('NOT_PAID', 'PAID')",
    )
    .await
}

/// Unpaid orders, and those more than `grace_secs` past their deadline (expiry is behind).
pub async fn overdue_orders(db: &PgPool, grace_secs: f64) -> Result<Tally, Error> {
    Ok(sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE expires_at < now() - make_interval(secs => $1))
         FROM orders WHERE status = 'NOT_PAID'",
    )
    .bind(grace_secs)
    .fetch_one(db)
    .await?)
}
