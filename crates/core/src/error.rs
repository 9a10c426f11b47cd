//! The one error type of the issuance core.
//!
//! Domain outcomes (a [`Denial`] of an issue, a [`Refusal`] of an admin or shop rule, a
//! [`Missing`] resource) are named apart from infrastructure failures (`Redis`, `Db`,
//! `Protocol`), so the api can map each to its answer in one place and never show Redis or SQL
//! text to a client.

/// What went wrong, or which rule refused the request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event with this key exists already.
    #[error("event already exists")]
    DuplicateEvent,
    /// Issuing said no: the same outcomes for every kind of scope.
    #[error("{1:?} ({0:?})")]
    Denied(ScopeKind, Denial),
    /// A request field breaks a rule; the text says which, for the client.
    #[error("{0}")]
    Invalid(String),
    /// An admin resource that does not exist (or was deleted).
    #[error("{0:?} not found")]
    NotFound(Missing),
    /// An admin request that breaks a rule of the resource's lifecycle or limits.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// Postgres failed or could not be reached.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Postgres is known to be down (the health probe failed); not even tried.
    /// The caller may not touch this resource (another owner's campaign).
    #[error("forbidden")]
    Forbidden,
    /// Input that breaks field rules, each named with its message.
    #[error("invalid fields: {0:?}")]
    Fields(Vec<FieldError>),
    /// A campaign cannot be published yet; the steps it lacks.
    #[error("not ready: {0:?}")]
    NotReady(Vec<&'static str>),
    #[error("database unreachable")]
    DbDown,
    /// Fewer replicas than required acknowledged a call's writes in time (replica mode): the
    /// decision stands in Redis, but it is not answered as made.
    #[error("{acked} of {needed} replicas acknowledged")]
    NotReplicated {
        /// Replicas that acknowledged.
        acked: i64,
        /// Replicas required.
        needed: i64,
    },
    /// Redis does not keep what the configured durability needs (e.g. no `appendfsync always`
    /// in aof mode); nothing is issued until it does.
    #[error("redis unfit: {0}")]
    RedisUnfit(String),
    /// A scope's Redis copy was found missing or behind again right after it was rebuilt: the
    /// server changed meanwhile (a restart or a failover under way). Worth retrying.
    #[error("the Redis copy of the scope changed again while it was rebuilt")]
    RedisUnsettled,
    /// A script or a stream entry answered in a shape this code does not know: a bug or a
    /// version mismatch between the Lua files and the binary.
    #[error("unexpected reply from {what}: {detail}")]
    Protocol {
        /// Which script or record.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

/// What a Postgres error says about who is at fault.
/// One field's complaint: its JSON path (`storeInfo.storeName`) and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path in the request.
    pub field: String,
    /// What is wrong (Korean).
    pub message: String,
}

impl FieldError {
    /// A complaint about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbFault {
    /// The input: a value Postgres cannot hold or a CHECK it breaks (SQLSTATE class 22,
    /// `23514`). Answered as a bad request.
    Input,
    /// The database cannot be used now: unreachable, shutting down, out of resources, a
    /// statement cancelled by its timeout, a transaction lost to a deadlock or a serialization
    /// conflict. Worth retrying.
    Unavailable,
    /// Anything else (a constraint no rule maps, a malformed statement): a bug.
    Bug,
}

/// Classifies a Postgres error (see [`DbFault`]).
pub fn db_fault(e: &sqlx::Error) -> DbFault {
    let Some(db) = e.as_database_error() else {
        return match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => DbFault::Unavailable,
            _ => DbFault::Bug,
        };
    };
    let code = db.code().unwrap_or_default();
    match code.get(..2).unwrap_or_default() {
        "22" => DbFault::Input,
        "23" if code == "23514" => DbFault::Input,
        // connection, resources, operator intervention, system errors; 57014 is a statement
        // timeout, 40001/40P01 a lost race.
        "08" | "53" | "57" | "58" | "40" => DbFault::Unavailable,
        _ => DbFault::Bug,
    }
}

impl Error {
    /// Whether a store could not be used (worth retrying later), as opposed to a refusal or a
    /// bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Redis(_)
            | Error::DbDown
            | Error::NotReplicated { .. }
            | Error::RedisUnfit(_)
            | Error::RedisUnsettled => true,
            Error::Db(e) => db_fault(e) == DbFault::Unavailable,
            _ => false,
        }
    }

    /// A copy for each request of a failed group call.
    pub fn duplicate(&self) -> Self {
        match self {
            Error::Redis(e) => Error::Redis(e.clone()),
            Error::NotReplicated { acked, needed } => Error::NotReplicated {
                acked: *acked,
                needed: *needed,
            },
            Error::Protocol { what, detail } => Error::Protocol {
                what,
                detail: detail.clone(),
            },
            other => Error::protocol("issue batch", other.to_string()),
        }
    }

    /// A reply of a shape this code does not know.
    pub fn protocol(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Protocol {
            what,
            detail: detail.into(),
        }
    }
}

/// The kinds of scope the hot path issues from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// A golden-ticket event.
    Ticket,
    /// A first-come coupon batch.
    Coupon,
}

impl ScopeKind {
    /// The metric label and stream record kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Ticket => "ticket",
            ScopeKind::Coupon => "coupon",
        }
    }
}

/// Why an issue request was refused. `lua/issue.lua` decides the first five; the scope kind
/// decides how a window it is outside of is told (a coupon past its window is `Expired`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Issuing is switched off.
    Inactive,
    /// Now is outside the window (for coupons: before it opens).
    NotInPeriod,
    /// The window has closed for good (coupons: past their validity, or switched off after
    /// issuing began).
    Expired,
    /// Every unit of the quantity has been issued.
    SoldOut,
    /// Today's (KST) quota has been issued.
    DailyLimit,
    /// The scope's waiting room is on and the request carries no pass.
    AdmissionRequired,
    /// The pass is forged, expired, or another user's or scope's.
    AdmissionInvalid,
    /// The user holds one already and may not get it again as new: the held issue's id.
    Held(i64),
}

impl Denial {
    /// The `outcome` label of `issuer_issue_total` (SPEC §7 calls a held one `duplicate`).
    pub fn label(self) -> &'static str {
        match self {
            Denial::Inactive => "inactive",
            Denial::NotInPeriod => "not_in_period",
            Denial::Expired => "expired",
            Denial::SoldOut => "sold_out",
            Denial::DailyLimit => "daily_limit",
            Denial::Held(_) => "duplicate",
            Denial::AdmissionRequired => "admission_required",
            Denial::AdmissionInvalid => "admission_invalid",
        }
    }
}

/// Which resource was missing. The admin seed names the same miss differently per endpoint
/// (`INVENTORY_NOT_FOUND` when creating a batch, `COUPON_INVENTORY_NOT_FOUND` elsewhere), so the
/// caller says which one it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// An admin (marketing) event.
    AdminEvent,
    /// A coupon inventory, as most endpoints say it.
    CouponInventory,
    /// A coupon inventory, as batch creation says it.
    Inventory,
    /// A coupon batch, as its own CRUD says it.
    CouponBatch,
    /// A coupon batch, as the job endpoints say it.
    Batch,
    /// A job.
    Job,
    /// A user.
    User,
    /// A product.
    Product,
    /// A first-come coupon (a SELF batch).
    Coupon,
    /// A golden-ticket event.
    TicketEvent,
    /// An order (or one of another user).
    Order,
    /// An outbox record.
    OutboxRecord,
    /// A marketing campaign (or one the caller may not see: see [`Error::Forbidden`]).
    Campaign,
    /// A campaign job.
    CampaignJob,
    /// A banner image.
    Image,
    /// A scope without a waiting room.
    Queue,
    /// A user who has not joined the waiting room.
    QueuePlace,
}

/// A rule that refused a request (admin lifecycles and limits, coupons, points).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Start not before end, on creating an event.
    InvalidDatetime,
    /// Start not before end, on changing an event.
    EventInvalidDatetime,
    /// Another live event has this name.
    DuplicateEventName,
    /// The status change is not in the lifecycle.
    InvalidStatusTransition,
    /// A COMPLETED or DISABLED event cannot be changed.
    CannotModifyEvent,
    /// An ONGOING or COMPLETED event cannot be deleted.
    CannotDeleteEvent,
    /// More codes than an inventory (10,000,000) or a batch's inventory allows.
    MaxCouponLimitExceeded,
    /// Usable period start not before end.
    InventoryInvalidPeriod,
    /// Only a READY inventory can be changed.
    CannotModifyInventory,
    /// Only a READY inventory without batches can be deleted.
    CannotDeleteInventory,
    /// Validity start not before end.
    BatchInvalidPeriod,
    /// Only a PENDING batch without codes or jobs can be changed or deleted.
    CannotModifyBatch,
    /// A job is already PENDING or IN_PROGRESS for the batch.
    DuplicateBatchJob,
    /// The batch has its codes already.
    CouponsAlreadyGenerated,
    /// Partner codes go to MAPPED batches only.
    BatchNotMapped,
    /// The job has ended; it cannot be cancelled.
    CannotCancelJob,
    /// The coupon is past its usable period (on using it in an order).
    CouponExpired,
    /// A charge amount outside 1..=1,000,000.
    InvalidAmount,
    /// The charge would take the balance above 5,000,000.
    PointLimitExceeded,
    /// A line's product has too few units (or is not on sale); nothing was reserved.
    OutOfStock,
    /// The coupon is not the user's, not usable yet, or gives no discount.
    CouponInvalid,
    /// The coupon was used already.
    CouponAlreadyUsed,
    /// The balance is below the order's total.
    WalletInsufficientBalance,
    /// The order failed or passed its payment deadline.
    OrderExpired,
    /// The order is paid already.
    OrderAlreadyPaid,
    /// Only a DEAD outbox record can be retried.
    OutboxNotDead,
    /// The campaign left DRAFT: its recommendation, banner and content are fixed.
    CampaignNotEditable,
    /// The recommendation job asked for has not completed (or is not this campaign's).
    RecommendationNotReady,
    /// `selectedImageUrl` is not one of the banners generated for this campaign.
    ImageNotGenerated,
    /// Another request is distributing this campaign right now.
    PublishInProgress,
    /// A scope's quantity cannot go below what it has issued.
    QuantityBelowIssued,
    /// The waiting room's pre-queue has not opened yet.
    QueueNotOpen,
    /// The waiting room is closed to new joins.
    QueueClosed,
    /// The shuffle's seed is revealed only once the start has passed.
    SeedNotRevealed,
}

/// The issuance core's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
