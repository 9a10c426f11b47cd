//! Writing a batch of records into Postgres: the fence, then COPY, or the conflict-tolerant
//! insert of a replay (see the module above).
//!
//! The fence: a record carries the fence of the Redis copy that wrote it, and a rebuild of the
//! copy gives the scope a new fence under the lock of its `scope_reservations` row before it
//! reads Postgres (`engine::meta`). The transaction here takes the same row's lock (shared)
//! before it writes the scope's records, and writes only those of the current fence or a later
//! one: a batch read from a Redis history that a rebuild has replaced (the old primary of a
//! failover, a server restarted without its data) is dropped, not committed behind the
//! rebuild's back, and its users are whatever the rebuilt copy says (Postgres and the records
//! the rebuild queued again).

use std::collections::BTreeSet;

use engine::stream::{IssueId, IssueRecord};
use issuance_core::{Error, clock};
use sqlx::{PgConnection, PgPool};
use store::{
    coupon_issues::{self, NewCouponIssue},
    scope_reservations,
    tickets::{self, NewTicket},
};

/// How a batch is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Entries never delivered before: binary COPY, and the conflict-tolerant insert should one
    /// be there already.
    Fresh,
    /// Entries that may have been written before (taken over, retried): the conflict-tolerant
    /// insert at once.
    Replay,
}

/// What a commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Records within their scope's fence, written (or found there already).
    pub kept: usize,
    /// Records of a replaced Redis history, dropped.
    pub fenced: usize,
}

/// Writes `records` in one durable transaction (by COPY when `write` is fresh, falling back to
/// the conflict-tolerant insert when one of them is there already), each only within its
/// scope's fence.
pub async fn commit(db: &PgPool, records: &[IssueRecord], write: Write) -> Result<Written, Error> {
    if write == Write::Fresh {
        match transaction(db, records, Write::Fresh).await {
            Err(e) if store::is_unique_violation(&e) => {
                tracing::info!(
                    rows = records.len(),
                    "batch partly written before; writing it again without the duplicates"
                );
                metrics::counter!("issuer_drain_rewritten_batches_total").increment(1);
            }
            other => return other,
        }
    }
    transaction(db, records, Write::Replay).await
}

async fn transaction(db: &PgPool, records: &[IssueRecord], write: Write) -> Result<Written, Error> {
    let mut tx = db.begin().await?;
    store::durable_commit(&mut tx).await?;
    let kept = within_fences(&mut tx, records).await?;
    let written = Written {
        kept: kept.len(),
        fenced: records.len() - kept.len(),
    };
    let (tickets, coupons) = rows(&kept);
    match write {
        Write::Fresh => {
            tickets::copy_batch(&mut tx, &tickets).await?;
            coupon_issues::copy_batch(&mut tx, &coupons).await?;
        }
        Write::Replay => {
            tickets::insert_batch(&mut *tx, &tickets).await?;
            coupon_issues::insert_batch(&mut tx, &coupons).await?;
        }
    }
    tx.commit().await?;
    if written.fenced > 0 {
        tracing::warn!(
            dropped = written.fenced,
            "records of a Redis history a rebuild replaced were dropped (the rebuilt copy holds its users)"
        );
        metrics::counter!("issuer_drain_fenced_total").increment(written.fenced as u64);
    }
    Ok(written)
}

/// The records within their scope's fence, each scope's row locked (shared) until the end of
/// the transaction.
async fn within_fences<'r>(
    tx: &mut PgConnection,
    records: &'r [IssueRecord],
) -> Result<Vec<&'r IssueRecord>, Error> {
    let scopes: BTreeSet<(&str, &str)> = records
        .iter()
        .filter(|r| r.fence.is_some())
        .map(|r| (r.kind.as_str(), r.scope.as_str()))
        .collect();
    let mut fences = Vec::with_capacity(scopes.len());
    for (kind, scope) in scopes {
        fences.push((
            (kind, scope),
            scope_reservations::share_fence(tx, kind, scope).await?,
        ));
    }
    Ok(records
        .iter()
        .filter(|r| {
            let current = fences
                .iter()
                .find(|((kind, scope), _)| *kind == r.kind.as_str() && *scope == r.scope)
                .and_then(|(_, fence)| *fence);
            r.within_fence(current)
        })
        .collect())
}

/// The rows of the records.
fn rows(records: &[&IssueRecord]) -> (Vec<NewTicket>, Vec<NewCouponIssue>) {
    let (mut tickets, mut coupons) = (Vec::with_capacity(records.len()), Vec::new());
    for r in records {
        let issued_at = clock::from_ms(r.issued_at_ms);
        match r.issue_id {
            IssueId::Uuid(ticket_id) => tickets.push(NewTicket {
                ticket_id,
                event_key: engine::scope::whole_scope_id(&r.scope).to_owned(),
                user_id: r.user_id,
                issued_at,
            }),
            // A bucket's records name `<batch id>#<bucket>`.
            IssueId::Position(seq) => match engine::scope::whole_scope_id(&r.scope).parse() {
                Ok(batch_id) => coupons.push(NewCouponIssue {
                    batch_id,
                    seq,
                    user_id: r.user_id,
                    issued_at,
                }),
                Err(_) => {
                    tracing::error!(scope = %r.scope, "coupon record with a bad batch id");
                    metrics::counter!("issuer_drain_malformed_total").increment(1);
                }
            },
        }
    }
    (tickets, coupons)
}
