use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    error_code, error_field, json_body, order_id, order_json, product, product_ids, spawn_app,
};

#[tokio::test]
async fn cancel_takes_the_products_off_every_station() {
    let app = spawn_app().await;
    let detail = app
        .place_order(&[("Pepperoni", "pizza", 2), ("Wings", "side", 1)])
        .await;
    let order = order_id(&detail);
    let ids = product_ids(&detail);
    app.tap_ok("dough", ids[0]).await;
    assert_eq!(app.queue_ids("topping").await, vec![ids[0]]);

    let response = app
        .cancel(order, &json!({ "reason": "customer left" }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let detail = json_body(response).await;
    assert_eq!(detail["order"]["status"], "cancelled");
    assert_eq!(detail["order"]["cancel_reason"], "customer left");
    for station in ["dough", "topping", "oven", "packing"] {
        assert!(
            app.queue_ids(station).await.is_empty(),
            "{station} is empty"
        );
    }

    let response = app.tap("dough", ids[1], None).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "order_cancelled");
    // Cancelling again changes nothing.
    assert_eq!(app.cancel(order, &json!({})).await.status(), StatusCode::OK);
    let outbox = app.outbox_of(order).await;
    assert_eq!(
        outbox.iter().filter(|(t, _)| t == "OrderCancelled").count(),
        1
    );
    let response = app.hand_over(order).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "order_cancelled");
}

#[tokio::test]
async fn hand_over_before_packed_is_a_conflict() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let response = app.hand_over(order_id(&detail)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "not_packed");
}

#[tokio::test]
async fn a_handed_over_order_cannot_be_cancelled() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Cola", "drink", 1)]).await;
    let order = order_id(&detail);
    app.tap_ok("packing", product_ids(&detail)[0]).await;
    assert_eq!(app.hand_over(order).await.status(), StatusCode::OK);
    let response = app.cancel(order, &json!({})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "order_handed_over");
}

#[tokio::test]
async fn remake_sends_the_product_back_to_its_first_station() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let order = order_id(&detail);
    let pizza = product_ids(&detail)[0];
    for station in ["dough", "topping", "oven", "packing"] {
        app.tap_ok(station, pizza).await;
    }
    assert_eq!(app.order_detail(order).await["order"]["status"], "packed");

    let response = app.remake(order, pizza).await;
    assert_eq!(response.status(), StatusCode::OK);
    let detail = json_body(response).await;
    assert_eq!(detail["order"]["status"], "in_work");
    let p = product(&detail, pizza);
    assert_eq!(p["station"], "dough");
    assert_eq!(p["pass"], 2);
    assert_eq!(p["stage"], 0);
    assert_eq!(app.queue_ids("dough").await, vec![pizza]);

    // The new pass is tapped through like the first one.
    assert_eq!(app.tap_ok("dough", pizza).await["pass"], 2);
}

#[tokio::test]
async fn the_manager_lists_the_days_orders_by_status() {
    let app = spawn_app().await;
    let first = app.place_order(&[("Cola", "drink", 1)]).await;
    app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    app.tap_ok("packing", product_ids(&first)[0]).await;

    let all = json_body(app.list_orders("").await).await;
    assert_eq!(all["orders"].as_array().unwrap().len(), 2);
    let packed = json_body(app.list_orders("status=packed").await).await;
    let packed = packed["orders"].as_array().unwrap();
    assert_eq!(packed.len(), 1);
    assert_eq!(packed[0]["id"], first["order"]["id"]);
    let limited = json_body(app.list_orders("limit=1").await).await;
    assert_eq!(limited["orders"].as_array().unwrap().len(), 1);
    let other_day = json_body(app.list_orders("date=2020-01-01").await).await;
    assert!(other_day["orders"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_manager_finds_an_order_by_number_or_part_of_the_name() {
    let app = spawn_app().await;
    let mut order = order_json(app.pizzeria_id, &[("Cola", "drink", 1)]);
    order["number"] = json!(4204);
    order["customer_name"] = json!("Мария 50%_off");
    assert_eq!(app.post_order(&order).await.status(), StatusCode::CREATED);
    app.place_order(&[("Pepperoni", "pizza", 1)]).await;

    let app = &app;
    let found = |query: &'static str| async move {
        let body = json_body(app.list_orders(query).await).await;
        body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["number"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(found("q=4204").await, [4204]);
    assert_eq!(found("q=%D0%BC%D0%B0%D1%80").await, [4204], "any case");
    assert_eq!(found("q=50%25_").await, [4204]);
    assert_eq!(found("q=%25").await, [4204], "% is matched as itself");
    assert_eq!(found("q=anna").await, [17]);
    assert!(found("q=4205").await.is_empty());
    let response = app.list_orders(&format!("q={}", "x".repeat(65))).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "q");
}

#[tokio::test]
async fn an_order_past_its_target_is_flagged_late_once() {
    let app = spawn_app().await;
    let response = app
        .put_route(
            "drink",
            &json!({ "stages": [{ "station": "packing", "target_seconds": 1 }] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let detail = app.place_order(&[("Cola", "drink", 1)]).await;
    let order = order_id(&detail);

    testkit::eventually(
        "the order to turn late",
        Duration::from_secs(10),
        || async {
            let detail = app.order_detail(order).await;
            (detail["order"]["late"] == true).then_some(())
        },
    )
    .await;
    // A few more sweeps must not flag it again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let late: Vec<_> = app
        .outbox_of(order)
        .await
        .into_iter()
        .filter(|(t, _)| t == "OrderRunningLate")
        .collect();
    assert_eq!(late.len(), 1);
}

#[tokio::test]
async fn a_rushed_order_goes_to_the_top_of_every_station() {
    let app = spawn_app().await;
    let older = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    let rushed = app
        .place_order(&[("Margherita", "pizza", 1), ("Wings", "side", 1)])
        .await;
    let ids = product_ids(&rushed);
    assert_eq!(app.queue_ids("dough").await[0], product_ids(&older)[0]);

    let response = app.rush(order_id(&rushed)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let dough = json_body(app.queue("dough", None).await).await;
    assert_eq!(dough["products"][0]["product_id"], ids[0].to_string());
    assert_eq!(dough["products"][0]["urgent"], true);
    assert_eq!(app.queue_ids("oven").await[0], ids[1]);
    let detail = app.order_detail(order_id(&rushed)).await;
    let rushed_entries = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "OrderRushed")
        .count();
    assert_eq!(rushed_entries, 1);

    // Rushing again changes nothing; a cancelled order cannot be rushed.
    assert_eq!(app.rush(order_id(&rushed)).await.status(), StatusCode::OK);
    let detail = app.order_detail(order_id(&rushed)).await;
    assert_eq!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "OrderRushed")
            .count(),
        1
    );
    app.cancel(order_id(&older), &json!({})).await;
    let response = app.rush(order_id(&older)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "order_cancelled");
}
