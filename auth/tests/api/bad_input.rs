use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn login_names_the_broken_field() {
    let app = spawn_app().await;
    let response = app.login("", "whatever-password").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "login");
    let response = app.login("anna", "").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "password");
    let response = app.login("anna", &"x".repeat(500)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "password");
    let response = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!({ "login": "anna" }))
        .send()
        .await
        .expect("request");
    assert_eq!(error_field(response).await, "password");
}

#[tokio::test]
async fn creating_a_user_names_the_broken_field() {
    let app = spawn_app().await;
    let p = app.pizzeria_id;
    let cases = [
        (
            json!({"login": "", "display_name": "A", "password": PASSWORD, "roles": []}),
            "login",
        ),
        (
            json!({"login": "a b", "display_name": "A", "password": PASSWORD}),
            "login",
        ),
        (
            json!({"login": "ab", "display_name": " ", "password": PASSWORD}),
            "display_name",
        ),
        (
            json!({"login": "ab", "display_name": "A", "password": "short"}),
            "password",
        ),
        (
            json!({"login": "ab", "display_name": "A", "password": "x".repeat(129)}),
            "password",
        ),
        (
            json!({"login": "ab", "display_name": "A", "password": PASSWORD,
                   "roles": [{"role": "baker", "pizzeria_id": p}]}),
            "roles[0].role",
        ),
        (
            json!({"login": "ab", "display_name": "A", "password": PASSWORD,
                   "roles": [{"role": "cashier"}]}),
            "roles[0].pizzeria_id",
        ),
        (
            json!({"login": "ab", "display_name": "A", "password": PASSWORD,
                   "roles": [{"role": "cashier", "pizzeria_id": p},
                             {"role": "cashier", "pizzeria_id": Uuid::now_v7()}]}),
            "roles[1].pizzeria_id",
        ),
        (
            json!({"login": "ab", "display_name": "A", "password": PASSWORD,
                   "roles": [{"role": "cashier", "pizzeria_id": "not-a-uuid"}]}),
            "roles[0].pizzeria_id",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .post_with(&app.admin_token, "/api/v1/users", &body)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(error_field(response).await, field, "{body}");
    }
}

#[tokio::test]
async fn a_taken_login_is_a_409_naming_the_login() {
    let app = spawn_app().await;
    app.create_staff("tanya", "cashier").await;
    let response = app
        .post_with(
            &app.admin_token,
            "/api/v1/users",
            &json!({"login": "Tanya", "display_name": "T", "password": PASSWORD,
                    "roles": [{"role": "cashier", "pizzeria_id": app.pizzeria_id}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_field(response).await, "login");
}

#[tokio::test]
async fn role_changes_name_the_broken_field() {
    let app = spawn_app().await;
    let user = app.create_staff("uma", "cashier").await;
    let path = format!("/api/v1/users/{user}/roles");
    let response = app
        .post_with(
            &app.admin_token,
            &path,
            &json!({"role": "cashier", "pizzeria_id": Uuid::now_v7()}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "pizzeria_id");
    let response = app
        .post_with(
            &app.admin_token,
            &path,
            &json!({"role": "chain_admin", "pizzeria_id": app.pizzeria_id}),
        )
        .await;
    assert_eq!(error_field(response).await, "pizzeria_id");
    let response = app
        .post_with(
            &app.admin_token,
            &path,
            &json!({"role": "boss", "pizzeria_id": app.pizzeria_id}),
        )
        .await;
    assert_eq!(error_field(response).await, "role");
    let response = app
        .post_with(
            &app.admin_token,
            "/api/v1/users/nope/roles",
            &json!({"role": "cashier"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_field(response).await, "user_id");
    let response = app
        .post_with(
            &app.admin_token,
            &format!("/api/v1/users/{}/roles", Uuid::now_v7()),
            &json!({"role": "cashier", "pizzeria_id": app.pizzeria_id}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn introspection_needs_the_service_key() {
    let app = spawn_app().await;
    let response = app.introspect_with_key("wrong", &app.admin_token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let answer = app.introspect(&app.admin_token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["session"]["chain_admin"], true);
    assert_eq!(app.introspect("kst_unknown").await["active"], false);
}

/// serde fills a struct from an array by position; a body must be an object.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused_not_read_by_position() {
    let app = spawn_app().await;
    app.create_staff("lena", "cashier").await;
    let response = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!(["lena", PASSWORD]))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = testkit::problem(response).await;
    assert_eq!(problem.field.as_deref(), Some("body"), "{problem:?}");
    assert_eq!(
        problem.rule.as_deref(),
        Some("must be a JSON object"),
        "{problem:?}"
    );

    // Nor is a struct inside the body: a role grant by position.
    let response = app
        .post_with(
            &app.admin_token,
            "/api/v1/users",
            &json!({
                "login": "nina",
                "display_name": "Nina",
                "password": PASSWORD,
                "roles": [["shift_manager", app.pizzeria_id]],
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "roles[0]");
}

#[tokio::test]
async fn null_is_refused_where_a_field_may_only_be_left_out() {
    let app = spawn_app().await;
    let user = app.create_staff("mila", "cashier").await;
    let response = app
        .post_with(
            &app.admin_token,
            &format!("/api/v1/users/{user}/roles"),
            &json!({ "role": "kitchen_staff", "pizzeria_id": null }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "pizzeria_id");
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!({ "login": "anna", "password": "x".repeat(300 * 1024) }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "payload_too_large");
}
