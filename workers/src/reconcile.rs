//! `workers reconcile`: every scope's holders in Redis against its rows in Postgres
//! ([`Engine::reconcile`]), and with `--repair` the rebuild of every scope whose copy disagrees
//! ([`Engine::repair`]), reported again afterwards.

use engine::{
    Engine,
    reconcile::{Differences, ScopeReport},
    scope::Scope,
};
use issuance_core::error::Error;

/// One scope's outcome.
#[derive(Clone, Debug)]
pub struct Line {
    /// `gt:<event key>` or `cb:<batch id>`, as the Redis keys name it.
    pub scope: String,
    /// How it compares (after the repair, when one ran).
    pub report: ScopeReport,
    /// Whether it was repaired.
    pub repaired: bool,
}

impl Line {
    /// The line `workers reconcile` prints.
    pub fn render(&self) -> String {
        let r = &self.report;
        let verdict = if r.broken() { "DIFF" } else { "OK  " };
        format!(
            "{verdict}  {:<28} loaded {:<3}  postgres {:>7}  redis {:>7}  missing in Redis {}  \
             in flight {}  missing in Postgres {}  differ {}  reserved {}  stranded {}{}",
            self.scope,
            if r.loaded { "yes" } else { "no" },
            r.postgres,
            r.redis,
            users(&r.missing_in_redis),
            r.in_flight,
            users(&r.missing_in_postgres),
            users(&r.differ),
            r.reserved,
            r.stranded,
            if self.repaired { "  (repaired)" } else { "" },
        )
    }
}

fn users(d: &Differences) -> String {
    if d.users.is_empty() {
        return d.count.to_string();
    }
    let listed: Vec<String> = d.users.iter().map(i64::to_string).collect();
    let more = if d.count > d.users.len() { " …" } else { "" };
    format!("{} [users {}{more}]", d.count, listed.join(" "))
}

fn label(scope: &Scope) -> String {
    match scope {
        Scope::Ticket(key) => format!("gt:{key}"),
        Scope::Coupon(id) => format!("cb:{id}"),
        Scope::TicketBucket { .. } => format!("gt:{}", scope.id()),
        Scope::CouponBucket { .. } => format!("cb:{}", scope.id()),
    }
}

/// Compares every scope that Redis has loaded or Postgres has rows for; with `repair`, rebuilds
/// each one that disagrees and compares it again.
pub async fn reconcile(engine: &Engine, repair: bool) -> Result<Vec<Line>, Error> {
    let mut lines = Vec::new();
    for scope in engine.scopes().await? {
        let mut report = engine.reconcile(&scope).await?;
        if !report.loaded && report.postgres == 0 && report.redis == 0 {
            continue;
        }
        let repaired = repair && report.broken() && engine.repair(&scope).await?;
        if repaired {
            report = engine.reconcile(&scope).await?;
        }
        lines.push(Line {
            scope: label(&scope),
            report,
            repaired,
        });
    }
    Ok(lines)
}
