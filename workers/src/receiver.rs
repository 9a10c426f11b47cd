//! A stand-in for the data platform and the campaign channels, for local runs and tests:
//! accepts the relay's events and the channels' deliveries, keeps them in memory and lists
//! them, and can be told to fail or to answer slowly.
//!
//! ```text
//! POST /events              an event → 200 (or 503 while failing)
//! GET  /events              {count, distinct, events} in arrival order
//! POST /channels/{channel}  a campaign delivery → 200 {distributionId, estimatedReach}
//! GET  /channels            {count, deliveries} in arrival order
//! PUT  /failing             {"failing": true|false}
//! ```

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post, put},
};
use serde_json::{Value, json};

/// The receiver's state; clones share it.
#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    events: Mutex<Vec<Value>>,
    deliveries: Mutex<Vec<Value>>,
    /// Share of requests answered 503, in millionths (1,000,000 = all).
    fail_ppm: AtomicU64,
    /// How long each answer is held back, in ms (a slow platform).
    delay_ms: AtomicU64,
}

impl Receiver {
    /// A receiver failing this share of requests (0.0 to 1.0).
    pub fn failing(share: f64) -> Self {
        let r = Self::default();
        r.set_fail_rate(share);
        r
    }

    /// Fails this share of requests from now on (0.0 to 1.0).
    pub fn set_fail_rate(&self, share: f64) {
        let ppm = (share.clamp(0.0, 1.0) * 1e6) as u64;
        self.inner.fail_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Holds every answer back this long from now on (a slow platform).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.inner.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Every event accepted so far, in arrival order (repeats included).
    pub fn events(&self) -> Vec<Value> {
        self.inner.events.lock().expect("receiver lock").clone()
    }

    /// Every campaign delivery accepted so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Value> {
        self.inner.deliveries.lock().expect("receiver lock").clone()
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/events", post(accept).get(list))
            .route("/channels/{channel}", post(deliver))
            .route("/channels", get(list_deliveries))
            .route("/failing", put(set_failing))
            .route("/health", get(|| async { "ok" }))
            .with_state(self.clone())
    }

    fn should_fail(&self) -> bool {
        let ppm = self.inner.fail_ppm.load(Ordering::Relaxed);
        ppm > 0 && shop::outbox::unit_random() * 1e6 < ppm as f64
    }

    /// Holds the answer back as set, then tells whether to fail this request (the 503 every
    /// route answers then).
    async fn refuse(&self) -> Option<(StatusCode, Json<Value>)> {
        let delay = self.inner.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        self.should_fail()
            .then(|| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"accepted": false}))))
    }
}

async fn accept(State(r): State<Receiver>, Json(event): Json<Value>) -> (StatusCode, Json<Value>) {
    if let Some(refused) = r.refuse().await {
        return refused;
    }
    tracing::info!(event = %event, "event received");
    r.inner.events.lock().expect("receiver lock").push(event);
    (StatusCode::OK, Json(json!({"accepted": true})))
}

/// How many people a channel says it reaches (a fixed figure per channel type).
fn reach(channel: &str) -> i64 {
    match channel {
        "URINEIGHBOR_TV" => 5_000,
        "RINGO_BIZ" => 1_200,
        "GENIE_TV" => 20_000,
        "INSTAGRAM" => 3_000,
        "NAVER_BLOG" => 2_000,
        "KAKAO_CHANNEL" => 1_500,
        _ => 0,
    }
}

async fn deliver(
    State(r): State<Receiver>,
    axum::extract::Path(channel): axum::extract::Path<String>,
    Json(delivery): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if let Some(refused) = r.refuse().await {
        return refused;
    }
    let mut all = r.inner.deliveries.lock().expect("receiver lock");
    all.push(json!({"channel": channel, "delivery": delivery}));
    let id = format!("{channel}-{}", all.len());
    (
        StatusCode::OK,
        Json(json!({"distributionId": id, "estimatedReach": reach(&channel)})),
    )
}

async fn list_deliveries(State(r): State<Receiver>) -> Json<Value> {
    let deliveries = r.deliveries();
    Json(json!({"count": deliveries.len(), "deliveries": deliveries}))
}

async fn list(State(r): State<Receiver>) -> Json<Value> {
    let events = r.events();
    let distinct: std::collections::HashSet<String> = events
        .iter()
        .map(|e| e.get("eventId").map(Value::to_string).unwrap_or_default())
        .collect();
    Json(json!({"count": events.len(), "distinct": distinct.len(), "events": events}))
}

async fn set_failing(State(r): State<Receiver>, Json(body): Json<Value>) -> StatusCode {
    let failing = body.get("failing").and_then(Value::as_bool).unwrap_or(false);
    r.set_fail_rate(if failing { 1.0 } else { 0.0 });
    StatusCode::NO_CONTENT
}
