use std::time::Duration;

use reqwest::StatusCode;
use testkit::eventually;

use crate::helpers::{TestApp, json_body, product_ids, spawn_app};

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
