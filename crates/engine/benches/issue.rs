//! Criterion benchmarks of the issue path against a real Redis and Postgres (`REDIS_URL`,
//! `DATABASE_URL`, as the binaries read them): the bare `issue.lua` call, and the whole
//! `Engine::issue_ticket` (cache lookup + script + decode), for new users and for duplicates.
//!
//! `cargo bench -p engine` (run `scripts/services` first).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use engine::{
    Engine, EngineOptions, Keys,
    issue::{self, IssueGroup, IssueRequest},
};
use fred::interfaces::KeysInterface;
use issuance_core::{
    code_generator::CodeGenerator,
    config::CoreConfig,
    connect,
    ids::{EventKey, UserId},
};
use store::ticket_events::NewTicketEvent;

fn bench_issue(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = CoreConfig::from_env().unwrap();
    let (engine, key) = rt.block_on(async {
        let db = connect::postgres(&cfg)
            .await
            .expect("postgres is up (scripts/services)");
        connect::migrate(&db).await.unwrap();
        let redis = connect::redis(&cfg).await.expect("redis is up");
        let prefix = format!("crit{}:", Utc::now().timestamp_millis());
        let engine = Engine::new(
            redis,
            db,
            Keys::new(prefix.clone()),
            EngineOptions::new(CodeGenerator::new(&cfg.code_secret)),
        );
        let key = EventKey::parse(&format!("crit-{}", Utc::now().timestamp_millis())).unwrap();
        let new = NewTicketEvent::new(
            key.clone(),
            "criterion".into(),
            10_000_000,
            None,
            Utc::now() - Duration::days(1),
            Utc::now() + Duration::days(1),
        )
        .unwrap();
        engine.create_event(new).await.unwrap();
        (engine, key)
    });
    let next_user = AtomicI64::new(1);
    let keys = engine.keys().ticket_event(key.as_str());

    c.bench_function("issue.lua, one new user per call", |b| {
        b.to_async(&rt).iter(|| async {
            let user = next_user.fetch_add(1, Ordering::Relaxed);
            let requests = [IssueRequest { user, clock_ms: None }];
            let batch = IssueGroup {
                keys: &keys,
                kind: "ticket",
                scope: key.as_str(),
                ids: engine::scope::IdMode::Given,
                requests: &requests,
                confirm: None,
            };
            issue::run(engine.redis().next(), batch).await.unwrap()
        })
    });
    c.bench_function("Engine::issue_ticket, new user", |b| {
        b.to_async(&rt).iter(|| async {
            let user = UserId::new(next_user.fetch_add(1, Ordering::Relaxed)).unwrap();
            engine.issue_ticket(&key, user).await.unwrap()
        })
    });
    c.bench_function("Engine::issue_ticket, duplicate", |b| {
        b.to_async(&rt)
            .iter(|| async { engine.issue_ticket(&key, UserId::new(1).unwrap()).await.unwrap() })
    });

    // The benchmark's keys are its own (fresh prefix); leave nothing behind in Redis.
    rt.block_on(async {
        let registry = engine.keys().streams();
        let doomed = vec![
            keys.meta.clone(),
            keys.holders.clone(),
            keys.stream.clone(),
            registry,
        ];
        let _: i64 = engine.redis().del(doomed).await.unwrap();
    });
}

criterion_group!(benches, bench_issue);
criterion_main!(benches);
