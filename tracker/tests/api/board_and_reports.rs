use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{json_body, order_json, product_ids, spawn_app};

#[tokio::test]
async fn the_board_shows_preparing_and_ready_orders() {
    let app = spawn_app().await;
    let mut shy = order_json(app.pizzeria_id, &[("Cola", "drink", 1)]);
    shy["number"] = 21.into();
    shy["show_number_only"] = true.into();
    let shy = json_body(app.post_order(&shy).await).await;
    app.place_order(&[("Pepperoni", "pizza", 1)]).await;

    let response = app.board(None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let board = json_body(response).await;
    assert_eq!(board["preparing"].as_array().unwrap().len(), 2);
    assert!(board["ready"].as_array().unwrap().is_empty());
    assert_eq!(
        app.board(Some(&etag)).await.status(),
        StatusCode::NOT_MODIFIED
    );

    app.tap_ok("packing", product_ids(&shy)[0]).await;
    let response = app.board(Some(&etag)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let board = json_body(response).await;
    assert_eq!(
        board["preparing"],
        json!([{ "number": 17, "name": "Anna", "late": false }])
    );
    assert_eq!(board["ready"], json!([{ "number": 21, "late": false }]));
}

#[tokio::test]
async fn the_station_report_counts_the_days_taps() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    for id in product_ids(&detail) {
        app.tap_ok("dough", id).await;
    }
    app.tap_ok("topping", product_ids(&detail)[0]).await;

    let response = app.station_report("").await;
    assert_eq!(response.status(), StatusCode::OK);
    let report = json_body(response).await;
    let stations = report["stations"].as_array().unwrap();
    assert_eq!(stations.len(), 2);
    assert_eq!(stations[0]["station"], "dough");
    assert_eq!(stations[0]["taps"], 2);
    assert!(stations[0]["average_seconds"].as_f64().unwrap() >= 0.0);
    assert!(stations[0]["p90_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(stations[1]["station"], "topping");
    assert_eq!(stations[1]["taps"], 1);

    let empty = json_body(app.station_report("date=2020-01-01").await).await;
    assert!(empty["stations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_pizzeria_can_be_reconfigured() {
    let app = spawn_app().await;
    let body = json_body(app.get_pizzeria().await).await;
    assert_eq!(body["stations"].as_array().unwrap().len(), 4);
    assert_eq!(body["routes"]["pizza"]["stages"][2]["station"], "oven");
    assert_eq!(body["routes"]["side"]["stages"][0]["target_seconds"], 240);

    let response = app
        .put_pizzeria(
            app.pizzeria_id,
            &json!({
                "name": "Renamed",
                "stations": [{ "code": "grill", "name": "Grill" }],
                "routes": { "side": { "stages": [
                    { "station": "grill", "target_seconds": 120 },
                    { "station": "packing", "target_seconds": 45 }
                ] } }
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["name"], "Renamed");
    assert_eq!(body["stations"].as_array().unwrap().len(), 5);

    // New orders follow the new route.
    let detail = app.place_order(&[("Wings", "side", 1)]).await;
    assert_eq!(detail["products"][0]["station"], "grill");
    assert_eq!(app.queue_ids("grill").await.len(), 1);
}
