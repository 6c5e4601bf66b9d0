use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_then_logout() {
    let app = spawn_app().await;
    let (user_id, _) = app.staff_session("anna", "shift_manager").await;
    let response = app.login("anna", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // The API is Bearer-only: no cookie for a browser to send by itself.
    assert!(response.headers().get("set-cookie").is_none());
    let body = json_body(response).await;
    let token = body["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("kst_"));
    assert_eq!(uuid_of(&body["user_id"]), user_id);
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("{}={token}", access::SESSION_COOKIE))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let me = json_body(app.get_with(&token, "/api/v1/me").await).await;
    assert_eq!(me["login"], "anna");
    assert_eq!(me["grants"][0]["role"], "shift_manager");
    assert!(
        me["grants"][0]["permissions"]
            .as_array()
            .expect("permissions")
            .contains(&"kitchen.work".into())
    );

    let response = app.delete_with(&token, "/api/v1/sessions/current").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.get_with(&token, "/api/v1/me").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.introspect(&token).await["active"], false);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_login_look_the_same() {
    let app = spawn_app().await;
    app.create_staff("boris", "cashier").await;
    let wrong = app.login("boris", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = testkit::problem(wrong).await;
    let unknown = app.login("nobody", "not-the-password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    // Only the trace differs from one request to the next.
    let unknown = testkit::problem(unknown).await;
    assert_ne!(wrong.trace_id, unknown.trace_id);
    assert_eq!(
        service_kit::http::Problem {
            trace_id: None,
            ..wrong.clone()
        },
        service_kit::http::Problem {
            trace_id: None,
            ..unknown
        }
    );
    assert_eq!(wrong.code, "invalid_credentials");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(response).await, "unauthorized");
    let response = app
        .get_with("kst_made-up-token-made-up-token-made-up", "/api/v1/me")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn listing_and_revoking_all_sessions() {
    let app = spawn_app().await;
    app.create_staff("carla", "cashier").await;
    let first = app.login_ok("carla", PASSWORD).await;
    let second = app.login_ok("carla", PASSWORD).await;
    let list = json_body(app.get_with(&second, "/api/v1/sessions").await).await;
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["ip"], "10.0.0.1");

    let response = app.delete_with(&first, "/api/v1/sessions").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["revoked"], 2);
    for token in [&first, &second] {
        assert_eq!(app.introspect(token).await["active"], false);
    }
}

#[tokio::test]
async fn revoking_one_session_leaves_the_others() {
    let app = spawn_app().await;
    app.create_staff("dora", "cashier").await;
    let first = app.login_ok("dora", PASSWORD).await;
    let second = app.login_ok("dora", PASSWORD).await;
    let first_id = uuid_of(&app.introspect(&first).await["session"]["session_id"]);
    let response = app
        .delete_with(&second, &format!("/api/v1/sessions/{first_id}"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.introspect(&first).await["active"], false);
    assert_eq!(app.introspect(&second).await["active"], true);
}

#[tokio::test]
async fn an_admin_revokes_another_users_sessions_and_others_cannot() {
    let app = spawn_app().await;
    let (eva, eva_token) = app.staff_session("eva", "kitchen_staff").await;
    let (_, fedor_token) = app.staff_session("fedor", "kitchen_staff").await;
    let eva_session = uuid_of(&app.introspect(&eva_token).await["session"]["session_id"]);

    // Someone else's session does not exist for a colleague.
    let response = app
        .delete_with(&fedor_token, &format!("/api/v1/sessions/{eva_session}"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .get_with(&fedor_token, &format!("/api/v1/users/{eva}/sessions"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let list = json_body(
        app.get_with(&app.admin_token, &format!("/api/v1/users/{eva}/sessions"))
            .await,
    )
    .await;
    assert_eq!(list["sessions"].as_array().expect("sessions").len(), 1);
    let response = app
        .delete_with(&app.admin_token, &format!("/api/v1/sessions/{eva_session}"))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.introspect(&eva_token).await["active"], false);

    let again = app.login_ok("eva", PASSWORD).await;
    let response = app
        .delete_with(&app.admin_token, &format!("/api/v1/users/{eva}/sessions"))
        .await;
    assert_eq!(json_body(response).await["revoked"], 1);
    assert_eq!(app.introspect(&again).await["active"], false);
    let actions = app.audit_actions(eva).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "session_revoked").count(),
        2
    );
}

#[tokio::test]
async fn an_idle_session_expires_and_a_used_one_does_not() {
    let app = spawn_app_with(|s| s.sessions.idle_timeout_ms = 1500).await;
    app.create_staff("gleb", "cashier").await;
    let used = app.login_ok("gleb", PASSWORD).await;
    let idle = app.login_ok("gleb", PASSWORD).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(app.introspect(&used).await["active"], true);
    }
    assert_eq!(app.introspect(&idle).await["active"], false);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_timeout_however_used() {
    let app = spawn_app_with(|s| s.sessions.absolute_timeout_ms = 1500).await;
    app.create_staff("hanna", "cashier").await;
    let token = app.login_ok("hanna", PASSWORD).await;
    let answer = app.introspect(&token).await;
    assert_eq!(answer["active"], true);
    let mut active = true;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        active = app.introspect(&token).await["active"] == true;
    }
    assert!(!active, "the session outlived its absolute timeout");
}

/// Pruning deletes sessions long past their end and nothing else: a live session keeps
/// working, a recently ended one stays (within `sessions.retention_ms`), and the audit log keeps
/// the sign-ins of the deleted ones.
#[tokio::test]
async fn pruning_deletes_only_sessions_long_ended() {
    let app = spawn_app().await;
    let (user_id, live) = app.staff_session("anna", "shift_manager").await;
    let ended_long_ago = app.login_ok("anna", PASSWORD).await;
    let ended_lately = app.login_ok("anna", PASSWORD).await;
    let revoked = app.login_ok("anna", PASSWORD).await;
    let response = app.delete_with(&revoked, "/api/v1/sessions/current").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let retention = app.settings.sessions.retention().as_secs_f64();
    let backdate = |token: &str, seconds: f64| {
        let query = sqlx::query(
            "update sessions set expires_at = now() - make_interval(secs => $2), \
             created_at = now() - make_interval(secs => $2 + 3600) where token_hash = $1",
        )
        .bind(access::token_digest(token))
        .bind(seconds);
        async {
            query
                .execute(&app.db.pool)
                .await
                .expect("backdate a session")
        }
    };
    backdate(&ended_long_ago, retention + 60.0).await;
    backdate(&ended_lately, retention - 3600.0).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from sessions where user_id = $1")
            .bind(user_id)
            .fetch_one(&app.db.pool)
            .await
            .expect("count sessions")
    };
    assert_eq!(count().await, 4);

    let deleted = auth::retention::prune_sessions(&app.db.pool, &app.settings.sessions)
        .await
        .expect("prune");
    assert_eq!(deleted, 1);
    assert_eq!(count().await, 3);
    let gone: bool =
        sqlx::query_scalar("select exists (select 1 from sessions where token_hash = $1)")
            .bind(access::token_digest(&ended_long_ago))
            .fetch_one(&app.db.pool)
            .await
            .expect("look the session up");
    assert!(!gone);
    assert_eq!(app.introspect(&live).await["active"], true);
    assert_eq!(app.introspect(&ended_lately).await["active"], false);
    let response = app.get_with(&live, "/api/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    let logins = app
        .audit_actions(user_id)
        .await
        .into_iter()
        .filter(|a| a == "login_succeeded")
        .count();
    assert_eq!(logins, 4, "the audit log keeps every sign-in");
    // Nothing else is old enough: a second pass deletes nothing.
    let again = auth::retention::prune_sessions(&app.db.pool, &app.settings.sessions)
        .await
        .expect("prune");
    assert_eq!(again, 0);
}

#[tokio::test]
async fn a_user_chooses_the_language_of_their_screens() {
    let app = spawn_app().await;
    let (_, token) = app.staff_session("vera", "shift_manager").await;
    assert!(
        app.introspect(&token).await["session"]
            .get("language")
            .is_none()
    );

    let response = app
        .put_with(&token, "/api/v1/me/language", &json!({ "language": "RU" }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["language"], "ru");
    // Stored with the user: a new session on another computer has it too.
    let other = app.login_ok("vera", PASSWORD).await;
    assert_eq!(app.introspect(&other).await["session"]["language"], "ru");
    assert_eq!(
        json_body(app.get_with(&token, "/api/v1/me").await).await["language"],
        "ru"
    );

    let response = app
        .put_with(&token, "/api/v1/me/language", &json!({ "language": "tlh" }))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "language");
    assert_eq!(app.introspect(&token).await["session"]["language"], "ru");

    let response = app
        .put_with(&token, "/api/v1/me/language", &json!({ "language": null }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        app.introspect(&token).await["session"]
            .get("language")
            .is_none()
    );
    let response = app
        .put_with(
            "kst_nobody",
            "/api/v1/me/language",
            &json!({ "language": "en" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
