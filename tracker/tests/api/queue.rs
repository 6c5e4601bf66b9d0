use std::time::Duration;

use reqwest::StatusCode;
use testkit::eventually;

use crate::helpers::{
    TestApp, error_field, json_body, order_id, order_json, product_ids, spawn_app,
};

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

fn etag_of(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// Polls `station` (`None`: the board) for its tag, changes the version in the database without
/// a notification, and polls again with the old tag: a 304 can only have come from the
/// tracker's in-memory versions, because the database says otherwise. Leaves the map one
/// change behind the database for that key (only a notification or a new listener fixes it).
async fn answered_from_memory(app: &TestApp, station: Option<&str>) -> Option<String> {
    let poll = async |tag: Option<&str>| match station {
        Some(code) => app.queue(code, tag).await,
        None => app.board(tag).await,
    };
    let tag = etag_of(&poll(None).await);
    app.bump_version_silently(station).await;
    (poll(Some(&tag)).await.status() == StatusCode::NOT_MODIFIED).then_some(tag)
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn unchanged_polls_are_answered_from_memory_and_changes_still_show() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    let ids = product_ids(&detail);

    // Station queues and the board are both answered from memory once the listener is up.
    let stale = eventually("a 304 from memory", WAIT, || {
        answered_from_memory(&app, Some("dough"))
    })
    .await;
    eventually("a board 304 from memory", WAIT, || {
        answered_from_memory(&app, None)
    })
    .await;

    // A change this process did not make (another tracker instance's) shows once its
    // notification arrives, with the version the database has.
    let version = app.bump_version_loudly(Some("dough")).await;
    let tag = eventually("the notified version", WAIT, || async {
        let response = app.queue("dough", Some(&stale)).await;
        (response.status() == StatusCode::OK).then(|| etag_of(&response))
    })
    .await;
    assert_eq!(tag, format!("W/\"q{version}\""));
    assert_eq!(
        app.queue("dough", Some(&tag)).await.status(),
        StatusCode::NOT_MODIFIED
    );

    // A tap here shows on the very next poll, before any notification could have arrived.
    app.tap_ok("dough", ids[0]).await;
    let response = app.queue("dough", Some(&tag)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(etag_of(&response), tag);
    assert_eq!(
        json_body(response).await["products"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The board moved too (the order is in work now).
    let board = app.board(None).await;
    let board_tag = etag_of(&board);
    app.tap_ok("dough", ids[1]).await;
    app.tap_ok("topping", ids[0]).await;
    assert_eq!(
        app.board(Some(&board_tag)).await.status(),
        StatusCode::NOT_MODIFIED,
        "taps that do not change the board keep its tag"
    );
}

#[tokio::test]
async fn after_the_version_listener_drops_polls_read_the_database_until_it_is_back() {
    let app = spawn_app().await;
    let stale = eventually("a 304 from memory", WAIT, || {
        answered_from_memory(&app, Some("oven"))
    })
    .await;
    assert!(app.drop_version_listener().await >= 1);

    // With the map cleared (and re-primed from the database once the listener is back), the
    // change the map never heard of shows.
    let current = eventually("the database's version", WAIT, || async {
        let response = app.queue("oven", Some(&stale)).await;
        (response.status() == StatusCode::OK).then(|| etag_of(&response))
    })
    .await;
    assert_ne!(current, stale);
    assert_eq!(
        app.queue("oven", Some(&current)).await.status(),
        StatusCode::NOT_MODIFIED
    );
    // A change while the listener may still be down shows on the next poll too.
    let detail = app.place_order(&[("Wings", "side", 1)]).await;
    let response = app.queue("oven", Some(&current)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(
        body["products"][0]["product_id"],
        detail["products"][0]["id"]
    );

    // And once the listener is back, memory answers again.
    eventually("a 304 from memory after reconnecting", WAIT, || {
        answered_from_memory(&app, Some("oven"))
    })
    .await;
}

#[tokio::test]
async fn a_long_queue_says_how_many_wait_and_a_remake_comes_first_with_its_reason() {
    let app = spawn_app().await;
    let mut first = None;
    for _ in 0..3 {
        let detail = app.place_order(&[("Pepperoni", "pizza", 45); 4]).await;
        first.get_or_insert(detail);
    }
    let first = first.unwrap();
    let pizza = product_ids(&first)[0];
    app.tap_ok("dough", pizza).await;

    let queue = json_body(app.queue("dough", None).await).await;
    assert_eq!(queue["total"], 539, "every product waiting is counted");
    assert_eq!(
        queue["all_day"],
        serde_json::json!([{ "product_name": "Pepperoni", "size": "30 cm", "count": 539 }]),
        "all day counts cover every product, not only those listed"
    );
    assert_eq!(queue["products"].as_array().unwrap().len(), 500);

    // Sent back to dough behind 539 others, the remake is listed first, urgent, with why.
    let response = app.remake(order_id(&first), pizza).await;
    assert_eq!(response.status(), StatusCode::OK);
    let queue = json_body(app.queue("dough", None).await).await;
    assert_eq!(queue["total"], 540);
    let top = &queue["products"][0];
    assert_eq!(top["product_id"], pizza.to_string());
    assert_eq!(top["urgent"], true);
    assert_eq!(top["remake_reason"], "burnt");
    assert_eq!(top["pass"], 2);
    assert_eq!(queue["products"][1]["urgent"], false);
}

#[tokio::test]
async fn a_drink_is_due_with_the_orders_pizza_and_listed_by_when_it_is_due() {
    let app = spawn_app().await;
    let with_pizza = app
        .place_order(&[("Pepperoni", "pizza", 1), ("Cola", "drink", 1)])
        .await;
    let drink_with_pizza = product_ids(&with_pizza)[1];
    let alone = app.place_order(&[("Juice", "drink", 1)]).await;
    let drink_alone = product_ids(&alone)[0];

    let queue = json_body(app.queue("packing", None).await).await;
    let products = queue["products"].as_array().unwrap();
    let ids: Vec<String> = products
        .iter()
        .map(|p| p["product_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [drink_alone.to_string(), drink_with_pizza.to_string()],
        "the drink due first is listed first"
    );
    let at = |p: &serde_json::Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(p[field].as_str().unwrap()).unwrap()
    };
    // The pizza's route is 510 s, the drink's 30 s: its clock starts 480 s after intake.
    let waiting = &products[1];
    assert_eq!(
        (at(waiting, "clock_from") - at(waiting, "entered_at")).num_seconds(),
        480
    );
    assert_eq!(
        at(&products[0], "clock_from"),
        at(&products[0], "entered_at")
    );

    // At packing, the last station, each card says how much of its order is ready there.
    assert_eq!(
        waiting["order_ready"],
        serde_json::json!({ "ready": 1, "of": 2 }),
        "the drink waits at packing, the pizza at dough"
    );
    assert!(
        json_body(app.queue("dough", None).await).await["products"][0]["order_ready"].is_null(),
        "only at a product's last station"
    );

    // Tapped before its clock started, it took no time against its target.
    let tap = app.tap_ok("packing", drink_with_pizza).await;
    assert_eq!(tap["duration_ms"], 0);
}

#[tokio::test]
async fn a_cancelled_order_leaves_an_alert_at_every_station_it_was_at() {
    let app = spawn_app().await;
    let detail = app
        .place_order(&[("Pepperoni", "pizza", 1), ("Wings", "side", 1)])
        .await;
    let response = app
        .cancel(
            order_id(&detail),
            &serde_json::json!({ "reason": "customer left" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    for station in ["dough", "oven"] {
        let queue = json_body(app.queue(station, None).await).await;
        assert_eq!(queue["products"], serde_json::json!([]));
        let alerts = queue["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{station}");
        assert_eq!(alerts[0]["kind"], "cancelled");
        assert_eq!(alerts[0]["order_number"], 17);
        assert_eq!(alerts[0]["reason"], "customer left");
    }
    let topping = json_body(app.queue("topping", None).await).await;
    assert_eq!(topping["alerts"], serde_json::json!([]));
}

#[tokio::test]
async fn allergens_are_stored_as_sent_and_listed_apart_from_the_modifiers() {
    let app = spawn_app().await;
    let mut order = order_json(app.pizzeria_id, &[("Pepperoni", "pizza", 1)]);
    order["items"][0]["modifiers"] = serde_json::json!(["аллергия на орехи", "extra eggplant"]);
    order["items"][0]["allergens"] = serde_json::json!(["nuts", "milk"]);
    assert_eq!(app.post_order(&order).await.status(), StatusCode::CREATED);
    let queue = json_body(app.queue("dough", None).await).await;
    let entry = &queue["products"][0];
    assert_eq!(entry["allergens"], serde_json::json!(["nuts", "milk"]));
    assert_eq!(
        entry["modifiers"],
        serde_json::json!(["аллергия на орехи", "extra eggplant"])
    );

    let mut bad = order_json(app.pizzeria_id, &[("Pepperoni", "pizza", 1)]);
    bad["items"][0]["allergens"] = serde_json::json!(["nut allergy"]);
    let response = app.post_order(&bad).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "items[0].allergens[0]");
}
