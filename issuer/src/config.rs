//! Settings shared by every binary (the api and the workers), read from the environment.
//!
//! Each binary's own `config.rs` embeds [`CoreConfig`] and reads its extra variables with the
//! helpers here, so a missing or malformed variable fails at start-up with its name, the same way
//! everywhere. Nothing here is global: a test builds its own `CoreConfig`.

use std::{env, fmt, str::FromStr};

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub name: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// Connections and key naming, common to every process.
#[derive(Clone)]
pub struct CoreConfig {
    /// `DATABASE_URL`: Postgres, the source of truth for events and the home of every issue.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS`: size of this process's Postgres pool.
    pub database_max_connections: u32,
    /// `REDIS_URL`: the Redis that decides issues; a db index (`redis://host:6379/9`) is honoured.
    pub redis_url: String,
    /// `REDIS_POOL_SIZE`: connections in this process's Redis pool. fred pipelines concurrent
    /// commands on each connection, so a few connections carry a large burst.
    pub redis_pool_size: usize,
    /// `KEY_PREFIX`: put before every Redis key, so several deployments (or tests) share a Redis.
    pub key_prefix: String,
    /// `CODE_SECRET`: keys the coupon-code permutation. Codes are unguessable only while it is
    /// secret; keep it stable (a job refuses to resume under another one).
    pub code_secret: String,
}

/// The code secret used when `CODE_SECRET` is unset: fine on a laptop, warned about at start.
pub const DEV_CODE_SECRET: &str = "local-development-code-secret";

impl CoreConfig {
    /// Reads the shared variables, with defaults that work against a local Redis and Postgres.
    pub fn from_env() -> Result<Self, ConfigError> {
        let key_prefix = var_or("KEY_PREFIX", "");
        if key_prefix.contains(['{', '}']) {
            // A brace in the prefix would become the hash tag and put every key in one slot.
            return Err(ConfigError {
                name: "KEY_PREFIX",
                reason: "must not contain '{' or '}'".into(),
            });
        }
        Ok(Self {
            database_url: var_or(
                "DATABASE_URL",
                "postgres://postgres:postgres@127.0.0.1:5432/issuance",
            ),
            database_max_connections: parse_or("DATABASE_MAX_CONNECTIONS", 16)?,
            redis_url: var_or("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_pool_size: parse_or("REDIS_POOL_SIZE", 4)?,
            key_prefix,
            code_secret: var_or("CODE_SECRET", DEV_CODE_SECRET),
        })
    }
}

impl fmt::Debug for CoreConfig {
    // URLs may carry passwords: they stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreConfig")
            .field("database_url", &redact(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("redis_url", &redact(&self.redis_url))
            .field("redis_pool_size", &self.redis_pool_size)
            .field("key_prefix", &self.key_prefix)
            .field("code_secret", &"***")
            .finish()
    }
}

/// The URL with any `user:password@` part replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// The variable's value, or `default` when it is unset or empty.
pub fn var_or(name: &str, default: &str) -> String {
    match env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => default.to_owned(),
    }
}

/// The variable parsed as `T`, or `default` when it is unset or empty; an unparsable value is an
/// error that names the variable.
pub fn parse_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match env::var(name) {
        Ok(v) if !v.is_empty() => v.trim().parse().map_err(|e: T::Err| ConfigError {
            name,
            reason: format!("cannot parse {v:?}: {e}"),
        }),
        _ => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://***@h:5432/db"
        );
        assert_eq!(redact("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
    }
}
