//! Entering codes: who may, what a wrong code gets, and the budget that makes guessing futile
//! (RFC 8628 §5.1).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A well-formed code that no request holds (the chance it is live is 1 in 2.6·10^10).
fn code(n: usize) -> String {
    let letters = b"BCDFGHJKLMNPQRSTVWXZ";
    (0..8)
        .map(|i| char::from(letters[(n / 20usize.pow(i as u32)) % 20]))
        .collect()
}

#[tokio::test]
async fn malformed_codes_name_the_field() {
    let app = spawn_app().await;
    for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GH1K"] {
        let response = app.lookup(&app.manager_token, bad).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(error_field(response).await, "user_code");
    }
    let response = app.lookup(&app.manager_token, "BCDF-GHJK").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_field(response).await, "user_code");
    let response = app
        .post_with(
            &app.manager_token,
            "/api/v1/device-authorizations/lookup",
            &json!({ "user_code": 12345678 }),
        )
        .await;
    assert!(response.status().is_client_error());
    assert_eq!(error_field(response).await, "user_code");
}

#[tokio::test]
async fn only_approvers_decide_and_only_in_their_pizzeria() {
    let app = spawn_app().await;
    let codes = app.request_code().await;
    let user_code = codes["user_code"].as_str().unwrap();

    let response = app
        .lookup("kst_not-a-session-not-a-session", user_code)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let kitchen = app.staff_session("cook", "kitchen_staff").await;
    assert_eq!(
        app.lookup(&kitchen, user_code).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.deny(&kitchen, user_code).await.status(),
        StatusCode::FORBIDDEN
    );
    let mut elsewhere = app.tablet("oven");
    elsewhere["pizzeria_id"] = json!(uuid::Uuid::now_v7());
    let response = app.approve(&app.manager_token, user_code, elsewhere).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Still pending: nothing above changed it.
    let response = app.lookup(&app.manager_token, user_code).await;
    assert_eq!(json_body(response).await["status"], json!("pending"));
    let response = app
        .approve(&app.manager_token, user_code, app.tablet("oven"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .approve(&app.office_token, user_code, app.tablet("dough"))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.deny(&app.manager_token, user_code).await.status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn the_choice_is_checked() {
    let app = spawn_app().await;
    let codes = app.request_code().await;
    let user_code = codes["user_code"].as_str().unwrap();
    let p = app.pizzeria_id;
    for (choice, field) in [
        (
            json!({ "pizzeria_id": p, "kind": "kitchen_station", "name": "T" }),
            "station",
        ),
        (
            json!({ "pizzeria_id": p, "kind": "order_board", "station": "oven", "name": "T" }),
            "station",
        ),
        (
            json!({ "pizzeria_id": p, "kind": "kitchen_station", "station": "Oven!", "name": "T" }),
            "station",
        ),
        (
            json!({ "pizzeria_id": p, "kind": "toaster", "name": "T" }),
            "kind",
        ),
        (
            json!({ "pizzeria_id": p, "kind": "order_board", "name": " " }),
            "name",
        ),
        (json!({ "pizzeria_id": p, "kind": "order_board" }), "name"),
    ] {
        let response = app
            .approve(&app.manager_token, user_code, choice.clone())
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{choice}"
        );
        assert_eq!(error_field(response).await, field, "{choice}");
    }
    for kind in ["motivation_board", "shift_manager_screen"] {
        let codes = app.request_code().await;
        let response = app
            .approve(
                &app.manager_token,
                codes["user_code"].as_str().unwrap(),
                json!({ "pizzeria_id": p, "kind": kind, "name": kind }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{kind}");
    }
}

#[tokio::test]
async fn guessing_codes_is_stopped_per_session() {
    let app = spawn_app().await;
    let real = app.request_code().await;
    let max = app.settings.approval.session_max_lookups as usize;
    for n in 0..max {
        let response = app.lookup(&app.manager_token, &code(n)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "guess {n}");
    }
    let response = app.lookup(&app.manager_token, &code(max)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Even the right code is refused now; another session of the same IP still works.
    let real_code = real["user_code"].as_str().unwrap();
    let response = app.lookup(&app.manager_token, real_code).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let response = app.lookup(&app.office_token, real_code).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn guessing_codes_is_stopped_per_ip() {
    let app = spawn_app().await;
    let max_ip = app.settings.approval.ip_max_lookups as usize;
    let per_session = app.settings.approval.session_max_lookups as usize;
    // Fresh sessions, each within its own budget, all from one IP.
    let mut guesses = 0;
    let mut sessions = 0;
    while guesses < max_ip {
        let token = app.login("manager", PASSWORD).await;
        sessions += 1;
        for _ in 0..per_session.min(max_ip - guesses) {
            let response = app.lookup_from("10.6.6.6", &token, &code(guesses)).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "guess {guesses}");
            guesses += 1;
        }
    }
    assert!(sessions > 1);
    let token = app.login("manager", PASSWORD).await;
    let response = app.lookup_from("10.6.6.6", &token, &code(guesses)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // The same session from another IP is fine.
    let response = app
        .lookup_from("10.6.6.7", &token, &code(guesses + 1))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
