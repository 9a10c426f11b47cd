//! The stream drain under faults: a dead consumer, a replayed stream.

use std::time::Duration;

use engine::stream;
use fred::interfaces::StreamsInterface;
use serde_json::Value;
use workers::config::DrainConfig;

use crate::helpers::TestApp;

async fn issue_many(app: &TestApp, key: &str, users: std::ops::RangeInclusive<i64>) -> Vec<Value> {
    let mut out = Vec::new();
    for user in users {
        let r = app.issue(key, user).await;
        assert_eq!(r.status(), 201);
        out.push(r.json().await.unwrap());
    }
    out
}

#[tokio::test]
async fn batch_of_a_dead_consumer_is_reclaimed_and_persisted_once() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("reclaim", 50, None).await;
    let issued = issue_many(&app, "reclaim", 1..=20).await;
    let keys = app.keys.ticket_event("reclaim");

    // A consumer reads the batch and dies before acknowledging it.
    let client = app.redis.next();
    stream::ensure_group(client, &keys.stream).await.unwrap();
    let taken = stream::read_new(client, &keys.stream, "doomed", 100)
        .await
        .unwrap();
    assert_eq!(taken.len(), 20);
    assert_eq!(app.ticket_rows("reclaim").await, 0);

    app.start_drain(DrainConfig {
        claim_idle: Duration::from_millis(300),
        claim_every: Duration::from_millis(100),
        forget_idle: Duration::from_millis(300),
        idle: Duration::from_millis(5),
        ..DrainConfig::default()
    });
    assert_eq!(app.wait_rows("reclaim", 20, Duration::from_secs(10)).await, 20);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.ticket_rows("reclaim").await, 20, "each ticket exactly once");
    let lag = stream::lag(client, &keys.stream).await.unwrap();
    assert_eq!(lag.entries, 0, "persisted entries are trimmed");

    // The dead consumer's name goes once it holds nothing and has been idle long enough.
    let started = std::time::Instant::now();
    loop {
        let consumers: fred::types::Value = app
            .redis_cmd(
                "XINFO",
                vec!["CONSUMERS".into(), keys.stream.clone(), "drain".into()],
            )
            .await;
        if !format!("{consumers:?}").contains("doomed") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "dead consumer name kept: {consumers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for t in issued {
        let user = t["userId"].as_i64().unwrap();
        let list: Vec<Value> = app
            .get(&format!("/users/{user}/tickets"), Some(&app.admin()))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["ticketId"], t["ticketId"]);
    }
}

#[tokio::test]
async fn replaying_the_whole_stream_changes_nothing() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("replay", 50, None).await;
    issue_many(&app, "replay", 1..=30).await;
    let keys = app.keys.ticket_event("replay");
    let client = app.redis.next();
    let recorded = stream::unpersisted(client, &keys.stream).await.unwrap();
    assert_eq!(recorded.len(), 30);

    app.start_drain(DrainConfig {
        idle: Duration::from_millis(5),
        ..DrainConfig::default()
    });
    assert_eq!(app.wait_rows("replay", 30, Duration::from_secs(10)).await, 30);
    let before: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT ticket_id, user_id FROM tickets ORDER BY ticket_id")
            .fetch_all(&app.db)
            .await
            .unwrap();

    // Every record again, as if the stream were replayed from the start.
    for record in recorded.iter().flat_map(|entry| entry.records.as_ref().unwrap()) {
        let fields = record.to_fields();
        let _: String = client.xadd(&keys.stream, false, None, "*", fields).await.unwrap();
    }
    let started = std::time::Instant::now();
    while stream::lag(client, &keys.stream).await.unwrap().entries > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "replay not drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT ticket_id, user_id FROM tickets ORDER BY ticket_id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn persisted_entries_are_trimmed_from_the_stream() {
    let app = TestApp::spawn().await;
    app.create_event("trim", 1_000, None).await;
    let engine = app.engine();
    let key = issuance_core::ids::EventKey::parse("trim").unwrap();
    for user in 1..=800 {
        let user = issuance_core::ids::UserId::new(user).unwrap();
        assert!(engine.issue_ticket(&key, user).await.unwrap().fresh);
    }
    assert_eq!(app.wait_rows("trim", 800, Duration::from_secs(10)).await, 800);
    let keys = app.keys.ticket_event("trim");
    let started = std::time::Instant::now();
    let len = loop {
        let len: i64 = app.redis_cmd("XLEN", vec![keys.stream.clone()]).await;
        if len <= 200 || started.elapsed() > Duration::from_secs(5) {
            break len;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(len <= 200, "stream still holds {len} of 800 persisted entries");
    let lag = stream::lag(app.redis.next(), &keys.stream).await.unwrap();
    assert_eq!((lag.entries, lag.age_ms), (0, 0));
    assert!(lag.length <= len, "the length is what the stream holds");
}

/// Pending entries of the drain group, by consumer.
async fn pending(app: &TestApp, stream_key: &str) -> i64 {
    let summary: Vec<fred::types::Value> = app
        .redis_cmd("XPENDING", vec![stream_key.to_owned(), "drain".into()])
        .await;
    summary.first().and_then(fred::types::Value::as_i64).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_sigkilled_workers_process_are_persisted_within_seconds() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("killed", 500, None).await;
    issue_many(&app, "killed", 1..=200).await;
    let keys = app.keys.ticket_event("killed");

    // The worker reads the entries, then blocks on its insert (the table is locked) holding them.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE tickets IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    stream::ensure_group(app.redis.next(), &keys.stream)
        .await
        .unwrap();
    let mut worker = crate::helpers::WorkersProcess::start(&app.core);
    let started = std::time::Instant::now();
    while pending(&app, &keys.stream).await < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the worker read the entries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill9();
    let killed = std::time::Instant::now();
    lock.rollback().await.unwrap();

    // Another consumer with the default settings (idle-time claim after 30 s) takes over by
    // liveness instead.
    app.start_drain(DrainConfig::default());
    assert_eq!(app.wait_rows("killed", 200, Duration::from_secs(10)).await, 200);
    let took = killed.elapsed();
    eprintln!("entries of a SIGKILLed worker persisted {took:?} after the kill");
    assert!(took < Duration::from_secs(5), "{took:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.ticket_rows("killed").await, 200, "each ticket exactly once");
}

#[tokio::test]
async fn a_batch_larger_than_lua_can_unpack_is_acknowledged() {
    let app = TestApp::spawn_without_drain().await;
    let key = format!("{}{{big}}:stream", app.core.key_prefix);
    let client = app.redis.next();
    stream::ensure_group(client, &key).await.unwrap();
    for chunk in 0..20 {
        let pipeline = client.pipeline();
        for i in 0..500 {
            let _: () = pipeline
                .xadd(&key, false, None, "*", vec![("n", (chunk * 500 + i).to_string())])
                .await
                .unwrap();
        }
        let _: Vec<String> = pipeline.all().await.unwrap();
    }
    let read = stream::read_new(client, &key, "big", 50_000).await.unwrap();
    assert_eq!(read.len(), 10_000);
    let ids: Vec<String> = read.into_iter().map(|e| e.id).collect();
    assert_eq!(stream::ack(client, &key, &ids).await.unwrap(), 10_000);
    assert_eq!(pending(&app, &key).await, 0);
}

#[tokio::test]
async fn one_broken_stream_does_not_stop_the_others() {
    let app = TestApp::spawn_without_drain().await;
    // A registered "stream" that is not one sorts first and fails every read.
    let broken = format!("{}{{aaa}}:stream", app.core.key_prefix);
    let _: String = app
        .redis_cmd("SET", vec![broken.clone(), "not a stream".into()])
        .await;
    let _: i64 = app.redis_cmd("SADD", vec![app.keys.streams(), broken]).await;
    app.create_event("healthy", 50, None).await;
    issue_many(&app, "healthy", 1..=10).await;
    app.start_drain(DrainConfig {
        idle: Duration::from_millis(5),
        ..DrainConfig::default()
    });
    assert_eq!(app.wait_rows("healthy", 10, Duration::from_secs(10)).await, 10);
}

#[tokio::test]
async fn streams_of_ended_persisted_scopes_leave_the_registry() {
    let app = TestApp::spawn().await;
    let end = chrono::Utc::now() + chrono::Duration::seconds(2);
    let body = serde_json::json!({
        "eventKey": "ending", "name": "ending", "totalQuantity": 10,
        "startAt": "2020-01-01T00:00:00Z", "endAt": end.to_rfc3339(),
    });
    assert_eq!(app.post("/events", &app.admin(), &body).await.status(), 201);
    app.create_event("running", 10, None).await;
    issue_many(&app, "ending", 1..=3).await;
    issue_many(&app, "running", 1..=3).await;
    assert_eq!(app.wait_rows("ending", 3, Duration::from_secs(10)).await, 3);
    let ending = app.keys.ticket_event("ending").stream;
    let running = app.keys.ticket_event("running").stream;
    let started = std::time::Instant::now();
    loop {
        let registered: Vec<String> = app.redis_cmd("SMEMBERS", vec![app.keys.streams()]).await;
        if !registered.contains(&ending) {
            assert!(registered.contains(&running), "a running scope stays");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the ended stream retired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let length: i64 = app.redis_cmd("XLEN", vec![ending]).await;
    assert_eq!(length, 0, "and its stream is empty");
    // Asking an ended scope again is an ordinary refusal, not a rebuild.
    let r = app.issue("ending", 99).await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.ticket_rows("ending").await, 3);
}

/// Appends a ticket record for each of `users` to `key`'s stream, as `issue.lua` would, in
/// pipelined chunks with a short pause between them (a stream that keeps growing while it is
/// drained); returns the ticket ids.
async fn feed(app: &TestApp, key: &str, users: std::ops::Range<i64>, pause: Duration) -> Vec<uuid::Uuid> {
    let stream_key = app.keys.ticket_event(key).stream;
    stream::register(&app.redis, &app.keys, &stream_key)
        .await
        .unwrap();
    let client = app.redis.next();
    let mut ids = Vec::new();
    let users: Vec<i64> = users.collect();
    for chunk in users.chunks(500) {
        let pipeline = client.pipeline();
        for &user in chunk {
            let id = uuid::Uuid::now_v7();
            ids.push(id);
            let record = stream::IssueRecord {
                kind: stream::RecordKind::Ticket,
                scope: key.to_owned(),
                user_id: user,
                issue_id: stream::IssueId::Uuid(id),
                issued_at_ms: chrono::Utc::now().timestamp_millis(),
                fence: None,
            };
            let _: () = pipeline
                .xadd(&stream_key, false, None, "*", record.to_fields())
                .await
                .unwrap();
        }
        let _: Vec<String> = pipeline.all().await.unwrap();
        tokio::time::sleep(pause).await;
    }
    ids
}

/// Checks that Postgres holds exactly these tickets of `key`, each once, and that the stream has
/// nothing left to persist or acknowledge.
async fn assert_exactly(app: &TestApp, key: &str, ids: &[uuid::Uuid]) {
    let rows: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT ticket_id FROM tickets WHERE event_key = $1 ORDER BY ticket_id")
            .bind(key)
            .fetch_all(&app.db)
            .await
            .unwrap();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(rows.len(), want.len(), "one row per issue");
    assert!(rows == want, "the rows are exactly the issues");
    let stream_key = app.keys.ticket_event(key).stream;
    let lag = stream::lag(app.redis.next(), &stream_key).await.unwrap();
    assert_eq!(lag.entries, 0, "everything acknowledged");
    assert_eq!(pending(app, &stream_key).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_consumers_of_one_process_drain_one_hot_stream_exactly_once() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("hot-one", 1_000_000, None).await;
    app.start_drain(DrainConfig {
        consumers: 4,
        batch_min: 50,
        batch_max: 400,
        idle: Duration::from_millis(2),
        ..DrainConfig::default()
    });
    let ids = feed(&app, "hot-one", 1..20_001, Duration::from_millis(5)).await;
    assert_eq!(
        app.wait_rows("hot-one", 20_000, Duration::from_secs(30)).await,
        20_000
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_exactly(&app, "hot-one", &ids).await;
    let consumers: Vec<Vec<fred::types::Value>> = app
        .redis_cmd(
            "XINFO",
            vec![
                "CONSUMERS".into(),
                app.keys.ticket_event("hot-one").stream,
                "drain".into(),
            ],
        )
        .await;
    assert_eq!(consumers.len(), 4, "four consumers read the stream");
}

/// `issuer_drain_persisted_total` of a workers process serving /metrics at `addr`.
async fn persisted_by(addr: &str) -> i64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("issuer_drain_persisted_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_of_two_workers_processes_drain_one_hot_stream_exactly_once() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("hot-two", 1_000_000, None).await;
    let free_port = || format!("127.0.0.1:{}", crate::helpers::free_port());
    let (addr_a, addr_b) = (free_port(), free_port());
    let process = |id: &str, addr: &str| {
        crate::helpers::WorkersProcess::start_with(
            &app.core,
            &[
                ("WORKER_ID", id),
                ("WORKERS_ADDR", addr),
                ("DRAIN_CONSUMERS", "3"),
                ("DRAIN_BATCH_MIN", "50"),
                ("DRAIN_BATCH_MAX", "400"),
                ("DRAIN_IDLE_MS", "2"),
            ],
        )
    };
    let _a = process("proc-a", &addr_a);
    let _b = process("proc-b", &addr_b);
    let ids = feed(&app, "hot-two", 1..30_001, Duration::from_millis(5)).await;
    assert_eq!(
        app.wait_rows("hot-two", 30_000, Duration::from_secs(30)).await,
        30_000
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_exactly(&app, "hot-two", &ids).await;
    // Each entry was persisted by exactly one consumer, and both processes took part.
    let (a, b) = (persisted_by(&addr_a).await, persisted_by(&addr_b).await);
    assert!(a > 0 && b > 0, "both processes persisted entries: {a} and {b}");
    assert_eq!(a + b, 30_000, "no entry persisted twice");
}

#[tokio::test]
async fn a_batch_of_fifty_thousand_entries_is_committed_and_acknowledged_once() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("huge", 1_000_000, None).await;
    let ids = feed(&app, "huge", 1..50_001, Duration::ZERO).await;
    let one_read = DrainConfig {
        consumers: 1,
        batch_min: 50_000,
        batch_max: 50_000,
        idle: Duration::from_millis(5),
        ..DrainConfig::default()
    };
    let stop = app.start_drain(one_read.clone());
    assert_eq!(
        app.wait_rows("huge", 50_000, Duration::from_secs(60)).await,
        50_000
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    assert_exactly(&app, "huge", &ids).await;

    // The same 50,000 records again (a replay): the COPY fails on the first duplicate and the
    // batch is written again without them, so nothing changes and all is acknowledged.
    let stream_key = app.keys.ticket_event("huge").stream;
    let recorded: Vec<stream::IssueRecord> =
        sqlx::query_as::<_, (uuid::Uuid, i64, chrono::DateTime<chrono::Utc>)>(
            "SELECT ticket_id, user_id, issued_at FROM tickets WHERE event_key = 'huge'",
        )
        .fetch_all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, user, at)| stream::IssueRecord {
            kind: stream::RecordKind::Ticket,
            scope: "huge".into(),
            user_id: user,
            issue_id: stream::IssueId::Uuid(id),
            issued_at_ms: at.timestamp_millis(),
            fence: None,
        })
        .collect();
    let client = app.redis.next();
    for chunk in recorded.chunks(1_000) {
        let pipeline = client.pipeline();
        for r in chunk {
            let _: () = pipeline
                .xadd(&stream_key, false, None, "*", r.to_fields())
                .await
                .unwrap();
        }
        let _: Vec<String> = pipeline.all().await.unwrap();
    }
    assert_eq!(stream::lag(client, &stream_key).await.unwrap().entries, 50_000);
    app.start_drain(one_read);
    let started = std::time::Instant::now();
    while stream::lag(client, &stream_key).await.unwrap().entries > 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "replay not drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_exactly(&app, "huge", &ids).await;
}

#[tokio::test]
async fn issue_rows_of_unknown_scopes_and_deletes_of_their_scopes_are_refused() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("kept", 10, None).await;
    let ticket = |event: &str| store::tickets::NewTicket {
        ticket_id: uuid::Uuid::now_v7(),
        event_key: event.into(),
        user_id: 1,
        issued_at: chrono::Utc::now(),
    };
    let fk = |e: issuance_core::Error| match e {
        issuance_core::Error::Db(e) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    };
    // COPY and INSERT alike: a batch naming an event that does not exist fails as a whole.
    let mut conn = app.db.acquire().await.unwrap();
    let copied = store::tickets::copy_batch(&mut conn, &[ticket("kept"), ticket("ghost")]).await;
    assert_eq!(fk(copied.unwrap_err()).as_deref(), Some("23503"));
    let inserted = store::tickets::insert_batch(&app.db, &[ticket("ghost")]).await;
    assert_eq!(fk(inserted.unwrap_err()).as_deref(), Some("23503"));
    assert_eq!(app.ticket_rows("kept").await, 0);

    // A referenced event can be neither deleted nor renamed, nor its ticket moved.
    store::tickets::copy_batch(&mut conn, &[ticket("kept")])
        .await
        .unwrap();
    for statement in [
        "DELETE FROM ticket_events WHERE event_key = 'kept'",
        "UPDATE ticket_events SET event_key = 'moved' WHERE event_key = 'kept'",
        "UPDATE tickets SET event_key = 'other' WHERE event_key = 'kept'",
    ] {
        let e = sqlx::query(statement).execute(&app.db).await.unwrap_err();
        assert_eq!(
            e.as_database_error().and_then(|d| d.code()).as_deref(),
            Some("23503"),
            "{statement}"
        );
    }
    assert_eq!(app.ticket_rows("kept").await, 1);
}
