use reqwest::StatusCode;

use crate::helpers::{json_body, order_json, product_ids, spawn_app};

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
    let events: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 1);
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
