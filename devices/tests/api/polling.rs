//! The token endpoint's answers while the device waits (RFC 8628 §3.5): slow_down, expiry,
//! denial, and a code used twice.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

async fn interval_of(app: &TestApp) -> i32 {
    sqlx::query_scalar("select interval_seconds from device_authorizations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn polling_too_fast_slows_the_device_down_by_5_s_each_time() {
    let app = spawn_app().await;
    let codes = app.request_code().await;
    let code = codes["device_code"].as_str().unwrap();
    assert_eq!(
        oauth_error(app.poll(code).await).await,
        "authorization_pending"
    );
    assert_eq!(oauth_error(app.poll(code).await).await, "slow_down");
    assert_eq!(interval_of(&app).await, 10);
    assert_eq!(oauth_error(app.poll(code).await).await, "slow_down");
    assert_eq!(interval_of(&app).await, 15);

    // Once the interval has passed the device is merely pending again.
    sqlx::query("update device_authorizations set last_polled_at = now() - interval '16 seconds'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        oauth_error(app.poll(code).await).await,
        "authorization_pending"
    );
    assert_eq!(interval_of(&app).await, 15);
}

#[tokio::test]
async fn a_code_expires() {
    let app = spawn_app_with(|s| s.oauth.code_lifetime_ms = 1_000).await;
    let codes = app.request_code().await;
    assert_eq!(codes["expires_in"], serde_json::json!(1));
    let code = codes["device_code"].as_str().unwrap();
    let user_code = codes["user_code"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(oauth_error(app.poll(code).await).await, "expired_token");
    // Nobody can approve it any more either.
    let response = app
        .approve(&app.manager_token, user_code, app.tablet("oven"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_field(response).await, "user_code");
}

#[tokio::test]
async fn an_approved_code_not_picked_up_in_time_expires() {
    let app = spawn_app_with(|s| s.oauth.code_lifetime_ms = 1_000).await;
    let codes = app.request_code().await;
    let response = app
        .approve(
            &app.manager_token,
            codes["user_code"].as_str().unwrap(),
            app.tablet("oven"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let code = codes["device_code"].as_str().unwrap();
    assert_eq!(oauth_error(app.poll(code).await).await, "expired_token");
}

#[tokio::test]
async fn a_denial_is_final() {
    let app = spawn_app().await;
    let codes = app.request_code().await;
    let code = codes["device_code"].as_str().unwrap();
    let user_code = codes["user_code"].as_str().unwrap();
    let response = app.deny(&app.manager_token, user_code).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["status"], "denied");
    assert_eq!(oauth_error(app.poll(code).await).await, "access_denied");
    assert_eq!(oauth_error(app.poll(code).await).await, "access_denied");
    let response = app
        .approve(&app.manager_token, user_code, app.tablet("oven"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_device_code_is_exchanged_once() {
    let app = spawn_app().await;
    let codes = app.request_code().await;
    let code = codes["device_code"].as_str().unwrap();
    let user_code = codes["user_code"].as_str().unwrap();
    app.approve(&app.manager_token, user_code, app.tablet("oven"))
        .await;
    // Two polls at once: exactly one gets the token.
    let (a, b) = tokio::join!(app.poll(code), app.poll(code));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);
    let loser = if a.status() == StatusCode::OK { b } else { a };
    assert_eq!(oauth_error(loser).await, "invalid_grant");
    assert_eq!(oauth_error(app.poll(code).await).await, "invalid_grant");
    let devices: i64 = sqlx::query_scalar("select count(*) from devices")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(devices, 1);
    // And the user code is spent too.
    let response = app
        .approve(&app.manager_token, user_code, app.tablet("oven"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client() {
    let app = spawn_app_with(|s| s.oauth.client_ids.push("kitchen-board".into())).await;
    let codes = app.request_code().await;
    let response = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", "kitchen-board"),
                ("device_code", codes["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(oauth_error(response).await, "invalid_grant");
}
