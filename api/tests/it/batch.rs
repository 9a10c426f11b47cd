//! One `issue.lua` call deciding several requests: each as if it were alone, in order.

use engine::{
    issue::{self, IssueGroup, IssueRequest, Verdict},
    scope::IdMode,
};

use crate::helpers::TestApp;

#[tokio::test]
async fn a_batch_is_decided_request_by_request_in_order() {
    let app = TestApp::spawn().await;
    app.create_event("batched", 2, None).await;
    let keys = app.keys.ticket_event("batched");
    let request = |user: i64, candidate: &str| IssueRequest {
        user,
        candidate: candidate.into(),
        clock_ms: None,
    };
    let requests = [
        request(1, "00000000-0000-7000-8000-000000000001"),
        request(1, "00000000-0000-7000-8000-000000000002"),
        request(2, "00000000-0000-7000-8000-000000000003"),
        request(3, "00000000-0000-7000-8000-000000000004"),
        request(2, "00000000-0000-7000-8000-000000000005"),
    ];
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
    let first_at = match &verdicts[0] {
        Verdict::Issued {
            id,
            at_ms,
            issued: 1,
            total: 2,
            ..
        } if id.ends_with("0001") => *at_ms,
        other => panic!("first request: {other:?}"),
    };
    assert_eq!(
        verdicts[1],
        Verdict::Held {
            id: "00000000-0000-7000-8000-000000000001".into(),
            at_ms: first_at
        }
    );
    assert!(matches!(&verdicts[2], Verdict::Issued { id, issued: 2, .. } if id.ends_with("0003")));
    assert_eq!(verdicts[3], Verdict::SoldOut);
    assert!(matches!(&verdicts[4], Verdict::Held { id, .. } if id.ends_with("0003")));
    assert_eq!(
        app.wait_rows("batched", 2, std::time::Duration::from_secs(5))
            .await,
        2
    );
}
