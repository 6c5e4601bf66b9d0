use access::Role;
use reqwest::StatusCode;
use serde_json::json;
use system_tests::StaffMember;

use crate::helpers::{error_field, json_body, order_json, product_ids, spawn_app};

#[tokio::test]
async fn the_board_shows_preparing_and_ready_orders() {
    let app = spawn_app().await;
    let mut shy = order_json(app.pizzeria_id, &[("Cola", "drink", 1)]);
    shy["number"] = 21.into();
    shy["show_number_only"] = true.into();
    let shy = json_body(app.post_order(&shy).await).await;
    let pizza = app.place_order(&[("Pepperoni", "pizza", 1)]).await;

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

    let tap = app.tap_ok("packing", product_ids(&shy)[0]).await;
    let response = app.board(Some(&etag)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let board = json_body(response).await;
    assert_eq!(
        board["preparing"],
        json!([{ "order_id": pizza["order"]["id"], "number": 17, "name": "Anna", "late": false }])
    );
    // A ready order says when it was packed: when its last product was tapped at packing.
    assert_eq!(
        board["ready"],
        json!([{
            "order_id": shy["order"]["id"], "number": 21, "late": false,
            "packed_at": board["ready"][0]["packed_at"],
        }])
    );
    let packed_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(board["ready"][0]["packed_at"].clone()).unwrap();
    let tapped_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(tap["completed_at"].clone()).unwrap();
    assert!(
        (packed_at - tapped_at).num_seconds().abs() <= 1,
        "{packed_at} vs {tapped_at}"
    );
}

#[tokio::test]
async fn the_actor_report_counts_each_actors_stages_of_the_day() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 3)]).await;
    let ids = product_ids(&detail);
    // Two cooks checked in at the tablets: a tap names the one who did it.
    let a = app.pizzeria_id;
    let (dough, topping) = (
        app.peers.station_tablet(a, "dough").await,
        app.peers.station_tablet(a, "topping").await,
    );
    let pavel = app.peers.staff(Role::KitchenStaff, a).await;
    let olga = app.peers.staff(Role::KitchenStaff, a).await;
    let by = |cook: &StaffMember| json!({ "actor_id": cook.user_id });
    for (id, cook) in ids.iter().zip([&pavel, &pavel, &olga]) {
        let response = app
            .tap_as(&dough.token, "dough", *id, Some(&by(cook)))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app
        .tap_as(&topping.token, "topping", ids[0], Some(&by(&pavel)))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // An undone tap does not count.
    let undone = app
        .tap_as(&topping.token, "topping", ids[1], Some(&by(&olga)))
        .await;
    let undone = json_body(undone).await;
    assert_eq!(
        app.undo("topping", undone["tap_id"].as_i64().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let response = app.actor_report("").await;
    assert_eq!(response.status(), StatusCode::OK);
    let report = json_body(response).await;
    assert_eq!(
        report["time_zone"], "UTC",
        "until the pizzeria sets its own"
    );
    let actors = report["actors"].as_array().unwrap();
    assert_eq!(actors.len(), 2, "{report}");
    // Most stages first; taps within seconds of the order are within their targets.
    assert_eq!(actors[0]["actor"], pavel.display_name.as_str());
    assert_eq!(actors[0]["stages"], 3);
    assert_eq!(actors[0]["within_target"], 3);
    assert_eq!(actors[0]["within_target_share"], 1.0);
    assert!(actors[0]["average_seconds"].as_f64().unwrap() >= 0.0);
    assert!(actors[0]["p90_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(actors[1]["actor"], olga.display_name.as_str());
    assert_eq!(actors[1]["stages"], 1);

    let empty = json_body(app.actor_report("date=2020-01-01").await).await;
    assert!(empty["actors"].as_array().unwrap().is_empty());
    assert_eq!(
        app.actor_report("date=yesterday").await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_station_report_counts_the_days_taps() {
    let app = spawn_app().await;
    let detail = app.place_order(&[("Pepperoni", "pizza", 2)]).await;
    for id in product_ids(&detail) {
        app.tap_ok("dough", id).await;
    }
    app.tap_ok("topping", product_ids(&detail)[0]).await;
    app.tap_ok("oven", product_ids(&detail)[0]).await;

    let response = app.station_report("").await;
    assert_eq!(response.status(), StatusCode::OK);
    let report = json_body(response).await;
    let stations = report["stations"].as_array().unwrap();
    let order: Vec<&str> = stations
        .iter()
        .map(|s| s["station"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["dough", "topping", "oven"], "in route order");
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
async fn days_are_the_pizzerias_local_days() {
    let app = spawn_app().await;
    // UTC+14: the local day starts ten hours before the UTC one, so a tap made now is on
    // today's local date, and the bounds of any date are 14 hours before UTC midnight.
    let response = app
        .put_pizzeria(
            app.pizzeria_id,
            &json!({ "name": "Kiritimati", "time_zone": "Pacific/Kiritimati" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["time_zone"], "Pacific/Kiritimati");
    let detail = app.place_order(&[("Pepperoni", "pizza", 1)]).await;
    app.tap_ok("dough", product_ids(&detail)[0]).await;

    let local_today = (chrono::Utc::now() + chrono::Duration::hours(14)).date_naive();
    let report = json_body(app.station_report("").await).await;
    assert_eq!(report["time_zone"], "Pacific/Kiritimati");
    assert_eq!(report["date"], local_today.to_string());
    assert_eq!(report["stations"][0]["taps"], 1);
    let list = json_body(app.list_orders("date=2026-01-01").await).await;
    assert_eq!(list["time_zone"], "Pacific/Kiritimati");
    assert_eq!(list["day_start"], "2025-12-31T10:00:00Z");
    assert_eq!(list["day_end"], "2026-01-01T10:00:00Z");

    let response = app
        .put_pizzeria(
            app.pizzeria_id,
            &json!({ "name": "Kiritimati", "time_zone": "Mars/Olympus" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_field(response).await, "time_zone");
}

#[tokio::test]
async fn a_pizzeria_can_be_reconfigured() {
    let app = spawn_app().await;
    let body = json_body(app.get_pizzeria().await).await;
    let codes: Vec<&str> = body["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["dough", "topping", "oven", "packing"],
        "in route order"
    );
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

/// A tap bumps its stations' queue versions and then the board's (the pizzeria row). A
/// reconfiguration that took the pizzeria row first and then waited for a station could wait
/// on a tap that waits on it: a deadlock. It must take the stations first, as a tap does.
#[tokio::test]
async fn reconfiguring_a_pizzeria_locks_its_rows_in_the_order_a_tap_does() {
    let app = spawn_app().await;
    let p = app.pizzeria_id;
    // A tap's transaction, halfway: it has bumped the dough station and holds that row.
    let mut tap = app.db.pool.begin().await.unwrap();
    sqlx::query(
        "update stations set queue_version = queue_version + 1 \
         where pizzeria_id = $1 and code = 'dough'",
    )
    .bind(p)
    .execute(&mut *tap)
    .await
    .unwrap();

    let body = json!({
        "name": "Renamed",
        "stations": [{ "code": "dough", "name": "Dough and rolls" }]
    });
    let rename = app.put_pizzeria(p, &body);
    let meanwhile = async {
        app.wait_until_a_statement_waits_for_a_lock(
            "the reconfiguration to wait for the tap's lock",
        )
        .await;
        // The tap goes on to bump the board: nothing may hold the pizzeria row now.
        let board = sqlx::query("select 1 from pizzerias where id = $1 for update nowait")
            .bind(p)
            .execute(&mut *tap)
            .await;
        tap.rollback().await.unwrap();
        board
    };
    let (response, board) = tokio::join!(rename, meanwhile);
    assert!(
        board.is_ok(),
        "the reconfiguration held the pizzeria row while it waited for a station: {board:?}"
    );
    assert_eq!(response.status(), StatusCode::OK);
}
