//! Bad input gets a 4xx that names what is wrong, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_token_endpoint_answers_in_rfc_6749_errors() {
    let app = spawn_app().await;
    let code = app.request_code().await["device_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown = "x".repeat(43);
    // (form, expected error, the parameter its description names)
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("client_id", CLIENT_ID), ("device_code", &code)],
            "invalid_request",
            "grant_type",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", CLIENT_ID),
                ("device_code", &code),
            ],
            "unsupported_grant_type",
            "grant_type",
        ),
        (
            vec![("grant_type", DEVICE_GRANT), ("client_id", CLIENT_ID)],
            "invalid_request",
            "device_code",
        ),
        (
            vec![
                ("grant_type", DEVICE_GRANT),
                ("client_id", CLIENT_ID),
                ("device_code", "short"),
            ],
            "invalid_request",
            "device_code",
        ),
        (
            vec![
                ("grant_type", DEVICE_GRANT),
                ("client_id", CLIENT_ID),
                ("device_code", &unknown),
            ],
            "invalid_grant",
            "device_code",
        ),
        (
            vec![("grant_type", DEVICE_GRANT), ("device_code", &code)],
            "invalid_request",
            "client_id",
        ),
        (
            vec![
                ("grant_type", DEVICE_GRANT),
                ("client_id", CLIENT_ID),
                ("device_code", &code),
                ("device_code", &code),
            ],
            "invalid_request",
            "device_code",
        ),
    ];
    for (form, error, field) in cases {
        let response = app.post_form("/oauth/token", &form).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{form:?}");
        let body = json_body(response).await;
        assert_eq!(body["error"], json!(error), "{form:?}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(field), "{form:?}: {description}");
    }

    let response = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", "stranger"),
                ("device_code", &code),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(oauth_error(response).await, "invalid_client");

    let response = app
        .client
        .post(app.url("/oauth/token"))
        .json(&json!({ "grant_type": DEVICE_GRANT }))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await, "invalid_request");
}

#[tokio::test]
async fn the_authorization_endpoint_checks_client_and_scope() {
    let app = spawn_app().await;
    let response = app.post_form("/oauth/device_authorization", &[]).await;
    assert_eq!(oauth_error(response).await, "invalid_request");
    let response = app
        .post_form("/oauth/device_authorization", &[("client_id", "stranger")])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(oauth_error(response).await, "invalid_client");
    let response = app
        .post_form(
            "/oauth/device_authorization",
            &[("client_id", CLIENT_ID), ("scope", "kitchen \"board\"")],
        )
        .await;
    assert_eq!(oauth_error(response).await, "invalid_scope");
    let response = app
        .post_form(
            "/oauth/device_authorization",
            &[("client_id", CLIENT_ID), ("scope", "kitchen board")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // HTTP Basic client authentication, as many client libraries send it.
    let response = app
        .client
        .post(app.url("/oauth/device_authorization"))
        .basic_auth(CLIENT_ID, Some(""))
        .form(&[("scope", "kitchen")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .client
        .post(app.url("/oauth/device_authorization"))
        .header("authorization", "Basic !!!")
        .form(&[("scope", "kitchen")])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await, "invalid_client");
}

#[tokio::test]
async fn staff_endpoints_name_what_is_wrong() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/pizzerias/not-a-uuid/devices"))
        .bearer_auth(&app.office_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_field(response).await, "pizzeria_id");
    // Approving is not managing: a shift manager sees the devices (to revoke a lost one) but
    // does not rename or move them.
    assert_eq!(
        app.list_devices(&app.manager_token).await.status(),
        StatusCode::OK
    );
    let response = app
        .client
        .get(app.url(&format!("/api/v1/pizzerias/{}/devices", app.pizzeria_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let missing = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        app.revoke_device(&app.office_token, &missing)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.change_device(&app.office_token, &missing, &json!({ "name": "x" }))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let board = app.pair(app.board()).await;
    let id = board["device_id"].as_str().unwrap();
    let response = app
        .change_device(&app.office_token, id, &json!({ "station": "oven" }))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "station");
    let response = app
        .change_device(&app.office_token, id, &json!({ "name": "" }))
        .await;
    assert_eq!(error_field(response).await, "name");
    let response = app
        .change_device(&app.office_token, id, &json!({ "colour": "red" }))
        .await;
    assert!(response.status().is_client_error());

    let response = app
        .introspect_with_key("wrong", "kdt_whatever-whatever")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let answer = app.introspect("kst_a-staff-token-is-no-device").await;
    assert_eq!(answer, json!({ "active": false }));
}

#[tokio::test]
async fn bodies_must_be_objects_and_null_is_not_leaving_a_field_out() {
    let app = spawn_app().await;
    let code = app.request_code().await["user_code"]
        .as_str()
        .unwrap()
        .to_owned();
    // By position this would approve a kitchen_station without a station check on names.
    let response = app
        .client
        .post(app.url("/api/v1/device-authorizations/approve"))
        .bearer_auth(&app.manager_token)
        .json(&json!([code, app.pizzeria_id, "order_board", "TV"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "body");

    let board = app.pair(app.board()).await;
    let id = board["device_id"].as_str().unwrap();
    for field in ["name", "station"] {
        let response = app
            .change_device(&app.office_token, id, &json!({ field: null }))
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_field(response).await, field);
    }
}

/// RFC 6749 §5.2: `error_description` is printable ASCII without `"` and `\`, even when it
/// quotes a parameter name the client chose.
#[tokio::test]
async fn oauth_error_descriptions_are_printable_ascii_only() {
    let app = spawn_app().await;
    let name = "bad\u{1b}[31m\"\\\u{e9}\n";
    let response = app
        .post_form(
            "/oauth/token",
            &[("grant_type", DEVICE_GRANT), (name, "1"), (name, "2")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("more than once"), "{description}");
    assert!(
        description
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
        "{description:?}"
    );
}

#[tokio::test]
async fn a_caller_without_the_right_hears_403_before_any_word_about_the_body() {
    let app = spawn_app().await;
    let cook = app.staff_session("cook", "kitchen_staff").await;
    let broken = json!({ "user_code": 42, "no_such_field": true });
    for path in [
        "/api/v1/device-authorizations/lookup",
        "/api/v1/device-authorizations/approve",
        "/api/v1/device-authorizations/deny",
    ] {
        let response = app.post_with(&cook, path, &broken).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(testkit::problem(response).await.code, "forbidden");
        // The same body from an approver is refused for what it is.
        let response = app.post_with(&app.manager_token, path, &broken).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
    }
    // The token answer names the device it was issued for by `device_id`.
    let tablet = app.pair(app.tablet("oven")).await;
    let id = tablet["device_id"].as_str().unwrap();
    let response = app.change_device(&cook, id, &broken).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app.change_device(&app.office_token, id, &broken).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_device_is_named_by_id_as_every_resource_and_by_device_id_as_before() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let list = json_body(app.list_devices(&app.office_token).await).await;
    let listed = &list["devices"][0];
    assert!(listed["id"].is_string(), "{listed}");
    assert_eq!(listed["id"], listed["device_id"]);
    assert_eq!(listed["id"], tablet["device_id"]);
}
