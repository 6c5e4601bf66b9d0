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

/// The attempt is counted before its password is verified, so parallel guesses cannot all
/// pass a check that only the slow verification would have updated.
#[tokio::test]
async fn two_hundred_parallel_guesses_get_exactly_the_five_attempts_of_the_limit() {
    let app = spawn_app_with(|s| {
        s.login.max_failures = 5;
        s.login.ip_max_failures = 10_000;
        // Only the per-login limit is under test: nobody is turned away for load.
        s.login.verification_wait_ms = 600_000;
        s.login.global_rate.burst = 10_000;
    })
    .await;
    let user = app.create_staff("pavel", "cashier").await;
    let guesses = (0..200).map(|i| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/sessions"));
        tokio::spawn(async move {
            client
                .post(url)
                .header("x-forwarded-for", "203.0.113.20")
                .json(&serde_json::json!({ "login": "pavel", "password": format!("guess-{i:05}") }))
                .send()
                .await
                .expect("request")
                .status()
        })
    });
    let mut statuses = Vec::new();
    for guess in guesses.collect::<Vec<_>>() {
        statuses.push(guess.await.expect("the request task"));
    }
    let verified = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((verified, refused), (5, 195), "{statuses:?}");
    let actions = app.audit_actions(user).await;
    assert_eq!(actions.iter().filter(|a| *a == "login_failed").count(), 5);
    assert_eq!(
        actions.iter().filter(|a| *a == "login_locked_out").count(),
        1
    );
    // The lockout is the attacker's: the pizzeria still signs in.
    let response = app.login_from("198.51.100.20", "pavel", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_right_password_on_the_last_attempt_still_signs_in_and_clears_the_lockout() {
    let app = spawn_app_with(|s| s.login.max_failures = 3).await;
    app.create_staff("vera", "cashier").await;
    for _ in 0..2 {
        let response = app
            .login_from("203.0.113.21", "vera", "wrong-password")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app.login_from("203.0.113.21", "vera", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .login_from("203.0.113.21", "vera", "wrong-password")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_ins_beyond_the_global_rate_get_a_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        // One sign-in an hour after the burst: nothing refills while the test runs. The
        // admin's own sign-in in spawn_app takes one of the three.
        s.login.global_rate.per_second = 1.0 / 3600.0;
        s.login.global_rate.burst = 3;
    })
    .await;
    app.create_staff("gleb", "cashier").await;
    let response = app.login_from("203.0.113.22", "gleb", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .login_from("198.51.100.22", "gleb", "wrong-password")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app.login_from("192.0.2.22", "gleb", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry_after > 60, "{retry_after}");
    assert_eq!(error_code(response).await, "sign_in_rate_limited");
}
