//! First-come coupon batches spread over buckets: each position (and so each code) issued once
//! under bursts with 1, 3 and 8 buckets, every position sold while demand continues, the daily
//! limit exact, and no position twice after a bucket's key is lost.

use std::collections::{BTreeSet, HashMap, HashSet};

use engine::{keys::ScopeKeys, scope::Scope};
use issuance_core::code_generator::CodeGenerator;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    coupons::{Setup, batch, burst, issue, wait_coupon_rows},
    helpers::TestApp,
    shards::{checked, reconciled_per_bucket, users_of},
};

/// A READY SELF batch of `count` coupons over `shards` buckets; returns its id.
async fn spread_batch(app: &TestApp, count: i64, daily: Option<i64>, shards: i64) -> i64 {
    let setup = Setup {
        count,
        daily,
        shards,
        ..Setup::default()
    };
    batch(app, setup).await.1
}

/// The coupons a burst answered, by user: the position of each, checked to be one per user
/// (a winner's other answer names the same coupon) and to carry the batch's code at it.
fn coupons_by_user(app: &TestApp, batch: i64, answers: &[(i64, u16, Value)]) -> HashMap<i64, i64> {
    let generator = CodeGenerator::new(&app.core.code_secret);
    let mut won: HashMap<i64, i64> = HashMap::new();
    for (user, status, body) in answers {
        let id = match status {
            201 => {
                let seq = body["couponIssueId"].as_i64().unwrap() - batch * 10_000_000;
                assert_eq!(
                    body["code"],
                    generator.code(batch, seq as u32).as_str(),
                    "the code at its position"
                );
                body["couponIssueId"].as_i64().unwrap()
            }
            409 if body["code"] == "COUPON_ALREADY_ISSUED" => body["couponIssueId"].as_i64().unwrap(),
            _ => continue,
        };
        let seq = id - batch * 10_000_000;
        if let Some(before) = won.insert(*user, seq) {
            assert_eq!(before, seq, "user {user} was answered two coupons");
        }
    }
    won
}

/// The keys of every Redis copy of the batch (its buckets, or the batch itself).
fn copies(app: &TestApp, batch: i64, shards: u16) -> Vec<ScopeKeys> {
    match Scope::coupon_buckets(batch, shards) {
        buckets if buckets.is_empty() => vec![app.keys.coupon_batch(batch)],
        buckets => buckets.iter().map(|b| b.keys(&app.keys)).collect(),
    }
}

/// What Postgres has leased out of the batch's pool, what its buckets hold together, and the
/// positions they name and the pool got back, each position once (panics on one named twice).
async fn leases(app: &TestApp, batch: i64) -> (i64, i64, BTreeSet<i64>) {
    let rows: Vec<(String, i64, Vec<i64>, Vec<i64>)> = sqlx::query_as(
        "SELECT scope_id, reserved, positions, free_positions FROM scope_reservations
         WHERE scope_kind = 'coupon' AND (scope_id = $1 OR scope_id LIKE $1 || '#%')",
    )
    .bind(batch.to_string())
    .fetch_all(&app.db)
    .await
    .unwrap();
    let (mut pool, mut buckets, mut named) = (0, 0, BTreeSet::new());
    for (id, reserved, positions, free) in rows {
        if id == batch.to_string() {
            pool = reserved;
        } else {
            buckets += reserved;
            let listed: i64 = positions.chunks(2).map(|p| p[1] - p[0]).sum();
            assert_eq!(
                listed, reserved,
                "bucket {id} names a position per unit it leased"
            );
        }
        for range in positions.chunks(2).chain(free.chunks(2)) {
            for p in range[0]..range[1] {
                assert!(named.insert(p), "position {p} is in two places");
            }
        }
    }
    (pool, buckets, named)
}

#[tokio::test]
async fn a_coupon_burst_on_1_3_and_8_buckets_issues_every_position_once() {
    let app = TestApp::spawn().await;
    for shards in [1_u16, 3, 8] {
        let batch = spread_batch(&app, 120, None, i64::from(shards)).await;
        let view = app
            .admin_get(&format!("/api/v1/admin/coupon-batches/{batch}"))
            .await;
        assert_eq!(view["shards"], shards);
        let base = 10_000 * i64::from(shards);
        let answers = burst(&app, batch, base + 1..=base + 700).await;
        let created = answers.iter().filter(|(_, s, _)| *s == 201).count();
        assert_eq!(
            created, 120,
            "{shards} buckets: exactly the quantity answered 201"
        );
        for (user, status, body) in &answers {
            assert!(
                *status == 201
                    || (*status == 409
                        && (body["code"] == "COUPON_ALREADY_ISSUED" || body["code"] == "COUPON_SOLD_OUT")),
                "{shards} buckets: user {user}: {status} {body}"
            );
        }
        let won = coupons_by_user(&app, batch, &answers);
        let positions: BTreeSet<i64> = won.values().copied().collect();
        assert_eq!(positions.len(), won.len(), "{shards} buckets: no position twice");
        assert_eq!(
            positions,
            (0..120).collect::<BTreeSet<i64>>(),
            "{shards} buckets: every position of the batch, each once"
        );

        assert_eq!(wait_coupon_rows(&app, batch, 120).await, 120);
        let (rows, users, seqs): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT user_id), count(DISTINCT seq) FROM coupon_issues WHERE batch_id = $1",
        )
        .bind(batch)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!((rows, users, seqs), (120, 120, 120), "{shards} buckets: Postgres");
        let view = app
            .admin_get(&format!("/api/v1/admin/coupon-batches/{batch}"))
            .await;
        assert_eq!(
            view["issuedCount"], 120,
            "{shards} buckets: issued over every bucket"
        );
        if shards > 1 {
            let (pool, buckets, named) = leases(&app, batch).await;
            assert_eq!(
                (pool, buckets),
                (120, 120),
                "{shards} buckets: the pool is what the buckets hold"
            );
            assert_eq!(
                named, positions,
                "{shards} buckets: the leases name exactly the positions issued"
            );
            reconciled_per_bucket(&app, &format!("cb:{batch}"), shards);
        }
    }
    checked(&app);
}

/// Issues to one user at a time of `users` until the first 409, which must come only after
/// `total` were issued in all (`issued` of them before); the positions issued.
async fn one_at_a_time(
    app: &TestApp,
    batch: i64,
    users: Vec<i64>,
    mut issued: i64,
    total: i64,
    code: &str,
) -> Vec<i64> {
    let mut positions = Vec::new();
    for user in users {
        let r = issue(app, batch, user).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        match status {
            StatusCode::CREATED => {
                issued += 1;
                positions.push(body["couponIssueId"].as_i64().unwrap() - batch * 10_000_000);
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["code"], code, "{body}");
                assert_eq!(issued, total, "told {code} with {} left", total - issued);
                return positions;
            }
            other => panic!("user {user}: {other} {body}"),
        }
    }
    panic!("never refused after {issued}");
}

#[tokio::test]
async fn demand_on_one_coupon_bucket_sells_every_position() {
    let app = TestApp::spawn().await;
    let batch = spread_batch(&app, 30, None, 3).await;
    // Every bucket leases positions: one user each.
    let mut positions = Vec::new();
    for bucket in 0..3 {
        let user = users_of(bucket, 3, 1, 1)[0];
        let r = issue(&app, batch, user).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        positions.push(
            r.json::<Value>().await.unwrap()["couponIssueId"]
                .as_i64()
                .unwrap()
                - batch * 10_000_000,
        );
    }
    let (pool, _, _) = leases(&app, batch).await;
    assert!(
        pool > 3,
        "the buckets hold leases beyond their one issue ({pool})"
    );
    // Then only bucket 0's users: the others' unused positions must come back to it.
    positions.extend(one_at_a_time(&app, batch, users_of(0, 3, 1_000, 60), 3, 30, "COUPON_SOLD_OUT").await);
    let distinct: BTreeSet<i64> = positions.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        positions.len(),
        "no position twice: {positions:?}"
    );
    assert_eq!(
        distinct,
        (0..30).collect::<BTreeSet<i64>>(),
        "every position sold"
    );
    let (pool, buckets, named) = leases(&app, batch).await;
    assert_eq!((pool, buckets), (30, 30));
    assert_eq!(
        named, distinct,
        "the positions handed back were leased again, none lost"
    );
    assert_eq!(wait_coupon_rows(&app, batch, 30).await, 30);
}

#[tokio::test]
async fn a_daily_limit_holds_across_coupon_buckets() {
    let app = TestApp::spawn().await;
    for shards in [3_i64, 8] {
        let batch = spread_batch(&app, 200, Some(50), shards).await;
        let base = 10_000 * shards;
        let answers = burst(&app, batch, base + 1..=base + 400).await;
        let issued = answers.iter().filter(|(_, s, _)| *s == 201).count();
        assert_eq!(issued, 50, "{shards} buckets: exactly today's limit");
        for (user, status, body) in &answers {
            if *status == 409 && body["code"] != "COUPON_ALREADY_ISSUED" {
                assert_eq!(body["code"], "DAILY_LIMIT_REACHED", "user {user}: {body}");
            }
        }
        let won = coupons_by_user(&app, batch, &answers);
        let positions: HashSet<i64> = won.values().copied().collect();
        assert_eq!(
            (won.len(), positions.len()),
            (50, 50),
            "{shards} buckets: one position each"
        );
        let view = app
            .admin_get(&format!("/api/v1/admin/coupon-batches/{batch}"))
            .await;
        assert_eq!(view["issuedCount"], 50);
    }
    // One bucket alone takes the whole day's limit from the others' shares.
    let batch = spread_batch(&app, 100, Some(30), 3).await;
    for bucket in 0..3 {
        let user = users_of(bucket, 3, 1, 1)[0];
        assert_eq!(issue(&app, batch, user).await.status(), StatusCode::CREATED);
    }
    let positions = one_at_a_time(
        &app,
        batch,
        users_of(0, 3, 1_000, 60),
        3,
        30,
        "DAILY_LIMIT_REACHED",
    )
    .await;
    assert_eq!(positions.iter().collect::<HashSet<_>>().len(), 27);
}

#[tokio::test]
async fn losing_any_key_of_a_coupon_bucket_never_gives_a_position_twice() {
    let app = TestApp::spawn().await;
    for (n, suffix) in ["meta", "holders", "stream", "all"].iter().enumerate() {
        let batch = spread_batch(&app, 60, None, 3).await;
        let base = 10_000 * (n as i64 + 1);
        let first = burst(&app, batch, base + 1..=base + 40).await;
        // Persisted first: without persistence a lost stream loses the answers not yet drained
        // (replica mode keeps those, see the durability tests); this is about positions.
        let answered = first.iter().filter(|(_, s, _)| *s == 201).count() as i64;
        assert_eq!(wait_coupon_rows(&app, batch, answered).await, answered);
        let bucket = &copies(&app, batch, 3)[1];
        let lost = match *suffix {
            "meta" => vec![bucket.meta.clone()],
            "holders" => vec![bucket.holders.clone()],
            "stream" => vec![bucket.stream.clone()],
            _ => vec![bucket.meta.clone(), bucket.holders.clone(), bucket.stream.clone()],
        };
        let _: i64 = app.redis_cmd("DEL", lost).await;
        let second = burst(&app, batch, base + 1..=base + 200).await;
        let answers: Vec<_> = first.into_iter().chain(second).collect();
        let won = coupons_by_user(&app, batch, &answers);
        let positions: HashSet<i64> = won.values().copied().collect();
        assert_eq!(
            positions.len(),
            won.len(),
            "{suffix}: a position answered to two users"
        );
        assert!(
            won.len() <= 60,
            "{suffix}: {} answered past the quantity",
            won.len()
        );
        assert!(
            positions.iter().all(|p| (0..60).contains(p)),
            "{suffix}: {positions:?}"
        );
        let (pool, buckets, _) = leases(&app, batch).await;
        assert!(
            pool <= 60 && pool == buckets,
            "{suffix}: pool {pool}, buckets {buckets}"
        );
        let rows = wait_coupon_rows(&app, batch, won.len() as i64).await;
        assert_eq!(
            rows,
            won.len() as i64,
            "{suffix}: Postgres holds every coupon answered"
        );
        let seqs: i64 =
            sqlx::query_scalar("SELECT count(DISTINCT seq) FROM coupon_issues WHERE batch_id = $1")
                .bind(batch)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(seqs, rows, "{suffix}: Postgres: one row per position");
    }
}

#[tokio::test]
async fn a_spread_batch_changes_its_quantity_live() {
    let app = TestApp::spawn().await;
    let batch = spread_batch(&app, 40, None, 3).await;
    let mut issued = BTreeSet::new();
    for user in 1..=10 {
        let r = issue(&app, batch, user).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        issued.insert(
            r.json::<Value>().await.unwrap()["couponIssueId"]
                .as_i64()
                .unwrap()
                - batch * 10_000_000,
        );
    }
    let path = format!("/api/v1/admin/coupon-batches/{batch}");
    // The last issues may have set off a lease ahead (engine::leases) still queued on the pool
    // row: committed after the lowering, it would lease within the new quantity and the buckets
    // would hold more than they issued (seen on a loaded machine). Let it land first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Below what the buckets issued: refused, nothing changes.
    let lower = app.patch(&path, &app.admin(), &json!({"issueCount": 9})).await;
    assert_eq!(lower.status(), StatusCode::CONFLICT);
    assert_eq!(
        lower.json::<Value>().await.unwrap()["code"],
        "QUANTITY_BELOW_ISSUED"
    );
    assert_eq!(app.admin_get(&path).await["issueCount"], 40);
    // Down to the highest position issued + 1: every unused lease comes back first, so the
    // batch is sold out at once, having issued exactly what it holds.
    let highest = *issued.last().unwrap();
    let lower = app
        .patch(&path, &app.admin(), &json!({"issueCount": highest + 1}))
        .await;
    assert_eq!(lower.status(), StatusCode::OK, "{}", lower.text().await.unwrap());
    let (pool, buckets, named) = leases(&app, batch).await;
    assert_eq!((pool, buckets), (10, 10), "the leases are what was issued");
    assert!(
        named.iter().all(|p| *p <= highest),
        "no position at or above the quantity: {named:?}"
    );
    let mut more = BTreeSet::new();
    for user in 100..160 {
        let r = issue(&app, batch, user).await;
        if r.status() == StatusCode::CREATED {
            more.insert(
                r.json::<Value>().await.unwrap()["couponIssueId"]
                    .as_i64()
                    .unwrap()
                    - batch * 10_000_000,
            );
        }
    }
    assert_eq!(
        more.len() as i64,
        highest + 1 - 10,
        "the positions below it not yet issued, and no more"
    );
    assert!(
        more.iter().all(|p| *p <= highest && !issued.contains(p)),
        "{more:?}"
    );
}

#[tokio::test]
async fn a_spread_batch_is_set_at_creation_and_grows_past_its_positions() {
    let app = TestApp::spawn().await;
    let batch = spread_batch(&app, 10, None, 3).await;
    for user in 1..=10 {
        assert_eq!(issue(&app, batch, user).await.status(), StatusCode::CREATED);
    }
    assert_eq!(issue(&app, batch, 11).await.status(), StatusCode::CONFLICT);
    // A raise of a batch whose inventory has room opens positions beyond the old quantity.
    let roomy = batch_with_room(&app, 3).await;
    for user in 1..=5 {
        assert_eq!(issue(&app, roomy, user).await.status(), StatusCode::CREATED);
    }
    let path = format!("/api/v1/admin/coupon-batches/{roomy}");
    let raise = app.patch(&path, &app.admin(), &json!({"issueCount": 8})).await;
    assert_eq!(raise.status(), StatusCode::OK);
    let mut positions = HashSet::new();
    for user in 6..=20 {
        let r = issue(&app, roomy, user).await;
        if r.status() == StatusCode::CREATED {
            let seq = r.json::<Value>().await.unwrap()["couponIssueId"]
                .as_i64()
                .unwrap()
                - roomy * 10_000_000;
            assert!((5..8).contains(&seq), "position {seq}: only the raise's are left");
            positions.insert(seq);
        }
    }
    assert_eq!(positions.len(), 3, "the three positions the raise added");
    for (body, what) in [
        (json!({"shards": 0}), "0 buckets"),
        (json!({"shards": 17}), "17 buckets"),
        (json!({"shards": 2, "issueType": "MAPPED"}), "a MAPPED batch"),
    ] {
        let inventory = app
            .admin_get(&format!("/api/v1/admin/coupon-batches/{batch}"))
            .await["inventoryId"]
            .clone();
        let mut create = json!({"inventoryId": inventory, "batchName": "x", "issueCount": 1, "issueType": "SELF",
                                "validFromAt": "2026-01-01T00:00:00", "validUntilAt": "2099-01-01T00:00:00"});
        for (k, v) in body.as_object().unwrap() {
            create[k] = v.clone();
        }
        let r = app
            .post("/api/v1/admin/coupon-batches", &app.admin(), &create)
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
    }
}

/// A READY SELF batch of 5 over `shards` buckets in an inventory of 50.
async fn batch_with_room(app: &TestApp, shards: i64) -> i64 {
    let setup = Setup {
        count: 5,
        inventory: Some(50),
        shards,
        ..Setup::default()
    };
    batch(app, setup).await.1
}

#[tokio::test]
async fn a_coupon_buckets_idle_positions_go_back_to_the_pool() {
    let app = TestApp::spawn().await;
    let batch = spread_batch(&app, 30, None, 3).await;
    let mut positions = BTreeSet::new();
    for bucket in 0..3 {
        let r = issue(&app, batch, users_of(bucket, 3, 1, 1)[0]).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        positions.insert(
            r.json::<Value>().await.unwrap()["couponIssueId"]
                .as_i64()
                .unwrap()
                - batch * 10_000_000,
        );
    }
    // Settled: a lease ahead started by the last issue may still be landing.
    let mut leased = leases(&app, batch).await.2;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = leases(&app, batch).await.2;
        if now == leased {
            break;
        }
        leased = now;
    }
    assert!(
        leased.len() > 3,
        "the buckets hold positions beyond their one issue"
    );
    let stop = crate::shards::hand_back_loop(&app);
    let started = std::time::Instant::now();
    loop {
        let (pool, buckets, named) = leases(&app, batch).await;
        if (pool, buckets) == (3, 3) {
            assert_eq!(named, leased, "the unused positions moved to the pool, none lost");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "idle leases not handed back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    positions.extend(one_at_a_time(&app, batch, users_of(1, 3, 1_000, 40), 3, 30, "COUPON_SOLD_OUT").await);
    assert_eq!(
        positions,
        (0..30).collect::<BTreeSet<i64>>(),
        "every position once"
    );
    stop.cancel();
}
