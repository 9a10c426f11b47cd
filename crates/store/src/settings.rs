//! `deployment_settings`: values fixed once per database.

use issuance_core::{code_generator::CodeGenerator, config::ConfigError, error::Error};
use sqlx::{PgExecutor, PgPool};

/// Stores `value` under `name` unless a value is there already (then `value` is ignored);
/// returns the value that holds. The no-op update on a conflict returns the row another process
/// stored at the same moment: an api and a workers process starting together on a new database
/// both get the one value (an insert that does nothing, with a second SELECT, would find no row
/// there, both reading the statement's snapshot).
pub async fn pin(db: impl PgExecutor<'_>, name: &str, value: &str) -> Result<String, Error> {
    Ok(sqlx::query_scalar(
        "INSERT INTO deployment_settings AS s (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = s.value
         RETURNING value",
    )
    .bind(name)
    .bind(value)
    .fetch_one(db)
    .await?)
}

/// The code-secret fingerprint a generation job recorded, if any job did (a database that
/// holds generated codes from before the settings table).
pub async fn recorded_code_fingerprint(db: impl PgExecutor<'_>) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT key_fingerprint FROM coupon_jobs WHERE key_fingerprint IS NOT NULL
         ORDER BY job_id LIMIT 1",
    )
    .fetch_optional(db)
    .await?)
}

/// Ties the database to the code secret: the first process to start stores the secret's
/// fingerprint (a keyed hash; for a database from before, the one its generation jobs recorded),
/// and a process with another secret refuses to start. Issued codes are derived from the
/// secret, so a changed one would hand out codes that match no generated row and could repeat.
pub async fn pin_code_secret(
    db: &PgPool,
    codes: &CodeGenerator,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mine = codes.fingerprint();
    let initial = recorded_code_fingerprint(db)
        .await?
        .unwrap_or_else(|| mine.to_owned());
    let pinned = pin(db, "code_secret_fingerprint", &initial).await?;
    if pinned == mine {
        return Ok(());
    }
    Err(ConfigError {
        name: "CODE_SECRET",
        reason: format!(
            "differs from the secret this database's coupon codes are derived from \
             (fingerprint {pinned}, given {mine}); start with the original CODE_SECRET"
        ),
    }
    .into())
}

/// Whether the database has the schema the migrations make (a fresh database that neither the
/// api nor the workers have started on has none).
pub async fn schema_present(db: impl PgExecutor<'_>) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("SELECT to_regclass('ticket_events') IS NOT NULL")
            .fetch_one(db)
            .await?,
    )
}
