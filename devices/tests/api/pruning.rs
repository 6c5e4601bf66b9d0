//! Unbounded growth (issue 12, item 9): pairing requests are throttled per client IP, and what
//! has ended is pruned while what is still needed stays.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{CLIENT_ID, TestApp, json_body, oauth_error, spawn_app, spawn_app_with};

async fn request_code_from(app: &TestApp, ip: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/device_authorization"))
        .header("x-forwarded-for", ip)
        .form(&[("client_id", CLIENT_ID)])
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn pairing_requests_are_throttled_per_client_ip() {
    let app = spawn_app_with(|settings| settings.pairing.ip_max_requests = 3).await;
    for _ in 0..3 {
        app.request_code().await;
    }
    let response = request_code_from(&app, "10.9.9.9").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    assert_eq!(oauth_error(response).await, "slow_down");
    let stored: i64 = sqlx::query_scalar("select count(*) from device_authorizations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 3, "a refused request stores nothing");
    // Another address has its own budget.
    let response = request_code_from(&app, "10.9.9.10").await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Moves the expiry of the pairing request behind `device_code` to `seconds` ago.
async fn expire(app: &TestApp, codes: &Value, seconds: f64) {
    let device_code = codes["device_code"].as_str().unwrap();
    let updated = sqlx::query(
        "update device_authorizations set expires_at = now() - make_interval(secs => $2), \
         requested_at = now() - make_interval(secs => $2 + 600) where device_code_hash = $1",
    )
    .bind(access::token_digest(device_code))
    .bind(seconds)
    .execute(&app.db.pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(updated, 1);
}

async fn poll_error(app: &TestApp, codes: &Value) -> String {
    oauth_error(app.poll(codes["device_code"].as_str().unwrap()).await).await
}

#[tokio::test]
async fn pruning_keeps_live_requests_devices_origins_and_open_budgets() {
    let app = spawn_app().await;
    let retention = app.settings.retention.pairing_requests().as_secs_f64();
    // A paired device, whose request expired long ago: it stays, the device points at it.
    let device = app.pair(app.tablet("dough")).await;
    let device_token = device["access_token"].as_str().unwrap().to_owned();
    sqlx::query("update device_authorizations set expires_at = now() - make_interval(secs => $1)")
        .bind(retention * 2.0)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let pending = app.request_code().await;
    let expired_lately = app.request_code().await;
    expire(&app, &expired_lately, 60.0).await;
    let stale = app.request_code().await;
    expire(&app, &stale, retention + 60.0).await;
    let denied = app.request_code().await;
    let response = app
        .deny(&app.manager_token, denied["user_code"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    expire(&app, &denied, retention + 60.0).await;
    // Budgets: the lookups above opened windows (the manager's session and IP, the device's
    // pairing IP); one more closed its window long ago.
    sqlx::query(
        "insert into code_lookups (key, window_started_at, lookups) \
         values ('ip:10.7.7.7', now() - interval '1 day', 4)",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let budgets_before: i64 = sqlx::query_scalar("select count(*) from code_lookups")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    let deleted = devices::retention::prune(&app.db.pool, &app.settings)
        .await
        .unwrap();
    assert_eq!(
        deleted, 3,
        "the stale and the denied request, the closed budget"
    );

    assert_eq!(poll_error(&app, &pending).await, "authorization_pending");
    let response = app
        .lookup(&app.manager_token, pending["user_code"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(poll_error(&app, &expired_lately).await, "expired_token");
    assert_eq!(poll_error(&app, &stale).await, "invalid_grant");
    assert_eq!(poll_error(&app, &denied).await, "invalid_grant");
    assert_eq!(app.introspect(&device_token).await["active"], true);
    let response = app.list_devices(&app.office_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let list = json_body(response).await;
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(1), "{list}");
    let budgets_after: i64 = sqlx::query_scalar("select count(*) from code_lookups")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    // The lookup above added nothing new: the manager's session and IP had budgets already.
    assert_eq!(budgets_after, budgets_before - 1);
    let closed_left: bool =
        sqlx::query_scalar("select exists (select 1 from code_lookups where key = 'ip:10.7.7.7')")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(!closed_left);
}
