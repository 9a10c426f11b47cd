//! One `issue.lua` call deciding several requests: each as if it were alone, in order.

use engine::{
    issue::{self, IssueGroup, IssueId, IssueRequest, Verdict},
    scope::IdMode,
};

use crate::helpers::TestApp;

#[tokio::test]
async fn a_batch_is_decided_request_by_request_in_order() {
    let app = TestApp::spawn().await;
    app.create_event("batched", 2, None).await;
    let keys = app.keys.ticket_event("batched");
    let request = |user: i64| IssueRequest { user, clock_ms: None };
    let requests = [request(1), request(1), request(2), request(3), request(2)];
    let batch = IssueGroup {
        keys: &keys,
        kind: "ticket",
        scope: "batched",
        ids: IdMode::Given,
        requests: &requests,
        confirm: None,
    };
    // The script issues up to what Postgres reserved for the copy (the engine reserves on the
    // first request); here the whole quantity, as if reserved.
    let _: i64 = app
        .redis_cmd("HSET", vec![keys.meta.clone(), "ceiling".into(), "2".into()])
        .await;
    let verdicts = issue::run(app.redis.next(), batch).await.unwrap();
    // The ids the api numbers from the call's draw are the ones the script wrote: a user asking
    // again within the call is answered the holder entry the script made.
    let (first, first_at) = match verdicts[0] {
        Verdict::Issued {
            id: IssueId::Ticket(id),
            at_ms,
            issued: 1,
            total: 2,
            ..
        } => (id, at_ms),
        ref other => panic!("first request: {other:?}"),
    };
    assert_eq!(
        verdicts[1],
        Verdict::Held {
            id: IssueId::Ticket(first),
            at_ms: first_at
        }
    );
    let third = match verdicts[2] {
        Verdict::Issued {
            id: IssueId::Ticket(id),
            issued: 2,
            ..
        } => id,
        ref other => panic!("third request: {other:?}"),
    };
    assert_ne!(first, third, "one id per ticket");
    assert_eq!(third.get_version_num(), 7);
    assert_eq!(verdicts[3], Verdict::SoldOut);
    assert!(matches!(verdicts[4], Verdict::Held { id: IssueId::Ticket(id), .. } if id == third));
    let entry: String = app
        .redis_cmd("HGET", vec![keys.holders.clone(), "2".into()])
        .await;
    assert!(entry.starts_with(&format!("{third}|")), "{entry}");
    assert_eq!(
        app.wait_rows("batched", 2, std::time::Duration::from_secs(5))
            .await,
        2
    );
}

#[tokio::test]
async fn a_call_appends_one_entry_and_counts_each_kst_day_once() {
    let app = TestApp::spawn().await;
    app.create_event("days", 10, Some(1)).await;
    let keys = app.keys.ticket_event("days");
    let _: i64 = app
        .redis_cmd("HSET", vec![keys.meta.clone(), "ceiling".into(), "10".into()])
        .await;
    // KST day 20463 twice (the second over the daily limit of 1), then the next KST day.
    let (noon, one_pm, next_noon) = (1_768_014_000_000, 1_768_017_600_000, 1_768_100_400_000);
    let request = |user: i64, clock_ms: i64| IssueRequest {
        user,
        clock_ms: Some(clock_ms),
    };
    let requests = [request(1, noon), request(2, one_pm), request(3, next_noon)];
    let group = IssueGroup {
        keys: &keys,
        kind: "ticket",
        scope: "days",
        ids: IdMode::Given,
        requests: &requests,
        confirm: None,
    };
    let verdicts = issue::run(app.redis.next(), group).await.unwrap();
    assert!(matches!(&verdicts[0], Verdict::Issued { at_ms, issued: 1, .. } if *at_ms == noon));
    assert_eq!(verdicts[1], Verdict::DailyLimit);
    assert!(matches!(&verdicts[2], Verdict::Issued { at_ms, issued: 2, .. } if *at_ms == next_noon));

    for day in [20463, 20464] {
        let key = format!("{}{day}", keys.day_prefix);
        let count: i64 = app.redis_cmd("GET", vec![key.clone()]).await;
        assert_eq!(count, 1, "day {day}");
        let ttl: i64 = app.redis_cmd("PTTL", vec![key]).await;
        assert!(ttl > 0, "day {day} expires (PTTL {ttl})");
    }
    let (issued, today): (i64, i64) = app
        .redis_cmd("HMGET", vec![keys.meta.clone(), "issued".into(), "today".into()])
        .await;
    assert_eq!((issued, today), (2, 1));
    let length: i64 = app.redis_cmd("XLEN", vec![keys.stream.clone()]).await;
    assert_eq!(length, 1, "one entry for the call");
    let entries = engine::stream::unpersisted(app.redis.next(), &keys.stream)
        .await
        .unwrap();
    let users: Vec<i64> = entries[0]
        .records
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| r.user_id)
        .collect();
    assert_eq!(users, [1, 3], "the call's records, in order");
    assert_eq!(
        app.wait_rows("days", 2, std::time::Duration::from_secs(5)).await,
        2
    );
}

/// The stream entry of a call names exactly the issues the call answered: the same users, ids
/// and times, in order. The drain makes each record from the call's users and statuses, so an
/// id it made differently from the answer would persist an issue nobody was given.
#[tokio::test]
async fn a_calls_entry_names_exactly_the_issues_it_answered() {
    let app = TestApp::spawn_without_drain().await;
    // More requests than the script's table of index digits (256), a user asking twice within
    // the call, and more requests than the quantity.
    let mut users: Vec<i64> = (1..=300).collect();
    users.insert(10, 5);
    for (ids, kind, scope) in [
        (IdMode::Given, "ticket", "named"),
        (IdMode::Position, "coupon", "numbered"),
    ] {
        app.create_event(scope, 280, None).await;
        let keys = app.keys.ticket_event(scope);
        let _: i64 = app
            .redis_cmd("HSET", vec![keys.meta.clone(), "ceiling".into(), "280".into()])
            .await;
        let requests: Vec<IssueRequest> = users
            .iter()
            .map(|&user| IssueRequest { user, clock_ms: None })
            .collect();
        let group = IssueGroup {
            keys: &keys,
            kind,
            scope,
            ids,
            requests: &requests,
            confirm: None,
        };
        let verdicts = issue::run(app.redis.next(), group).await.unwrap();
        let answered: Vec<(i64, IssueId, i64)> = users
            .iter()
            .zip(&verdicts)
            .filter_map(|(&user, v)| match *v {
                Verdict::Issued { id, at_ms, .. } => Some((user, id, at_ms)),
                _ => None,
            })
            .collect();
        let entries = engine::stream::unpersisted(app.redis.next(), &keys.stream)
            .await
            .unwrap();
        assert_eq!(entries.len(), 1, "{kind}: one entry for the call");
        let recorded: Vec<(i64, IssueId, i64)> = entries[0]
            .records
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| {
                let id = match r.issue_id {
                    engine::stream::IssueId::Uuid(id) => IssueId::Ticket(id),
                    engine::stream::IssueId::Position(p) => IssueId::Position(p.into()),
                };
                assert_eq!((r.kind.as_str(), r.scope.as_str()), (kind, scope));
                (r.user_id, id, r.issued_at_ms)
            })
            .collect();
        assert_eq!(answered.len(), 280, "{kind}: issues answered");
        assert_eq!(recorded, answered, "{kind}: the entry's records are the answers");
    }
}

/// The script reads meta's fields on every call: its copy is built as a hash table, where each
/// is found directly, not as a listpack scanned field by field (`layout` in load_meta.lua).
#[tokio::test]
async fn a_scopes_meta_is_built_as_a_hash_table() {
    let app = TestApp::spawn().await;
    app.create_event("layout", 5, None).await;
    assert_eq!(app.issue("layout", 1).await.status(), 201);
    let keys = app.keys.ticket_event("layout");
    let encoding: String = app
        .redis_cmd("OBJECT", vec!["ENCODING".into(), keys.meta.clone()])
        .await;
    assert_eq!(encoding, "hashtable");
}
