//! Pre-orders: an order with a promised time is held, off every station and the TV board, and
//! fired to its first stations at the promised time minus its slowest product's route target
//! (a pizza's default route: 510 s), by the sweeper, once, whichever tracker instance does it.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, error_code, error_field, json_body, order_id, order_json, product, product_ids,
    spawn_app, spawn_app_with,
};

const PIZZA_ROUTE_SECONDS: i64 = 510;

/// Places a pizza order promised `seconds` after its prep time from now.
async fn pre_order(app: &TestApp, seconds_after_prep: i64) -> Value {
    let mut order = order_json(app.pizzeria_id, &[("Pepperoni", "pizza", 1)]);
    let promised = Utc::now() + chrono::Duration::seconds(PIZZA_ROUTE_SECONDS + seconds_after_prep);
    order["promised_at"] = json!(promised);
    let response = app.post_order(&order).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json_body(response).await
}

async fn fired_events(app: &TestApp, order: Uuid) -> usize {
    app.events_of(order, "OrderFired").await
}

async fn on_board(app: &TestApp, order: Uuid) -> bool {
    let board = json_body(app.board(None).await).await;
    board["preparing"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["order_id"] == order.to_string())
}

#[tokio::test]
async fn a_pre_order_is_held_off_the_stations_and_fires_at_its_prep_time() {
    let app = spawn_app().await;
    let detail = pre_order(&app, 1).await;
    let order = order_id(&detail);
    let pizza = product_ids(&detail)[0];
    // Scheduled: the manager sees when it fires; no station and no TV board does.
    assert_eq!(detail["order"]["status"], "accepted");
    assert!(detail["order"]["fires_at"].is_string(), "{detail}");
    assert!(detail["order"]["promised_at"].is_string());
    assert!(product(&detail, pizza)["station"].is_null());
    let list = json_body(app.list_orders("").await).await;
    let listed = &list["orders"].as_array().unwrap()[0];
    assert_eq!(listed["fires_at"], detail["order"]["fires_at"]);
    assert!(!app.queue_ids("dough").await.contains(&pizza));
    assert!(!on_board(&app, order).await);
    let response = app.tap("dough", pizza, None).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "not_at_station");
    let response = app.remake(order, pizza).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "order_scheduled");

    testkit::eventually("the pre-order to fire", Duration::from_secs(30), || async {
        app.queue_ids("dough").await.contains(&pizza).then_some(())
    })
    .await;
    let detail = app.order_detail(order).await;
    assert!(detail["order"]["fires_at"].is_null());
    assert_eq!(product(&detail, pizza)["station"], "dough");
    assert_eq!(fired_events(&app, order).await, 1);
    assert!(on_board(&app, order).await);
    app.tap_ok("dough", pizza).await;
}

#[tokio::test]
async fn a_promised_time_is_checked_and_one_already_due_starts_at_once() {
    let app = spawn_app().await;
    let placed = Utc::now();
    for (promised, rule) in [
        (placed - chrono::Duration::minutes(10), "before"),
        (placed + chrono::Duration::days(8), "7 days"),
    ] {
        let mut order = order_json(app.pizzeria_id, &[("Pepperoni", "pizza", 1)]);
        order["placed_at"] = json!(placed);
        order["promised_at"] = json!(promised);
        let response = app.post_order(&order).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rule}"
        );
        assert_eq!(error_field(response).await, "promised_at", "{rule}");
    }
    let mut order = order_json(app.pizzeria_id, &[("Pepperoni", "pizza", 1)]);
    order["promised_at"] = json!(null);
    let response = app.post_order(&order).await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "null is not a time"
    );

    // Promised sooner than the pizza takes: nothing to hold, it starts now.
    let detail = pre_order(&app, -PIZZA_ROUTE_SECONDS + 60).await;
    let pizza = product_ids(&detail)[0];
    assert!(detail["order"]["fires_at"].is_null());
    assert!(detail["order"]["promised_at"].is_string());
    assert_eq!(product(&detail, pizza)["station"], "dough");
    assert_eq!(fired_events(&app, order_id(&detail)).await, 0);
}

/// Makes a held order due, as if its time had come while no tracker was running.
async fn come_due(app: &TestApp, order: Uuid) {
    sqlx::query("update orders set fires_at = now() - interval '1 second' where id = $1")
        .bind(order)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn two_tracker_instances_fire_a_pre_order_once_and_a_cancelled_one_never() {
    // The app's own sweeper runs once at start, then not for an hour: the "instances" below
    // are what fires.
    let app = spawn_app_with(|s| s.kitchen.late_sweep_interval_ms = 3_600_000).await;
    let held = order_id(&pre_order(&app, 3600).await);
    let cancelled = pre_order(&app, 3600).await;
    let response = app.cancel(order_id(&cancelled), &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    come_due(&app, held).await;
    come_due(&app, order_id(&cancelled)).await;

    // Two instances, each with its own pool, as after a restart or beside each other.
    let instance = || async {
        let pool = sqlx::PgPool::connect_with(app.db.settings.connect_options().unwrap())
            .await
            .unwrap();
        let kitchen = tracker::kitchen::Kitchen::new(Duration::from_secs(10));
        tracker::kitchen::fire_pre_orders(&pool, &kitchen, 10)
            .await
            .unwrap()
    };
    let (one, two) = tokio::join!(instance(), instance());
    assert_eq!(one + two, 2, "each order is taken by one instance");
    assert_eq!(instance().await, 0, "nothing is left to fire");
    assert_eq!(fired_events(&app, held).await, 1);
    let detail = app.order_detail(held).await;
    assert_eq!(detail["products"][0]["station"], "dough");

    let detail = app.order_detail(order_id(&cancelled)).await;
    assert_eq!(detail["order"]["status"], "cancelled");
    assert!(detail["order"]["fires_at"].is_null());
    assert!(detail["products"][0]["station"].is_null());
    assert_eq!(fired_events(&app, order_id(&cancelled)).await, 0);
}
