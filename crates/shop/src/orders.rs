//! Orders: reserve stock and apply a coupon (one transaction), pay with points (one
//! transaction, with the `ORDER_PAID` outbox record), both at once (checkout), and the expiry
//! that gives an unpaid order's stock and coupon back.
//!
//! Rows are locked in one global order — order → products by id → coupon issue → wallet — by
//! every transaction here, so none can deadlock another. An order's fate is decided under its
//! row lock: a payment that takes the lock first and finds it unpaid before its deadline wins;
//! an expiry that takes it first (or a payment that finds the deadline passed) fails it, and
//! only the transaction that moves it out of NOT_PAID gives stock and coupon back: exactly once.

use std::collections::BTreeMap;

use chrono::Utc;
use engine::Engine;
use issuance_core::{
    clock,
    discount::Discount,
    enums::{CouponIssueStatus, OrderStatus, PointKind, ProductStatus},
    error::{Error, Missing, Refusal},
    ids::UserId,
};
use sqlx::{PgConnection, PgPool};
use store::orders::{Order, OrderItem};

use crate::{outbox::ORDER_PAID, points::MAX_BALANCE};

/// Most lines in an order, and most units per line.
pub const MAX_LINES: usize = 100;
const MAX_QTY: i64 = 1_000;

/// What a client orders.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// The buyer.
    pub user: UserId,
    /// `(product id, qty)` lines.
    pub lines: Vec<(i64, i64)>,
    /// A coupon to apply.
    pub coupon_issue_id: Option<i64>,
}

/// A paid order and the balance after it.
#[derive(Clone, Debug)]
pub struct Paid {
    /// The order.
    pub order: Order,
    /// The wallet's balance after the payment.
    pub balance_after: i64,
}

impl NewOrder {
    /// Lines merged by product and sorted by id (the lock order); checks ranges.
    fn lines(&self) -> Result<BTreeMap<i64, i32>, Error> {
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return Err(Error::Invalid(format!("items must hold 1-{MAX_LINES} lines")));
        }
        let mut merged: BTreeMap<i64, i64> = BTreeMap::new();
        for (product, qty) in &self.lines {
            if *product <= 0 || !(1..=MAX_QTY).contains(qty) {
                return Err(Error::Invalid(format!(
                    "each line needs a positive productId and a qty of 1-{MAX_QTY}"
                )));
            }
            *merged.entry(*product).or_default() += qty;
        }
        merged
            .into_iter()
            .map(|(p, q)| {
                i32::try_from(q)
                    .ok()
                    .filter(|q| i64::from(*q) <= MAX_QTY)
                    .map(|q| (p, q))
                    .ok_or_else(|| Error::Invalid(format!("qty of one product is at most {MAX_QTY}")))
            })
            .collect()
    }
}

/// Places an order: stock for every line or none, the coupon applied and marked used.
pub async fn create(engine: &Engine, new: NewOrder) -> Result<Order, Error> {
    coupon_persisted(engine, &new).await?;
    let mut tx = engine.db().begin().await?;
    let order = place(engine, &mut tx, &new).await?;
    tx.commit().await?;
    Ok(order)
}

/// Pays an unpaid order of `user` with points.
pub async fn pay(engine: &Engine, user: UserId, order_id: i64) -> Result<Paid, Error> {
    let mut tx = engine.db().begin().await?;
    let paid = settle(&mut tx, user, order_id).await?;
    tx.commit().await?;
    Ok(paid)
}

/// Places and pays an order in one transaction: all or nothing.
pub async fn checkout(engine: &Engine, new: NewOrder) -> Result<Paid, Error> {
    coupon_persisted(engine, &new).await?;
    let mut tx = engine.db().begin().await?;
    let order = place(engine, &mut tx, &new).await?;
    let paid = settle(&mut tx, new.user, order.order_id).await?;
    tx.commit().await?;
    Ok(paid)
}

/// One order with its lines.
pub async fn find(engine: &Engine, order_id: i64) -> Result<Order, Error> {
    let mut conn = engine.db().acquire().await?;
    store::orders::find(&mut conn, order_id, false)
        .await?
        .ok_or(Error::NotFound(Missing::Order))
}

/// The user's latest orders (at most 100), newest first.
pub async fn list_for_user(engine: &Engine, user: UserId) -> Result<Vec<Order>, Error> {
    let mut conn = engine.db().acquire().await?;
    store::orders::list_for_user(&mut conn, user.get(), 100).await
}

/// The order's coupon, issued a moment ago, may not be drained yet: see
/// [`Engine::persist_issued_coupon`].
async fn coupon_persisted(engine: &Engine, new: &NewOrder) -> Result<(), Error> {
    match new.coupon_issue_id {
        Some(id) => engine.persist_issued_coupon(new.user.get(), id).await,
        None => Ok(()),
    }
}

async fn place(engine: &Engine, tx: &mut PgConnection, new: &NewOrder) -> Result<Order, Error> {
    let lines = new.lines()?;
    if !store::users::exists(&mut *tx, new.user.get()).await? {
        return Err(Error::NotFound(Missing::User));
    }
    let ids: Vec<i64> = lines.keys().copied().collect();
    let stock = store::orders::lock_products(tx, &ids).await?;
    if stock.len() != ids.len() {
        return Err(Error::NotFound(Missing::Product));
    }
    let mut items = Vec::with_capacity(stock.len());
    for row in &stock {
        let qty = lines[&row.product_id];
        if row.status != ProductStatus::OnSale || row.stock < qty {
            return Err(Error::Refused(Refusal::OutOfStock));
        }
        items.push(OrderItem {
            product_id: row.product_id,
            qty,
            unit_price: row.price,
        });
    }
    let subtotal: i64 = items.iter().map(|i| i.unit_price * i64::from(i.qty)).sum();
    let taken: Vec<i32> = items.iter().map(|i| -i.qty).collect();
    store::orders::move_stock(tx, &ids, &taken).await?;

    let discount = match new.coupon_issue_id {
        None => 0,
        Some(id) => {
            let c = store::orders::lock_coupon(tx, id)
                .await?
                .filter(|c| c.user_id == new.user.get())
                .ok_or(Error::Refused(Refusal::CouponInvalid))?;
            let now = Utc::now();
            if c.status == CouponIssueStatus::Used {
                return Err(Error::Refused(Refusal::CouponAlreadyUsed));
            }
            if now > c.usable_until_at {
                return Err(Error::Refused(Refusal::CouponExpired));
            }
            if now < c.usable_from_at {
                return Err(Error::Refused(Refusal::CouponInvalid));
            }
            Discount::from_columns(c.discount_type, c.discount_value, c.max_discount)
                .ok_or(Error::Refused(Refusal::CouponInvalid))?
                .apply(subtotal)
        }
    };
    let order = store::orders::insert(
        tx,
        new.user.get(),
        subtotal,
        discount,
        new.coupon_issue_id,
        engine.options().order_ttl.as_millis() as i64,
        &items,
    )
    .await?;
    if let Some(id) = new.coupon_issue_id {
        store::orders::set_coupon_use(tx, id, Some(order.order_id)).await?;
    }
    Ok(order)
}

/// Fails up to `limit` unpaid orders past their deadline, giving back their stock and
/// coupons; returns how many. Safe to run in several processes at once.
///
/// The due orders are locked first (skipping those a payment or another worker holds), then
/// the products of all of them at once in id order, then their coupons in id order: the global
/// lock order, so a batch never deadlocks with orders placed meanwhile.
pub async fn expire_due(db: &PgPool, limit: i64) -> Result<usize, Error> {
    let mut tx = db.begin().await?;
    let due = store::orders::lock_due(&mut tx, limit).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let (back, coupons) = store::orders::held_by(&mut tx, &due).await?;
    let ids: Vec<i64> = back.keys().copied().collect();
    let qtys: Vec<i32> = back.values().copied().collect();
    store::orders::lock_products(&mut tx, &ids).await?;
    store::orders::move_stock(&mut tx, &ids, &qtys).await?;
    for coupon in coupons {
        store::orders::lock_coupon(&mut tx, coupon).await?;
        store::orders::set_coupon_use(&mut tx, coupon, None).await?;
    }
    for order_id in &due {
        store::orders::set_status(&mut tx, *order_id, OrderStatus::Failed).await?;
    }
    tx.commit().await?;
    metrics::counter!("issuer_orders_expired_total").increment(due.len() as u64);
    Ok(due.len())
}

/// Pays a locked order (see the module doc for the race with expiry).
async fn settle(tx: &mut PgConnection, user: UserId, order_id: i64) -> Result<Paid, Error> {
    let mut order = store::orders::find(tx, order_id, true)
        .await?
        .filter(|o| o.user_id == user.get())
        .ok_or(Error::NotFound(Missing::Order))?;
    match order.status {
        OrderStatus::Paid => return Err(Error::Refused(Refusal::OrderAlreadyPaid)),
        OrderStatus::Failed => return Err(Error::Refused(Refusal::OrderExpired)),
        OrderStatus::NotPaid if Utc::now() >= order.expires_at => {
            return Err(Error::Refused(Refusal::OrderExpired));
        }
        OrderStatus::NotPaid => {}
    }
    let insufficient = Error::Refused(Refusal::WalletInsufficientBalance);
    let balance_after = if order.total > 0 {
        let wallet = store::wallets::add(&mut *tx, user.get(), -order.total, MAX_BALANCE)
            .await?
            .ok_or(insufficient)?;
        store::wallets::record(
            &mut *tx,
            user.get(),
            PointKind::Use,
            -order.total,
            wallet.balance,
            Some(order_id),
        )
        .await?;
        wallet.balance
    } else {
        store::wallets::find(&mut *tx, user.get())
            .await?
            .map_or(0, |w| w.balance)
    };
    store::orders::set_status(tx, order_id, OrderStatus::Paid).await?;
    let paid_at = Utc::now();
    let payload = serde_json::json!({
        "eventType": "ORDER_PAID",
        "orderId": order_id,
        "userId": user.get(),
        "amount": {"subtotal": order.subtotal, "discount": order.discount, "total": order.total},
        "couponIssueId": order.coupon_issue_id,
        "items": order.items.iter().map(|i| serde_json::json!({
            "productId": i.product_id, "qty": i.qty, "unitPrice": i.unit_price,
        })).collect::<Vec<_>>(),
        "paidAt": clock::format_kst(paid_at),
    });
    store::outbox::insert(tx, ORDER_PAID, order_id, &payload).await?;
    order.status = OrderStatus::Paid;
    order.paid_at = Some(paid_at);
    Ok(Paid { order, balance_after })
}
