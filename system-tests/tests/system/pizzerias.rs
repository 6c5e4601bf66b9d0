//! One owner for pizzerias: a chain admin creates one at the tracker only, and auth, which
//! learns of it by the tracker's `PizzeriaRegistered`, grants roles in it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use system_tests::AccessPeers;
use testkit::eventually;
use uuid::Uuid;

#[tokio::test]
async fn a_pizzeria_created_at_the_tracker_is_one_auth_grants_roles_in() {
    let bus = testkit::test_bus();
    let peers = AccessPeers::start(&bus).await;
    let (tracker_url, tracker_shutdown, _tracker_db) = crate::tracker_beside(&peers, &bus).await;
    let client = reqwest::Client::new();
    let id = Uuid::now_v7();

    let response = client
        .put(format!("{tracker_url}/api/v1/pizzerias/{id}"))
        .bearer_auth(&peers.admin_token)
        .json(&json!({ "name": "Pizzeria on Lenina 7" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let new_user = json!({
        "login": "lena.lenina7",
        "display_name": "Lena",
        "password": "kitchen-password-1",
        "roles": [{ "role": "shift_manager", "pizzeria_id": id }],
    });
    let status = eventually(
        "auth to learn of the pizzeria",
        Duration::from_secs(60),
        || async {
            let response = client
                .post(format!("{}/api/v1/users", peers.auth_url))
                .bearer_auth(&peers.admin_token)
                .json(&new_user)
                .send()
                .await
                .unwrap();
            // Until then the grant is refused, naming the pizzeria.
            (response.status() != StatusCode::UNPROCESSABLE_ENTITY).then_some(response.status())
        },
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    tracker_shutdown.trigger();
}
