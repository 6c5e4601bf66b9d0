use std::time::Duration;

use access::Role;
use bus::Publisher;
use contracts::{OrderCancelled, OrderItem, OrderPlaced, OrderSource, ProductCategory};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, json_body, spawn_app};

fn placed(app: &TestApp) -> OrderPlaced {
    OrderPlaced {
        promised_at: None,
        order_id: Uuid::now_v7(),
        pizzeria_id: app.pizzeria_id,
        number: 42,
        customer_name: "Vera".into(),
        show_number_only: false,
        source: OrderSource::Delivery,
        placed_at: chrono::Utc::now(),
        items: vec![OrderItem {
            product_id: Uuid::now_v7(),
            name: "Four cheese".into(),
            category: ProductCategory::Pizza,
            size: None,
            quantity: 2,
            modifiers: vec![],
            allergens: vec![],
        }],
    }
}

#[tokio::test]
async fn an_order_placed_on_the_bus_is_taken_once() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let publisher = Publisher::connect(&app.bus, "test-cashier").await.unwrap();
    let order = placed(&app);

    let envelope = publisher.publish_event("cashier", 1, &order).await.unwrap();
    // The same envelope redelivered, and the same order sent again as a new event.
    publisher
        .publish("cashier.order.placed", &envelope)
        .await
        .unwrap();
    publisher.publish_event("cashier", 1, &order).await.unwrap();

    let detail = testkit::eventually("the order to arrive", Duration::from_secs(20), || async {
        let response = app.get_order(order.order_id).await;
        if response.status() == StatusCode::OK {
            Some(json_body(response).await)
        } else {
            None
        }
    })
    .await;
    assert_eq!(detail["products"].as_array().unwrap().len(), 2);

    // Give the duplicates time to be consumed, then check nothing doubled.
    app.wait_for_inbox(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let products: i64 = sqlx::query_scalar("select count(*) from products")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(products, 2);
    assert_eq!(app.outbox_of(order.order_id).await.len(), 1);

    // The relay publishes what intake staged.
    testkit::eventually(
        "the outbox to be published",
        Duration::from_secs(20),
        || async {
            let pending: i64 =
                sqlx::query_scalar("select count(*) from outbox where published_at is null")
                    .fetch_one(&app.db.pool)
                    .await
                    .unwrap();
            (pending == 0).then_some(())
        },
    )
    .await;
    publisher.close().await;
}

#[tokio::test]
async fn a_source_cancellation_on_the_bus_cancels_the_order() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let publisher = Publisher::connect(&app.bus, "test-site").await.unwrap();
    let order = placed(&app);
    publisher.publish_event("site", 1, &order).await.unwrap();
    let cancel = OrderCancelled {
        order_id: order.order_id,
        pizzeria_id: app.pizzeria_id,
        cancelled_at: chrono::Utc::now(),
        reason: Some("customer changed their mind".into()),
        actor: None,
    };
    publisher.publish_event("site", 2, &cancel).await.unwrap();

    let detail = testkit::eventually(
        "the order to be cancelled",
        Duration::from_secs(20),
        || async {
            let response = app.get_order(order.order_id).await;
            if response.status() != StatusCode::OK {
                return None;
            }
            let detail = json_body(response).await;
            (detail["order"]["status"] == "cancelled").then_some(detail)
        },
    )
    .await;
    let cancelled = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "OrderCancelled")
        .expect("a cancellation in the timeline")
        .clone();
    assert_eq!(cancelled["actor"], "site");
    assert!(app.queue_ids("dough").await.is_empty());
    publisher.close().await;
}

#[tokio::test]
async fn an_order_for_an_unknown_pizzeria_is_dead_lettered_not_stored() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let publisher = Publisher::connect(&app.bus, "test-cashier").await.unwrap();
    let mut order = placed(&app);
    order.pizzeria_id = Uuid::now_v7();
    publisher.publish_event("cashier", 1, &order).await.unwrap();
    // A good order after it still flows: the bad one does not wedge the queue.
    let good = placed(&app);
    publisher.publish_event("cashier", 1, &good).await.unwrap();
    testkit::eventually("the good order", Duration::from_secs(20), || async {
        (app.get_order(good.order_id).await.status() == StatusCode::OK).then_some(())
    })
    .await;
    let stored: bool = sqlx::query_scalar("select exists (select 1 from orders where id = $1)")
        .bind(order.order_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(!stored);
    // The on-call engineer finds it with `tracker dead-letters list`, with its reason.
    let listing = testkit::eventually(
        "the order in the dead letters",
        Duration::from_secs(20),
        || async {
            let mut out = Vec::new();
            bus::dead_letters::print(&app.bus, bus::topology::TRACKER_INTAKE, &mut out)
                .await
                .unwrap();
            let out = String::from_utf8(out).unwrap();
            out.contains("cashier.order.placed").then_some(out)
        },
    )
    .await;
    assert_eq!(listing.lines().count(), 1, "{listing}");
    publisher.close().await;
}

/// A till's cancel held up by an outage reaches the tracker after the kitchen handed the order
/// over: a race, not a broken message. It is recorded on the order (for a refund), announced
/// once, and acknowledged; nothing goes to the dead letters.
#[tokio::test]
async fn a_cancel_after_the_hand_over_is_recorded_on_the_order_not_dead_lettered() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let detail = app.place_order(&[("Cola", "drink", 1)]).await;
    let order_id = crate::helpers::order_id(&detail);
    app.tap_ok("packing", crate::helpers::product_ids(&detail)[0])
        .await;
    assert_eq!(app.hand_over(order_id).await.status(), StatusCode::OK);

    let publisher = Publisher::connect(&app.bus, "test-cashier").await.unwrap();
    let cancelled_at = chrono::Utc::now() - chrono::TimeDelta::seconds(90);
    let cancel = OrderCancelled {
        order_id,
        pizzeria_id: app.pizzeria_id,
        cancelled_at,
        reason: Some("customer waited too long".into()),
        actor: Some("Till 2".into()),
    };
    publisher
        .publish_event("cashier", 2, &cancel)
        .await
        .unwrap();
    // The till retries the cancel under a new event id: it is recorded once.
    publisher
        .publish_event("cashier", 2, &cancel)
        .await
        .unwrap();

    let detail = testkit::eventually(
        "the cancel recorded on the order",
        Duration::from_secs(20),
        || async {
            let detail = app.order_detail(order_id).await;
            (!detail["order"]["cancel_after_hand_over_recorded_at"].is_null()).then_some(detail)
        },
    )
    .await;
    let order = &detail["order"];
    assert_eq!(order["status"], "handed_over");
    assert_eq!(order["cancel_after_hand_over_source"], "cashier");
    assert_eq!(order["cancel_after_hand_over_actor"], "Till 2");
    assert_eq!(
        order["cancel_after_hand_over_reason"],
        "customer waited too long"
    );
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(order["cancel_after_hand_over_at"].clone()).unwrap();
    assert_eq!(at.timestamp_micros(), cancelled_at.timestamp_micros());
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "OrderCancelledAfterHandOver" && t["actor"] == "Till 2"),
        "{detail}"
    );

    // Both cancels consumed (the inbox holds them), one event, no dead letters.
    app.wait_for_inbox(2).await;
    let kinds: Vec<String> = app
        .outbox_of(order_id)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "OrderCancelledAfterHandOver")
            .count(),
        1,
        "{kinds:?}"
    );
    assert!(!kinds.iter().any(|k| k == "OrderCancelled"), "{kinds:?}");
    let dead = bus::dead_letters::list(&app.bus, bus::topology::TRACKER_INTAKE)
        .await
        .unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    // A manager's cancel of a handed-over order stays a conflict: only a source's late cancel
    // is a fact to record.
    let response = app.cancel(order_id, &serde_json::json!({})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        crate::helpers::error_code(response).await,
        "order_handed_over"
    );
    publisher.close().await;
}

#[tokio::test]
async fn the_intakes_dead_letters_are_served_to_operations_and_discarded_on_record() {
    let app = spawn_app().await;
    app.wait_until_ready().await;
    let publisher = Publisher::connect(&app.bus, "test-cashier").await.unwrap();
    let mut order = placed(&app);
    order.pizzeria_id = Uuid::now_v7();
    publisher.publish_event("cashier", 1, &order).await.unwrap();
    publisher.close().await;

    let list = testkit::eventually(
        "the dead letter over HTTP",
        Duration::from_secs(20),
        || async {
            let response = app
                .send_as(
                    Some(&app.token),
                    Method::GET,
                    "/api/v1/dead-letters?routing_key=cashier.",
                    None,
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            let list: Value = response.json().await.unwrap();
            (list["matching"] == 1).then_some(list)
        },
    )
    .await;
    assert_eq!(list["consumer"], "tracker-intake");
    let key = list["letters"][0]["key"].as_str().unwrap().to_owned();
    assert_eq!(list["letters"][0]["event_type"], "OrderPlaced");

    // A shift manager runs a pizzeria, not the bus.
    let manager = app.peers.staff(Role::ShiftManager, app.pizzeria_id).await;
    let response = app
        .send_as(
            Some(&manager.token),
            Method::GET,
            "/api/v1/dead-letters",
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let response = app
        .send_as(
            Some(&app.token),
            Method::POST,
            "/api/v1/dead-letters/discard",
            Some(&json!({ "keys": [key], "reason": "a pizzeria that does not exist" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let audit: Value = app
        .send_as(
            Some(&app.token),
            Method::GET,
            "/api/v1/dead-letters/actions",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["actions"][0]["action"], "discard");
    assert_eq!(audit["actions"][0]["actor_name"], system_tests::ADMIN_NAME);
    assert_eq!(
        audit["actions"][0]["reason"],
        "a pizzeria that does not exist"
    );
    let stored: i64 = sqlx::query_scalar("select count(*) from dead_letter_actions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "recorded in the tracker's own database");
}
