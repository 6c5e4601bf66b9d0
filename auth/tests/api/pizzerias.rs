//! Auth keeps its list of pizzerias from the tracker's announcements: a grant in a pizzeria the
//! tracker has not announced is refused, naming `pizzeria_id` and the rule; once it is
//! announced, it works. Announcements apply in sequence order, once each.

use std::time::Duration;

use bus::Publisher;
use chrono::Utc;
use contracts::{Envelope, Event, PizzeriaChanged, PizzeriaRegistered};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

async fn announce<E: Event>(publisher: &Publisher, event: &E, sequence: i64) -> Envelope {
    publisher
        .publish_event("tracker", sequence, event)
        .await
        .unwrap()
}

fn registered(id: Uuid, name: &str) -> PizzeriaRegistered {
    PizzeriaRegistered {
        pizzeria_id: id,
        name: name.into(),
        time_zone: "UTC".into(),
        at: Utc::now(),
    }
}

fn changed(id: Uuid, name: &str) -> PizzeriaChanged {
    PizzeriaChanged {
        pizzeria_id: id,
        name: name.into(),
        time_zone: "UTC".into(),
        at: Utc::now(),
    }
}

impl TestApp {
    /// Waits until the app's consumer has taken the event (its id is in the inbox).
    async fn until_taken(&self, event: &Envelope) {
        testkit::eventually(
            "auth to take the announcement",
            Duration::from_secs(30),
            || async {
                let seen: i64 =
                    sqlx::query_scalar("select count(*) from inbox where event_id = $1")
                        .bind(event.id)
                        .fetch_one(&self.db.pool)
                        .await
                        .unwrap();
                (seen == 1).then_some(())
            },
        )
        .await;
    }

    async fn pizzeria_name(&self, id: Uuid) -> Option<String> {
        sqlx::query_scalar("select name from pizzerias where id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_grant_in_a_pizzeria_the_tracker_has_not_announced_is_refused_until_it_is() {
    let app = spawn_app().await;
    let user = app.create_staff("nina", "kitchen_staff").await;
    let id = Uuid::now_v7();
    let grant = async || {
        app.post_with(
            &app.admin_token,
            &format!("/api/v1/users/{user}/roles"),
            &json!({ "role": "cashier", "pizzeria_id": id }),
        )
        .await
    };
    let response = grant().await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = testkit::problem(response).await;
    assert_eq!(problem.field.as_deref(), Some("pizzeria_id"), "{problem:?}");
    assert!(
        problem.detail.contains("tracker"),
        "the refusal says where pizzerias come from: {problem:?}"
    );
    assert!(problem.rule.is_some(), "{problem:?}");
    // Nothing was written: the user still has only the role they were created with.
    let roles: i64 = sqlx::query_scalar("select count(*) from user_roles where user_id = $1")
        .bind(user)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(roles, 1);

    let publisher = Publisher::connect(&app.bus, "test-tracker").await.unwrap();
    let event = announce(&publisher, &registered(id, "Syktyvkar-1"), 1).await;
    publisher.close().await;
    app.until_taken(&event).await;
    assert_eq!(grant().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn announcements_apply_in_sequence_order_and_once() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let publisher = Publisher::connect(&app.bus, "test-tracker").await.unwrap();

    let first = announce(&publisher, &registered(id, "Syktyvkar-1"), 1).await;
    app.until_taken(&first).await;
    assert_eq!(app.pizzeria_name(id).await.as_deref(), Some("Syktyvkar-1"));

    // A newer change, then an older one arriving late (a retried message): the older changes
    // nothing.
    announce(&publisher, &changed(id, "Syktyvkar-3"), 3).await;
    let stale = announce(&publisher, &changed(id, "Syktyvkar-2"), 2).await;
    app.until_taken(&stale).await;
    assert_eq!(app.pizzeria_name(id).await.as_deref(), Some("Syktyvkar-3"));

    // The same event delivered twice (the tracker's relay re-sending after a crash) and a
    // repeated registration change nothing either.
    let key = contracts::routing_key::<PizzeriaRegistered>("tracker");
    publisher.publish(&key, &first).await.unwrap();
    let repeat = announce(&publisher, &registered(id, "Syktyvkar-1"), 1).await;
    app.until_taken(&repeat).await;
    assert_eq!(app.pizzeria_name(id).await.as_deref(), Some("Syktyvkar-3"));
    let taken: i64 = sqlx::query_scalar("select count(*) from inbox where event_id = $1")
        .bind(first.id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(taken, 1);
    publisher.close().await;

    // Auth no longer registers pizzerias itself.
    let response = app
        .put_with(
            &app.admin_token,
            &format!("/api/v1/pizzerias/{id}"),
            &json!({ "name": "Mine" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
