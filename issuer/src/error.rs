//! The one error type of the issuance core.
//!
//! Domain outcomes (`SoldOut`, `DailyLimitReached`, …) are named apart from infrastructure
//! failures (`Redis`, `Db`, `Protocol`), so the api can map each to its answer in one place and
//! never show Redis or SQL text to a client.

/// What went wrong, or which rule refused the request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No event has this key.
    #[error("event not found")]
    EventNotFound,
    /// An event with this key exists already.
    #[error("event already exists")]
    DuplicateEvent,
    /// The event is switched off.
    #[error("event is inactive")]
    EventInactive,
    /// Now is outside the event's window.
    #[error("event is not in its period")]
    EventNotInPeriod,
    /// Every ticket has been issued.
    #[error("sold out")]
    SoldOut,
    /// Today's (KST) quota has been issued.
    #[error("daily limit reached")]
    DailyLimitReached,
    /// A request field breaks a rule; the text says which, for the client.
    #[error("{0}")]
    Invalid(String),
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// Postgres failed or could not be reached.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
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

impl Error {
    /// A copy for each request of a failed batch.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Redis(e) => Error::Redis(e.clone()),
            Error::Protocol { what, detail } => Error::Protocol {
                what,
                detail: detail.clone(),
            },
            other => Error::protocol("issue batch", other.to_string()),
        }
    }

    pub(crate) fn protocol(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Protocol {
            what,
            detail: detail.into(),
        }
    }
}

/// The issuance core's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
