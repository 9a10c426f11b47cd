//! Settings shared by every binary (the api and the workers), read from the environment.
//!
//! Each binary's own `config.rs` embeds [`CoreConfig`] and reads its extra variables with the
//! helpers here, so a missing or malformed variable fails at start-up with its name, the same way
//! everywhere. Nothing here is global: a test builds its own `CoreConfig`.

use std::{env, fmt, str::FromStr, time::Duration};

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
    /// secret, and issued codes are derived from it, so a database remembers its fingerprint and
    /// refuses another one (see `store::settings::pin_code_secret`).
    pub code_secret: String,
    /// `REDIS_DURABILITY` and its knobs: what must hold before an issue is answered.
    pub durability: Durability,
}

/// What must hold in Redis before an issue is answered (`REDIS_DURABILITY`).
///
/// * `memory`: nothing beyond Redis's memory; an issue answered but not yet drained is lost
///   with Redis (the window is the drain lag, `issuer_stream_lag_seconds`).
/// * `aof`: Redis runs `appendonly yes` with `appendfsync always`, so it has written the
///   call's effects to its disk before it replies; checked at start-up and on reconnect.
/// * `replica`: `REDIS_MIN_REPLICAS` replicas acknowledged the call's writes (`WAIT` on the
///   connection that ran it, at most `REDIS_WAIT_TIMEOUT_MS`) before its 201s are sent;
///   fewer → 503 for the call, and a retry finds the decision standing.
/// * `aof+replica`: both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    /// Redis must fsync its AOF before replying.
    pub aof: bool,
    /// Replicas that must acknowledge a call's writes (0: none asked).
    pub replicas: i64,
    /// How long a call waits for them.
    pub wait: Duration,
}

impl Default for Durability {
    fn default() -> Self {
        Self {
            aof: false,
            replicas: 0,
            wait: Duration::from_millis(200),
        }
    }
}

impl Durability {
    /// Reads `REDIS_DURABILITY`, `REDIS_MIN_REPLICAS` and `REDIS_WAIT_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mode = var_or("REDIS_DURABILITY", "memory");
        let (aof, replica) = match mode.as_str() {
            "memory" => (false, false),
            "aof" => (true, false),
            "replica" => (false, true),
            "aof+replica" => (true, true),
            _ => {
                return Err(ConfigError {
                    name: "REDIS_DURABILITY",
                    reason: format!("is {mode:?}; use memory, aof, replica or aof+replica"),
                });
            }
        };
        let replicas: i64 = parse_or("REDIS_MIN_REPLICAS", 1)?;
        if replica && replicas < 1 {
            return Err(ConfigError {
                name: "REDIS_MIN_REPLICAS",
                reason: "must be at least 1 in replica mode".into(),
            });
        }
        Ok(Self {
            aof,
            replicas: if replica { replicas } else { 0 },
            wait: millis_or("REDIS_WAIT_TIMEOUT_MS", Self::default().wait)?,
        })
    }

    /// The mode's name, as `REDIS_DURABILITY` spells it.
    pub fn mode(&self) -> &'static str {
        match (self.aof, self.replicas > 0) {
            (false, false) => "memory",
            (true, false) => "aof",
            (false, true) => "replica",
            (true, true) => "aof+replica",
        }
    }
}

/// Shortest secret accepted: 32 bytes, the key size of HS256 and far beyond guessing.
pub const SECRET_MIN_BYTES: usize = 32;

/// Secrets that have been published (former defaults and examples of this repository): anyone
/// can mint tokens or derive codes with them, so they are refused like a missing one. A test
/// scans the repository for secret assignments and fails if one is not refused.
const PUBLISHED_SECRETS: &[&str] = &[
    "local-development-secret-change-me",
    "local-development-code-secret",
    "change-me-in-production",
    "change-me-in-production-too",
    "test-secret",
    "test-code-secret",
    "contract-secret",
    "loadtest-secret",
    "loadtest-code-secret",
    "bench-secret",
    "bench-code-secret",
];

/// How to make a secret, for the error that names a missing or weak one.
const MAKE_ONE: &str = "make one with `head -c 32 /dev/urandom | base64` (scripts/run keeps \
                        generated ones in .env.local)";

/// Checks a secret's value: present, at least [`SECRET_MIN_BYTES`] long, not a published one.
pub fn check_secret(name: &'static str, value: Option<&str>) -> Result<String, ConfigError> {
    let reason = match value {
        None | Some("") => "is not set".to_owned(),
        Some(v) if v.len() < SECRET_MIN_BYTES => {
            format!("is {} bytes; at least {SECRET_MIN_BYTES} are needed", v.len())
        }
        Some(v) if PUBLISHED_SECRETS.contains(&v.trim()) => {
            "is a published value, known to anyone".to_owned()
        }
        Some(v) => return Ok(v.to_owned()),
    };
    Err(ConfigError {
        name,
        reason: format!("{reason}; {MAKE_ONE}"),
    })
}

/// The secret in variable `name`, refused when missing, short or published (fail closed: there
/// is no default).
pub fn secret(name: &'static str) -> Result<String, ConfigError> {
    check_secret(name, env::var(name).ok().as_deref())
}

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
            code_secret: secret("CODE_SECRET")?,
            durability: Durability::from_env()?,
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
            .field("durability", &self.durability)
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

/// The variable as a number of milliseconds (`<NAME>_MS`), or `default`; as [`parse_or`].
pub fn millis_or(name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(parse_or(name, default.as_millis() as u64)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_fail_closed() {
        let strong = "x".repeat(SECRET_MIN_BYTES);
        assert_eq!(check_secret("S", Some(&strong)).unwrap(), strong);
        for weak in [
            None,
            Some(""),
            Some("short"),
            Some("local-development-secret-change-me"),
        ] {
            let e = check_secret("JWT_SECRET", weak).unwrap_err();
            assert_eq!(e.name, "JWT_SECRET");
            assert!(e.reason.contains("/dev/urandom"), "says how to make one: {e}");
        }
    }

    /// Every secret assigned anywhere in the repository (scripts, compose, docs, tests) is
    /// refused: a value anyone can read is no secret.
    #[test]
    fn no_secret_written_in_the_repository_is_accepted() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let files = std::process::Command::new("git")
            .args(["ls-files"])
            .current_dir(&root)
            .output()
            .expect("git ls-files");
        let mut seen = 0;
        for file in String::from_utf8_lossy(&files.stdout).lines() {
            let Ok(text) = std::fs::read_to_string(root.join(file)) else {
                continue;
            };
            for value in assigned_secrets(&text) {
                seen += 1;
                assert!(
                    check_secret("S", Some(&value)).is_err(),
                    "{file}: the secret {value:?} would be accepted"
                );
            }
        }
        assert!(seen > 0, "the scan found the repository's secret assignments");
    }

    /// Values written after `JWT_SECRET`/`CODE_SECRET` (`=`, `:`, `||`, `-`) that are literals,
    /// not references to a variable or a generated value.
    fn assigned_secrets(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for name in ["JWT_SECRET", "CODE_SECRET"] {
            for (at, _) in text.match_indices(name) {
                let rest = text[at + name.len()..].trim_start_matches([' ', '=', ':', '|', '-', '?', '}']);
                let rest = rest.trim_start_matches(['"', '\'', ' ']);
                let value: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if value.len() >= 6
                    && value.contains('-')
                    && value.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                {
                    out.push(value);
                }
            }
        }
        out
    }

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://***@h:5432/db"
        );
        assert_eq!(redact("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
    }
}
