use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::{
    SOURCE_KEY, error_code, error_field, error_rule, json_body, order_id, order_json, product_ids,
    spawn_app, spawn_app_with,
};

#[tokio::test]
async fn an_order_puts_every_unit_at_its_first_station() {
    let app = spawn_app().await;
    let detail = app
        .place_order(&[("Pepperoni", "pizza", 3), ("Cola", "drink", 1)])
        .await;

    assert_eq!(detail["order"]["status"], "accepted");
    let products = detail["products"].as_array().unwrap();
    assert_eq!(products.len(), 4, "quantity 3 becomes three products");
    let at = |station: &str| products.iter().filter(|p| p["station"] == station).count();
    assert_eq!(at("dough"), 3);
    assert_eq!(at("packing"), 1);
    assert_eq!(app.queue_ids("dough").await.len(), 3);
    assert_eq!(app.queue_ids("packing").await.len(), 1);
    // Targets: pizza 60+90+300+60 = 510 s each, drink 30 s.
    assert_eq!(detail["order"]["target_seconds"], 3 * 510 + 30);

    let order_id = crate::helpers::order_id(&detail);
    let outbox = app.outbox_of(order_id).await;
    assert_eq!(outbox, vec![("OrderAcceptedByTracker".to_owned(), 1)]);
}

#[tokio::test]
async fn a_duplicate_post_returns_the_same_order_without_duplicates() {
    let app = spawn_app().await;
    let order = order_json(app.pizzeria_id, &[("Margherita", "pizza", 2)]);

    let first = app.post_order(&order).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = json_body(first).await;
    let second = app.post_order(&order).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second = json_body(second).await;

    assert_eq!(product_ids(&first), product_ids(&second));
    let count: i64 = sqlx::query_scalar("select count(*) from products")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(app.outbox_of(order_id(&first)).await.len(), 1);
}

#[tokio::test]
async fn an_order_id_taken_in_another_pizzeria_is_a_409_naming_it() {
    let app = spawn_app().await;
    let order = order_json(app.pizzeria_id, &[("Margherita", "pizza", 1)]);
    assert_eq!(app.post_order(&order).await.status(), StatusCode::CREATED);
    let mut clash = order.clone();
    clash["pizzeria_id"] = serde_json::json!(app.other_pizzeria_id);
    let response = app.post_order(&clash).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem = testkit::problem(response).await;
    assert_eq!(problem.code, "order_id_taken");
    assert_eq!(problem.field.as_deref(), Some("order_id"));
    assert_eq!(problem.instance.as_deref(), Some("/api/v1/orders"));
    // Nothing of the clash was written: still one order, in its own pizzeria.
    let orders: Vec<uuid::Uuid> = sqlx::query_scalar("select pizzeria_id from orders")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(orders, vec![app.pizzeria_id]);
}

#[tokio::test]
async fn names_are_trimmed_on_intake() {
    let app = spawn_app().await;
    let mut order = order_json(app.pizzeria_id, &[("  Pepperoni ", "pizza", 1)]);
    order["customer_name"] = "  Boris  ".into();
    let detail = json_body(app.post_order(&order).await).await;
    assert_eq!(detail["order"]["customer_name"], "Boris");
    assert_eq!(detail["products"][0]["name"], "Pepperoni");
}

/// A till's key serves the pizzerias configured for it: the tests' till serves A and B, so an
/// order for C, a pizzeria the tracker knows, is refused before anything is written.
#[tokio::test]
async fn a_key_places_orders_only_in_the_pizzerias_it_serves() {
    let app = spawn_app().await;
    let c = Uuid::now_v7();
    let response = app.put_pizzeria(c, &json!({ "name": "Pizzeria C" })).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    for served in [app.pizzeria_id, app.other_pizzeria_id] {
        let response = app
            .post_order(&order_json(served, &[("Cola", "drink", 1)]))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let order = order_json(c, &[("Cola", "drink", 1)]);
    let response = app.post_order(&order).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_field(response).await, "pizzeria_id");
    let response = app.post_order(&order).await;
    let rule = error_rule(response).await;
    assert!(
        rule.contains("order_source_pizzerias.test-till"),
        "the rule names the setting: {rule}"
    );
    let stored: bool = sqlx::query_scalar("select exists (select 1 from orders where id = $1)")
        .bind(crate::helpers::uuid_of(&order["order_id"]))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(!stored);
}

/// Each key has its own budget: past it the answer is 429 with Retry-After, before the body is
/// read, while another key still places orders.
#[tokio::test]
async fn intake_is_rate_limited_per_key() {
    const OTHER_KEY: &str = "other-till-key-0123456789";
    let app = spawn_app_with(|settings| {
        // One order an hour after a burst of two: nothing refills while the test runs.
        settings.intake_rate.per_second = 1.0 / 3600.0;
        settings.intake_rate.burst = 2;
        settings.order_sources.insert(
            "other-till".into(),
            hex::encode(Sha256::digest(OTHER_KEY.as_bytes())),
        );
        settings.order_source_pizzerias = BTreeMap::from([
            ("test-till".to_owned(), "*".to_owned()),
            ("other-till".to_owned(), "*".to_owned()),
        ]);
    })
    .await;
    let order = || order_json(app.pizzeria_id, &[("Cola", "drink", 1)]);
    for _ in 0..2 {
        let response = app.post_order_with(Some(SOURCE_KEY), &order()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let response = app.post_order_with(Some(SOURCE_KEY), &order()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    assert_eq!(error_code(response).await, "intake_rate_limited");
    // Refused before the body is read: even a broken body gets the 429.
    let response = app.post_order_raw("application/json", "{").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    let response = app.post_order_with(Some(OTHER_KEY), &order()).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "another key has its own budget"
    );
    // A key for every pizzeria learns that a pizzeria does not exist.
    let unknown = order_json(Uuid::now_v7(), &[("Cola", "drink", 1)]);
    let response = app.post_order_with(Some(OTHER_KEY), &unknown).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // An unknown key is still a 401, not a 429.
    let response = app.post_order_with(Some("nobody"), &order()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
