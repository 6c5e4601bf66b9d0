use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn changes_stage_events_with_a_per_user_sequence() {
    let app = spawn_app().await;
    let (user, token) = app.staff_session("yana", "cashier").await;
    app.grant(user, "kitchen_staff").await;
    app.delete_with(&token, "/api/v1/sessions/current").await;
    app.post_with(
        &app.admin_token,
        &format!("/api/v1/users/{user}/deactivate"),
        &json!({}),
    )
    .await;

    let events: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|(_, e)| e["subject"] == user.to_string())
        .collect();
    let keys: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "auth.user.created",
            "auth.user.roles_changed",
            "auth.session.revoked",
            "auth.user.deactivated"
        ]
    );
    let sequences: Vec<i64> = events
        .iter()
        .map(|(_, e)| e["sequence"].as_i64().expect("sequence"))
        .collect();
    assert_eq!(sequences, vec![1, 2, 3, 4]);
    let created: contracts::UserCreated = events[0].1.clone().pipe_decode();
    assert_eq!(created.login, "yana");
    assert_eq!(created.roles.len(), 1);
    let changed: contracts::UserRolesChanged = events[1].1.clone().pipe_decode();
    assert_eq!(changed.display_name, "yana (test)");
    let roles: Vec<&str> = changed.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(roles, vec!["cashier", "kitchen_staff"]);
    assert_eq!(changed.actor_id, Some(app.admin_id));
    let revoked: contracts::SessionRevoked = events[2].1.clone().pipe_decode();
    assert_eq!(revoked.reason, "logout");
}

trait PipeDecode {
    fn pipe_decode<E: contracts::Event>(self) -> E;
}

impl PipeDecode for serde_json::Value {
    fn pipe_decode<E: contracts::Event>(self) -> E {
        let envelope: contracts::Envelope = serde_json::from_value(self).expect("an envelope");
        envelope.decode().expect("the event")
    }
}
