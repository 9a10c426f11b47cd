//! `api`: serves the HTTP API (default), or runs one of the helper commands.
//!
//! ```text
//! api                                  serve on API_ADDR (migrating first unless MIGRATE_ON_START=false)
//! api migrate                          apply pending migrations and exit
//! api token --user 42 [--admin] [--ttl SECS]   print a bearer token signed with JWT_SECRET
//! api buckets <eventKey> <shards>      print each bucket's hash tag and cluster slot
//! api buckets --batch <id> <shards>    the same for a first-come coupon batch
//! ```

use api::{auth::Jwt, config::Config, telemetry};
use issuance_core::connect;

/// Many small, short-lived allocations per request (headers, JSON, futures): mimalloc spends
/// far less time on them than glibc malloc did under load (docs/performance.md, Where the time goes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("migrate") => migrate().await,
        Some("token") => token(&args[1..]),
        Some("buckets") => buckets(&args[1..]),
        Some(other) => Err(format!("unknown command {other:?}; use serve, migrate, token or buckets").into()),
    }
}

async fn serve() -> Result<(), BoxError> {
    telemetry::init_tracing();
    let cfg = Config::from_env()?;
    tracing::info!(?cfg, "starting api");
    let listener = api::server::bind(cfg.addr, cfg.limits.listen_backlog)?;
    api::run(cfg, listener, issuance_core::shutdown::signal()).await
}

async fn migrate() -> Result<(), BoxError> {
    telemetry::init_tracing();
    let cfg = Config::from_env()?;
    let db = connect::postgres(&cfg.core).await?;
    connect::migrate(&db).await?;
    tracing::info!("migrations applied");
    Ok(())
}

fn token(args: &[String]) -> Result<(), BoxError> {
    let cfg = Config::from_env()?;
    let mut user: Option<i64> = None;
    let mut admin = false;
    let mut ttl: u64 = 24 * 3600;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--user" => user = Some(it.next().ok_or("--user needs a value")?.parse()?),
            "--admin" => admin = true,
            "--ttl" => ttl = it.next().ok_or("--ttl needs a value")?.parse()?,
            other => return Err(format!("unknown option {other:?}").into()),
        }
    }
    let user = user
        .filter(|u| *u > 0)
        .ok_or("token needs --user <positive id>")?;
    println!("{}", Jwt::new(&cfg.jwt_secret).mint(user, admin, ttl));
    Ok(())
}

/// Where an event (or, with `--batch`, a coupon batch) spread over `shards` buckets keeps them:
/// one line per bucket, `<bucket> <hash tag> <slot>` (`redis-cli CLUSTER NODES` tells which
/// master serves the slot).
fn buckets(args: &[String]) -> Result<(), BoxError> {
    use engine::scope::Scope;
    let scopes = match args {
        [flag, id, shards] if flag == "--batch" => Scope::coupon_buckets(id.parse()?, shards.parse()?),
        [key, shards] => Scope::buckets(&issuance_core::ids::EventKey::parse(key)?, shards.parse()?),
        _ => return Err("buckets needs <eventKey> <shards> or --batch <id> <shards>".into()),
    };
    for (bucket, scope) in scopes.iter().enumerate() {
        let tag = scope.tag();
        println!("{bucket} {tag} {}", scope.slot());
    }
    Ok(())
}
