//! The invariants of SPEC §8, checked after a load run or an incident (`workers check`). Each
//! [`Finding`] names its rule, passes or fails, and says how many rows it looked at and how many
//! broke it. [`check`] holds the commerce rules (Postgres alone); [`check_issuance`] the issuance
//! rules, including Redis's issued count against the Postgres rows once the drain has caught up.
//!
//! Stock has no ledger of its own: only orders move it, so a product's stock plus the units its
//! unpaid and paid orders hold is constant. A [`Baseline`] taken before a run records that sum
//! per product; the check after the run compares (`stock + sold = initial`).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use engine::{
    keys::{Keys, ScopeKeys},
    scope::{Scope, shards_of},
    stream,
};
use fred::{
    clients::Pool,
    interfaces::{HashesInterface, KeysInterface},
};
use issuance_core::{error::Error, ids::EventKey};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use store::invariants::{self as q, Tally};

/// Outcome of one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Held.
    Pass,
    /// Broken.
    Fail,
    /// Could not be checked (says why).
    Skip,
}

/// One rule's result.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The rule.
    pub name: &'static str,
    /// Held or not.
    pub verdict: Verdict,
    /// Counts, and what broke it.
    pub detail: String,
}

/// Per product, stock plus held units, before a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// `product id → stock + units in unpaid and paid orders`.
    pub stock: BTreeMap<i64, i64>,
}

/// Unpaid orders this long past their deadline mean the expiry is not keeping up.
pub const EXPIRY_GRACE_SECS: f64 = 10.0;

/// Takes the stock baseline.
pub async fn baseline(db: &PgPool) -> Result<Baseline, Error> {
    Ok(Baseline {
        stock: q::stock_with_held(db).await?,
    })
}

/// Checks every rule; stock conservation only with a baseline.
pub async fn check(db: &PgPool, baseline: Option<&Baseline>) -> Result<Vec<Finding>, Error> {
    let mut out = vec![
        counted("stock never negative", "products", q::negative_stock(db).await?),
        stock_conserved(db, baseline).await?,
        counted(
            "balance within 0..5,000,000",
            "wallets",
            q::balance_out_of_bounds(db).await?,
        ),
        counted(
            "balance equals the sum of its history",
            "wallets",
            q::balance_not_history(db).await?,
        ),
        counted(
            "a paid order has exactly one point use of its total",
            "paid orders",
            q::payment_not_one_use(db).await?,
        ),
        counted(
            "a point use belongs to a paid order",
            "uses",
            q::use_without_payment(db).await?,
        ),
        counted(
            "a paid order has exactly one ORDER_PAID record",
            "paid orders",
            q::paid_without_outbox(db).await?,
        ),
        counted(
            "an ORDER_PAID record belongs to a paid order",
            "records",
            q::outbox_without_payment(db).await?,
        ),
        counted(
            "a used coupon belongs to its live order (a failed order's came back)",
            "used coupons",
            q::coupon_use_mismatch(db).await?,
        ),
        counted(
            "a live order's coupon is marked used by it",
            "orders with a coupon",
            q::order_coupon_not_used(db).await?,
        ),
    ];
    out.push(counted(
        "no unpaid order long past its deadline",
        "unpaid orders",
        q::overdue_orders(db, EXPIRY_GRACE_SECS).await?,
    ));
    Ok(out)
}

/// A rule checked item by item: `differ` names the items that break it (the first is shown).
fn listed(name: &'static str, seen: String, differ: &[String]) -> Finding {
    Finding {
        name,
        verdict: if differ.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: format!(
            "{seen}, {} breaking it{}",
            differ.len(),
            differ.first().map(|d| format!(" (e.g. {d})")).unwrap_or_default()
        ),
    }
}

fn counted(name: &'static str, what: &str, (seen, broken): Tally) -> Finding {
    Finding {
        name,
        verdict: if broken == 0 { Verdict::Pass } else { Verdict::Fail },
        detail: format!("{seen} {what}, {broken} breaking it"),
    }
}

async fn stock_conserved(db: &PgPool, baseline: Option<&Baseline>) -> Result<Finding, Error> {
    let name = "stock + sold = initial";
    let Some(baseline) = baseline else {
        return Ok(Finding {
            name,
            verdict: Verdict::Skip,
            detail: "no baseline taken before the run".into(),
        });
    };
    let now = q::stock_with_held(db).await?;
    let differ: Vec<String> = baseline
        .stock
        .iter()
        .filter_map(|(id, before)| {
            let after = now.get(id).copied().unwrap_or_default();
            (after != *before).then(|| format!("product {id}: {before} → {after}"))
        })
        .collect();
    Ok(listed(
        name,
        format!("{} products", baseline.stock.len()),
        &differ,
    ))
}

/// Checks the issuance rules: quantity and daily limits, one issue per user, and (after waiting
/// up to `drain_wait` for the streams to empty) every scope's Redis issued count against its
/// Postgres rows. A scope whose Redis copy is not loaded (never asked for, or evicted) has no
/// count to compare and is only counted.
pub async fn check_issuance(
    db: &PgPool,
    redis: &Pool,
    keys: &Keys,
    drain_wait: Duration,
) -> Result<Vec<Finding>, Error> {
    Ok(vec![
        counted(
            "tickets issued <= the event's quantity",
            "events",
            q::tickets_over_total(db).await?,
        ),
        counted(
            "tickets issued per KST day <= the daily limit",
            "event-days",
            q::tickets_over_daily(db).await?,
        ),
        counted(
            "no user holds two tickets of an event",
            "holders",
            q::tickets_twice(db).await?,
        ),
        counted(
            "coupons issued <= the batch's issue count",
            "batches",
            q::coupons_over_total(db).await?,
        ),
        counted(
            "coupons issued per KST day <= the daily limit",
            "batch-days",
            q::coupons_over_daily(db).await?,
        ),
        counted(
            "no user holds two coupons of a batch",
            "holders",
            q::coupons_twice(db).await?,
        ),
        redis_matches_postgres(db, redis, keys, drain_wait).await?,
    ])
}

async fn redis_matches_postgres(
    db: &PgPool,
    redis: &Pool,
    keys: &Keys,
    drain_wait: Duration,
) -> Result<Finding, Error> {
    let name = "Redis issued count = Postgres rows (streams drained)";
    let deadline = Instant::now() + drain_wait;
    loop {
        let lag = stream::total_lag(redis, keys).await?;
        if lag.entries == 0 {
            break;
        }
        if Instant::now() >= deadline {
            return Ok(Finding {
                name,
                verdict: Verdict::Fail,
                detail: format!(
                    "streams not drained after {} s: {} entries pending",
                    drain_wait.as_secs(),
                    lag.entries
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An event or batch spread over buckets is compared as one: the sum of its buckets' holders.
    let sharded: BTreeMap<String, i16> = store::ticket_events::sharded(db).await?.into_iter().collect();
    let mut scopes: Vec<(String, Vec<ScopeKeys>, i64)> = Vec::new();
    for (event, rows) in q::tickets_per_event(db).await? {
        let copies = match EventKey::parse(&event) {
            Ok(key) => Scope::Ticket(key).copies(shards_of(sharded.get(&event))),
            Err(_) => Vec::new(),
        };
        let copies = match copies.is_empty() {
            true => vec![keys.ticket_event(&event)],
            false => copies.iter().map(|copy| copy.keys(keys)).collect(),
        };
        scopes.push((format!("event {event}"), copies, rows));
    }
    let batches = q::coupons_per_batch(db).await?;
    let ids: Vec<i64> = batches.iter().map(|(batch, _)| *batch).collect();
    let sharded: BTreeMap<i64, i16> = store::coupon_batches::sharded(db, &ids)
        .await?
        .into_iter()
        .collect();
    for (batch, rows) in batches {
        let copies = Scope::Coupon(batch)
            .copies(shards_of(sharded.get(&batch)))
            .iter()
            .map(|copy| copy.keys(keys))
            .collect();
        scopes.push((format!("batch {batch}"), copies, rows));
    }
    let (mut compared, mut unloaded, mut differ) = (0, 0, Vec::new());
    for (label, copies, rows) in scopes {
        let client = redis.next();
        let (mut loaded, mut issued) = (0_i64, 0_i64);
        for k in &copies {
            let exists: i64 = client.exists(&k.meta).await?;
            loaded += exists;
            let held: i64 = client.hlen(&k.holders).await?;
            issued += held;
        }
        if loaded == 0 {
            unloaded += 1;
            continue;
        }
        compared += 1;
        if issued != rows {
            differ.push(format!("{label}: Redis {issued}, Postgres {rows}"));
        }
    }
    Ok(listed(
        name,
        format!("{compared} scopes compared ({unloaded} not loaded in Redis)"),
        &differ,
    ))
}
