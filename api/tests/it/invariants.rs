//! The invariant check passes after real traffic and names each rule a corruption breaks.

use issuer::invariants::{self, Verdict};
use serde_json::{Value, json};

use crate::{
    helpers::TestApp,
    orders::{charge, order, pay, product, user},
};

async fn verdicts(app: &TestApp, baseline: &invariants::Baseline) -> Vec<(&'static str, Verdict)> {
    invariants::check(&app.db, Some(baseline))
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.verdict))
        .collect()
}

fn failing(v: &[(&'static str, Verdict)]) -> Vec<&'static str> {
    v.iter()
        .filter(|(_, v)| *v == Verdict::Fail)
        .map(|(n, _)| *n)
        .collect()
}

#[tokio::test]
async fn the_check_passes_after_traffic_and_catches_each_corruption() {
    let app = TestApp::spawn().await;
    let p = product(&app, 1_000, 10).await;
    let baseline = invariants::baseline(&app.db).await.unwrap();
    assert_eq!(baseline.stock.get(&p), Some(&10));

    let u = user(&app).await;
    charge(&app, u, 5_000).await;
    let mut paid = Vec::new();
    for qty in [1, 2] {
        let r = order(&app, u, json!([{"productId": p, "qty": qty}]), None).await;
        let id = r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap();
        assert_eq!(pay(&app, u, id).await.status(), 200);
        paid.push(id);
    }
    let unpaid = order(&app, u, json!([{"productId": p, "qty": 3}]), None).await;
    assert_eq!(unpaid.status(), 201);

    let clean = verdicts(&app, &baseline).await;
    assert!(failing(&clean).is_empty(), "{clean:?}");
    assert!(clean.iter().all(|(_, v)| *v == Verdict::Pass));
    let without = invariants::check(&app.db, None).await.unwrap();
    assert!(without.iter().any(|f| f.verdict == Verdict::Skip));

    let corrupt = |sql: &'static str| {
        let db = app.db.clone();
        async move { sqlx::query(sql).execute(&db).await.unwrap() }
    };
    corrupt("UPDATE products SET stock = stock - 1").await;
    assert_eq!(
        failing(&verdicts(&app, &baseline).await),
        ["stock + sold = initial"]
    );
    corrupt("UPDATE products SET stock = stock + 1").await;

    corrupt("UPDATE wallets SET balance = balance + 1").await;
    assert_eq!(
        failing(&verdicts(&app, &baseline).await),
        ["balance equals the sum of its history"]
    );
    corrupt("UPDATE wallets SET balance = balance - 1").await;

    sqlx::query("DELETE FROM outbox WHERE order_id = $1")
        .bind(paid[0])
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        failing(&verdicts(&app, &baseline).await),
        ["a paid order has exactly one ORDER_PAID record"]
    );
}
