//! The admin API of SPEC §3: every resource's rules and error codes, with the exact body.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

const EVENTS: &str = "/api/v1/admin/events";
const INVENTORIES: &str = "/api/v1/admin/coupon-inventories";
const BATCHES: &str = "/api/v1/admin/coupon-batches";

fn event_body(name: &str) -> Value {
    json!({"eventName": name, "description": "다른 회사와 협업", "fromAt": "2025-06-21T09:00:00",
           "untilAt": "2025-06-21T21:00:00", "eventStatus": "READY"})
}

fn inventory_body(event_id: &Value, total: i64) -> Value {
    json!({"eventId": event_id, "inventoryName": "A쿠폰", "usableFromAt": "2025-06-21T09:00:00",
           "usableUntilAt": "2025-06-21T21:00:00", "totalCount": total, "inventoryStatus": "READY",
           "discount": {"type": "PERCENT", "value": 10, "maxDiscount": 3000}})
}

fn batch_body(inventory_id: &Value, count: i64) -> Value {
    json!({"inventoryId": inventory_id, "batchName": "A쿠폰 1회차", "issueCount": count,
           "issueType": "SELF", "validFromAt": "2025-06-21T09:00:00", "validUntilAt": "2025-06-21T21:00:00"})
}

#[tokio::test]
async fn admin_routes_need_an_admin_token() {
    let app = TestApp::spawn().await;
    let r = app.get(EVENTS, None).await;
    assert_error(r, 401, "UNAUTHORIZED", EVENTS).await;
    let r = app.get(EVENTS, Some(&app.user(7))).await;
    assert_error(r, 403, "FORBIDDEN", EVENTS).await;
    let r = app.post(EVENTS, &app.user(7), &event_body("x")).await;
    assert_error(r, 403, "FORBIDDEN", EVENTS).await;
}

#[tokio::test]
async fn event_crud_and_lifecycle() {
    let app = TestApp::spawn().await;
    let created = app.admin_post(EVENTS, &event_body("신규 쿠폰 이벤트"), 201).await;
    assert_eq!(created["eventName"], "신규 쿠폰 이벤트");
    assert_eq!(created["eventStatus"], "READY");
    assert_eq!(created["fromAt"], "2025-06-21T09:00:00+09:00");
    assert_eq!(created["createdBy"], "1");
    let id = created["eventId"].as_i64().unwrap();
    let path = format!("{EVENTS}/{id}");

    // Same name while live: 409; bad period on create and update: the seed's two codes.
    let r = app
        .post(EVENTS, &app.admin(), &event_body("신규 쿠폰 이벤트"))
        .await;
    assert_error(r, 409, "DUPLICATE_EVENT", EVENTS).await;
    let mut bad = event_body("later");
    bad["untilAt"] = json!("2025-06-21T08:00:00");
    assert_error(
        app.post(EVENTS, &app.admin(), &bad).await,
        400,
        "INVALID_DATETIME",
        EVENTS,
    )
    .await;
    assert_error(
        app.put(&path, &app.admin(), &bad).await,
        400,
        "EVENT_INVALID_DATETIME",
        &path,
    )
    .await;
    let r = app
        .post(EVENTS, &app.admin(), &json!({"eventName": "no dates"}))
        .await;
    assert_error(r, 400, "INVALID_REQUEST", EVENTS).await;
    let mut unknown = event_body("enum");
    unknown["eventStatus"] = json!("FINISHED");
    assert_error(
        app.post(EVENTS, &app.admin(), &unknown).await,
        400,
        "INVALID_REQUEST",
        EVENTS,
    )
    .await;

    let mut renamed = event_body("이름 변경");
    renamed["description"] = json!("변경");
    let r = app.put(&path, &app.admin(), &renamed).await;
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["eventName"], "이름 변경");

    // READY → ONGOING → COMPLETED; nothing back, nothing after a final status.
    let status_path = format!("{path}/status");
    let r = app
        .put(&status_path, &app.admin(), &json!({"eventStatus": "ONGOING"}))
        .await;
    let change: Value = r.json().await.unwrap();
    assert_eq!(
        (
            change["previousStatus"].as_str(),
            change["updatedStatus"].as_str()
        ),
        (Some("READY"), Some("ONGOING"))
    );
    assert!(change["updatedAt"].as_str().unwrap().ends_with("+09:00"));
    let r = app
        .put(&status_path, &app.admin(), &json!({"eventStatus": "READY"}))
        .await;
    assert_error(r, 400, "INVALID_STATUS_TRANSITION", &status_path).await;
    assert_error(
        app.delete(&path, &app.admin()).await,
        400,
        "CANNOT_DELETE_EVENT",
        &path,
    )
    .await;
    let r = app
        .put(&status_path, &app.admin(), &json!({"eventStatus": "COMPLETED"}))
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .put(&status_path, &app.admin(), &json!({"eventStatus": "DISABLED"}))
        .await;
    assert_error(r, 400, "INVALID_STATUS_TRANSITION", &status_path).await;
    assert_error(
        app.delete(&path, &app.admin()).await,
        400,
        "CANNOT_DELETE_EVENT",
        &path,
    )
    .await;

    // A READY event is deleted softly: gone from GET and lists; its name is free again.
    let other = app.admin_post(EVENTS, &event_body("지울 이벤트"), 201).await;
    let other_path = format!("{EVENTS}/{}", other["eventId"]);
    let r = app.delete(&other_path, &app.admin()).await;
    let deleted: Value = r.json().await.unwrap();
    assert_eq!(deleted["eventId"], other["eventId"]);
    assert_error(
        app.get(&other_path, Some(&app.admin())).await,
        404,
        "EVENT_NOT_FOUND",
        &other_path,
    )
    .await;
    app.admin_post(EVENTS, &event_body("지울 이벤트"), 201).await;
    let missing = format!("{EVENTS}/999999/status");
    let r = app
        .put(&missing, &app.admin(), &json!({"eventStatus": "ONGOING"}))
        .await;
    assert_error(r, 404, "EVENT_NOT_FOUND", &missing).await;
}

#[tokio::test]
async fn event_list_filters_sorts_and_pages() {
    let app = TestApp::spawn().await;
    for (i, name) in ["봄 쿠폰", "여름 쿠폰", "가을 행사", "겨울 쿠폰"]
        .iter()
        .enumerate()
    {
        let mut body = event_body(name);
        body["fromAt"] = json!(format!("2025-0{}-01T09:00:00", i + 3));
        body["untilAt"] = json!(format!("2025-0{}-10T09:00:00", i + 3));
        app.admin_post(EVENTS, &body, 201).await;
    }
    let page = app
        .admin_get(&format!("{EVENTS}?keyword=쿠폰&sort=fromAt,ASC&page=0&size=2"))
        .await;
    assert_eq!((page["page"].as_i64(), page["size"].as_i64()), (Some(0), Some(2)));
    assert_eq!(
        (page["totalElements"].as_i64(), page["totalPages"].as_i64()),
        (Some(3), Some(2))
    );
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["봄 쿠폰", "여름 쿠폰"]);
    let page = app
        .admin_get(&format!("{EVENTS}?from=2025-04-01&to=2025-05-10"))
        .await;
    assert_eq!(page["totalElements"], 2, "{page}");
    let page = app.admin_get(&format!("{EVENTS}?eventStatus=ONGOING")).await;
    assert_eq!(page["totalElements"], 0);
    for bad in [
        "sort=name;drop",
        "size=0",
        "size=101",
        "page=-1",
        "from=June",
        "eventStatus=FINISHED",
        "page=x",
    ] {
        let r = app.get(&format!("{EVENTS}?{bad}"), Some(&app.admin())).await;
        assert_error(r, 400, "INVALID_REQUEST", EVENTS).await;
    }
}

#[tokio::test]
async fn inventory_rules() {
    let app = TestApp::spawn().await;
    let event = app.admin_post(EVENTS, &event_body("재고 이벤트"), 201).await;
    let r = app
        .post(
            INVENTORIES,
            &app.admin(),
            &inventory_body(&event["eventId"], 10_000_001),
        )
        .await;
    assert_error(r, 400, "MAX_COUPON_LIMIT_EXCEEDED", INVENTORIES).await;
    let mut bad = inventory_body(&event["eventId"], 10);
    bad["usableUntilAt"] = json!("2025-06-21T08:00:00");
    assert_error(
        app.post(INVENTORIES, &app.admin(), &bad).await,
        400,
        "INVENTORY_INVALID_PERIOD",
        INVENTORIES,
    )
    .await;
    let r = app
        .post(INVENTORIES, &app.admin(), &inventory_body(&json!(999_999), 10))
        .await;
    assert_error(r, 404, "EVENT_NOT_FOUND", INVENTORIES).await;
    let mut bad = inventory_body(&event["eventId"], 10);
    bad["discount"] = json!({"type": "AMOUNT", "value": 1000, "maxDiscount": 10});
    assert_error(
        app.post(INVENTORIES, &app.admin(), &bad).await,
        400,
        "INVALID_REQUEST",
        INVENTORIES,
    )
    .await;

    let inv = app
        .admin_post(INVENTORIES, &inventory_body(&event["eventId"], 1_000), 201)
        .await;
    assert_eq!(
        inv["discount"],
        json!({"type": "PERCENT", "value": 10, "maxDiscount": 3000})
    );
    let path = format!("{INVENTORIES}/{}", inv["inventoryId"]);
    let batch = app
        .admin_post(BATCHES, &batch_body(&inv["inventoryId"], 600), 201)
        .await;

    // The total may not fall under what batches hold; an inventory with batches stays.
    let r = app
        .put(&path, &app.admin(), &inventory_body(&event["eventId"], 500))
        .await;
    assert_error(r, 400, "MAX_COUPON_LIMIT_EXCEEDED", &path).await;
    assert_error(
        app.delete(&path, &app.admin()).await,
        400,
        "CANNOT_DELETE_COUPON_INVENTORY",
        &path,
    )
    .await;

    // issuedCount is live: the issuance core's holders hash of each batch.
    let holders = app.keys.coupon_batch(batch["batchId"].as_i64().unwrap()).holders;
    let _: i64 = app
        .redis_cmd(
            "HSET",
            vec![holders, "7".into(), "x".into(), "8".into(), "y".into()],
        )
        .await;
    assert_eq!(app.admin_get(&path).await["issuedCount"], 2);
    let list = app
        .admin_get(&format!("{INVENTORIES}?eventId={}", event["eventId"]))
        .await;
    assert_eq!(list["data"][0]["issuedCount"], 2);

    // Only READY changes.
    let mut ongoing = inventory_body(&event["eventId"], 1_000);
    ongoing["inventoryStatus"] = json!("ONGOING");
    assert_eq!(app.put(&path, &app.admin(), &ongoing).await.status(), 200);
    let r = app
        .put(&path, &app.admin(), &inventory_body(&event["eventId"], 1_000))
        .await;
    assert_error(r, 400, "CANNOT_MODIFY_COUPON_INVENTORY", &path).await;
    let missing = format!("{INVENTORIES}/999999");
    assert_error(
        app.get(&missing, Some(&app.admin())).await,
        404,
        "COUPON_INVENTORY_NOT_FOUND",
        &missing,
    )
    .await;
}

#[tokio::test]
async fn batch_rules_and_numbers_under_concurrency() {
    let app = TestApp::spawn().await;
    let event = app.admin_post(EVENTS, &event_body("회차 이벤트"), 201).await;
    let inv = app
        .admin_post(INVENTORIES, &inventory_body(&event["eventId"], 100), 201)
        .await;
    let r = app
        .post(BATCHES, &app.admin(), &batch_body(&json!(999_999), 1))
        .await;
    assert_error(r, 404, "INVENTORY_NOT_FOUND", BATCHES).await;
    let mut bad = batch_body(&inv["inventoryId"], 1);
    bad["validUntilAt"] = json!("2025-06-21T08:00:00");
    assert_error(
        app.post(BATCHES, &app.admin(), &bad).await,
        400,
        "BATCH_INVALID_PERIOD",
        BATCHES,
    )
    .await;
    let mut bad = batch_body(&inv["inventoryId"], 5);
    bad["dailyLimit"] = json!(6);
    assert_error(
        app.post(BATCHES, &app.admin(), &bad).await,
        400,
        "INVALID_REQUEST",
        BATCHES,
    )
    .await;

    // 12 concurrent creations of 10 on an inventory of 100: ten win, numbered 1..=10.
    let (admin, body) = (app.admin(), batch_body(&inv["inventoryId"], 10));
    let answers = join_all((0..12).map(|_| app.post(BATCHES, &admin, &body))).await;
    let mut numbers = Vec::new();
    let mut refused = 0;
    for r in answers {
        match r.status().as_u16() {
            201 => numbers.push(r.json::<Value>().await.unwrap()["batchNumber"].as_i64().unwrap()),
            _ => {
                assert_error(r, 400, "MAX_COUPON_LIMIT_EXCEEDED", BATCHES).await;
                refused += 1;
            }
        }
    }
    numbers.sort();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
    assert_eq!(refused, 2);

    let list = app
        .admin_get(&format!(
            "{BATCHES}?inventoryId={}&sort=batchNumber,DESC&size=3",
            inv["inventoryId"]
        ))
        .await;
    assert_eq!(list["totalElements"], 10);
    assert_eq!(list["data"][0]["batchNumber"], 10);
    let id = list["data"][0]["batchId"].as_i64().unwrap();
    let path = format!("{BATCHES}/{id}");
    let shown = app.admin_get(&path).await;
    assert_eq!(
        (shown["batchStatus"].as_str(), shown["issuedCount"].as_i64()),
        (Some("PENDING"), Some(0))
    );

    // PENDING changes; READY does not.
    let mut ready = batch_body(&inv["inventoryId"], 10);
    ready["batchStatus"] = json!("READY");
    // An update names no inventory (a batch stays in its own); unknown fields are refused.
    let moved = app.put(&path, &app.admin(), &ready).await;
    assert_error(moved, 400, "INVALID_REQUEST", &path).await;
    ready.as_object_mut().unwrap().remove("inventoryId");
    assert_eq!(app.put(&path, &app.admin(), &ready).await.status(), 200);
    assert_error(
        app.put(&path, &app.admin(), &ready).await,
        400,
        "CANNOT_MODIFY_COUPON_BATCH",
        &path,
    )
    .await;
    assert_error(
        app.delete(&path, &app.admin()).await,
        400,
        "CANNOT_MODIFY_COUPON_BATCH",
        &path,
    )
    .await;
    let missing = format!("{BATCHES}/999999");
    assert_error(
        app.get(&missing, Some(&app.admin())).await,
        404,
        "COUPON_BATCH_NOT_FOUND",
        &missing,
    )
    .await;
    assert_error(
        app.delete(&missing, &app.admin()).await,
        404,
        "COUPON_BATCH_NOT_FOUND",
        &missing,
    )
    .await;
}

#[tokio::test]
async fn users_and_products() {
    let app = TestApp::spawn().await;
    let user = app
        .admin_post(
            "/api/v1/admin/users",
            &json!({"name": "김철수", "email": "kim@example.com", "channel": "APP"}),
            201,
        )
        .await;
    assert_eq!(user["channel"], "APP");
    let path = format!("/api/v1/admin/users/{}", user["userId"]);
    assert_eq!(app.admin_get(&path).await["email"], "kim@example.com");
    let r = app
        .post(
            "/api/v1/admin/users",
            &app.admin(),
            &json!({"name": "또", "email": "kim@example.com"}),
        )
        .await;
    assert_error(r, 400, "INVALID_REQUEST", "/api/v1/admin/users").await;
    let missing = "/api/v1/admin/users/999999";
    assert_error(
        app.get(missing, Some(&app.admin())).await,
        404,
        "USER_NOT_FOUND",
        missing,
    )
    .await;

    let product = app
        .admin_post(
            "/api/v1/admin/products",
            &json!({"name": "유기농 우유 1L", "price": 3200, "stock": 10}),
            201,
        )
        .await;
    assert_eq!(
        (
            product["status"].as_str(),
            product["images"].as_array().map(Vec::len)
        ),
        (Some("ON_SALE"), Some(0))
    );
    let r = app
        .post(
            "/api/v1/admin/products",
            &app.admin(),
            &json!({"name": "x", "price": -1, "stock": 1}),
        )
        .await;
    assert_error(r, 400, "INVALID_REQUEST", "/api/v1/admin/products").await;
    let list = app.admin_get("/api/v1/admin/products?keyword=우유").await;
    assert_eq!(list["totalElements"], 1);
    let missing = "/api/v1/admin/products/999999";
    assert_error(
        app.get(missing, Some(&app.admin())).await,
        404,
        "PRODUCT_NOT_FOUND",
        missing,
    )
    .await;
}

#[tokio::test]
async fn dashboard_is_computed_once_for_a_room_of_admins() {
    let app = TestApp::spawn().await;
    app.admin_post(EVENTS, &event_body("대시보드"), 201).await;
    app.create_event("golden-dash", 10, None).await;
    app.issue("golden-dash", 5).await;
    let admin = app.admin();
    let answers = join_all((0..20).map(|_| app.get("/api/v1/admin/dashboard", Some(&admin)))).await;
    let mut stamps = std::collections::HashSet::new();
    let mut last = Value::Null;
    for r in answers {
        assert_eq!(r.status(), 200);
        last = r.json().await.unwrap();
        stamps.insert(last["computedAt"].as_str().unwrap().to_owned());
    }
    assert_eq!(stamps.len(), 1, "one computation for 20 concurrent admins");
    assert_eq!(last["eventsByStatus"]["READY"], 1);
    assert_eq!(last["eventsByStatus"]["COMPLETED"], 0);
    let live = &last["liveIssuance"][0];
    assert_eq!(
        (live["eventKey"].as_str(), live["issuedTotal"].as_i64()),
        (Some("golden-dash"), Some(1))
    );
}
