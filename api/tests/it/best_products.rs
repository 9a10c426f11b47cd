//! Best products: the snapshot of a KST day counts units of orders paid in the three whole KST
//! days before it, exactly at the midnights; it is idempotent per day and served as computed.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::{
    helpers::TestApp,
    orders::{charge, product, user},
};

/// A paid order of `qty` units of `p`, its payment moved to `paid_at` (KST, RFC 3339).
async fn sale(app: &TestApp, u: i64, p: i64, qty: i64, paid_at: &str) {
    let r = app
        .post(
            "/api/v1/orders/checkout",
            &app.user(u),
            &json!({"userId": u, "items": [{"productId": p, "qty": qty}]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap();
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339(paid_at).unwrap().into();
    sqlx::query("UPDATE orders SET created_at = $2, paid_at = $2 WHERE order_id = $1")
        .bind(id)
        .bind(at)
        .execute(&app.db)
        .await
        .unwrap();
}

fn ranking(v: &Value) -> Vec<(i64, i64)> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["productId"].as_i64().unwrap(), i["soldQty"].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_snapshot_counts_three_whole_kst_days_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    charge(&app, u, 1_000_000).await;
    let mut p = Vec::new();
    for _ in 0..9 {
        p.push(product(&app, 100, 1_000).await);
    }
    // The snapshot of 2026-03-10 covers [03-07 00:00, 03-10 00:00) KST.
    sale(&app, u, p[0], 100, "2026-03-06T23:59:59.999+09:00").await; // the day before: out
    sale(&app, u, p[1], 5, "2026-03-07T00:00:00+09:00").await; // first instant: in
    sale(&app, u, p[2], 7, "2026-03-09T23:59:59.999+09:00").await; // last instant: in
    sale(&app, u, p[3], 50, "2026-03-10T00:00:00+09:00").await; // the day itself: out
    sale(&app, u, p[4], 3, "2026-03-08T12:00:00+09:00").await;
    sale(&app, u, p[4], 3, "2026-03-07T23:30:00+09:00").await; // = 6, across a day boundary
    sale(&app, u, p[5], 1, "2026-03-08T00:00:00+09:00").await;
    sale(&app, u, p[6], 1, "2026-03-08T00:00:00+09:00").await;
    sale(&app, u, p[7], 1, "2026-03-08T00:00:00+09:00").await; // a tie, sixth by id: out
    // An unpaid order in the window counts for nothing.
    let r = crate::orders::order(&app, u, json!([{"productId": p[8], "qty": 90}]), None).await;
    assert_eq!(r.status(), 201);

    let day = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let first = shop::best_products::compute(&app.db, day).await.unwrap();
    let expected = vec![(p[2], 7), (p[4], 6), (p[1], 5), (p[5], 1), (p[6], 1)];
    let got: Vec<(i64, i64)> = first.items.iter().map(|i| (i.product_id, i.sold_qty)).collect();
    assert_eq!(got, expected);
    assert_eq!(
        first.items.iter().map(|i| i.rank).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );

    for path in ["/api/v1/products/best", "/api/v1/products/top"] {
        let v: Value = app.get(path, None).await.json().await.unwrap();
        assert_eq!(v["rangeDays"], 3);
        assert_eq!(ranking(&v), expected, "{path}");
        assert_eq!(v["day"], "2026-03-10");
        assert_eq!(v["from"], "2026-03-07T00:00:00+09:00");
        assert_eq!(v["to"], "2026-03-10T00:00:00+09:00");
        assert_eq!(v["items"][0]["name"], "milk");
    }

    // Running the day again gives the same snapshot, still one of it.
    let again = shop::best_products::compute(&app.db, day).await.unwrap();
    assert_eq!(again.items, first.items);
    let snapshots: i64 = sqlx::query_scalar("SELECT count(*) FROM best_product_snapshots")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM best_product_items")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((snapshots, items), (1, 5));

    // The next day's window slides: 03-07 drops out, 03-10 comes in.
    let next = shop::best_products::compute(&app.db, day.succ_opt().unwrap())
        .await
        .unwrap();
    let got: Vec<(i64, i64)> = next.items.iter().map(|i| (i.product_id, i.sold_qty)).collect();
    assert_eq!(got, vec![(p[3], 50), (p[2], 7), (p[4], 3), (p[5], 1), (p[6], 1)]);
}

#[tokio::test]
async fn before_any_snapshot_the_list_is_empty_and_an_admin_can_compute_today() {
    let app = TestApp::spawn().await;
    let v: Value = app.get("/api/v1/products/best", None).await.json().await.unwrap();
    assert_eq!(v["rangeDays"], 3);
    assert_eq!(v["items"], json!([]));
    assert!(v["day"].is_null());

    let u = user(&app).await;
    let r = app.post_empty("/api/v1/admin/best-products", &app.user(u)).await;
    assert_eq!(r.status(), 403);
    let r = app.post_empty("/api/v1/admin/best-products", &app.admin()).await;
    assert_eq!(r.status(), 200);
    let today = issuance_core::clock::kst_date(Utc::now()).to_string();
    assert_eq!(r.json::<Value>().await.unwrap()["day"], today.as_str());
    let v: Value = app.get("/api/v1/products/best", None).await.json().await.unwrap();
    assert_eq!(v["day"], today.as_str());

    // A process starting later finds today's snapshot and leaves it.
    assert!(!shop::best_products::catch_up(&app.db, Utc::now()).await.unwrap());
    let tomorrow = Utc::now() + chrono::Duration::days(1);
    assert!(shop::best_products::catch_up(&app.db, tomorrow).await.unwrap());
}
