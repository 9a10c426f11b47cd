//! Changing a scope's quantity while it issues.
//!
//! A raise is safe in any order that commits Postgres first: until the copy hears of it, the
//! copy issues less than it may, never more. A lowering is not: between the check "nothing
//! issued is above the new quantity" and the moment every process decides under it, an issue
//! could slip in under the old one. So a lowering is decided in Redis, where issues are: one
//! `set_total.lua` call checks the issued count and writes the new quantity atomically with
//! respect to `issue.lua`; then Postgres commits it. Should the commit fail, the copy is raised
//! back (or, should that fail too, stays lower than Postgres: the safe side, until the next
//! change or rebuild writes the row again).
//!
//! [`Engine::change_scope`] holds the scope's `scope_reservations` row (as a rebuild does, see
//! [`crate::meta`]) from before the check until the commit, so no rebuild writes the old
//! quantity in between; a rebuild reads the rules from Postgres under that lock. Each scope
//! kind supplies its row's two steps ([`RowChange`]): golden-ticket events
//! ([`crate::ticket_events`]) and first-come coupon batches (the admin's).
//!
//! A scope spread over buckets is lowered in its pool instead ([`Engine::lower_spread`]): the
//! row held is its pool, every lease takes it, so under it the buckets' unused leases are taken
//! back and what they issued is checked against the new quantity; leases after the commit
//! grant within it.

use issuance_core::error::{Error, Refusal};
use sqlx::PgConnection;

use crate::{cache::Part, engine::Engine, keys::ScopeKeys, scope::Scope, script::Lua};

/// Attempts of a change whose copy had to be rebuilt first.
const ATTEMPTS: usize = 3;

/// The two Postgres steps of a change of a scope's row, each in the change's transaction.
pub trait RowChange {
    /// The row as the caller reads it back.
    type Row;

    /// Locks the scope's row, checks the change against it (a refusal ends the change, nothing
    /// written) and returns the quantity it has now.
    fn lock(&mut self, tx: &mut PgConnection) -> impl Future<Output = Result<i64, Error>> + Send;

    /// Writes the change; the row after it.
    fn write(&mut self, tx: &mut PgConnection) -> impl Future<Output = Result<Self::Row, Error>> + Send;
}

/// What `set_total.lua` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lowered {
    /// The copy now issues up to the new quantity.
    Done,
    /// The copy is missing or damaged: rebuild it and ask again.
    NoCopy,
}

impl Engine {
    /// Changes a scope's row in Postgres, its quantity to `total` among the rest when given:
    /// a lowering is checked and written in Redis first (see the module doc); a raise, like any
    /// other change, is only committed here, and the caller copies the row into Redis after.
    /// Returns the quantity before and the row after.
    pub async fn change_scope<C: RowChange + Send>(
        &self,
        scope: &Scope,
        total: Option<i64>,
        mut change: C,
    ) -> Result<(i64, C::Row), Error> {
        let keys = scope.keys(self.keys());
        for _ in 0..ATTEMPTS {
            let mut tx = self.db().begin().await?;
            // Rebuilds of the scope take this row too: none writes the old rules meanwhile.
            store::scope_reservations::lock(&mut tx, scope.kind().as_str(), &scope.id()).await?;
            let before = change.lock(&mut tx).await?;
            let parts = self.spread_parts(&mut tx, scope).await?;
            let lowered = match total {
                Some(total) if total < before && !parts.is_empty() => {
                    self.lower_spread(&mut tx, scope, &parts, total).await?;
                    false
                }
                Some(total) if total < before => match self.lower_total(&keys, total).await? {
                    Lowered::Done => true,
                    Lowered::NoCopy => {
                        // Rebuild the copy outside this transaction, whose lock the rebuild
                        // takes, and decide again.
                        drop(tx);
                        self.rebuild_copy(scope).await?;
                        continue;
                    }
                },
                _ => false,
            };
            let committed = async {
                let after = change.write(&mut tx).await?;
                tx.commit().await?;
                Ok::<_, Error>(after)
            };
            return match committed.await {
                Ok(after) => Ok((before, after)),
                Err(e) => {
                    if lowered {
                        self.put_back_total(&keys, before).await;
                    }
                    Err(e)
                }
            };
        }
        Err(Error::RedisUnsettled)
    }

    /// The buckets of `scope` when it is spread over several (none otherwise), from its row.
    async fn spread_parts(&self, tx: &mut PgConnection, scope: &Scope) -> Result<Vec<Part>, Error> {
        let buckets = match scope {
            Scope::Ticket(key) => match store::ticket_events::find(&mut *tx, key.as_str()).await? {
                Some(event) => Scope::buckets(key, event.shard_count()),
                None => Vec::new(),
            },
            Scope::Coupon(id) => match store::coupon_batches::find_batch(&mut *tx, *id).await? {
                Some(batch) => Scope::coupon_buckets(*id, batch.shard_count()),
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        Ok(Part::all(buckets, self.keys()))
    }

    /// Rebuilds the scope's copy when it is missing or broken, from the rules in Postgres.
    async fn rebuild_copy(&self, scope: &Scope) -> Result<(), Error> {
        if let Some(rules) = self.current_rules(self.db(), scope).await? {
            self.scope_counts(scope, &rules, None).await?;
        }
        Ok(())
    }

    /// Lowers the copy's quantity to `total`, unless more than that was issued already
    /// ([`Refusal::QuantityBelowIssued`]).
    async fn lower_total(&self, keys: &ScopeKeys, total: i64) -> Result<Lowered, Error> {
        let (written, issued): (i64, i64) = Lua::SetTotal
            .call(
                self.redis().next(),
                vec![keys.meta.as_str(), keys.holders.as_str()],
                vec![total.to_string()],
            )
            .await?;
        match written {
            1 => Ok(Lowered::Done),
            0 => {
                tracing::info!(total, issued, "quantity change refused: more were issued already");
                Err(Error::Refused(Refusal::QuantityBelowIssued))
            }
            _ => Ok(Lowered::NoCopy),
        }
    }

    /// Puts the copy's quantity back to `total` after a lowering Postgres did not commit.
    async fn put_back_total(&self, keys: &ScopeKeys, total: i64) {
        if let Err(e) = self.lower_total(keys, total).await {
            tracing::warn!(
                meta = %keys.meta, total, error = %e,
                "could not put the quantity back in Redis; it stays lower until the next change"
            );
        }
    }
}
