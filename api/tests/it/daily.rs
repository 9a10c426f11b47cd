//! The daily limit resets at 00:00:00 KST (Redis clock, overridden here).

use issuance_core::{
    Error,
    error::{Denial, ScopeKind},
    ids::{EventKey, UserId},
};

use crate::helpers::TestApp;

fn kst_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn daily_count_resets_at_kst_midnight() {
    let app = TestApp::spawn().await;
    app.create_event("midnight", 10, Some(2)).await;
    let engine = app.engine();
    let key = EventKey::parse("midnight").unwrap();
    let user = |id| UserId::new(id).unwrap();
    let before = Some(kst_ms("2026-03-01T23:59:59+09:00"));
    let midnight = kst_ms("2026-03-02T00:00:00+09:00");
    let after = Some(midnight);

    assert!(engine.issue_ticket_at(&key, user(1), before).await.unwrap().fresh);
    assert!(engine.issue_ticket_at(&key, user(2), before).await.unwrap().fresh);
    let refused = engine.issue_ticket_at(&key, user(3), before).await;
    assert!(
        matches!(refused, Err(Error::Denied(ScopeKind::Ticket, Denial::DailyLimit))),
        "{refused:?}"
    );

    let next_day = engine.issue_ticket_at(&key, user(3), after).await.unwrap();
    assert!(next_day.fresh);
    assert_eq!(next_day.ticket.issued_at.timestamp_millis(), midnight);
    assert!(engine.issue_ticket_at(&key, user(4), after).await.unwrap().fresh);
    let refused = engine.issue_ticket_at(&key, user(5), after).await;
    assert!(
        matches!(refused, Err(Error::Denied(ScopeKind::Ticket, Denial::DailyLimit))),
        "{refused:?}"
    );

    let event = store::ticket_events::find(&app.db, "midnight")
        .await
        .unwrap()
        .unwrap();
    let day1 = engine.with_counts(event.clone(), before).await.unwrap();
    let day2 = engine.with_counts(event, after).await.unwrap();
    assert_eq!((day1.today, day1.issued), (2, 4));
    assert_eq!((day2.today, day2.issued), (2, 4));
}
