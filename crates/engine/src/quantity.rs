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
//! The caller holds the scope's `scope_reservations` row (as a rebuild does, see
//! [`crate::meta`]) from before the check until the commit, so no rebuild writes the old
//! quantity in between; a rebuild reads the rules from Postgres under that lock.

use issuance_core::error::{Error, Refusal};

use crate::{engine::Engine, keys::ScopeKeys, script::Lua};

/// What `set_total.lua` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lowered {
    /// The copy now issues up to the new quantity.
    Done,
    /// The copy is missing or damaged: rebuild it and ask again.
    NoCopy,
}

impl Engine {
    /// Lowers the copy's quantity to `total`, unless more than that was issued already
    /// ([`Refusal::QuantityBelowIssued`]).
    pub(crate) async fn lower_total(&self, keys: &ScopeKeys, total: i64) -> Result<Lowered, Error> {
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
    pub(crate) async fn put_back_total(&self, keys: &ScopeKeys, total: i64) {
        if let Err(e) = self.lower_total(keys, total).await {
            tracing::warn!(
                meta = %keys.meta, total, error = %e,
                "could not put the quantity back in Redis; it stays lower until the next change"
            );
        }
    }
}
