use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn the_audit_log_records_who_did_what_to_whom_from_where() {
    let app = spawn_app().await;
    let user = app.create_staff("vera", "cashier").await;
    app.login_from("192.0.2.5", "vera", "wrong-password").await;
    let token = app.login_ok("vera", PASSWORD).await;
    app.grant(user, "kitchen_staff").await;
    app.delete_with(&token, "/api/v1/sessions/current").await;

    let response = app
        .get_with(&app.admin_token, &format!("/api/v1/audit?user_id={user}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    let entries = body["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .rev()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "user_created",
            "role_granted",
            "login_failed",
            "login_succeeded",
            "role_granted",
            "logout"
        ]
    );
    let failed = entries
        .iter()
        .find(|e| e["action"] == "login_failed")
        .expect("a failure");
    assert_eq!(failed["ip"], "192.0.2.5");
    assert_eq!(failed["details"]["login"], "vera");
    let granted = entries
        .iter()
        .find(|e| e["action"] == "role_granted")
        .expect("a grant");
    assert_eq!(uuid_of(&granted["actor_id"]), app.admin_id);
    assert_eq!(uuid_of(&granted["pizzeria_id"]), app.pizzeria_id);
    assert!(granted["at"].is_string());

    let response = app.get_with(&token, "/api/v1/audit").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, cashier) = app.staff_session("walt", "cashier").await;
    let response = app.get_with(&cashier, "/api/v1/audit").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
