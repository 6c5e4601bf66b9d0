//! Handing over at the counter: the tablet of a station where orders are finished (packing)
//! and the shift manager's screen hand a ready order over, under the same rules as a manager,
//! recorded as themselves.

use access::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code, json_body, order_id, product_ids, spawn_app};

async fn hand_over_as(app: &TestApp, token: &str, order: Uuid) -> reqwest::Response {
    let path = format!(
        "/api/v1/pizzerias/{}/orders/{order}/hand-over",
        app.pizzeria_id
    );
    app.send_as(Some(token), Method::POST, &path, None).await
}

async fn ready_at(app: &TestApp, token: &str, station: &str) -> Vec<Value> {
    let path = format!(
        "/api/v1/pizzerias/{}/stations/{station}/queue",
        app.pizzeria_id
    );
    let response = app.send_as(Some(token), Method::GET, &path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await["ready"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_packing_tablet_and_the_managers_screen_hand_over_at_the_counter() {
    let app = spawn_app().await;
    let a = app.pizzeria_id;
    let packing = app.peers.station_tablet(a, "packing").await;
    let dough = app.peers.station_tablet(a, "dough").await;
    let tv = app.peers.tv_board(a).await;
    let screen = app
        .peers
        .pair_device(a, "shift_manager_screen", None, "Counter screen")
        .await;
    let elsewhere = app
        .peers
        .station_tablet(app.other_pizzeria_id, "packing")
        .await;
    let cashier = app.peers.staff(Role::Cashier, a).await;

    let drinks = app.place_order(&[("Cola", "drink", 1)]).await;
    let drink = product_ids(&drinks)[0];
    let response = app.tap_as(&packing.token, "packing", drink, None).await;
    assert_eq!(json_body(response).await["order_status"], "packed");
    let ready = ready_at(&app, &packing.token, "packing").await;
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["order_id"], order_id(&drinks).to_string());
    assert_eq!(ready[0]["customer_name"], "Anna");
    // Only where orders are finished: the dough tablet lists none.
    assert!(ready_at(&app, &dough.token, "dough").await.is_empty());

    for (token, who) in [
        (&dough.token, "the dough tablet"),
        (&tv.token, "the TV board"),
        (&elsewhere.token, "another pizzeria's packing tablet"),
        (&cashier.token, "a cashier"),
    ] {
        let response = hand_over_as(&app, token, order_id(&drinks)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{who}");
    }
    // Not packed yet: the same 409 a manager gets.
    let pizza = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let response = hand_over_as(&app, &packing.token, order_id(&pizza)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "not_packed");

    let response = hand_over_as(&app, &packing.token, order_id(&drinks)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let detail = json_body(response).await;
    assert_eq!(detail["order"]["status"], "handed_over");
    let entry = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "OrderHandedOver")
        .unwrap();
    assert_eq!(entry["actor"], "packing tablet");
    assert_eq!(entry["principal"], format!("device:{}", packing.device_id));
    assert!(ready_at(&app, &packing.token, "packing").await.is_empty());
    // Handing over again is a retry; cancelling now is illegal.
    let response = hand_over_as(&app, &packing.token, order_id(&drinks)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.cancel(order_id(&drinks), &json!({})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // The shift manager's screen at the counter may too.
    let more = app.place_order(&[("Cola", "drink", 1)]).await;
    let response = app
        .tap_as(&packing.token, "packing", product_ids(&more)[0], None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = hand_over_as(&app, &screen.token, order_id(&more)).await;
    assert_eq!(response.status(), StatusCode::OK);
}
