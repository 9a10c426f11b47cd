//! One issue as the stream records it, and the record line of the earlier entry shapes.

use uuid::Uuid;

/// The kinds of record the stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A golden ticket.
    Ticket,
    /// A first-come coupon.
    Coupon,
}

impl RecordKind {
    /// The `k` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Ticket => "ticket",
            RecordKind::Coupon => "coupon",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "ticket" => Some(RecordKind::Ticket),
            "coupon" => Some(RecordKind::Coupon),
            _ => None,
        }
    }
}

/// An issue's id, as its kind numbers it (see [`crate::scope::IdMode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueId {
    /// A ticket's UUIDv7.
    Uuid(Uuid),
    /// A coupon's position in its batch.
    Position(i32),
}

impl IssueId {
    /// Reads the id of a record of `kind`.
    pub fn parse(kind: RecordKind, s: &str) -> Option<Self> {
        match kind {
            RecordKind::Ticket => s.parse().ok().map(IssueId::Uuid),
            RecordKind::Coupon => s.parse().ok().filter(|p| *p >= 0).map(IssueId::Position),
        }
    }
}

impl std::fmt::Display for IssueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IssueId::Uuid(id) => id.fmt(f),
            IssueId::Position(p) => p.fmt(f),
        }
    }
}

/// One issue, as the stream records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRecord {
    /// What was issued.
    pub kind: RecordKind,
    /// The scope (the event key, the batch id).
    pub scope: String,
    /// The holder.
    pub user_id: i64,
    /// The issue's id.
    pub issue_id: IssueId,
    /// When Redis issued it, epoch ms.
    pub issued_at_ms: i64,
    /// The fence of the Redis copy that wrote it (`scope_reservations.fence`); `None` for a
    /// record written before fences existed. The drain writes a record only while its fence is
    /// the scope's current one or a later one.
    pub fence: Option<i64>,
}

impl IssueRecord {
    /// Reads the `r` value: `<kind>|<scope>|<user>|<issue id>|<issued at ms>[|<fence>]`.
    pub(super) fn parse(r: &str) -> Result<Self, String> {
        let mut parts = r.split('|');
        let mut next = || parts.next().ok_or_else(|| format!("short record {r:?}"));
        let record = [next()?, next()?, next()?, next()?, next()?];
        let fence = parts.next();
        if parts.next().is_some() {
            return Err(format!("long record {r:?}"));
        }
        let mut record = Self::from_parts(record)?;
        record.fence = fence.map(|f| f.parse().map_err(|_| "bad fence")).transpose()?;
        Ok(record)
    }

    pub(super) fn from_parts([kind, scope, user, id, at]: [&str; 5]) -> Result<Self, String> {
        let kind = RecordKind::parse(kind).ok_or("unknown kind")?;
        Ok(Self {
            kind,
            scope: scope.to_owned(),
            user_id: user.parse().map_err(|_| "bad user")?,
            issue_id: IssueId::parse(kind, id).ok_or("bad id")?,
            issued_at_ms: at.parse().map_err(|_| "bad time")?,
            fence: None,
        })
    }

    /// The fields of an entry holding this one record, in the shape `issue.lua` writes (used to
    /// requeue records and to replay them in tests and tools).
    pub fn to_fields(&self) -> Vec<(String, String)> {
        let mut r = format!(
            "{}|{}|{}|{}|{}",
            self.kind.as_str(),
            self.scope,
            self.user_id,
            self.issue_id,
            self.issued_at_ms
        );
        if let Some(fence) = self.fence {
            r.push_str(&format!("|{fence}"));
        }
        vec![("rs".into(), r)]
    }

    /// Whether the drain may write this record while the scope's fence in Postgres is
    /// `current` (`None`: the scope has no fence yet).
    pub fn within_fence(&self, current: Option<i64>) -> bool {
        match (self.fence, current) {
            (Some(mine), Some(current)) => mine >= current,
            _ => true,
        }
    }
}
