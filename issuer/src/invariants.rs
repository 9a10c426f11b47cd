//! The invariants of SPEC §8 that Postgres can show, checked after a load run or an incident
//! (`workers check`). Each [`Finding`] names its rule, passes or fails, and says how many rows
//! it looked at and how many broke it.
//!
//! Stock has no ledger of its own: only orders move it, so a product's stock plus the units its
//! unpaid and paid orders hold is constant. A [`Baseline`] taken before a run records that sum
//! per product; the check after the run compares (`stock + sold = initial`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{
    error::Error,
    repo::invariants::{self as q, Tally},
};

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
    Ok(Finding {
        name,
        verdict: if differ.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: format!(
            "{} products, {} breaking it{}",
            baseline.stock.len(),
            differ.len(),
            differ.first().map(|d| format!(" (e.g. {d})")).unwrap_or_default()
        ),
    })
}
