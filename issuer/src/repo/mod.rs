//! All SQL of the engine. Each function takes an executor, so the caller chooses the
//! transaction; nothing outside this module writes SQL.

pub mod admin_events;
pub mod batches;
pub mod codes;
pub mod dashboard;
pub mod events;
pub mod inventories;
pub mod jobs;
pub mod products;
pub mod tickets;
pub mod users;

/// The name of the constraint a database error broke, if any.
pub(crate) fn constraint(err: &sqlx::Error) -> Option<&str> {
    err.as_database_error().and_then(|e| e.constraint())
}
