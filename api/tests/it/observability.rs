//! The dashboard and the alert rules cannot rot: after real traffic through every path they
//! watch, every metric name they use is on `/metrics`.

use std::{collections::BTreeSet, time::Duration};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use workers::receiver::Receiver;

use crate::{
    coupons,
    helpers::{Options, TestApp, fast_jobs},
    orders::{charge, expiry, order, pay, product, user},
    outbox::{relay, serve, wait_until},
};

/// Metric names in a dashboard or rules file: every `issuer_…`/`http_…` identifier, with the
/// histogram suffixes PromQL adds taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '_');
        if boundary && (rest.starts_with("issuer_") || rest.starts_with("http_")) {
            let name: String = bytes[i..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || **c == '_')
                .collect();
            i += name.len();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_owned();
            names.insert(base);
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn names_are_read_from_promql() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[1m]))) / max(issuer_outbox_dead)",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["http_request_duration_seconds", "issuer_outbox_dead"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_alerts_is_exported() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut wanted = BTreeSet::new();
    for file in ["ops/grafana/dashboards/issuance.json", "ops/alerts.yml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let names = metric_names(&text);
        assert!(names.len() >= 5, "{file} names only {names:?}");
        wanted.extend(names);
    }

    let app = TestApp::spawn_with(Options {
        order_ttl: Duration::from_millis(200),
        user_rate: 1,
        user_burst: 1,
        ..Options::default()
    })
    .await;
    app.start_jobs(fast_jobs());
    let _expiry = expiry(&app);
    let receiver = Receiver::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let _platform = serve(listener, &receiver);
    let _relay = relay(&app, &url, 1_000);

    // Tickets: issued, a duplicate, rate-limited; the rules lost and rebuilt; scripts flushed.
    app.create_event("observed", 100, None).await;
    assert_eq!(app.issue("observed", 1).await.status(), 201);
    let _ = app.issue("observed", 1).await;
    let _: i64 = app
        .redis_cmd("DEL", vec![app.keys.ticket_event("observed").meta.clone()])
        .await;
    let _: String = app.redis_cmd("SCRIPT", vec!["FLUSH".into()]).await;
    assert_eq!(app.issue("observed", 2).await.status(), 201);
    assert_eq!(app.wait_rows("observed", 2, Duration::from_secs(10)).await, 2);
    // A first-come coupon issued.
    let (_, open) = coupons::batch(&app, coupons::Setup::default()).await;
    assert_eq!(coupons::issue(&app, open, 3).await.status(), 201);
    // A coupon job.
    let batch = app.coupon_batch(100, 50, "SELF").await;
    let accepted = app
        .admin_post(
            &format!("/api/v1/admin/coupon-batches/{batch}/generate-coupons"),
            &json!({}),
            202,
        )
        .await;
    let job = accepted["jobId"].as_str().unwrap().to_owned();
    app.wait_job(&job, Duration::from_secs(30), |j| j["jobStatus"] == "COMPLETED")
        .await;
    // Orders: one paid (its event delivered), one left to expire.
    let (u, p) = (user(&app).await, product(&app, 100, 10).await);
    charge(&app, u, 1_000).await;
    let placed: Value = order(&app, u, json!([{"productId": p, "qty": 1}]), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        pay(&app, u, placed["orderId"].as_i64().unwrap()).await.status(),
        200
    );
    assert_eq!(
        order(&app, u, json!([{"productId": p, "qty": 1}]), None)
            .await
            .status(),
        201
    );
    wait_until(Duration::from_secs(10), "the expiry and the delivery", || async {
        let expired: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'FAILED'")
            .fetch_one(&app.db)
            .await
            .unwrap();
        expired == 1 && !receiver.events().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await; // the relay's gauges refresh each second

    // The api's /metrics and a workers process's (which measures the job gauges).
    let mut text = app.get("/metrics", None).await.text().await.unwrap();
    let ops = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops_url = format!("http://{}/metrics", ops.local_addr().unwrap());
    let ops_app = workers::ops::router(workers::ops::OpsState {
        redis: app.redis.clone(),
        db: app.db.clone(),
        metrics: api::telemetry::metrics_handle(),
    });
    tokio::spawn(async move { axum::serve(ops, ops_app).await });
    text.push_str(&app.http.get(&ops_url).send().await.unwrap().text().await.unwrap());
    let exported = metric_names(&text);
    assert!(
        text.contains("issuer_coupon_jobs{status=\"COMPLETED\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!("issuer_coupon_remaining{{batch=\"{open}\"}} 99")),
        "{text}"
    );
    let missing: Vec<&String> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "used by the dashboard or alerts but not exported: {missing:?}"
    );
}
