//! Slow and abusive clients cannot hold the server: real TCP clients against a real api.

use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Options, TestApp, assert_error, config};

fn limits() -> api::server::Limits {
    api::server::Limits {
        header_read_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        keep_alive_idle: Duration::from_secs(2),
        max_connections: 64,
        max_in_flight: 64,
        shutdown_grace: Duration::from_secs(1),
        listen_backlog: 1_024,
    }
}

async fn app_with(limits: api::server::Limits) -> TestApp {
    TestApp::spawn_with(Options {
        limits,
        drain: false,
        ..Options::default()
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the peer closes (or `limit` passes); returns what arrived and when it closed.
async fn read_until_closed(tcp: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), Some(started.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
        }
    }
}

/// A connection that sent a JSON `POST` to `path` as `token`'s holder and one byte of its
/// 64-byte body.
async fn body_begun(app: &TestApp, path: &str, token: &str) -> TcpStream {
    let mut tcp = connect(app).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{{"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp
}

/// The server closes `tcp` after `min` (its timeout) and before `max`.
async fn assert_closed_between(tcp: &mut TcpStream, min: Duration, max: Duration, what: &str) {
    let (_, closed) = read_until_closed(tcp, max).await;
    let closed = closed.unwrap_or_else(|| panic!("{what} is closed within {max:?}"));
    assert!(
        closed >= min,
        "{what} is not closed before its timeout: {closed:?}"
    );
}

/// Holds an exclusive lock on `products` until dropped (rolls back), so product reads wait.
async fn lock_products(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn half_a_request_head_is_disconnected() {
    let app = app_with(limits()).await;
    let mut tcp = connect(&app).await;
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_closed_between(
        &mut tcp,
        Duration::from_millis(900),
        Duration::from_secs(8),
        "a half-sent head",
    )
    .await;
}

/// A GET of /health on `tcp`; its status line.
async fn health_on(tcp: &mut TcpStream) -> String {
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_head_timeout_but_not_a_slow_head() {
    // The head timeout (1 s) runs from a head's first byte, not between requests: a client that
    // polls every 1.6 s keeps its connection (it was closed at 1 s before), while a head that
    // starts and stalls is still cut at 1 s.
    let app = app_with(api::server::Limits {
        keep_alive_idle: Duration::from_secs(5),
        ..limits()
    })
    .await;
    let mut tcp = connect(&app).await;
    assert_eq!(health_on(&mut tcp).await, "HTTP/1.1 200 OK");
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        assert_eq!(health_on(&mut tcp).await, "HTTP/1.1 200 OK", "kept alive");
    }
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_closed_between(
        &mut tcp,
        Duration::from_millis(900),
        Duration::from_millis(3_500),
        "a stalled second head",
    )
    .await;

    // A connection opened ahead of its request is idle, not a slow head: it is kept for the
    // idle limit (clients' pools and preconnects open such connections).
    let mut early = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(
        health_on(&mut early).await,
        "HTTP/1.1 200 OK",
        "an early connection"
    );
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_with_408() {
    let app = app_with(limits()).await;
    app.create_event("trickle", 10, None).await;
    let mut tcp = body_begun(&app, "/events/trickle/tickets", &app.user(1)).await;
    let writer = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if tcp.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), writer).await.ok();
    let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    assert_body_timed_out(&answer);
    assert_none_issued(&app, "trickle").await;
}

#[tokio::test]
async fn a_body_deadline_shorter_than_the_answers_is_kept() {
    // One timer serves both deadlines: it must fire at the body's, not only at the answer's.
    let app = app_with(api::server::Limits {
        request_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    app.create_event("stalled", 10, None).await;
    let mut tcp = body_begun(&app, "/events/stalled/tickets", &app.user(1)).await;
    let started = Instant::now();
    let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_body_timed_out(&answer);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The same through the router (a body read by axum's extractor).
    let mut tcp = body_begun(&app, "/events", &app.admin()).await;
    let (answer, _) = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert_body_timed_out(&answer);
    assert_none_issued(&app, "stalled").await;
}

/// `answer` is the `408` of a body that did not arrive in time.
fn assert_body_timed_out(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
}

/// Event `key` (of 10) has issued nothing.
async fn assert_none_issued(app: &TestApp, key: &str) {
    let r = app.get(&format!("/events/{key}"), None).await;
    let event: serde_json::Value = r.json().await.unwrap();
    assert_eq!(event["remainingQuantity"], 10);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let app = app_with(api::server::Limits {
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let mut tcp = connect(&app).await;
    assert_eq!(health_on(&mut tcp).await, "HTTP/1.1 200 OK");
    assert_closed_between(
        &mut tcp,
        Duration::from_millis(1_500),
        Duration::from_secs(10),
        "an idle connection",
    )
    .await;
}

#[tokio::test]
async fn a_slow_answer_times_out_with_503_and_frees_its_connection() {
    let app = app_with(limits()).await;
    let lock = lock_products(&app).await;
    let started = Instant::now();
    let r = app.get("/api/v1/products", None).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.headers()["retry-after"], "1");
    assert_error(r, 503, "SERVICE_UNAVAILABLE", "/api/v1/products").await;
    // The abandoned query does not wait on the lock any more: its connection was closed.
    let waiting = async {
        loop {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
                .fetch_one(&app.db)
                .await
                .unwrap();
            if n == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("no request is left waiting on the lock");
    drop(lock);
    assert_eq!(app.get("/api/v1/products", None).await.status(), 200);
}

#[tokio::test]
async fn a_slow_answer_past_the_body_deadline_still_times_out() {
    // The one timer fires at the body's deadline first and then moves on to the answer's.
    let app = app_with(api::server::Limits {
        body_timeout: Duration::from_millis(300),
        // Under the connection's idle limit (2 s), which would close it first.
        request_timeout: Duration::from_millis(1_200),
        ..limits()
    })
    .await;
    let lock = lock_products(&app).await;
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), app.get("/api/v1/products", None))
        .await
        .expect("an answer at the answer's deadline");
    assert!(
        started.elapsed() >= Duration::from_millis(1_100),
        "{:?}",
        started.elapsed()
    );
    assert_error(r, 503, "SERVICE_UNAVAILABLE", "/api/v1/products").await;
    drop(lock);
}

#[tokio::test]
async fn requests_over_the_in_flight_bound_are_shed_at_once() {
    let app = app_with(api::server::Limits {
        max_in_flight: 2,
        request_timeout: Duration::from_secs(20),
        ..limits()
    })
    .await;
    let lock = lock_products(&app).await;
    let held = join_all((0..2).map(|_| app.get("/api/v1/products", None)));
    let probe = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let r = app.get("/api/v1/products/best", None).await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "shed fast: {took:?}");
        assert_eq!(r.headers()["retry-after"], "1");
        assert_error(r, 503, "SERVICE_UNAVAILABLE", "/api/v1/products/best").await;
        // Health checks still answer.
        assert_eq!(app.get("/health", None).await.status(), 200);
        drop(lock);
    };
    let (held, ()) = tokio::join!(held, probe);
    for r in held {
        assert_eq!(r.status(), 200, "the held requests finish once the lock goes");
    }
}

#[tokio::test]
async fn connections_over_the_bound_are_refused_with_503() {
    let app = app_with(api::server::Limits {
        max_connections: 3,
        header_read_timeout: Duration::from_secs(30),
        keep_alive_idle: Duration::from_secs(30),
        ..limits()
    })
    .await;
    // Silent connections take the slots (the test client's pooled one may hold one too); the
    // first connection over the bound is answered 503 at once and closed.
    let mut held = Vec::new();
    let (answer, closed) = loop {
        let mut tcp = connect(&app).await;
        let (answer, closed) = read_until_closed(&mut tcp, Duration::from_millis(300)).await;
        if !answer.is_empty() || closed.is_some() {
            break (answer, closed);
        }
        held.push(tcp);
        assert!(held.len() <= 3, "more than 3 connections were let in");
    };
    assert!(held.len() >= 2, "only {} connections were let in", held.len());
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(closed.is_some(), "and is closed");
    // A freed slot is usable again.
    held.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect(&app).await;
    again
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut again, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn shutdown_is_bounded_with_slow_clients_connected() {
    let opts = Options {
        limits: api::server::Limits {
            header_read_timeout: Duration::from_secs(60),
            keep_alive_idle: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(1),
            ..limits()
        },
        drain: false,
        ..Options::default()
    };
    let core = TestApp::fresh_core(&opts).await;
    let cfg = config(&core, &opts);
    let listener = tokio::net::TcpListener::bind(cfg.addr).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn(api::run(cfg, listener, stop.clone().cancelled_owned()));
    let app = TestApp::attach(core, opts, base, stop.clone()).await;
    // Slow clients: half heads, and a request stuck behind a lock.
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut tcp = connect(&app).await;
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }
    let lock = lock_products(&app).await;
    let stuck = tokio::spawn({
        let url = app.url("/api/v1/products");
        async move { reqwest::get(url).await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown finishes within the grace period (+ margin)")
        .unwrap()
        .expect("api::run returns Ok");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(lock);
    assert!(
        stuck.await.unwrap().is_err(),
        "the stuck request's connection was closed"
    );
}
