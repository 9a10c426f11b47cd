//! An issuance scope: one thing handed out first come, first served, under one set of rules.
//!
//! Golden-ticket events and first-come coupon batches are both scopes. Everything about the
//! decision (quantity, one per user, daily limit, window, on/off, the stream record) is the same
//! for both and lives in `lua/issue.lua` and [`crate::first_come`]; a scope only says where its
//! keys are, what its records are called and how its issues are numbered.

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::{BatchStatus, InventoryStatus, IssueType},
    ids::EventKey,
};
use store::{coupon_batches::CouponBatch, ticket_events::TicketEvent};

use crate::{
    keys::{Keys, ScopeKeys},
    stream::RecordKind,
};

/// Which scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A golden-ticket event.
    Ticket(EventKey),
    /// A first-come coupon batch, by id.
    Coupon(i64),
}

/// How the issues of a scope get their ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdMode {
    /// The caller supplies one per request (a UUIDv7 for tickets).
    Given,
    /// The issue's position in the scope, 0, 1, 2 …: the script numbers them, so positions are
    /// dense and never repeat (coupons take the code at their position).
    Position,
}

impl IdMode {
    /// The script's argument.
    pub fn as_arg(self) -> &'static str {
        match self {
            IdMode::Given => "given",
            IdMode::Position => "position",
        }
    }
}

impl Scope {
    /// The scope's Redis keys.
    pub fn keys(&self, keys: &Keys) -> ScopeKeys {
        match self {
            Scope::Ticket(key) => keys.ticket_event(key.as_str()),
            Scope::Coupon(id) => keys.coupon_batch(*id),
        }
    }

    /// Its hash tag's name: `gt:<event key>`, `cb:<batch id>` (also what a waiting room's seed
    /// and passes are bound to).
    pub fn tag(&self) -> String {
        match self {
            Scope::Ticket(key) => format!("gt:{key}"),
            Scope::Coupon(id) => format!("cb:{id}"),
        }
    }

    /// The kind its stream records carry.
    pub fn kind(&self) -> RecordKind {
        match self {
            Scope::Ticket(_) => RecordKind::Ticket,
            Scope::Coupon(_) => RecordKind::Coupon,
        }
    }

    /// The scope id its stream records carry.
    pub fn id(&self) -> String {
        match self {
            Scope::Ticket(key) => key.to_string(),
            Scope::Coupon(id) => id.to_string(),
        }
    }

    /// How its issues are numbered.
    pub fn id_mode(&self) -> IdMode {
        match self {
            Scope::Ticket(_) => IdMode::Given,
            Scope::Coupon(_) => IdMode::Position,
        }
    }
}

/// What `issue.lua` enforces, as copied into the scope's meta hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Grows with every change of the rows behind it; a stale copy never overwrites a newer one.
    pub version: i64,
    /// The quantity.
    pub total: i64,
    /// Most issues per KST day, if limited.
    pub daily: Option<i64>,
    /// First instant of the window.
    pub start: DateTime<Utc>,
    /// Last instant of the window (inclusive).
    pub end: DateTime<Utc>,
    /// Whether issuing is switched on.
    pub active: bool,
}

impl Rules {
    /// Whether `now` falls inside the window.
    pub fn in_period(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now <= self.end
    }
}

impl From<&TicketEvent> for Rules {
    fn from(e: &TicketEvent) -> Self {
        Self {
            version: e.version,
            total: i64::from(e.total_quantity),
            daily: e.daily_limit.map(i64::from),
            start: e.start_at,
            end: e.end_at,
            active: e.is_active,
        }
    }
}

impl From<&CouponBatch> for Rules {
    /// A batch issues while SELF, READY and its inventory not ended, within its validity cut at
    /// the end of the coupons' usable period (so no coupon is born expired).
    fn from(b: &CouponBatch) -> Self {
        Self {
            version: b.version,
            total: i64::from(b.issue_count),
            daily: b.daily_limit.map(i64::from),
            start: b.valid_from_at,
            end: b.valid_until_at.min(b.usable_until_at),
            active: b.issue_type == IssueType::SelfIssued
                && b.batch_status == BatchStatus::Ready
                && b.inventory_status != InventoryStatus::End,
        }
    }
}
