use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{
    error_code, json_body, order_id, product, product_ids, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn taps_through_every_station_pack_the_order_and_hand_over_closes_it() {
    let app = spawn_app().await;
    let detail = app
        .place_order(&[("Pepperoni", "pizza", 1), ("Cola", "drink", 1)])
        .await;
    let order = order_id(&detail);
    let ids = product_ids(&detail);
    let (pizza, drink) = (ids[0], ids[1]);

    let first = app.tap_ok("dough", pizza).await;
    assert_eq!(first["next_station"], "topping");
    assert_eq!(first["order_status"], "in_work");
    // The chain admin tapped, as themselves.
    let admin = first["actor"].as_str().unwrap().to_owned();
    assert!(first["principal"].as_str().unwrap().starts_with("user:"));
    app.tap_ok("topping", pizza).await;
    app.tap_ok("oven", pizza).await;
    let packed_pizza = app.tap_ok("packing", pizza).await;
    assert!(packed_pizza["next_station"].is_null());
    assert_eq!(
        packed_pizza["order_status"], "in_work",
        "the drink is still open"
    );
    let last = app.tap_ok("packing", drink).await;
    assert_eq!(last["order_status"], "packed");

    let response = app.hand_over(order).await;
    assert_eq!(response.status(), StatusCode::OK);
    let detail = json_body(response).await;
    assert_eq!(detail["order"]["status"], "handed_over");
    assert!(
        detail["products"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["station"].is_null())
    );

    let timeline = detail["timeline"].as_array().unwrap();
    let stages: Vec<_> = timeline
        .iter()
        .filter(|t| t["kind"] == "ProductStageCompleted")
        .collect();
    assert_eq!(stages.len(), 5);
    for stage in &stages {
        assert_eq!(stage["actor"], admin.as_str());
        assert!(stage["station"].is_string());
        assert!(stage["detail"]["duration_ms"].is_u64());
        assert!(stage["detail"]["target_seconds"].as_u64().unwrap() > 0);
    }
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"OrderAcceptedByTracker"));
    assert_eq!(kinds.iter().filter(|k| **k == "OrderInWork").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "OrderPacked").count(), 1);
    assert_eq!(kinds.last(), Some(&"OrderHandedOver"));

    // One outbox row per timeline entry, numbered 1, 2, 3, ... for the order.
    let outbox = app.outbox_of(order).await;
    assert_eq!(outbox.len(), timeline.len());
    let sequences: Vec<i64> = outbox.iter().map(|(_, s)| *s).collect();
    assert_eq!(sequences, (1..=outbox.len() as i64).collect::<Vec<_>>());
    assert_eq!(detail["order"]["version"], outbox.len() as i64);

    // Handing over twice is a retry.
    assert_eq!(app.hand_over(order).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_double_tap_does_not_skip_a_stage() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];

    let first = app.tap_ok("dough", pizza).await;
    assert_eq!(first["repeated"], false);
    let second = app.tap_ok("dough", pizza).await;
    assert_eq!(second["repeated"], true);
    assert_eq!(second["completed_at"], first["completed_at"]);

    let detail = app.order_detail(order_id(&detail)).await;
    assert_eq!(product(&detail, pizza)["station"], "topping");
    assert_eq!(app.queue_ids("topping").await, vec![pizza]);
    assert!(app.queue_ids("oven").await.is_empty());
}

/// A tap that waits for its order's lock must judge the product as the lock's holder left it.
/// The tap reads the product in the same statement that takes the lock
/// (`lock_order_of_product`); a plain join there would read it as it was when the statement
/// began, and this tap would complete a stage another transaction had already moved past.
#[tokio::test]
async fn a_tap_that_waited_for_the_order_lock_sees_the_product_as_the_holder_left_it() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let (order, pizza) = (order_id(&detail), product_ids(&detail)[0]);
    // Another change of the order, halfway: it holds the lock and has moved the pizza on.
    let mut holder = app.db.pool.begin().await.unwrap();
    sqlx::query("select 1 from orders where id = $1 for update")
        .bind(order)
        .execute(&mut *holder)
        .await
        .unwrap();
    sqlx::query("update products set stage = 1, station = 'topping' where id = $1")
        .bind(pizza)
        .execute(&mut *holder)
        .await
        .unwrap();

    let tap = app.tap("dough", pizza, None);
    let meanwhile = async {
        app.wait_until_a_statement_waits_for_a_lock("the tap to wait for the order's lock")
            .await;
        holder.commit().await.unwrap();
    };
    let (response, ()) = tokio::join!(tap, meanwhile);
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "not_at_station");
    let taps: i64 = sqlx::query_scalar("select count(*) from taps where product_id = $1")
        .bind(pizza)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(taps, 0, "the tap completed a stage the product had left");
}

#[tokio::test]
async fn tapping_a_product_not_at_the_station_is_a_conflict() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];
    let response = app.tap("oven", pizza, None).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "not_at_station");
}

#[tokio::test]
async fn undo_within_the_window_puts_the_product_back() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];
    let entered_at = product(&detail, pizza)["entered_at"].clone();

    let tap = app.tap_ok("dough", pizza).await;
    let tap_id = tap["tap_id"].as_i64().unwrap();
    let response = app.undo("dough", tap_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let undone = json_body(response).await;
    assert_eq!(undone["tap_id"], tap_id);
    assert_eq!(undone["product_id"], pizza.to_string());
    assert_eq!(undone["product_name"], "Pepperoni");
    assert_eq!(undone["order_number"], 17);
    assert_eq!(undone["repeated"], false);

    let detail = app.order_detail(order_id(&detail)).await;
    let p = product(&detail, pizza);
    assert_eq!(p["station"], "dough");
    assert_eq!(p["stage"], 0);
    assert_eq!(
        p["entered_at"], entered_at,
        "the product keeps its place in the queue"
    );
    assert_eq!(app.queue_ids("dough").await, vec![pizza]);
    assert!(app.queue_ids("topping").await.is_empty());
    let kinds: Vec<_> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains(&"ProductStageUndone".to_owned()));

    // The stage can be tapped again, and undoing the first tap once more is a retry: it
    // answers as before and leaves the new tap alone.
    assert_eq!(app.tap_ok("dough", pizza).await["repeated"], false);
    let response = app.undo("dough", tap_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["repeated"], true);
    assert_eq!(app.queue_ids("topping").await, vec![pizza]);
    assert!(app.queue_ids("dough").await.is_empty());
}

#[tokio::test]
async fn undo_takes_back_the_tap_it_names_not_the_newest_one() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    let ids = product_ids(&detail);
    let first = app.tap_ok("dough", ids[0]).await;
    // Another tablet at the same station taps the second one meanwhile.
    app.tap_ok("dough", ids[1]).await;

    let response = app.undo("dough", first["tap_id"].as_i64().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.queue_ids("dough").await, vec![ids[0]]);
    assert_eq!(app.queue_ids("topping").await, vec![ids[1]]);
}

#[tokio::test]
async fn two_undos_of_one_tap_at_once_take_back_one_stage() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    let ids = product_ids(&detail);
    app.tap_ok("dough", ids[1]).await;
    let tap_id = app.tap_ok("dough", ids[0]).await["tap_id"]
        .as_i64()
        .unwrap();

    let (a, b) = tokio::join!(app.undo("dough", tap_id), app.undo("dough", tap_id));
    let mut repeated = Vec::new();
    for response in [a, b] {
        assert_eq!(response.status(), StatusCode::OK);
        repeated.push(json_body(response).await["repeated"] == true);
    }
    repeated.sort();
    assert_eq!(repeated, [false, true]);
    assert_eq!(app.queue_ids("dough").await, vec![ids[0]]);
    assert_eq!(app.queue_ids("topping").await, vec![ids[1]]);
    let undone = app
        .outbox_of(order_id(&detail))
        .await
        .into_iter()
        .filter(|(t, _)| t == "ProductStageUndone")
        .count();
    assert_eq!(undone, 1);
}

#[tokio::test]
async fn a_tap_of_another_station_cannot_be_undone_here() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];
    let tap_id = app.tap_ok("dough", pizza).await["tap_id"].as_i64().unwrap();
    let response = app.undo("topping", tap_id).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.queue_ids("topping").await, vec![pizza]);
}

#[tokio::test]
async fn undo_after_the_window_is_refused() {
    let app = spawn_app_with(|s| s.kitchen.undo_window_ms = 300).await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];
    let tap_id = app.tap_ok("dough", pizza).await["tap_id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;

    let queue = json_body(app.queue("dough", None).await).await;
    assert_eq!(queue["undoable"], serde_json::json!([]));
    let response = app.undo("dough", tap_id).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "undo_window_passed");
}

#[tokio::test]
async fn recall_brings_a_product_back_after_the_undo_window_until_the_next_station_takes_it() {
    let app = spawn_app_with(|s| s.kitchen.undo_window_ms = 300).await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    let ids = product_ids(&detail);
    let first = app.tap_ok("dough", ids[0]).await["tap_id"]
        .as_i64()
        .unwrap();
    let second = app.tap_ok("dough", ids[1]).await["tap_id"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        app.undo("dough", first).await.status(),
        StatusCode::CONFLICT
    );

    let queue = json_body(app.queue("dough", None).await).await;
    assert_eq!(queue["undoable"], serde_json::json!([]));
    let recallable: Vec<i64> = queue["recallable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tap_id"].as_i64().unwrap())
        .collect();
    assert_eq!(recallable, [second, first], "newest first");

    let response = app.recall("dough", first).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["product_name"], "Pepperoni");
    assert_eq!(app.queue_ids("dough").await, vec![ids[0]]);

    // Once topping has made it, it is past recall, and the dough tablet hears so at once
    // (its queue changed) though the undo window is long gone.
    let etag = app.queue("dough", None).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    app.tap_ok("topping", ids[1]).await;
    let response = app.queue("dough", Some(&etag)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await["recallable"],
        serde_json::json!([])
    );
    let response = app.recall("dough", second).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "product_moved_on");
}

#[tokio::test]
async fn undo_after_the_product_moved_on_is_refused() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    let pizza = product_ids(&detail)[0];
    let tap_id = app.tap_ok("dough", pizza).await["tap_id"].as_i64().unwrap();
    // The dough tablet is offered exactly this tap to undo, named.
    let response = app.queue("dough", None).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let queue = json_body(response).await;
    let undoable = queue["undoable"].as_array().unwrap();
    assert_eq!(undoable.len(), 1);
    assert_eq!(undoable[0]["tap_id"], tap_id);
    assert_eq!(undoable[0]["product_name"], "Pepperoni");
    assert_eq!(undoable[0]["order_number"], 17);
    assert!(undoable[0]["undo_until"].is_string());

    app.tap_ok("topping", pizza).await;
    // The next station took it: the dough queue changed (its tablet polls again) and no longer
    // offers the undo.
    let response = app.queue("dough", Some(&etag)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["undoable"], serde_json::json!([]));
    let response = app.undo("dough", tap_id).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "product_moved_on");
}

#[tokio::test]
async fn undoing_the_packing_tap_unpacks_the_order() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Cola", "drink", 1)]).await;
    let order = order_id(&detail);
    let drink = product_ids(&detail)[0];
    let tap = app.tap_ok("packing", drink).await;
    assert_eq!(tap["order_status"], "packed");
    assert_eq!(tap["product_name"], "Cola");
    assert_eq!(tap["order_number"], 17);

    let body = json_body(app.undo("packing", tap["tap_id"].as_i64().unwrap()).await).await;
    assert_eq!(body["order_status"], "in_work");
    let detail = app.order_detail(order).await;
    assert_eq!(detail["order"]["status"], "in_work");
    assert!(detail["order"]["packed_at"].is_null());
    let types: Vec<String> = app
        .outbox_of(order)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        types,
        [
            "OrderAcceptedByTracker",
            "ProductStageCompleted",
            "OrderInWork",
            "OrderPacked",
            "ProductStageUndone",
            "OrderInWork"
        ]
    );
}

#[tokio::test]
async fn concurrent_taps_on_one_order_keep_its_event_sequence_gapless() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 8)]).await;
    let order = order_id(&detail);
    let ids = product_ids(&detail);

    // Every product tapped at once, and the first one twice more (an impatient double tap).
    let mut taps: Vec<_> = ids.iter().map(|id| app.tap("dough", *id, None)).collect();
    taps.push(app.tap("dough", ids[0], None));
    taps.push(app.tap("dough", ids[0], None));
    let responses = futures_util::future::join_all(taps).await;
    let mut repeated = 0;
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        if json_body(response).await["repeated"] == true {
            repeated += 1;
        }
    }
    assert_eq!(repeated, 2);
    assert_eq!(app.queue_ids("topping").await.len(), 8);

    let sequences: Vec<i64> = app
        .outbox_of(order)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    // Accepted, 8 stage completions and one OrderInWork.
    assert_eq!(sequences, (1..=10).collect::<Vec<_>>());
}
