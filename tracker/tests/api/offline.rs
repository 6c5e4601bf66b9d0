//! A station tablet that lost its link queues taps and sends them when it returns, each with an
//! id it made (`client_tap_id`). A send can be repeated, so the tracker applies each id once and
//! answers a repeat with the original tap; a queued tap that became impossible meanwhile is
//! refused with the reason, for the tablet to tell the cook.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, error_code, error_field, json_body, order_id, product, product_ids, spawn_app,
};

async fn queued_tap(app: &TestApp, token: &str, station: &str, product: Uuid, id: Uuid) -> Value {
    let body = json!({ "client_tap_id": id });
    let response = app.tap_as(token, station, product, Some(&body)).await;
    assert_eq!(response.status(), StatusCode::OK, "tap at {station}");
    json_body(response).await
}

async fn completions(app: &TestApp, order: Uuid) -> usize {
    app.events_of(order, "ProductStageCompleted").await
}

#[tokio::test]
async fn a_tap_with_the_tablets_id_is_applied_once_however_often_it_is_sent() {
    let app = spawn_app().await;
    let dough = app.peers.station_tablet(app.pizzeria_id, "dough").await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    let order = order_id(&detail);
    let ids = product_ids(&detail);
    let id = Uuid::new_v4();

    // Sent twice at once (the link came back while the first was in flight), then again.
    let (first, second) = tokio::join!(
        queued_tap(&app, &dough.token, "dough", ids[0], id),
        queued_tap(&app, &dough.token, "dough", ids[0], id),
    );
    let third = queued_tap(&app, &dough.token, "dough", ids[0], id).await;
    let mut repeated: Vec<bool> = [&first, &second, &third]
        .iter()
        .map(|t| t["repeated"].as_bool().unwrap())
        .collect();
    repeated.sort();
    assert_eq!(repeated, [false, true, true]);
    for tap in [&second, &third] {
        assert_eq!(tap["tap_id"], first["tap_id"]);
        assert_eq!(tap["client_tap_id"], id.to_string());
        assert_eq!(tap["next_station"], "topping");
    }
    assert_eq!(completions(&app, order).await, 1);
    let detail = app.order_detail(order).await;
    assert_eq!(product(&detail, ids[0])["station"], "topping");

    // The id is the tap's: it cannot be spent on another product.
    let body = json!({ "client_tap_id": id });
    let response = app.tap_as(&dough.token, "dough", ids[1], Some(&body)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "client_tap_id");

    // Spent on two products of two orders at the same moment: one tap, one 422, never a 500.
    let one = product_ids(&app.place_order(&[("Pepperoni", "pizza", 1)]).await)[0];
    let two = product_ids(&app.place_order(&[("Pepperoni", "pizza", 1)]).await)[0];
    let shared = json!({ "client_tap_id": Uuid::new_v4() });
    let (a, b) = tokio::join!(
        app.tap_as(&dough.token, "dough", one, Some(&shared)),
        app.tap_as(&dough.token, "dough", two, Some(&shared)),
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY]);

    // Undo by the tap's id works for a tap that came from the queue; a late repeat of the
    // queued send afterwards answers with the original (now undone) tap and taps nothing.
    let tap_id = first["tap_id"].as_i64().unwrap();
    assert_eq!(app.undo("dough", tap_id).await.status(), StatusCode::OK);
    let late = queued_tap(&app, &dough.token, "dough", ids[0], id).await;
    assert_eq!(late["tap_id"], tap_id);
    assert_eq!(late["repeated"], true);
    assert_eq!(late["undone"], true);
    let detail = app.order_detail(order).await;
    assert_eq!(product(&detail, ids[0])["station"], "dough");
    assert_eq!(completions(&app, order).await, 1);
}

#[tokio::test]
async fn a_queued_tap_that_became_impossible_is_refused_and_says_why() {
    let app = spawn_app().await;
    let dough = app.peers.station_tablet(app.pizzeria_id, "dough").await;
    let other_dough = app.peers.station_tablet(app.pizzeria_id, "dough").await;

    // The order was cancelled while the tap waited on the tablet.
    let cancelled = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let response = app.cancel(order_id(&cancelled), &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json!({ "client_tap_id": Uuid::new_v4() });
    let pizza = product_ids(&cancelled)[0];
    let response = app.tap_as(&dough.token, "dough", pizza, Some(&body)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "order_cancelled");

    // Another tablet at the station made it meanwhile: the queued tap did not happen.
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];
    let response = app.tap_as(&other_dough.token, "dough", pizza, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json!({ "client_tap_id": Uuid::new_v4() });
    let response = app.tap_as(&dough.token, "dough", pizza, Some(&body)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "already_done");
    // Without an id it stays what it was: a double tap, answered with the tap already made.
    let response = app.tap_as(&dough.token, "dough", pizza, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["repeated"], true);

    // A tap that was applied, then its order cancelled: a repeat still answers as the first.
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];
    let id = Uuid::new_v4();
    let first = queued_tap(&app, &dough.token, "dough", pizza, id).await;
    let response = app.cancel(order_id(&detail), &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let again = queued_tap(&app, &dough.token, "dough", pizza, id).await;
    assert_eq!(again["tap_id"], first["tap_id"]);
    assert_eq!(again["repeated"], true);
}
