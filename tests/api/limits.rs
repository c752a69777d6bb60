//! Abuse limits: the password hashing pool's bound, rate limits on every route, and the
//! growing wait after failed logins. Each refusal is a clear error with `Retry-After`,
//! changes nothing, and is counted.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

/// Sends `POST /api/v1/{path}` with a JSON body; returns status, Retry-After and body.
async fn post_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (StatusCode, Option<u64>, serde_json::Value) {
    let mut rb = app
        .client
        .post(format!("{}/api/v1{path}", app.base))
        .json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("the request is sent");
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, retry, body)
}

/// The value of a counter series in a scrape (0 when absent).
async fn counter(app: &TestApp, series: &str) -> f64 {
    let text = app.get("/metrics", None).await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn sign_ups_past_the_hashing_pool_get_503_with_retry_after_and_change_nothing() {
    let app = spawn_app(|s| {
        s.auth.hash_threads = 1;
        s.auth.hash_queue = 1;
    })
    .await;
    let refused_before = counter(&app, "dispatch_password_hashes_refused_total").await;
    let names: Vec<String> = (0..16).map(|_| unique("flood")).collect();
    let answers = futures_util::future::join_all(names.iter().map(|n| {
        post_raw(
            &app,
            "/customers",
            None,
            json!({"username": n, "password": "pw-123456"}),
        )
    }))
    .await;
    let mut created = Vec::new();
    let mut busy = 0;
    for (name, (status, retry, body)) in names.iter().zip(&answers) {
        match status.as_u16() {
            201 => created.push(name.clone()),
            503 => {
                busy += 1;
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                assert!(retry.is_some_and(|s| s >= 1), "503 without Retry-After");
                // Nothing was registered: the name is free, and logging in fails.
                app.login(name, "pw-123456")
                    .await
                    .expect_error(401, "unauthorized");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!created.is_empty(), "the pool served some sign-ups");
    assert!(
        busy > 0,
        "16 at once past 1 thread + 1 queued: some refused"
    );
    let refused_after = counter(&app, "dispatch_password_hashes_refused_total").await;
    assert!(refused_after >= refused_before + busy as f64);
    // Those created log in (their hashes are right), one at a time.
    for name in &created {
        app.login(name, "pw-123456").await.expect(200);
    }
    // Refused names can register once the flood is over.
    let refused: Vec<_> = names.iter().filter(|n| !created.contains(n)).collect();
    app.register(refused[0], "pw-123456").await.expect(201);
}

#[actix_web::test]
async fn requests_over_the_per_token_limit_get_429_with_retry_after() {
    let (app, c, m) = spawn_shop(|s| {
        s.rate_limit.per_token_per_s = 1;
        s.rate_limit.per_token_burst = 3;
    })
    .await;
    let id = app.placed_order(&c, &m).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = app
            .client
            .get(format!("{}/api/v1/orders/{id}", app.base))
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap();
        let retry = r.headers().get("retry-after").cloned();
        statuses.push((r.status().as_u16(), retry));
    }
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "{statuses:?}");
    assert!(limited.iter().all(|(_, r)| r.is_some()), "{statuses:?}");
    // Another holder is not affected, and neither is the dispatcher.
    let other = app.customer().await;
    app.get(&format!("/orders/{id}"), Some(&other.token))
        .await
        .expect(403);
    app.get(&format!("/orders/{id}"), Some(&app.dispatcher))
        .await
        .expect(200);
    assert!(counter(&app, "dispatch_rate_limited_total{what=\"token\"}").await >= 1.0);
}

#[actix_web::test]
async fn requests_over_the_per_ip_limit_get_429_but_probes_do_not() {
    let app = spawn_app(|s| {
        s.rate_limit.per_ip_per_s = 1;
        s.rate_limit.per_ip_burst = 5;
    })
    .await;
    let mut limited = None;
    for i in 0..10 {
        let r = app.get("/merchants/m_nobody/items", None).await;
        if r.status.as_u16() == 429 {
            limited = Some(i);
            r.expect_error(429, "rate_limited");
            break;
        }
    }
    assert!(limited.is_some(), "10 requests past a burst of 5");
    // Socket upgrades count too.
    assert_eq!(app.ws("/ws/rider?token=x").await.err(), Some(429));
    // Probes and the scrape are not limited.
    for _ in 0..10 {
        app.get("/healthz", None).await.expect(200);
    }
    assert!(counter(&app, "dispatch_rate_limited_total{what=\"ip\"}").await >= 1.0);
}

#[actix_web::test]
async fn failed_logins_wait_longer_each_time_and_success_resets_the_account() {
    let app = spawn_app(|s| {
        s.auth.login_failures_free = 2;
        s.auth.login_delay_s = 1.0;
        s.auth.login_delay_max_s = 60.0;
    })
    .await;
    let c = app.customer().await;
    for _ in 0..2 {
        app.login(&c.username, "wrong").await.expect(401);
    }
    // The third failure sets a wait of 1 s; inside it even the right password is refused
    // (without being checked) with 429 and Retry-After.
    app.login(&c.username, "wrong").await.expect(401);
    let body = json!({"username": c.username, "password": "correct horse"});
    let (status, retry, _) = post_raw(&app, "/sessions", None, body.clone()).await;
    assert_eq!(status.as_u16(), 429);
    assert_eq!(retry, Some(1));
    // After the wait the right password works, and the count starts over.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.login(&c.username, "correct horse").await.expect(200);
    app.login(&c.username, "wrong").await.expect(401);
    app.login(&c.username, "correct horse").await.expect(200);
    assert!(counter(&app, "dispatch_rate_limited_total{what=\"login_failures\"}").await >= 1.0);
}
