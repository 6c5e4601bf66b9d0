//! Device approval phishing (RFC 8628 §5.4): the approver learns whether the device is on
//! their network, requests decided for one pizzeria stay out of sight of another's approvers,
//! and a shift manager can throw a lost tablet out at once.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn lookup_says_whether_the_device_asked_from_the_approvers_network() {
    let app = spawn_app().await;
    // The device asks from 10.9.9.9 (see `post_form`).
    let code = app.request_code().await["user_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let near = json_body(
        app.lookup_from("10.9.9.77", &app.manager_token, &code)
            .await,
    )
    .await;
    assert_eq!(near["same_network"], true, "{near}");
    assert_eq!(near["approver_ip"], "10.9.9.77", "{near}");
    let far = json_body(
        app.lookup_from("198.51.100.4", &app.manager_token, &code)
            .await,
    )
    .await;
    assert_eq!(far["same_network"], false, "{far}");
    assert_eq!(far["ip"], "10.9.9.9", "{far}");
}

/// A shift manager of a second pizzeria: (pizzeria id, session token).
async fn approver_elsewhere(app: &TestApp) -> (Uuid, String) {
    let other = Uuid::now_v7();
    app.register_pizzeria(other).await;
    let response = app
        .client
        .post(app.auth_url("/api/v1/users"))
        .bearer_auth(&app.admin_token)
        .json(&json!({
            "login": "elsewhere",
            "display_name": "Elsewhere (test)",
            "password": PASSWORD,
            "roles": [{ "role": "shift_manager", "pizzeria_id": other }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    (other, app.login("elsewhere", PASSWORD).await)
}

#[tokio::test]
async fn a_decided_request_is_out_of_sight_of_another_pizzerias_approvers() {
    let app = spawn_app().await;
    let (_, elsewhere) = approver_elsewhere(&app).await;

    let approved = app.request_code().await["user_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .approve(&app.manager_token, &approved, app.tablet("oven"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.lookup(&elsewhere, &approved).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.deny(&elsewhere, &approved).await.status(),
        StatusCode::NOT_FOUND
    );
    let own = json_body(app.lookup(&app.manager_token, &approved).await).await;
    assert_eq!(own["status"], "approved", "{own}");

    let denied = app.request_code().await["user_code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.deny(&app.manager_token, &denied).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.lookup(&elsewhere, &denied).await.status(),
        StatusCode::NOT_FOUND
    );

    // A pending request belongs to no pizzeria yet: any approver may look it up.
    let pending = app.request_code().await["user_code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.lookup(&elsewhere, &pending).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_shift_manager_revokes_a_lost_tablet_but_does_not_rename_it() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("dough")).await;
    let id = tablet["device_id"].as_str().unwrap();
    assert_eq!(
        app.change_device(&app.manager_token, id, &json!({ "name": "Mine now" }))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.revoke_device(&app.manager_token, id).await.status(),
        StatusCode::NO_CONTENT
    );
    let list = json_body(app.list_devices(&app.manager_token).await).await;
    assert!(list["devices"][0]["revoked_at"].is_string(), "{list}");
    let (_, elsewhere) = approver_elsewhere(&app).await;
    assert_eq!(
        app.revoke_device(&elsewhere, id).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn devices_approved_by_someone_since_deactivated_are_flagged() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let list = json_body(app.list_devices(&app.office_token).await).await;
    assert_eq!(list["devices"][0]["approver_active"], true, "{list}");
    let approver = list["devices"][0]["approved_by"].as_str().unwrap();
    let response = app
        .client
        .post(app.auth_url(&format!("/api/v1/users/{approver}/deactivate")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list = json_body(app.list_devices(&app.office_token).await).await;
    assert_eq!(
        list["devices"][0]["device_id"], tablet["device_id"],
        "{list}"
    );
    assert_eq!(list["devices"][0]["approver_active"], false, "{list}");
}
