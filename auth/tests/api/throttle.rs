use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn repeated_failures_lock_the_login_for_that_ip_until_the_lockout_expires() {
    let app = spawn_app_with(|s| {
        s.login.max_failures = 3;
        s.login.lockout_base_ms = 1500;
        s.login.lockout_max_ms = 3000;
    })
    .await;
    let user = app.create_staff("ivan", "cashier").await;
    for _ in 0..3 {
        let response = app
            .login_from("203.0.113.9", "ivan", "wrong-password")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked for the attacker's IP, even with the right password...
    let response = app.login_from("203.0.113.9", "ivan", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(error_code(response).await, "login_locked");
    // ...but not from the pizzeria's.
    let response = app.login_from("198.51.100.7", "ivan", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    tokio::time::sleep(Duration::from_millis(1700)).await;
    let response = app.login_from("203.0.113.9", "ivan", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let actions = app.audit_actions(user).await;
    assert_eq!(actions.iter().filter(|a| *a == "login_failed").count(), 3);
    assert!(actions.contains(&"login_locked_out".to_owned()));
}

#[tokio::test]
async fn unknown_logins_lock_out_like_real_ones() {
    let app = spawn_app_with(|s| s.login.max_failures = 2).await;
    for _ in 0..2 {
        app.login_from("203.0.113.10", "ghost", "wrong-password")
            .await;
    }
    let response = app
        .login_from("203.0.113.10", "ghost", "wrong-password")
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(response).await, "login_locked");
}

#[tokio::test]
async fn an_ip_that_fails_too_often_is_throttled_across_logins() {
    let app = spawn_app_with(|s| {
        s.login.ip_max_failures = 4;
        s.login.ip_window_ms = 60_000;
    })
    .await;
    app.create_staff("jana", "cashier").await;
    for login in ["a1", "a2", "a3", "a4"] {
        let response = app
            .login_from("203.0.113.11", login, "wrong-password")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app.login_from("203.0.113.11", "jana", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(response).await, "too_many_attempts");
    let response = app.login_from("198.51.100.8", "jana", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
