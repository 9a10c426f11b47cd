//! First-come coupons: the scope kind of a SELF coupon batch, handed out through the same core
//! as golden tickets ([`crate::first_come`], `lua/issue.lua`).
//!
//! A batch is a scope whose quantity is its `issueCount`, whose window is its validity (cut at
//! the end of its inventory's usable period, so no coupon is born expired) and which is on only
//! while the batch is READY and its inventory not END. Issues are numbered by position, so the
//! `n`-th coupon of a batch takes the batch's code at position `n` (the same code a generation
//! job writes into `coupon_codes`, or the one it would write) and its id is
//! `batch id × 10,000,000 + n`: both known the moment Redis decides, before any row exists.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use fred::interfaces::HashesInterface;
use issuance_core::{
    clock,
    code_generator::Code,
    discount::Discount,
    enums::{BatchStatus, IssueType},
    error::{Denial, Error, Missing, ScopeKind},
    ids::{UserId, issue_id, split_issue_id},
};
use store::coupon_batches::CouponBatch;

use crate::{
    cache::{Cached, Part},
    engine::Engine,
    first_come,
    issue::{IssueId, Verdict},
    scope::{Rules, Scope, shards_of},
};

/// A coupon just issued.
#[derive(Clone, Debug)]
pub struct IssuedCoupon {
    /// `batch id × 10,000,000 + position`.
    pub coupon_issue_id: i64,
    /// The batch (the API's `couponId`).
    pub batch_id: i64,
    /// The holder.
    pub user_id: i64,
    /// Its code.
    pub code: Code,
    /// What it takes off an order.
    pub discount: Option<Discount>,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
    /// When Redis issued it.
    pub issued_at: DateTime<Utc>,
}

/// The Redis copies of `batch`: the batch itself, or each of its buckets.
fn copies_of(batch: &CouponBatch) -> Vec<Scope> {
    Scope::Coupon(batch.batch_id).copies(batch.shard_count())
}

/// A refusal of a coupon issue.
fn denied(denial: Denial) -> Error {
    Error::Denied(ScopeKind::Coupon, denial)
}

impl Engine {
    /// Issues `user` a coupon of SELF batch `batch_id` (the API's `couponId`). A user who holds
    /// one already is refused with [`Denial::Held`] and its id.
    pub async fn issue_coupon(&self, batch_id: i64, user: UserId) -> Result<IssuedCoupon, Error> {
        self.issue_coupon_inner(batch_id, user, None, None).await
    }

    /// [`Engine::issue_coupon`] with the clock overridden (epoch ms), for tests.
    pub async fn issue_coupon_at(
        &self,
        batch_id: i64,
        user: UserId,
        clock_ms: Option<i64>,
    ) -> Result<IssuedCoupon, Error> {
        self.issue_coupon_inner(batch_id, user, clock_ms, None).await
    }

    /// [`Engine::issue_coupon`] with the admission pass the request carried: a batch whose
    /// waiting room is on issues only to a user with a valid pass of their own (see
    /// [`crate::admission`]); a holder is answered as a holder, pass or not.
    pub async fn issue_coupon_with_pass(
        &self,
        batch_id: i64,
        user: UserId,
        pass: Option<&str>,
    ) -> Result<IssuedCoupon, Error> {
        self.issue_coupon_inner(batch_id, user, None, pass).await
    }

    async fn issue_coupon_inner(
        &self,
        batch_id: i64,
        user: UserId,
        clock_ms: Option<i64>,
        pass: Option<&str>,
    ) -> Result<IssuedCoupon, Error> {
        let cached = self
            .cached_coupon(batch_id)
            .await?
            .filter(|c| c.detail.issue_type == IssueType::SelfIssued)
            .ok_or(Error::NotFound(Missing::Coupon))?;
        let batch = &cached.detail;
        let position = |id: IssueId| -> Result<i32, Error> {
            match id {
                IssueId::Position(p) => i32::try_from(p).ok(),
                IssueId::Ticket(_) => None,
            }
            .filter(|p| (0..batch.issue_count).contains(p))
            .ok_or_else(|| Error::protocol("issue.lua", format!("coupon position {id:?}")))
        };
        if let Err(refused) = self.admit(&cached.scope, batch.gate(), user.get(), pass) {
            return Err(
                match Box::pin(self.held_entry(cached.copy_for(user.get()).0, user.get())).await? {
                    Some((id, _)) => denied(Denial::Held(issue_id(batch_id, position(id)?))),
                    None => denied(refused),
                },
            );
        }
        match self.decide(&cached, user.get(), clock_ms).await? {
            Verdict::Issued { id, at_ms, .. } => {
                if batch.admission.admission_enabled {
                    self.pass_used(&cached.scope, batch.gate(), user.get(), pass)
                        .await;
                }
                let seq = position(id)?;
                Ok(IssuedCoupon {
                    coupon_issue_id: issue_id(batch_id, seq),
                    batch_id,
                    user_id: user.get(),
                    code: self.inner.options.codes.code(batch_id, seq as u32),
                    discount: batch.discount(),
                    expires_at: batch.usable_until_at,
                    issued_at: clock::from_ms(at_ms),
                })
            }
            Verdict::Held { id, .. } => Err(denied(Denial::Held(issue_id(batch_id, position(id)?)))),
            // A batch not yet READY has not opened; one switched off after has closed.
            Verdict::Inactive if batch.batch_status == BatchStatus::Pending => {
                Err(denied(Denial::NotInPeriod))
            }
            Verdict::Inactive => Err(denied(Denial::Expired)),
            Verdict::NotInPeriod if clock_ms.map_or_else(Utc::now, clock::from_ms) >= cached.rules.start => {
                Err(denied(Denial::Expired))
            }
            refused => Err(denied(refused.denial()?)),
        }
    }

    /// Makes sure a coupon `user` was issued is in Postgres before an order uses it. The drain
    /// writes every issue milliseconds after Redis makes it; an order placed in between would
    /// not find the row. When the row is missing, the user's entry in the batch's holders hash
    /// is the proof of the issue, and the row is written now exactly as the drain will write it
    /// (the drain's insert then skips it). A coupon Redis never issued to the user is left
    /// alone; the order then answers `COUPON_INVALID`.
    pub async fn persist_issued_coupon(&self, user: i64, coupon_issue_id: i64) -> Result<(), Error> {
        let Some((batch_id, seq)) = split_issue_id(coupon_issue_id) else {
            return Ok(());
        };
        if store::coupon_issues::exists(self.db(), coupon_issue_id).await? {
            return Ok(());
        }
        // The user's bucket's holders when the batch is spread over several.
        let holders = match self.cached_coupon(batch_id).await? {
            Some(cached) => cached.copy_for(user).1.holders.clone(),
            None => self.keys().coupon_batch(batch_id).holders,
        };
        let held: Option<String> = self.redis().next().hget(&holders, user.to_string()).await?;
        let issued_at = held
            .as_deref()
            .and_then(|h| h.split_once('|'))
            .filter(|(position, _)| position.parse() == Ok(seq))
            .and_then(|(_, at)| at.parse().ok())
            .map(clock::from_ms);
        let Some(issued_at) = issued_at else {
            return Ok(());
        };
        let mut tx = self.db().begin().await?;
        let issue = store::coupon_issues::NewCouponIssue {
            batch_id,
            seq,
            user_id: user,
            issued_at,
        };
        if store::coupon_issues::insert_batch(&mut tx, &[issue]).await? == 1 {
            metrics::counter!("issuer_coupon_read_repairs_total").increment(1);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes an admin change of a batch (or of its inventory) take effect at once in this
    /// process and in Redis. The change is committed already, so a failure here is only logged:
    /// other processes see the change within the rules cache's TTL, and the Redis copy is
    /// rewritten on the next change or rebuild.
    pub async fn refresh_coupon_batches(&self, batch_ids: &[i64]) {
        for id in batch_ids {
            self.inner.coupons.invalidate(&id.to_string());
            // A raised quantity ends a sell-out (other processes see the new version).
            self.inner.sold_out.forget(&self.keys().coupon_batch(*id).stream);
            let refreshed = async {
                if let Some(batch) = store::coupon_batches::find_batch(self.db(), *id).await? {
                    // Only updates an existing copy: a missing one is rebuilt on next use. The
                    // stream is registered again: one retired after the window ended comes back
                    // if the change reopens the window.
                    for scope in copies_of(&batch) {
                        let keys = scope.keys(self.keys());
                        if self.load_meta(&Rules::from(&batch), &keys, None, None).await? {
                            crate::stream::register(self.redis(), self.keys(), &keys.stream).await?;
                        }
                    }
                }
                Ok::<_, Error>(())
            };
            if let Err(e) = refreshed.await {
                tracing::warn!(batch = id, error = %e, "coupon batch changed, Redis copy not refreshed");
            }
        }
    }

    /// The batch's rules, from this process's cache when fresh.
    pub(crate) async fn cached_coupon(
        &self,
        batch_id: i64,
    ) -> Result<Option<Arc<Cached<CouponBatch>>>, Error> {
        // A batch the cache holds is found by its id's digits on the stack: its text of its own
        // cost an issue request an allocation and a formatter's pass.
        if let Some(found) = first_come::fresh(&self.inner.coupons, itoa::Buffer::new().format(batch_id)) {
            return Ok(found);
        }
        first_come::cached(
            &self.inner.coupons,
            &batch_id.to_string(),
            self.db_down(),
            || async {
                Ok(store::coupon_batches::find_batch(self.db(), batch_id)
                    .await?
                    .map(|batch| Cached {
                        scope: Scope::Coupon(batch_id),
                        rules: Rules::from(&batch),
                        keys: self.keys().coupon_batch(batch_id),
                        blocks: Default::default(),
                        queue: Default::default(),
                        room: Default::default(),
                        parts: Part::all(Scope::coupon_buckets(batch_id, batch.shard_count()), self.keys()),
                        findings: Default::default(),
                        pool_empty: Default::default(),
                        detail: batch,
                    }))
            },
        )
        .await
    }

    /// Coupons issued from each batch, live: the size of its holders hash in Redis (the issuance
    /// core counts there, as for golden tickets), summed over its buckets when it is spread over
    /// several. Batches nobody claimed yet are 0.
    pub async fn issued_counts(&self, batch_ids: &[i64]) -> Result<HashMap<i64, i64>, Error> {
        let sharded: HashMap<i64, i16> = store::coupon_batches::sharded(self.db(), batch_ids)
            .await?
            .into_iter()
            .collect();
        let scopes: Vec<Scope> = batch_ids
            .iter()
            .flat_map(|id| Scope::Coupon(*id).copies(shards_of(sharded.get(id))))
            .collect();
        let counts = self.holder_counts(&scopes).await?;
        let mut issued: HashMap<i64, i64> = batch_ids.iter().map(|id| (*id, 0)).collect();
        for (scope, count) in scopes.iter().zip(counts) {
            if let Scope::Coupon(id) | Scope::CouponBucket { id, .. } = scope {
                *issued.entry(*id).or_default() += count;
            }
        }
        Ok(issued)
    }

    /// The holders of each scope, live from Redis, in order: one pipelined HLEN each on one
    /// connection (a list of campaigns costs one round trip, not a query per row).
    pub async fn holder_counts(&self, scopes: &[Scope]) -> Result<Vec<i64>, Error> {
        let client = self.redis().next();
        Ok(futures::future::try_join_all(scopes.iter().map(|scope| {
            let key = scope.keys(self.keys()).holders;
            async move { client.hlen::<i64, _>(key).await }
        }))
        .await?)
    }
}
