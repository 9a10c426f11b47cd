//! The read-only queries of the invariant check (`workers check`): each counts the rows
//! that break one rule, next to how many it looked at.

use std::collections::BTreeMap;

use issuance_core::error::Error;
use sqlx::PgPool;

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

/// Golden-ticket events, and those with more tickets than their quantity.
pub async fn tickets_over_total(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE coalesce(t.n, 0) > e.total_quantity)
         FROM ticket_events e
         LEFT JOIN (SELECT event_key, count(*) AS n FROM tickets GROUP BY event_key) t USING (event_key)",
    )
    .await
}

/// Days (KST) on which an event with a daily limit issued, and those over the limit.
pub async fn tickets_over_daily(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE n > daily_limit)
         FROM (SELECT e.daily_limit, count(*) AS n
               FROM tickets t JOIN ticket_events e USING (event_key)
               WHERE e.daily_limit IS NOT NULL
               GROUP BY t.event_key, e.daily_limit, (t.issued_at AT TIME ZONE 'Asia/Seoul')::date) d",
    )
    .await
}

/// Holders of tickets (event, user), and those holding more than one of an event.
pub async fn tickets_twice(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE n > 1)
         FROM (SELECT count(*) AS n FROM tickets GROUP BY event_key, user_id) h",
    )
    .await
}

/// Coupon batches, and those with more issues than their issue count.
pub async fn coupons_over_total(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE coalesce(c.n, 0) > b.issue_count)
         FROM coupon_batches b
         LEFT JOIN (SELECT batch_id, count(*) AS n FROM coupon_issues GROUP BY batch_id) c USING (batch_id)",
    )
    .await
}

/// Days (KST) on which a batch with a daily limit issued, and those over the limit.
pub async fn coupons_over_daily(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE n > daily_limit)
         FROM (SELECT b.daily_limit, count(*) AS n
               FROM coupon_issues c JOIN coupon_batches b USING (batch_id)
               WHERE b.daily_limit IS NOT NULL
               GROUP BY c.batch_id, b.daily_limit, (c.issued_at AT TIME ZONE 'Asia/Seoul')::date) d",
    )
    .await
}

/// Holders of coupons (batch, user), and those holding more than one of a batch.
pub async fn coupons_twice(db: &PgPool) -> Result<Tally, Error> {
    tally(
        db,
        "SELECT count(*), count(*) FILTER (WHERE n > 1)
         FROM (SELECT count(*) AS n FROM coupon_issues GROUP BY batch_id, user_id) h",
    )
    .await
}

/// Issued rows per golden-ticket event.
pub async fn tickets_per_event(db: &PgPool) -> Result<Vec<(String, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT e.event_key, count(t.ticket_id)
         FROM ticket_events e LEFT JOIN tickets t USING (event_key)
         GROUP BY e.event_key ORDER BY e.event_key",
    )
    .fetch_all(db)
    .await?)
}

/// Issued rows per first-come (SELF) coupon batch.
pub async fn coupons_per_batch(db: &PgPool) -> Result<Vec<(i64, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT b.batch_id, count(c.coupon_issue_id)
         FROM coupon_batches b LEFT JOIN coupon_issues c USING (batch_id)
         WHERE b.issue_type = 'SELF'
         GROUP BY b.batch_id ORDER BY b.batch_id",
    )
    .fetch_all(db)
    .await?)
}
