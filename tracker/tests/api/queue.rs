use reqwest::StatusCode;

use crate::helpers::{json_body, product_ids, spawn_app};

#[tokio::test]
async fn an_unchanged_queue_answers_304_and_a_tap_changes_its_etag() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    let ids = product_ids(&detail);

    let response = app.queue("dough", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body = json_body(response).await;
    assert!(body["generated_at"].is_string());
    let entries = body["products"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let entry = &entries[0];
    assert_eq!(entry["order_number"], 17);
    assert_eq!(entry["product_name"], "Pepperoni");
    assert_eq!(entry["size"], "30 cm");
    assert_eq!(entry["modifiers"][0], "no onion");
    assert_eq!(entry["target_seconds"], 60);
    assert!(entry["seconds_waiting"].is_i64());
    assert!(entry["entered_at"].is_string());

    let response = app.queue("dough", Some(&etag)).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);

    app.tap_ok("dough", ids[0]).await;
    let response = app.queue("dough", Some(&etag)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let new_etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    assert_eq!(
        json_body(response).await["products"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A station the tap did not touch keeps its tag.
    let oven = app.queue("oven", None).await;
    let oven_etag = oven.headers()["etag"].to_str().unwrap().to_owned();
    app.tap_ok("dough", ids[1]).await;
    assert_eq!(
        app.queue("oven", Some(&oven_etag)).await.status(),
        StatusCode::NOT_MODIFIED
    );
}
