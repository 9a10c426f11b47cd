//! Marketing campaigns end to end: the seed's routes and errors, ownership, both recommenders
//! (the HTTP one against a local chat-completions stand-in), banners, jobs that fail or lose
//! their worker, publishing all-or-nothing, channels that fail or time out and their circuit,
//! and a prize that sells out through the hot path with `participantCount` equal to it.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing};
use campaigns::{
    channels::ChannelConfig,
    recommend::{Builtin, ChatCompletions, ChatConfig, Recommender},
};
use issuance_core::enums::ChannelType;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use workers::{campaign_jobs::CampaignJobsConfig, receiver::Receiver};

use crate::{
    helpers::{Options, TestApp},
    outbox::serve,
};

const OWNER: i64 = 7;

fn builtin() -> Arc<dyn Recommender> {
    Arc::new(Builtin)
}

/// An app running campaign jobs with `recommender`, its channels at `channels`.
async fn app_with(channels: ChannelConfig, recommender: Arc<dyn Recommender>) -> TestApp {
    let app = TestApp::spawn_with(Options {
        channels,
        ..Options::default()
    })
    .await;
    app.start_campaign_jobs(recommender, jobs_cfg());
    app
}

fn jobs_cfg() -> CampaignJobsConfig {
    CampaignJobsConfig {
        lease: Duration::from_millis(600),
        sweep_every: Duration::from_millis(100),
        poll_every: Duration::from_millis(50),
        ..CampaignJobsConfig::default()
    }
}

fn channels_at(base: &str) -> ChannelConfig {
    ChannelConfig {
        urls: ChannelConfig::under(base),
        timeout: Duration::from_secs(2),
        failures_to_open: 3,
        open_for: Duration::from_secs(30),
    }
}

/// A receiver standing in for every channel → its base URL.
async fn channels(receiver: &Receiver) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::mem::forget(serve(listener, receiver));
    base
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    json_of(app.post(path, token, &body).await).await
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    json_of(app.put(path, token, &body).await).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    json_of(app.get(path, Some(token)).await).await
}

fn store() -> Value {
    json!({"storeName": "우리동네 카페", "industry": "카페", "region": "서울 강남구", "address": "테헤란로 1"})
}

async fn draft(app: &TestApp, token: &str) -> String {
    let (s, b) = post(
        app,
        "/api/events/purposes",
        token,
        json!({"objective": "NEW_CUSTOMER", "storeInfo": store()}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "DRAFT");
    assert_eq!(b["objective"], "NEW_CUSTOMER");
    b["eventDraftId"].as_str().unwrap().to_owned()
}

/// Polls a job until it ends → its last state.
async fn job(app: &TestApp, token: &str, job_id: &str) -> Value {
    for _ in 0..300 {
        let (s, b) = get(app, &format!("/api/jobs/{job_id}/status"), token).await;
        assert_eq!(s, 200, "{b}");
        if b["status"] == "COMPLETED" || b["status"] == "FAILED" {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job_id} never ended");
}

async fn start_job(app: &TestApp, token: &str, path: &str) -> String {
    let (s, b) = post(app, path, token, json!({})).await;
    assert_eq!(s, 202, "{path}: {b}");
    assert_eq!(b["status"], "PENDING");
    b["jobId"].as_str().unwrap().to_owned()
}

fn today() -> String {
    issuance_core::clock::kst_date(chrono::Utc::now()).to_string()
}

fn in_days(n: u64) -> String {
    (issuance_core::clock::kst_date(chrono::Utc::now()) + chrono::Days::new(n)).to_string()
}

/// A draft taken up to publishing: recommendations, choice (prize `kind`, `quantity`), banners,
/// content → (campaign id, a banner URL of its banner job).
async fn ready_draft(app: &TestApp, token: &str, kind: &str, quantity: i64) -> (String, String) {
    let id = draft(app, token).await;
    let rec = start_job(app, token, &format!("/api/events/{id}/ai-recommendations")).await;
    let done = job(app, token, &rec).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["recommendations"].as_array().unwrap().len(), 3);
    let (s, b) = put(
        app,
        &format!("/api/events/drafts/{id}/recommendation"),
        token,
        json!({"jobId": rec, "index": 1, "prizeType": kind, "quantity": quantity,
               "startDate": today(), "endDate": in_days(30)}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["prizes"][0]["quantity"], quantity);
    assert_eq!(b["prizes"][0]["prizeType"], kind);
    let img = start_job(app, token, &format!("/api/events/{id}/content-generation")).await;
    let done = job(app, token, &img).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["progress"], 100);
    let url = done["imageUrls"]["trendy"].as_str().unwrap().to_owned();
    let (s, b) = put(
        app,
        &format!("/api/events/drafts/{id}/content"),
        token,
        json!({"selectedImageUrl": url, "editedContent": {"title": "친구와 함께 오세요", "backgroundColor": "#fff", "accentColor": "#FF0055"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["editedContent"]["title"], "친구와 함께 오세요");
    assert_ne!(
        b["selectedImageUrl"],
        url.as_str(),
        "the edited banner is drawn anew"
    );
    (id, url)
}

async fn png(app: &TestApp, url: &str) -> Vec<u8> {
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "image/png");
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!((be(&bytes[16..20]), be(&bytes[20..24])), (1200, 630));
    bytes
}

#[tokio::test]
async fn a_published_campaign_sells_its_golden_tickets_through_the_hot_path() {
    let receiver = Receiver::default();
    let app = app_with(channels_at(&channels(&receiver).await), builtin()).await;
    let owner = app.user(OWNER);
    let (id, generated) = ready_draft(&app, &owner, "GOLDEN_TICKET", 20).await;
    png(&app, &generated).await;

    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "INSTAGRAM", "settings": {"hashtags": ["카페"]}}, {"channelType": "KAKAO_CHANNEL"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "ACTIVE");
    let results = b["distributionResults"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r["status"], "SUCCESS", "{r}");
        assert!(r["distributionId"].as_str().is_some());
        assert!(r["estimatedReach"].as_i64().unwrap() > 0);
    }
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0]["delivery"]["settings"]["hashtags"][0], "카페");
    let (_, detail) = get(&app, &format!("/api/events/{id}"), &owner).await;
    assert_eq!(detail["event"]["status"], "ACTIVE");
    assert_eq!(detail["event"]["title"], "친구와 함께 오세요");
    let key = detail["prizes"][0]["eventKey"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("campaign-{id}"));
    let banner = detail["event"]["selectedImageUrl"].as_str().unwrap().to_owned();
    png(&app, &banner).await;
    assert_eq!(
        detail["distributionStatus"]["channels"].as_array().unwrap().len(),
        2
    );

    // 60 people (some twice) go for 20 tickets through the engine's issue route.
    let answers = futures::future::join_all((0..80).map(|i| {
        let app = &app;
        let key = key.clone();
        async move {
            let user = 1_000 + (i % 60);
            app.issue(&key, user).await.status().as_u16()
        }
    }))
    .await;
    let issued = answers.iter().filter(|s| **s == 201).count();
    assert_eq!(issued, 20, "{answers:?}");
    assert!(answers.iter().all(|s| [200, 201, 409].contains(s)), "{answers:?}");

    let (_, detail) = get(&app, &format!("/api/events/{id}"), &owner).await;
    assert_eq!(detail["event"]["participantCount"], 20);
    assert_eq!(detail["prizes"][0]["issuedCount"], 20);
    let (_, list) = get(&app, "/api/events?sort=participantCount,desc", &owner).await;
    assert_eq!(list["events"][0]["eventId"], id.as_str());
    assert_eq!(list["events"][0]["participantCount"], 20);
    let (_, dash) = get(&app, "/api/events/dashboard", &owner).await;
    assert_eq!(dash["active"][0]["eventId"], id.as_str());
    assert_eq!(
        dash["active"][0]["participantCount"], 20,
        "live, not from the cached rows"
    );
    assert!(
        dash["active"][0]["viewCount"].as_i64().unwrap() >= 2,
        "banners served count as views"
    );

    // Every ticket reaches Postgres through the drain.
    crate::outbox::wait_until(Duration::from_secs(20), "tickets persisted", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets WHERE event_key = $1")
            .bind(&key)
            .fetch_one(&app.db)
            .await
            .unwrap();
        n == 20
    })
    .await;
}

#[tokio::test]
async fn a_coupon_prize_is_a_first_come_batch_counted_live() {
    let receiver = Receiver::default();
    let app = app_with(channels_at(&channels(&receiver).await), builtin()).await;
    let owner = app.user(OWNER);
    let (id, _) = ready_draft(&app, &owner, "COUPON", 5).await;
    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "NAVER_BLOG"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, detail) = get(&app, &format!("/api/events/{id}"), &owner).await;
    let batch = detail["prizes"][0]["couponId"].as_i64().unwrap();
    assert!(
        detail["prizes"][0]["claimUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/coupons/{batch}/issue"))
    );
    let mut issued = 0;
    for u in 0..8 {
        let r = app
            .post(
                &format!("/api/v1/coupons/{batch}/issue"),
                &app.user(2_000 + u),
                &json!({"userId": 2_000 + u}),
            )
            .await;
        let (s, b) = json_of(r).await;
        if s == 201 {
            issued += 1;
            assert!(b["code"].as_str().is_some());
        } else {
            assert_eq!(b["code"], "COUPON_SOLD_OUT", "{b}");
        }
    }
    assert_eq!(issued, 5);
    let (_, detail) = get(&app, &format!("/api/events/{id}"), &owner).await;
    assert_eq!(detail["event"]["participantCount"], 5);
}

#[tokio::test]
async fn campaigns_belong_to_their_owner_and_admins_see_all() {
    let receiver = Receiver::default();
    let app = app_with(channels_at(&channels(&receiver).await), builtin()).await;
    let owner = app.user(OWNER);
    let other = app.user(OWNER + 1);
    let id = draft(&app, &owner).await;
    let rec = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    job(&app, &owner, &rec).await;

    let forbidden: Vec<(&str, String, Value)> = vec![
        ("GET", format!("/api/events/{id}"), Value::Null),
        ("GET", format!("/api/jobs/{rec}/status"), Value::Null),
        ("POST", format!("/api/events/{id}/ai-recommendations"), json!({})),
        ("POST", format!("/api/events/{id}/content-generation"), json!({})),
        (
            "PUT",
            format!("/api/events/drafts/{id}/recommendation"),
            json!({"jobId": rec, "index": 0, "startDate": today(), "endDate": in_days(3)}),
        ),
        (
            "PUT",
            format!("/api/events/drafts/{id}/content"),
            json!({"selectedImageUrl": "http://x/api/events/images/00000000-0000-0000-0000-000000000000", "editedContent": {}}),
        ),
        (
            "POST",
            format!("/api/events/{id}/publish"),
            json!({"selectedChannels": [{"channelType": "INSTAGRAM"}]}),
        ),
    ];
    for (method, path, body) in &forbidden {
        let (s, b) = match *method {
            "GET" => get(&app, path, &other).await,
            "POST" => post(&app, path, &other, body.clone()).await,
            _ => put(&app, path, &other, body.clone()).await,
        };
        assert_eq!(s, 403, "{method} {path}: {b}");
        assert_eq!(b["code"], "FORBIDDEN");
        // No token at all: 401.
        let r = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }
    // Others' lists and dashboards do not show it; an admin's do.
    let (_, list) = get(&app, "/api/events", &other).await;
    assert_eq!(list["totalCount"], 0);
    let (_, list) = get(&app, "/api/events", &app.admin()).await;
    assert_eq!(list["totalCount"], 1);
    let (s, _) = get(&app, &format!("/api/events/{id}"), &app.admin()).await;
    assert_eq!(s, 200);
    let (s, _) = get(&app, &format!("/api/jobs/{rec}/status"), &app.admin()).await;
    assert_eq!(s, 200);
    // Unknown and malformed ids are 404 with their codes.
    for (path, code) in [
        (
            "/api/events/00000000-0000-0000-0000-000000000000".to_owned(),
            "CAMPAIGN_NOT_FOUND",
        ),
        ("/api/events/not-a-uuid".to_owned(), "CAMPAIGN_NOT_FOUND"),
        (
            "/api/jobs/00000000-0000-0000-0000-000000000000/status".to_owned(),
            "JOB_NOT_FOUND",
        ),
        ("/api/jobs/nope/status".to_owned(), "JOB_NOT_FOUND"),
    ] {
        let (s, b) = get(&app, &path, &owner).await;
        assert_eq!((s, b["code"].as_str().unwrap()), (404, code), "{path}");
    }
    let r = app
        .http
        .get(app.url("/api/events/images/00000000-0000-0000-0000-000000000000"))
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(r).await;
    assert_eq!((s, b["code"].as_str().unwrap()), (404, "IMAGE_NOT_FOUND"));
    let (s, b) = post(
        &app,
        "/api/events/00000000-0000-0000-0000-000000000000/publish",
        &owner,
        json!({"selectedChannels": [{"channelType": "INSTAGRAM"}]}),
    )
    .await;
    assert_eq!((s, b["code"].as_str().unwrap()), (404, "CAMPAIGN_NOT_FOUND"));
}

#[tokio::test]
async fn bad_input_gets_field_level_400s_and_steps_out_of_order_are_refused() {
    let receiver = Receiver::default();
    let app = app_with(channels_at(&channels(&receiver).await), builtin()).await;
    let owner = app.user(OWNER);

    // Create: every field named.
    let (s, b) = post(&app, "/api/events/purposes", &owner, json!({"objective": "NEW_CUSTOMER",
        "storeInfo": {"storeName": "가".repeat(51), "industry": " ", "region": "서울", "address": "a".repeat(201)}})).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["code"], "INVALID_REQUEST");
    let fields: Vec<&str> = b["fieldErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["storeInfo.storeName", "storeInfo.industry", "storeInfo.address"]
    );
    for body in [
        json!({"objective": "WORLD_DOMINATION", "storeInfo": store()}),
        json!({"storeInfo": store()}),
        json!({"objective": "REVISIT"}),
        json!({"objective": "REVISIT", "storeInfo": store(), "extra": 1}),
        json!([1, 2]),
    ] {
        let (s, b) = post(&app, "/api/events/purposes", &owner, body.clone()).await;
        assert_eq!(
            (s, b["code"].as_str().unwrap()),
            (400, "INVALID_REQUEST"),
            "{body}"
        );
    }

    let id = draft(&app, &owner).await;
    // Banners need a chosen recommendation; publishing needs it and the content.
    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/content-generation"),
        &owner,
        json!({}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str().unwrap()),
        (400, "CAMPAIGN_NOT_READY"),
        "{b}"
    );
    assert_eq!(b["missing"], json!(["recommendation"]));
    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "INSTAGRAM"}]}),
    )
    .await;
    assert_eq!((s, b["code"].as_str().unwrap()), (400, "CAMPAIGN_NOT_READY"));
    assert_eq!(b["missing"], json!(["recommendation", "content"]));
    // A job of nothing, or one still running, cannot be chosen from.
    let (s, b) = put(&app, &format!("/api/events/drafts/{id}/recommendation"), &owner,
        json!({"jobId": "00000000-0000-0000-0000-000000000000", "index": 0, "startDate": today(), "endDate": in_days(3)})).await;
    assert_eq!(
        (s, b["code"].as_str().unwrap()),
        (409, "RECOMMENDATION_NOT_READY"),
        "{b}"
    );

    let rec = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    job(&app, &owner, &rec).await;
    let choose = |body: Value| {
        let app = &app;
        let owner = owner.clone();
        let id = id.clone();
        async move {
            put(
                app,
                &format!("/api/events/drafts/{id}/recommendation"),
                &owner,
                body,
            )
            .await
        }
    };
    let (s, b) = choose(
        json!({"jobId": rec, "index": 3, "quantity": 0, "title": "가".repeat(51),
        "startDate": in_days(5), "endDate": in_days(1)}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let fields: Vec<&str> = b["fieldErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["index", "title", "quantity", "endDate"]);
    let (s, b) =
        choose(json!({"jobId": rec, "index": 0, "startDate": "2020-01-01", "endDate": "2020-01-02"})).await;
    assert_eq!(
        (s, b["fieldErrors"][0]["field"].as_str().unwrap()),
        (400, "endDate")
    );
    let (s, b) =
        choose(json!({"jobId": rec, "index": 0, "startDate": today(), "endDate": in_days(400)})).await;
    assert_eq!(
        (s, b["fieldErrors"][0]["field"].as_str().unwrap()),
        (400, "endDate")
    );
    let (s, _) =
        choose(json!({"jobId": rec, "index": 0, "startDate": "2026-13-01", "endDate": in_days(1)})).await;
    assert_eq!(s, 400);
    let (s, b) = choose(
        json!({"jobId": rec, "index": 0, "prizeType": "COUPON", "startDate": today(), "endDate": in_days(2)}),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    let img = start_job(&app, &owner, &format!("/api/events/{id}/content-generation")).await;
    let done = job(&app, &owner, &img).await;
    let url = done["imageUrls"]["simple"].as_str().unwrap().to_owned();
    // Content: colours must match the seed's pattern; lengths are bounded; the URL must be ours.
    let (s, b) = put(&app, &format!("/api/events/drafts/{id}/content"), &owner, json!({"selectedImageUrl": url,
        "editedContent": {"backgroundColor": "#ggg", "textColor": "red", "accentColor": "#12345", "participationText": "x".repeat(301)}})).await;
    assert_eq!(s, 400, "{b}");
    let fields: Vec<&str> = b["fieldErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "editedContent.participationText",
            "editedContent.backgroundColor",
            "editedContent.textColor",
            "editedContent.accentColor"
        ]
    );
    for bad in [
        "https://example.com/banner.png".to_owned(),
        format!("{}/api/events/images/{}", app.base, uuid::Uuid::now_v7()),
    ] {
        let (s, b) = put(
            &app,
            &format!("/api/events/drafts/{id}/content"),
            &owner,
            json!({"selectedImageUrl": bad, "editedContent": {}}),
        )
        .await;
        assert_eq!(
            (s, b["code"].as_str().unwrap()),
            (400, "INVALID_IMAGE_URL"),
            "{bad}"
        );
    }
    // Another campaign's banner is not this one's.
    let other = draft(&app, &owner).await;
    let (s, b) = put(
        &app,
        &format!("/api/events/drafts/{other}/content"),
        &owner,
        json!({"selectedImageUrl": url, "editedContent": {}}),
    )
    .await;
    assert_eq!((s, b["code"].as_str().unwrap()), (400, "INVALID_IMAGE_URL"));
    let (s, b) = put(
        &app,
        &format!("/api/events/drafts/{id}/content"),
        &owner,
        json!({"selectedImageUrl": url, "editedContent": {"textColor": "#000"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // Publish: channels are required, known and not repeated.
    for body in [
        json!({"selectedChannels": []}),
        json!({"selectedChannels": [{"channelType": "INSTAGRAM"}, {"channelType": "INSTAGRAM"}]}),
        json!({"selectedChannels": [{"channelType": "TIKTOK"}]}),
        json!({"selectedChannels": [{"channelType": "INSTAGRAM", "settings": [1]}]}),
        json!({}),
    ] {
        let (s, b) = post(&app, &format!("/api/events/{id}/publish"), &owner, body.clone()).await;
        assert_eq!(
            (s, b["code"].as_str().unwrap()),
            (400, "INVALID_REQUEST"),
            "{body}: {b}"
        );
    }
    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "GENIE_TV"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // Published: the draft steps are closed.
    for (path, body) in [
        (format!("/api/events/{id}/ai-recommendations"), json!({})),
        (format!("/api/events/{id}/content-generation"), json!({})),
    ] {
        let (s, b) = post(&app, &path, &owner, body).await;
        assert_eq!(
            (s, b["code"].as_str().unwrap()),
            (409, "CAMPAIGN_NOT_EDITABLE"),
            "{path}"
        );
    }
    let (s, b) = put(
        &app,
        &format!("/api/events/drafts/{id}/content"),
        &owner,
        json!({"selectedImageUrl": url, "editedContent": {}}),
    )
    .await;
    assert_eq!((s, b["code"].as_str().unwrap()), (409, "CAMPAIGN_NOT_EDITABLE"));
    // Publishing again distributes nothing new and creates no second prize.
    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "GENIE_TV"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(receiver.deliveries().len(), 1);
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM coupon_batches")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(batches, 1);

    // List queries.
    for q in [
        "?sort=views",
        "?size=0",
        "?size=101",
        "?page=-1",
        "?status=PAUSED",
        "?unknown=1",
    ] {
        let (s, b) = get(&app, &format!("/api/events{q}"), &owner).await;
        assert_eq!((s, b["code"].as_str().unwrap()), (400, "INVALID_REQUEST"), "{q}");
    }
}

#[tokio::test]
async fn list_filters_sorts_and_pages_and_the_dashboard_is_cached_until_a_change() {
    let receiver = Receiver::default();
    let app = app_with(channels_at(&channels(&receiver).await), builtin()).await;
    let owner = app.user(OWNER);
    let (a, _) = ready_draft(&app, &owner, "GOLDEN_TICKET", 10).await;
    let (b, _) = ready_draft(&app, &owner, "GOLDEN_TICKET", 10).await;
    let plain = draft(&app, &owner).await;
    for id in [&a, &b] {
        let (s, body) = post(
            &app,
            &format!("/api/events/{id}/publish"),
            &owner,
            json!({"selectedChannels": [{"channelType": "RINGO_BIZ"}]}),
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
    let key_b = format!("campaign-{b}");
    for u in 0..3 {
        assert_eq!(app.issue(&key_b, 3_000 + u).await.status(), 201);
    }
    let ids = |v: &Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = get(&app, "/api/events", &owner).await;
    assert_eq!(all["totalCount"], 3);
    let (_, active) = get(&app, "/api/events?status=ACTIVE", &owner).await;
    assert_eq!(active["totalCount"], 2);
    let (_, drafts) = get(&app, "/api/events?status=DRAFT", &owner).await;
    assert_eq!(drafts["totalCount"], 1);
    let (_, by_people) = get(&app, "/api/events?sort=participantCount,desc&size=1", &owner).await;
    assert_eq!(ids(&by_people), [b.as_str()]);
    assert_eq!(
        (
            by_people["totalPages"].as_i64(),
            by_people["currentPage"].as_i64()
        ),
        (Some(3), Some(0))
    );
    let (_, page2) = get(&app, "/api/events?sort=createdAt,desc&size=2&page=1", &owner).await;
    assert_eq!(ids(&page2).len(), 1);
    let (_, newest) = get(&app, "/api/events?size=1", &owner).await;
    assert_eq!(ids(&newest), [plain.as_str()], "newest first");
    let (_, kw) = get(&app, "/api/events?keyword=%EC%B9%9C%EA%B5%AC", &owner).await; // 친구
    assert_eq!(kw["totalCount"], 2);
    let (_, none) = get(&app, "/api/events?keyword=zzz", &owner).await;
    assert_eq!(none["totalCount"], 0);
    let (_, roi) = get(&app, "/api/events?sort=roi,desc", &owner).await;
    assert_eq!(roi["totalCount"], 3);

    let (_, dash) = get(&app, "/api/events/dashboard", &owner).await;
    assert_eq!(dash["active"].as_array().unwrap().len(), 2);
    assert_eq!(dash["active"][0]["eventId"], b.as_str(), "newest first");
    assert_eq!(dash["approved"], json!([]));
    // A change behind the api's back is not seen while cached …
    sqlx::query("UPDATE campaigns SET title = 'changed' WHERE campaign_id = $1::uuid")
        .bind(&a)
        .execute(&app.db)
        .await
        .unwrap();
    let (_, dash) = get(&app, "/api/events/dashboard", &owner).await;
    assert!(
        dash["active"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["title"] != "changed")
    );
    // … and a change through it drops the cache at once.
    let (c, _) = ready_draft(&app, &owner, "GOLDEN_TICKET", 10).await;
    let (s, _) = post(
        &app,
        &format!("/api/events/{c}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "RINGO_BIZ"}]}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, dash) = get(&app, "/api/events/dashboard", &owner).await;
    let active = dash["active"].as_array().unwrap();
    assert_eq!(active.len(), 3);
    assert!(active.iter().any(|e| e["title"] == "changed"));
    // At most five per status.
    for _ in 0..4 {
        let (id, _) = ready_draft(&app, &owner, "GOLDEN_TICKET", 1).await;
        let (s, _) = post(
            &app,
            &format!("/api/events/{id}/publish"),
            &owner,
            json!({"selectedChannels": [{"channelType": "RINGO_BIZ"}]}),
        )
        .await;
        assert_eq!(s, 200);
    }
    let (_, dash) = get(&app, "/api/events/dashboard", &owner).await;
    assert_eq!(dash["active"].as_array().unwrap().len(), 5);
    // A campaign whose period ended reads as COMPLETED everywhere.
    sqlx::query("UPDATE campaigns SET start_date = current_date - 10, end_date = current_date - 3 WHERE campaign_id = $1::uuid")
        .bind(&a)
        .execute(&app.db)
        .await
        .unwrap();
    let (_, done) = get(&app, "/api/events?status=COMPLETED", &owner).await;
    assert_eq!(ids(&done), [a.as_str()]);
    let (_, detail) = get(&app, &format!("/api/events/{a}"), &owner).await;
    assert_eq!(detail["event"]["status"], "COMPLETED");
    let (s, body) = post(
        &app,
        &format!("/api/events/{a}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "GENIE_TV"}]}),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str().unwrap()),
        (409, "CAMPAIGN_NOT_EDITABLE")
    );
}

#[tokio::test]
async fn publishing_is_all_or_nothing() {
    let receiver = Receiver::default();
    let app = app_with(channels_at(&channels(&receiver).await), builtin()).await;
    let owner = app.user(OWNER);
    let (id, _) = ready_draft(&app, &owner, "GOLDEN_TICKET", 10).await;
    // The prize's event key is taken: creating the prize fails inside the approving
    // transaction, so the campaign stays a DRAFT and no channel hears of it.
    let (s, b) = post(
        &app,
        "/events",
        &app.admin(),
        json!({"eventKey": format!("campaign-{id}"), "name": "squatter",
        "totalQuantity": 1, "startAt": "2026-01-01T00:00:00Z", "endAt": "2027-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "INSTAGRAM"}]}),
    )
    .await;
    assert_eq!((s, b["code"].as_str().unwrap()), (409, "DUPLICATE_EVENT"), "{b}");
    let (_, detail) = get(&app, &format!("/api/events/{id}"), &owner).await;
    assert_eq!(detail["event"]["status"], "DRAFT");
    assert!(detail["prizes"][0]["eventKey"].is_null());
    assert!(receiver.deliveries().is_empty());
    // And no campaign leaves DRAFT without its prize: the table refuses it.
    let err = sqlx::query("UPDATE campaigns SET status = 'APPROVED' WHERE campaign_id = $1::uuid")
        .bind(&id)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("campaigns_prize_when_approved"), "{err}");
    // Once the key is free, publishing works.
    sqlx::query("DELETE FROM ticket_events WHERE event_key = $1")
        .bind(format!("campaign-{id}"))
        .execute(&app.db)
        .await
        .unwrap();
    let (s, b) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "INSTAGRAM"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn failing_channels_keep_the_prize_report_each_channel_and_open_their_circuit() {
    let healthy = Receiver::default();
    let broken = Receiver::failing(1.0);
    let slow = Receiver::default();
    slow.set_delay(Duration::from_secs(3));
    let (h, b, s) = (
        channels(&healthy).await,
        channels(&broken).await,
        channels(&slow).await,
    );
    let mut cfg = channels_at(&h);
    cfg.urls
        .insert(ChannelType::KakaoChannel, format!("{b}/channels/KAKAO_CHANNEL"));
    cfg.urls
        .insert(ChannelType::GenieTv, format!("{s}/channels/GENIE_TV"));
    cfg.urls.remove(&ChannelType::NaverBlog);
    cfg.timeout = Duration::from_millis(300);
    cfg.failures_to_open = 2;
    let app = app_with(cfg, builtin()).await;
    let owner = app.user(OWNER);

    // Every selected channel fails: 503 with each result, the campaign APPROVED with its prize.
    let (id, _) = ready_draft(&app, &owner, "GOLDEN_TICKET", 10).await;
    let (st, body) = post(&app, &format!("/api/events/{id}/publish"), &owner,
        json!({"selectedChannels": [{"channelType": "KAKAO_CHANNEL"}, {"channelType": "GENIE_TV"}, {"channelType": "NAVER_BLOG"}]})).await;
    assert_eq!(
        (st, body["code"].as_str().unwrap()),
        (503, "DISTRIBUTION_FAILED"),
        "{body}"
    );
    let results = body["distributionResults"].as_array().unwrap();
    assert!(results.iter().all(|r| r["status"] == "FAILED"), "{body}");
    assert!(results[0]["error"].as_str().unwrap().contains("503"), "{body}");
    assert!(
        results[1]["error"].as_str().unwrap().contains("시간 초과"),
        "{body}"
    );
    assert!(results[2]["error"].as_str().unwrap().contains("설정"), "{body}");
    let (_, detail) = get(&app, &format!("/api/events/{id}"), &owner).await;
    assert_eq!(detail["event"]["status"], "APPROVED");
    let key = detail["prizes"][0]["eventKey"].as_str().unwrap().to_owned();
    assert_eq!(
        app.issue(&key, 5_000).await.status(),
        201,
        "the prize runs whatever the channels did"
    );
    let (_, dash) = get(&app, "/api/events/dashboard", &owner).await;
    assert_eq!(dash["approved"][0]["eventId"], id.as_str());

    // The second failure in a row opens KAKAO_CHANNEL's circuit; the third call never goes out.
    let kakao = json!({"selectedChannels": [{"channelType": "KAKAO_CHANNEL"}]});
    let (st, body) = post(&app, &format!("/api/events/{id}/publish"), &owner, kakao.clone()).await;
    assert_eq!(st, 503);
    assert!(
        body["distributionResults"][0]["error"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    let (st, body) = post(&app, &format!("/api/events/{id}/publish"), &owner, kakao.clone()).await;
    assert_eq!(st, 503);
    assert!(
        body["distributionResults"][0]["error"]
            .as_str()
            .unwrap()
            .contains("circuit open"),
        "{body}"
    );
    broken.set_fail_rate(0.0);
    let (st, body) = post(&app, &format!("/api/events/{id}/publish"), &owner, kakao.clone()).await;
    assert!(
        body["distributionResults"][0]["error"]
            .as_str()
            .unwrap()
            .contains("circuit open"),
        "still open while its time runs: {st} {body}"
    );
    assert!(broken.deliveries().is_empty());

    // Partial: one channel takes it → ACTIVE, the failed one reported beside it.
    let (st, body) = post(
        &app,
        &format!("/api/events/{id}/publish"),
        &owner,
        json!({"selectedChannels": [{"channelType": "INSTAGRAM"}, {"channelType": "KAKAO_CHANNEL"}]}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "ACTIVE");
    assert_eq!(body["distributionResults"][0]["status"], "SUCCESS");
    assert_eq!(body["distributionResults"][1]["status"], "FAILED");
    let (_, detail) = get(&app, &format!("/api/events/{id}"), &owner).await;
    let chans = detail["distributionStatus"]["channels"].as_array().unwrap();
    let status_of = |t: &str| chans.iter().find(|c| c["channelType"] == t).unwrap()["status"].clone();
    assert_eq!(status_of("INSTAGRAM"), "ACTIVE");
    assert_eq!(status_of("KAKAO_CHANNEL"), "FAILED");
}

/// A chat-completions stand-in: answers from a script of (status, content) in turn, the last
/// one repeated; records every request body and its Authorization header. The first answer
/// can be held back (`first_delay`), as a slow service's would.
#[derive(Clone, Default)]
struct ChatStandIn {
    script: Arc<Mutex<Vec<(u16, String)>>>,
    first_delay: Arc<Mutex<Duration>>,
    calls: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(Value, String)>>>,
}

async fn completions(
    State(s): State<ChatStandIn>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = s.calls.fetch_add(1, Ordering::SeqCst);
    let delay = *s.first_delay.lock().unwrap();
    if n == 0 && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    s.requests.lock().unwrap().push((body, auth));
    let script = s.script.lock().unwrap();
    let (status, content) = script[n.min(script.len() - 1)].clone();
    let answer = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "stand-in",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content, "refusal": null}}]});
    (StatusCode::from_u16(status).unwrap(), Json(answer))
}

async fn chat_stand_in(script: Vec<(u16, String)>) -> (ChatStandIn, String) {
    let s = ChatStandIn {
        script: Arc::new(Mutex::new(script)),
        ..ChatStandIn::default()
    };
    let router = Router::new()
        .route("/v1/chat/completions", routing::post(completions))
        .with_state(s.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (s, base)
}

fn chat(url: &str) -> Arc<dyn Recommender> {
    Arc::new(ChatCompletions::new(ChatConfig {
        url: url.to_owned(),
        model: "stand-in-model".into(),
        api_key: Some("test-key".into()),
        timeout: Duration::from_secs(2),
        retries: 2,
    }))
}

fn good_answer(title: &str) -> String {
    json!({"recommendations": (0..3).map(|i| json!({
        "title": format!("{title} {i}"), "prize": "케이크 교환권", "participationMethod": "매장 방문 후 응모",
        "estimatedCost": 100_000 + i, "estimatedParticipants": 300, "estimatedROI": 120.5, "suggestedQuantity": 30
    })).collect::<Vec<_>>()}).to_string()
}

#[tokio::test]
async fn the_http_recommender_speaks_chat_completions_retries_and_fails_bad_answers() {
    let (stand_in, url) = chat_stand_in(vec![
        (500, String::new()),
        (429, String::new()),
        (200, good_answer("서비스 추천")),
    ])
    .await;
    let app = app_with(channels_at("http://127.0.0.1:9"), chat(&url)).await;
    let owner = app.user(OWNER);
    let id = draft(&app, &owner).await;
    let rec = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    let done = job(&app, &owner, &rec).await;
    assert_eq!(done["status"], "COMPLETED", "two failures are retried: {done}");
    assert_eq!(done["recommendations"][0]["title"], "서비스 추천 0");
    assert_eq!(done["recommendations"][2]["estimatedROI"], 120.5);
    assert_eq!(stand_in.calls.load(Ordering::SeqCst), 3);
    let (body, auth) = stand_in.requests.lock().unwrap()[2].clone();
    assert_eq!(auth, "Bearer test-key");
    assert_eq!(body["model"], "stand-in-model");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["recommendations"]["minItems"],
        3
    );
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("우리동네 카페")
    );
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("신규 고객 유치")
    );

    // Answers that break the schema or the seed's limits fail the job with what was wrong.
    for (content, says) in [
        ("not json at all".to_owned(), "형식"),
        (json!({"recommendations": []}).to_string(), "3개"),
        (good_answer(&"가".repeat(60)), "recommendations[0].title"),
    ] {
        *stand_in.script.lock().unwrap() = vec![(200, content)];
        stand_in.calls.store(0, Ordering::SeqCst);
        let rec = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
        let done = job(&app, &owner, &rec).await;
        assert_eq!(done["status"], "FAILED", "{done}");
        assert!(done["error"].as_str().unwrap().contains(says), "{done}");
        assert!(done.get("recommendations").is_none());
        assert_eq!(
            stand_in.calls.load(Ordering::SeqCst),
            1,
            "a bad answer is not retried"
        );
    }
    // A service that stays down fails the job after the retries, saying so.
    *stand_in.script.lock().unwrap() = vec![(503, String::new())];
    stand_in.calls.store(0, Ordering::SeqCst);
    let rec = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    let done = job(&app, &owner, &rec).await;
    assert_eq!(done["status"], "FAILED");
    assert!(done["error"].as_str().unwrap().contains("3회 시도"), "{done}");
    assert_eq!(stand_in.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_job_whose_worker_died_is_resumed_and_one_that_keeps_dying_fails() {
    // No worker runs yet: the jobs stay PENDING.
    let app = TestApp::spawn_with(Options::default()).await;
    let owner = app.user(OWNER);
    let id = draft(&app, &owner).await;
    let first = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    let second = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    let (_, pending) = get(&app, &format!("/api/jobs/{first}/status"), &owner).await;
    assert_eq!(pending["status"], "PENDING");
    // A worker takes both and dies (its lease of 300 ms runs out); the second was already
    // taken as often as allowed.
    let dead_lease = Duration::from_millis(300);
    for job_id in [&first, &second] {
        let claimed =
            store::campaign_jobs::claim(&app.db, job_id.parse().unwrap(), "dead-worker", dead_lease)
                .await
                .unwrap();
        assert!(claimed.is_some());
    }
    sqlx::query("UPDATE campaign_jobs SET attempts = 3 WHERE job_id = $1::uuid")
        .bind(&second)
        .execute(&app.db)
        .await
        .unwrap();
    let (_, taken) = get(&app, &format!("/api/jobs/{first}/status"), &owner).await;
    assert_eq!(taken["status"], "PROCESSING");
    app.start_campaign_jobs(builtin(), jobs_cfg());
    let done = job(&app, &owner, &first).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["recommendations"].as_array().unwrap().len(), 3);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM campaign_jobs WHERE job_id = $1::uuid")
        .bind(&first)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "claimed by the dead worker, then once more");
    let failed = job(&app, &owner, &second).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(failed["error"].as_str().unwrap().contains("중단"), "{failed}");

    // An ended job is answered from the Redis cache (the seed's 1-hour job cache): a change in
    // Postgres behind it is not seen.
    sqlx::query("UPDATE campaign_jobs SET error = 'changed behind the cache' WHERE job_id = $1::uuid")
        .bind(&second)
        .execute(&app.db)
        .await
        .unwrap();
    let (_, cached) = get(&app, &format!("/api/jobs/{second}/status"), &owner).await;
    assert_eq!(cached["error"], failed["error"]);
    let ttl: i64 = fred::interfaces::KeysInterface::ttl(app.redis.next(), app.keys.campaign_job(&second))
        .await
        .unwrap();
    assert!((3_500..=3_600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn banner_jobs_resume_with_the_banners_already_drawn() {
    let app = TestApp::spawn_with(Options::default()).await;
    let owner = app.user(OWNER);
    app.start_campaign_jobs(builtin(), jobs_cfg());
    let id = draft(&app, &owner).await;
    let rec = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    job(&app, &owner, &rec).await;
    let (s, _) = put(
        &app,
        &format!("/api/events/drafts/{id}/recommendation"),
        &owner,
        json!({"jobId": rec, "index": 0, "startDate": today(), "endDate": in_days(7)}),
    )
    .await;
    assert_eq!(s, 200);
    let runner = app.campaign_runner(builtin(), &jobs_cfg());
    // A banner job whose first worker drew one banner and died: written by hand as that worker
    // would have, then resumed.
    let job_id = uuid::Uuid::now_v7();
    let campaign: uuid::Uuid = id.parse().unwrap();
    store::campaign_jobs::insert(
        &app.db,
        job_id,
        campaign,
        issuance_core::enums::CampaignJobKind::Images,
    )
    .await
    .unwrap();
    store::campaign_jobs::claim(&app.db, job_id, "dead-worker", Duration::from_millis(1))
        .await
        .unwrap();
    let simple = campaigns::jobs::image_id(job_id, issuance_core::enums::BannerStyle::Simple);
    store::campaign_images::insert(
        &app.db,
        &store::campaign_images::NewImage {
            image_id: simple,
            campaign_id: campaign,
            style: issuance_core::enums::BannerStyle::Simple,
            png: b"drawn before the crash",
            width: 1200,
            height: 630,
            source_id: None,
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    runner.run(job_id).await.unwrap();
    let done = job(&app, &owner, &job_id.to_string()).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM campaign_images WHERE campaign_id = $1")
        .bind(campaign)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 3, "the banner drawn before is kept, the other two drawn once");
    let kept = app
        .http
        .get(done["imageUrls"]["simple"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&kept[..], b"drawn before the crash");
    png(&app, done["imageUrls"]["fancy"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_recommendation_job_survives_its_workers_process_being_killed() {
    // The service answers the first call only after 30 s: the job is PROCESSING in the real
    // workers process when it is SIGKILLed.
    let (stand_in, url) = chat_stand_in(vec![(200, good_answer("재시작 후 추천"))]).await;
    *stand_in.first_delay.lock().unwrap() = Duration::from_secs(30);
    let app = TestApp::spawn_with(Options::default()).await;
    let owner = app.user(OWNER);
    let mut workers = crate::helpers::WorkersProcess::start_with(
        &app.core,
        &[
            ("RECOMMENDER_URL", url.as_str()),
            ("CAMPAIGN_JOB_LEASE_MS", "1000"),
        ],
    );
    let id = draft(&app, &owner).await;
    let rec = start_job(&app, &owner, &format!("/api/events/{id}/ai-recommendations")).await;
    crate::outbox::wait_until(
        Duration::from_secs(20),
        "the job held by the workers process",
        || async {
            let (_, b) = get(&app, &format!("/api/jobs/{rec}/status"), &owner).await;
            b["status"] == "PROCESSING" && stand_in.calls.load(Ordering::SeqCst) == 1
        },
    )
    .await;
    workers.kill9();
    // Another worker takes the job over once the dead one's lease runs out, and finishes it.
    app.start_campaign_jobs(chat(&url), jobs_cfg());
    let done = job(&app, &owner, &rec).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["recommendations"][0]["title"], "재시작 후 추천 0");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM campaign_jobs WHERE job_id = $1::uuid")
        .bind(&rec)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "the killed process's claim, then the survivor's");
}

#[tokio::test]
async fn two_publications_at_once_call_each_channel_once() {
    let slow = Receiver::default();
    slow.set_delay(Duration::from_millis(800));
    let app = app_with(channels_at(&channels(&slow).await), builtin()).await;
    let owner = app.user(OWNER);
    let (id, _) = ready_draft(&app, &owner, "GOLDEN_TICKET", 10).await;
    let body = json!({"selectedChannels": [{"channelType": "INSTAGRAM"}, {"channelType": "GENIE_TV"}]});
    let path = format!("/api/events/{id}/publish");
    let (a, b) = tokio::join!(
        post(&app, &path, &owner, body.clone()),
        post(&app, &path, &owner, body.clone())
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let refused = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(refused["code"], "PUBLISH_IN_PROGRESS");
    assert_eq!(slow.deliveries().len(), 2, "each channel called once");
    // Once the first is done, publishing again calls nobody and answers the recorded results.
    let (s, again) = post(&app, &path, &owner, body).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["distributionResults"][1]["status"], "SUCCESS");
    assert_eq!(slow.deliveries().len(), 2);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM ticket_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(events, 1, "one prize");
}
