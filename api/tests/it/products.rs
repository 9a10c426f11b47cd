//! Product reads: keyset pages that stay stable under inserts, the detail, and bad input.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

async fn product(app: &TestApp, name: &str, status: &str) -> i64 {
    let p = app
        .admin_post(
            "/api/v1/admin/products",
            &json!({"name": name, "description": format!("{name} 설명"), "price": 3200, "stock": 57,
                    "status": status, "images": [format!("https://img.example/{name}.jpg")]}),
            201,
        )
        .await;
    p["productId"].as_i64().unwrap()
}

/// Every id the list gives, following cursors with `limit`; inserts a product after the first
/// page when `insert` is set.
async fn walk(app: &TestApp, query: &str, limit: i64, insert: bool) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("/api/v1/products?limit={limit}{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&url, None).await;
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        for p in page["items"].as_array().unwrap() {
            assert!(p.get("description").is_none(), "the list is the short form");
            ids.push(p["productId"].as_i64().unwrap());
        }
        if insert && cursor.is_none() {
            product(app, "milk late", "ON_SALE").await;
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn pages_follow_the_cursor_and_stay_stable_under_inserts() {
    let app = TestApp::spawn().await;
    let mut visible = Vec::new();
    for name in ["milk", "yogurt", "milk tea", "bread", "milk powder"] {
        visible.push(product(&app, name, "ON_SALE").await);
    }
    let hidden = product(&app, "milk hidden", "HIDDEN").await;
    let sold_out = product(&app, "cheese", "SOLD_OUT").await;
    visible.push(sold_out);

    let first: Value = app.get("/api/v1/products", None).await.json().await.unwrap();
    assert_eq!(
        first["items"].as_array().unwrap().len(),
        6,
        "default limit covers all"
    );
    assert!(first["nextCursor"].is_null());
    assert_eq!(
        first["items"][0],
        json!({"productId": visible[0], "name": "milk", "price": 3200, "stock": 57, "status": "ON_SALE"})
    );

    assert_eq!(walk(&app, "", 2, false).await, visible);
    let with_insert = walk(&app, "", 2, true).await;
    assert_eq!(&with_insert[..6], &visible[..], "no row skipped or repeated");
    assert_eq!(with_insert.len(), 7, "the new product comes at the end");
    assert!(!with_insert.contains(&hidden));

    let milk = walk(&app, "&keyword=milk", 1, false).await;
    assert_eq!(milk.len(), 4, "milk, milk tea, milk powder, milk late: {milk:?}");

    let detail: Value = app
        .get(&format!("/api/v1/products/{}", visible[0]), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["description"], "milk 설명");
    assert_eq!(detail["images"], json!(["https://img.example/milk.jpg"]));
    assert_eq!(detail["stock"], 57);

    let path = format!("/api/v1/products/{hidden}");
    assert_error(app.get(&path, None).await, 404, "PRODUCT_NOT_FOUND", &path).await;
    assert_error(
        app.get("/api/v1/products/0", None).await,
        404,
        "PRODUCT_NOT_FOUND",
        "/api/v1/products/0",
    )
    .await;
}

#[tokio::test]
async fn stock_is_read_live() {
    let app = TestApp::spawn().await;
    let id = product(&app, "milk", "ON_SALE").await;
    sqlx::query("UPDATE products SET stock = 3 WHERE product_id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let p: Value = app
        .get(&format!("/api/v1/products/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["stock"], 3);
    let l: Value = app.get("/api/v1/products", None).await.json().await.unwrap();
    assert_eq!(l["items"][0]["stock"], 3);
}

#[tokio::test]
async fn bad_paging_is_400() {
    let app = TestApp::spawn().await;
    for q in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=%%%",
        "cursor=eyJhZnRlciI6Ii0xIn0",
    ] {
        let r = app.get(&format!("/api/v1/products?{q}"), None).await;
        assert_error(r, 400, "INVALID_REQUEST", "/api/v1/products").await;
    }
    let r = app.get("/api/v1/products/abc", None).await;
    assert_error(r, 400, "INVALID_REQUEST", "/api/v1/products/abc").await;
}
