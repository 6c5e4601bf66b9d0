//! Auth serves the dead letters of its consumer (`auth-pizzerias`) to the operations page, as
//! the tracker and the sync worker serve theirs: listed with their reason to a caller with
//! `operations.read` across the chain, refused to one without it, replayed with
//! `operations.replay`, and every replay recorded in auth's own database.

use std::time::Duration;

use bus::Publisher;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_malformed_announcement_is_dead_lettered_listed_with_its_reason_and_replayed_on_record() {
    let app = spawn_app().await;
    let publisher = Publisher::connect(&app.bus, "test-tracker").await.unwrap();
    publisher
        .publish_raw("tracker.pizzeria.registered", b"{ this is not json")
        .await
        .unwrap();
    publisher.close().await;

    let (_, viewer) = app
        .chain_staff_session("olga.viewer", "operations_viewer")
        .await;
    let (on_call_id, on_call) = app.chain_staff_session("ivan.oncall", "on_call").await;
    let (_, manager) = app.staff_session("pavel.manager", "shift_manager").await;

    let list = testkit::eventually(
        "the malformed announcement in auth's dead letters",
        Duration::from_secs(30),
        || async {
            let response = app.get_with(&viewer, "/api/v1/dead-letters").await;
            assert_eq!(response.status(), StatusCode::OK);
            let list = json_body(response).await;
            (list["total"] == 1).then_some(list)
        },
    )
    .await;
    assert_eq!(list["consumer"], "auth-pizzerias");
    let letter = &list["letters"][0];
    assert_eq!(letter["routing_key"], "tracker.pizzeria.registered");
    assert!(
        letter["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a CloudEvents JSON envelope"),
        "the reason is listed: {letter}"
    );
    let key = letter["key"].as_str().expect("a key").to_owned();

    // Nobody signed in; a shift manager, who runs a pizzeria and not the bus; a viewer, who may
    // read but not replay: all refused, and nothing is taken from the queue.
    let response = app
        .client
        .get(app.url("/api/v1/dead-letters"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app.get_with(&manager, "/api/v1/dead-letters").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        testkit::problem(response)
            .await
            .detail
            .contains("operations.read"),
        "the refusal names the right"
    );
    let replay = json!({ "keys": [key] });
    let response = app
        .post_with(&viewer, "/api/v1/dead-letters/replay", &replay)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.dead_letter_actions().await, vec![]);

    let response = app
        .post_with(&on_call, "/api/v1/dead-letters/replay", &replay)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let done = json_body(response).await;
    assert_eq!(done["count"], 1, "{done}");
    assert_eq!(done["keys"], json!([key]));

    // Recorded in auth's database, and read back through the API.
    assert_eq!(
        app.dead_letter_actions().await,
        vec![(
            "auth-pizzerias".to_owned(),
            "replay".to_owned(),
            key.clone(),
            on_call_id
        )]
    );
    let response = app.get_with(&viewer, "/api/v1/dead-letters/actions").await;
    assert_eq!(response.status(), StatusCode::OK);
    let audit = json_body(response).await;
    assert_eq!(audit["consumer"], "auth-pizzerias");
    assert_eq!(audit["actions"][0]["action"], "replay");
    assert_eq!(audit["actions"][0]["letter_key"], key.as_str());
    assert_eq!(audit["actions"][0]["actor_id"], on_call_id.to_string());
    assert_eq!(audit["actions"][0]["actor_name"], "ivan.oncall (test)");
}

impl TestApp {
    /// Auth's dead-letter audit: (consumer, action, letter key, actor), oldest first.
    async fn dead_letter_actions(&self) -> Vec<(String, String, String, uuid::Uuid)> {
        sqlx::query_as(
            "select consumer, action, letter_key, actor_id from dead_letter_actions order by id",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }
}
