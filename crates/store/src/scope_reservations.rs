//! `scope_reservations`: what Redis may issue of a scope (`reserved`), and the fence of the
//! scope's Redis history (see the migration's comment and `engine::reservations`).
//!
//! A scope is named by its record kind (`ticket`, `coupon`) and id (event key, batch id), as the
//! stream records name it.

use issuance_core::error::Error;
use sqlx::{PgConnection, PgExecutor};

/// A scope's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Reservation {
    /// Units Redis may have answered.
    pub reserved: i64,
    /// The fence of the current Redis history.
    pub fence: i64,
}

/// The scope's row, made (nothing reserved, fence 1) when it has none. The no-op update on a
/// conflict returns the row another transaction made at the same moment (a `DO NOTHING` with a
/// second SELECT would miss it: both run on the statement's snapshot).
pub async fn open(db: impl PgExecutor<'_>, kind: &str, scope: &str) -> Result<Reservation, Error> {
    Ok(sqlx::query_as(
        "INSERT INTO scope_reservations AS r (scope_kind, scope_id) VALUES ($1, $2)
         ON CONFLICT (scope_kind, scope_id) DO UPDATE SET scope_kind = r.scope_kind
         RETURNING reserved, fence",
    )
    .bind(kind)
    .bind(scope)
    .fetch_one(db)
    .await?)
}

/// Raises `reserved` to `want`, capped at `total`, unless it is there already (several api
/// processes extending at once reserve once). Returns the row as it now is.
///
/// A plain UPDATE of a column that is no key takes the row's `FOR NO KEY UPDATE` lock, which the
/// drain's `FOR KEY SHARE` ([`share_fence`]) does not block: reserving never waits for a drain
/// commit, only for a rebuild ([`lock`]).
pub async fn extend(
    db: &sqlx::PgPool,
    kind: &str,
    scope: &str,
    want: i64,
    total: i64,
) -> Result<Reservation, Error> {
    let update = || {
        sqlx::query_as(
            "UPDATE scope_reservations SET reserved = GREATEST(reserved, LEAST($3, $4)), updated_at = now()
             WHERE scope_kind = $1 AND scope_id = $2
             RETURNING reserved, fence",
        )
        .bind(kind)
        .bind(scope)
        .bind(want)
        .bind(total)
    };
    if let Some(row) = update().fetch_optional(db).await? {
        return Ok(row);
    }
    open(db, kind, scope).await?;
    Ok(update().fetch_one(db).await?)
}

/// Locks the scope's row for a rebuild: other rebuilds of the scope, and the drain's commits of
/// it, wait until the transaction ends; drain commits under way end first.
pub async fn lock(tx: &mut PgConnection, kind: &str, scope: &str) -> Result<Reservation, Error> {
    open(&mut *tx, kind, scope).await?;
    Ok(sqlx::query_as(
        "SELECT reserved, fence FROM scope_reservations WHERE scope_kind = $1 AND scope_id = $2 FOR UPDATE",
    )
    .bind(kind)
    .bind(scope)
    .fetch_one(&mut *tx)
    .await?)
}

/// Gives the scope (locked by [`lock`]) a new fence; returns it.
pub async fn raise_fence(tx: &mut PgConnection, kind: &str, scope: &str) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "UPDATE scope_reservations SET fence = nextval('scope_fences'), updated_at = now()
         WHERE scope_kind = $1 AND scope_id = $2 RETURNING fence",
    )
    .bind(kind)
    .bind(scope)
    .fetch_one(&mut *tx)
    .await?)
}

/// Locks the scope's row for the drain (`FOR KEY SHARE`: a rebuild waits until the transaction
/// ends, a reservation does not) and returns its current fence; `None` when the scope has no
/// row (records from before the fences).
pub async fn share_fence(tx: &mut PgConnection, kind: &str, scope: &str) -> Result<Option<i64>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT fence FROM scope_reservations WHERE scope_kind = $1 AND scope_id = $2 FOR KEY SHARE",
    )
    .bind(kind)
    .bind(scope)
    .fetch_optional(&mut *tx)
    .await?)
}

/// The scope's row, if it has one.
pub async fn find(db: impl PgExecutor<'_>, kind: &str, scope: &str) -> Result<Option<Reservation>, Error> {
    Ok(sqlx::query_as(
        "SELECT reserved, fence FROM scope_reservations WHERE scope_kind = $1 AND scope_id = $2",
    )
    .bind(kind)
    .bind(scope)
    .fetch_optional(db)
    .await?)
}

/// A bucket's lease as the pool's transaction reads it (see `engine::leases`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    /// Units leased (its `reserved`).
    pub reserved: i64,
    /// The fence of its Redis history.
    pub fence: i64,
    /// Its share of the daily limit.
    pub daily: i64,
    /// Whether it changed within the interval asked about.
    pub recent: bool,
}

/// The scope's lease, made (nothing leased) when it has none; `recent` when it changed within
/// the last `within_ms` ms (by the clock, not the transaction's start).
pub async fn lease(tx: &mut PgConnection, kind: &str, scope: &str, within_ms: i64) -> Result<Lease, Error> {
    let read = || {
        sqlx::query_as(
            "SELECT reserved, fence, daily_reserved AS daily,
                    updated_at > clock_timestamp() - make_interval(secs => $3::float8 / 1000) AS recent
             FROM scope_reservations WHERE scope_kind = $1 AND scope_id = $2",
        )
        .bind(kind)
        .bind(scope)
        .bind(within_ms)
    };
    if let Some(found) = read().fetch_optional(&mut *tx).await? {
        return Ok(found);
    }
    open(&mut *tx, kind, scope).await?;
    Ok(read().fetch_one(&mut *tx).await?)
}

/// Sets the scope's lease: units (`reserved`) and share of the daily limit (written under its
/// event's pool row lock, see `engine::leases`). A plain UPDATE, like [`extend`]: it never waits
/// for a drain commit.
pub async fn set_lease(
    tx: &mut PgConnection,
    kind: &str,
    scope: &str,
    reserved: i64,
    daily: i64,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE scope_reservations SET reserved = $3, daily_reserved = $4, updated_at = now()
         WHERE scope_kind = $1 AND scope_id = $2",
    )
    .bind(kind)
    .bind(scope)
    .bind(reserved)
    .bind(daily)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A scope's positions (see the migration): a coupon bucket's leased ranges, and the ranges
/// its batch's pool got back, each flattened `from, to, from, to …` (half-open).
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Positions {
    /// A bucket's leased positions, in the order leased (`positions`).
    pub leased: Vec<i64>,
    /// A pool's positions handed back and not leased again (`free_positions`).
    pub free: Vec<i64>,
}

/// The scope's positions (none when it has no row).
pub async fn positions(db: impl PgExecutor<'_>, kind: &str, scope: &str) -> Result<Positions, Error> {
    Ok(sqlx::query_as(
        "SELECT positions AS leased, free_positions AS free FROM scope_reservations
         WHERE scope_kind = $1 AND scope_id = $2",
    )
    .bind(kind)
    .bind(scope)
    .fetch_optional(db)
    .await?
    .unwrap_or_default())
}

/// Sets the scope's positions (under its batch's pool row lock, with its lease).
pub async fn set_positions(
    tx: &mut PgConnection,
    kind: &str,
    scope: &str,
    positions: &Positions,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE scope_reservations SET positions = $3, free_positions = $4, updated_at = now()
         WHERE scope_kind = $1 AND scope_id = $2",
    )
    .bind(kind)
    .bind(scope)
    .bind(&positions.leased)
    .bind(&positions.free)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
