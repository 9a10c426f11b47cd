//! The dashboard and the alert rules cannot rot: after real traffic through every path they
//! watch, every metric name they use is on `/metrics`; and every series an alert selects is
//! there from the start, before any traffic (an alert over `increase()` or `rate()` needs two
//! samples, so a counter that appears only with the first failure never fires on it).

use std::{collections::BTreeSet, time::Duration};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use workers::receiver::Receiver;

use crate::{
    coupons,
    helpers::{ApiProcess, Options, TestApp, WorkersProcess, fast_jobs, free_port},
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

/// The series an alert rule selects: each metric name with the labels it matches exactly
/// (`name{status="FAILED"}` → (`name`, [(`status`, `FAILED`)])). Regex and negative matchers
/// select series that may rightly be absent (no 5xx yet) and are left out of the labels.
fn selectors(promql: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    for name in metric_names(promql) {
        let mut rest = promql;
        let mut any = false;
        while let Some(at) = rest.find(&name) {
            let after = &rest[at + name.len()..];
            rest = after;
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            any = true;
            let mut labels = Vec::new();
            if let Some(inner) = after
                .strip_prefix('{')
                .and_then(|a| a.split_once('}'))
                .map(|(i, _)| i)
            {
                for matcher in inner.split(',') {
                    if let Some((label, value)) = matcher.split_once('=')
                        && !label.ends_with('!')
                        && !value.starts_with('~')
                    {
                        labels.push((label.trim().to_owned(), value.trim().trim_matches('"').to_owned()));
                    }
                }
            }
            found.push((name.clone(), labels));
        }
        if !any {
            found.push((name, Vec::new()));
        }
    }
    found
}

/// Whether the exposition has a series of `name` carrying every one of `labels`.
fn has_series(exposition: &str, name: &str, labels: &[(String, String)]) -> bool {
    exposition.lines().filter(|l| !l.starts_with('#')).any(|line| {
        let series = line.split_whitespace().next().unwrap_or("");
        let base = series.split('{').next().unwrap_or("");
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| base.strip_suffix(s))
            .unwrap_or(base);
        base == name
            && labels
                .iter()
                .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
    })
}

#[test]
fn selectors_are_read_from_promql() {
    let found = selectors(
        r#"sum(increase(issuer_jobs_finished_total{status="FAILED"}[15m])) > 0 and rate(http_requests_total{status=~"5.."}[1m])"#,
    );
    assert_eq!(
        found,
        [
            ("http_requests_total".to_owned(), vec![]),
            (
                "issuer_jobs_finished_total".to_owned(),
                vec![("status".to_owned(), "FAILED".to_owned())]
            ),
        ]
    );
    let exposition = "# TYPE x counter\nissuer_jobs_finished_total{job_type=\"A\",status=\"FAILED\"} 0\n";
    assert!(has_series(exposition, "issuer_jobs_finished_total", &found[1].1));
    assert!(!has_series(
        exposition,
        "issuer_jobs_finished_total",
        &[("status".into(), "COMPLETED".into())]
    ));
    assert!(!has_series(exposition, "http_requests_total", &[]));
}

/// A fresh api and workers process, before any traffic but their probes: every series the
/// alert rules select is already exported (counters at 0), so the first failure after a start
/// moves a counter Prometheus has already seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_an_alert_selects_is_exported_from_the_start() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rules = std::fs::read_to_string(root.join("ops/alerts.yml")).unwrap();
    let wanted = selectors(&rules);
    assert!(wanted.len() >= 8, "the rules select only {wanted:?}");

    let core = TestApp::fresh_core(&Options::default()).await;
    let api = ApiProcess::start(&core).await;
    let workers_addr = format!("127.0.0.1:{}", free_port());
    let _workers = WorkersProcess::start_with(&core, &[("WORKERS_ADDR", &workers_addr)]);
    let http = reqwest::Client::new();
    let workers_metrics = format!("http://{workers_addr}/metrics");
    let mut exposition = String::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(&workers_metrics).send().await
            && r.status() == 200
        {
            tokio::time::sleep(Duration::from_millis(1_200)).await; // gauges measured each second
            exposition = http
                .get(&workers_metrics)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !exposition.is_empty(),
        "the workers process never served /metrics"
    );
    let api_metrics = http.get(format!("{}/metrics", api.base)).send().await.unwrap();
    exposition.push_str(&api_metrics.text().await.unwrap());

    let missing: Vec<String> = wanted
        .iter()
        .filter(|(name, labels)| !has_series(&exposition, name, labels))
        .map(|(name, labels)| format!("{name}{labels:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "selected by ops/alerts.yml but not exported by a fresh api or workers: {missing:?}\n{exposition}"
    );
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
    // A waiting room: a join, a pass given, the pass used (one request a second per user here).
    let now = chrono::Utc::now();
    let at = |ms: i64| {
        (now + chrono::Duration::milliseconds(ms)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let gated = json!({
        "eventKey": "observed-room", "name": "room", "totalQuantity": 10,
        "startAt": at(300), "endAt": at(86_400_000),
        "admission": {"enabled": true, "prequeueOpensAt": at(-1_000), "admitPerSecond": 1000, "passTtlSeconds": 60},
    });
    assert_eq!(app.post("/events", &app.admin(), &gated).await.status(), 201);
    let r = app
        .post(
            "/events/observed-room/queue",
            &app.user(10),
            &json!({"userId": 10}),
        )
        .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let place: Value = app
        .get("/events/observed-room/queue/10", Some(&app.user(10)))
        .await
        .json()
        .await
        .unwrap();
    let pass = place["pass"].as_str().expect("admitted").to_owned();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = app
        .http
        .post(app.url("/events/observed-room/tickets"))
        .bearer_auth(app.user(10))
        .header("x-admission-pass", pass)
        .json(&json!({"userId": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
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
