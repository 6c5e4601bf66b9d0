//! `/internal/v1/users/status`: the devices service asks whether the staff who approved its
//! devices are still active, behind the same service key as introspection.

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn users_status_says_who_is_still_active_to_a_caller_with_the_key() {
    let app = spawn_app().await;
    let (anna, _) = app.staff_session("anna", "shift_manager").await;
    let (boris, _) = app.staff_session("boris", "shift_manager").await;
    let response = app
        .post_with(
            &app.admin_token,
            &format!("/api/v1/users/{boris}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ask = |key: Option<String>| {
        let mut request = app
            .client
            .post(app.url("/internal/v1/users/status"))
            .json(&json!({ "user_ids": [anna, boris, Uuid::now_v7()] }));
        if let Some(key) = key {
            request = request.header(access::INTROSPECTION_KEY_HEADER, key);
        }
        request.send()
    };
    assert_eq!(
        ask(None).await.expect("request").status(),
        StatusCode::UNAUTHORIZED
    );
    let key = app.settings.introspection.key.expose_secret().to_owned();
    let response = ask(Some(key)).await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let mut users = json_body(response).await["users"]
        .as_array()
        .expect("users")
        .clone();
    users.sort_by_key(|u| u["user_id"].as_str().map(str::to_owned));
    let mut expected = vec![
        json!({ "user_id": anna, "active": true }),
        json!({ "user_id": boris, "active": false }),
    ];
    expected.sort_by_key(|u| u["user_id"].as_str().map(str::to_owned));
    assert_eq!(users, expected);
}

/// A service configured without a key (outside development mode it refuses to start) must
/// still not take a request without the header as carrying the empty key.
#[tokio::test]
async fn an_empty_introspection_key_opens_nothing() {
    let app = spawn_app_with(|s| s.introspection.key = "".into()).await;
    let response = app
        .client
        .post(app.url("/internal/v1/introspect"))
        .json(&json!({ "token": app.admin_token }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app.introspect_with_key("", &app.admin_token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
