//! All SQL of the engine, one module per table (named after it), each owning the row, new-row
//! and filter types it reads and writes. Each function takes an executor, so the caller chooses
//! the transaction; nothing outside this crate writes SQL, and nothing here knows the layers
//! above (the engine, the shop, the admin back office).
//!
//! A few modules span tables by purpose: [`dashboard`] (counts over the admin tables),
//! [`invariants`] (the consistency checks of `workers check`), [`copy`] (the binary COPY
//! encoder the drain writes with) and [`settings`] (`deployment_settings`).

pub mod admission;
pub mod best_products;
pub mod campaign_channels;
pub mod campaign_images;
pub mod campaign_jobs;
pub mod campaigns;
pub mod copy;
pub mod coupon_batches;
pub mod coupon_codes;
pub mod coupon_inventories;
pub mod coupon_issues;
pub mod coupon_jobs;
pub mod dashboard;
pub mod events;
pub mod invariants;
pub mod orders;
pub mod outbox;
pub mod products;
pub mod scope_reservations;
pub mod settings;
pub mod ticket_events;
pub mod tickets;
pub mod users;
pub mod wallets;

use issuance_core::{
    error::Error,
    paging::{Page, Paging},
};

/// An issue as the Redis rebuild needs it: holder, issue id as the holders hash keeps it, when.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Holder {
    /// The holder.
    pub user_id: i64,
    /// The issue's id (a ticket's UUID, a coupon's position).
    pub issue_id: String,
    /// When it was issued.
    pub issued_at: chrono::DateTime<chrono::Utc>,
}

/// Makes this transaction's commit wait for its WAL to reach the disk, whatever the server's
/// default: for writes whose source is dropped once they are committed.
pub async fn durable_commit(conn: &mut sqlx::PgConnection) -> Result<(), Error> {
    sqlx::query("SET LOCAL synchronous_commit = on")
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether an error is a unique violation: a row that is there already.
pub fn is_unique_violation(err: &Error) -> bool {
    matches!(err, Error::Db(e)
        if e.as_database_error().is_some_and(|d| d.is_unique_violation()))
}

/// A database error of a waiting room's settings as the input error it is: a room switched on
/// without all of its settings (`<table>_admission_set`).
pub(crate) fn admission_refused(err: sqlx::Error) -> Error {
    match constraint(&err) {
        Some(c) if c.ends_with("_admission_set") => {
            Error::Invalid(issuance_core::admission::AdmissionFields::INCOMPLETE.into())
        }
        _ => err.into(),
    }
}

/// The name of the constraint a database error broke, if any.
pub(crate) fn constraint(err: &sqlx::Error) -> Option<&str> {
    err.as_database_error().and_then(|e| e.constraint())
}

/// One page of `SELECT <columns> FROM <table>` under the filters `filter` pushes (a `WHERE …`),
/// in `order_by` order, with the total count of matches: the shape of every admin list.
pub(crate) async fn page<T>(
    db: &sqlx::PgPool,
    table: &str,
    columns: &str,
    filter: impl Fn(&mut sqlx::QueryBuilder<sqlx::Postgres>),
    order_by: &str,
    paging: Paging,
) -> Result<Page<T>, Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut count = sqlx::QueryBuilder::new(format!("SELECT count(*) FROM {table}"));
    filter(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(db).await?;
    let mut rows = sqlx::QueryBuilder::new(format!("SELECT {columns} FROM {table}"));
    filter(&mut rows);
    rows.push(order_by)
        .push(" LIMIT ")
        .push_bind(paging.size)
        .push(" OFFSET ")
        .push_bind(paging.offset());
    let data = rows.build_query_as().fetch_all(db).await?;
    Ok(Page::new(paging, total, data))
}
