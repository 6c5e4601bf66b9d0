//! The kitchen staff list read with a device token: a station tablet checks people in with it,
//! a motivation board names them. Devices are paired through a real devices service.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{json_body, spawn_app_beside_devices};

fn kitchen_staff_path(pizzeria_id: Uuid) -> String {
    format!("/api/v1/pizzerias/{pizzeria_id}/staff?role=kitchen_staff")
}

#[tokio::test]
async fn a_station_tablet_or_motivation_board_reads_its_pizzerias_kitchen_staff() {
    let (app, peers) = spawn_app_beside_devices().await;
    let pavel = app.create_staff("pavel", "kitchen_staff").await;
    app.create_staff("sasha", "cashier").await;
    let other_pizzeria = Uuid::now_v7();
    peers.register_pizzerias(&[other_pizzeria]).await;
    let path = kitchen_staff_path(app.pizzeria_id);

    for device in [
        peers.station_tablet(app.pizzeria_id, "oven").await,
        peers
            .pair_device(app.pizzeria_id, "motivation_board", None, "Kitchen wall")
            .await,
    ] {
        let response = app.get_with(&device.token, &path).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", device.name);
        let body = json_body(response).await;
        let staff = body["staff"].as_array().expect("staff");
        assert_eq!(staff.len(), 1, "only the kitchen staff: {body}");
        assert_eq!(staff[0]["id"], pavel.to_string());
        assert_eq!(staff[0]["display_name"], "pavel (test)");
    }

    // A device sees the kitchen staff only, and only of its own pizzeria.
    let tablet = peers.station_tablet(app.pizzeria_id, "dough").await;
    let everyone = format!("/api/v1/pizzerias/{}/staff", app.pizzeria_id);
    let response = app.get_with(&tablet.token, &everyone).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let elsewhere = peers.station_tablet(other_pizzeria, "oven").await;
    let response = app.get_with(&elsewhere.token, &path).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The TV in the dining room has no business with names.
    let board = peers.tv_board(app.pizzeria_id).await;
    let response = app.get_with(&board.token, &path).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A token nobody issued.
    let response = app.get_with("kdt_not-a-real-token", &path).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_revoked_tablet_is_refused_within_a_second() {
    let (app, peers) = spawn_app_beside_devices().await;
    let path = kitchen_staff_path(app.pizzeria_id);
    let tablet = peers.station_tablet(app.pizzeria_id, "oven").await;
    // Twice: the second answer may come from the app's device cache.
    for _ in 0..2 {
        let response = app.get_with(&tablet.token, &path).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    peers.revoke_device(app.pizzeria_id, tablet.device_id).await;
    let revoked = Instant::now();
    loop {
        let status = app.get_with(&tablet.token, &path).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "the revoked tablet still reads the staff list after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
