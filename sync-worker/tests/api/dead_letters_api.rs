//! The dead-letter API behind the operations page, with sessions checked at a real auth.

use access::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestOrder, impatient_retries, spawn_app_with_access};

impl TestApp {
    async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A signed-in staff member holding `role` (the on-call roles hold across the chain; the
    /// others in a pizzeria of their own).
    async fn staff(&self, role: Role) -> system_tests::StaffMember {
        let peers = self.peers.as_ref().expect("started with access");
        let pizzeria_id = Uuid::now_v7();
        if !role.is_chain_wide() {
            peers.register_pizzerias(&[pizzeria_id]).await;
        }
        peers.staff(role, pizzeria_id).await
    }
}

#[tokio::test]
async fn on_call_reads_replays_and_discards_dead_letters_and_each_action_is_recorded() {
    let app = spawn_app_with_access(impatient_retries()).await;
    let order = TestOrder::new(901);
    app.publish_raw("tracker.order.packed", b"{ this is not json")
        .await;
    // Its order was never accepted: it waits, then gives up.
    let early = order.in_work(2);
    app.publish(&early).await;
    app.wait_for_dead_letters(2).await;

    let viewer = app.staff(Role::OperationsViewer).await;
    let on_call = app.staff(Role::OnCall).await;

    // Nobody signed in, or signed in without the right: refused before anything is read.
    let (status, _) = app
        .api(Method::GET, "/api/v1/dead-letters", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let kitchen = app.staff(Role::KitchenStaff).await;
    let (status, body) = app
        .api(
            Method::GET,
            "/api/v1/dead-letters",
            Some(&kitchen.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Reading is one right...
    let (status, list) = app
        .api(
            Method::GET,
            "/api/v1/dead-letters",
            Some(&viewer.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["consumer"], "legacy-sync");
    assert_eq!(list["total"], 2);
    assert_eq!(list["letters"].as_array().map(Vec::len), Some(2));
    // ... replaying another.
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/dead-letters/replay",
            Some(&viewer.token),
            Some(json!({ "filter": {} })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Filters: by error words and by type.
    let (_, by_error) = app
        .api(
            Method::GET,
            "/api/v1/dead-letters?error=json",
            Some(&on_call.token),
            None,
        )
        .await;
    assert_eq!(by_error["matching"], 1, "{by_error}");
    let poison = by_error["letters"][0].clone();
    assert_eq!(poison["routing_key"], "tracker.order.packed");
    let (_, by_type) = app
        .api(
            Method::GET,
            "/api/v1/dead-letters?type=OrderInWork",
            Some(&on_call.token),
            None,
        )
        .await;
    assert_eq!(by_type["matching"], 1, "{by_type}");
    assert_eq!(
        by_type["letters"][0]["event_id"],
        early.envelope.id.to_string()
    );

    // One letter in full: the reason, where it came from, the payload pretty-printed.
    let key = by_type["letters"][0]["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let (status, detail) = app
        .api(
            Method::GET,
            &format!("/api/v1/dead-letters/{key}"),
            Some(&on_call.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["consumer"], "legacy-sync");
    assert_eq!(detail["routing_key"], "tracker.order.in_work");
    assert!(
        detail["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not mirrored yet"),
        "{detail}"
    );
    assert!(
        detail["first_failed_at"].is_string() && detail["failed_at"].is_string(),
        "{detail}"
    );
    assert!(
        detail["pretty_body"]
            .as_str()
            .unwrap_or_default()
            .contains("\n  \"data\": {"),
        "{detail}"
    );
    let (status, _) = app
        .api(
            Method::GET,
            "/api/v1/dead-letters/0000",
            Some(&on_call.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Discarding needs a reason; a selection is keys or a filter, not both.
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/dead-letters/discard",
            Some(&on_call.token),
            Some(json!({ "keys": [poison["key"]] })),
        )
        .await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("reason"))
    );
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/dead-letters/replay",
            Some(&on_call.token),
            Some(json!({ "keys": [key], "filter": {} })),
        )
        .await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("keys"))
    );
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/dead-letters/discard",
            Some(&on_call.token),
            Some(json!({ "keys": [poison["key"]], "reason": "a test message from the trial" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1);

    // The cause is fixed; a replay of everything of that type applies the event.
    app.publish(&order.accepted()).await;
    app.wait_for_order(order.order_id, "the order accepted", |o| o.status == 1)
        .await;
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/dead-letters/replay",
            Some(&on_call.token),
            Some(json!({ "filter": { "type": "OrderInWork" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1);
    app.wait_for_order(order.order_id, "the replayed event applied", |o| {
        o.status == 2
    })
    .await;
    assert!(app.dead_letters().await.is_empty());
    // Gone now: replaying it again finds nothing.
    let (status, _) = app
        .api(
            Method::POST,
            "/api/v1/dead-letters/replay",
            Some(&on_call.token),
            Some(json!({ "keys": [key] })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The audit: newest first, who did it, why.
    let (status, audit) = app
        .api(
            Method::GET,
            "/api/v1/dead-letters/actions",
            Some(&viewer.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions = audit["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 2, "{audit}");
    assert_eq!(actions[0]["action"], "replay");
    assert_eq!(actions[0]["event_id"], early.envelope.id.to_string());
    assert_eq!(actions[0]["actor_name"], on_call.display_name);
    assert_eq!(actions[0]["actor_id"], on_call.user_id.to_string());
    assert_eq!(actions[1]["action"], "discard");
    assert_eq!(actions[1]["reason"], "a test message from the trial");
    assert_eq!(actions[1]["letter_key"], poison["key"]);
}
