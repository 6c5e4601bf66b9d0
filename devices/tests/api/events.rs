//! What the devices service announces, through its outbox and onto the bus.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn register_rename_and_revoke_are_announced_with_everything_a_mirror_needs() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let id = tablet["device_id"].as_str().unwrap();
    app.change_device(&app.office_token, id, &json!({ "station": "packing" }))
        .await;
    // Nothing changes: nothing to announce.
    app.change_device(&app.office_token, id, &json!({ "station": "packing" }))
        .await;
    app.revoke_device(&app.office_token, id).await;
    app.revoke_device(&app.office_token, id).await;

    let events = app.outbox().await;
    let keys: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "devices.device.registered",
            "devices.device.renamed",
            "devices.device.revoked"
        ]
    );
    for (n, (_, envelope)) in events.iter().enumerate() {
        assert_eq!(envelope["subject"], json!(id));
        assert_eq!(envelope["sequence"], json!(n + 1));
        assert_eq!(envelope["source"], json!("/kitchen/devices"));
    }
    let registered: contracts::DeviceRegistered =
        serde_json::from_value::<contracts::Envelope>(events[0].1.clone())
            .unwrap()
            .decode()
            .unwrap();
    assert_eq!(registered.pizzeria_id, app.pizzeria_id);
    assert_eq!(registered.kind, "kitchen_station");
    assert_eq!(registered.station.as_deref(), Some("oven"));
    assert_eq!(registered.name, "oven tablet");
    assert_eq!(registered.approved_by_name, "manager (test)");
    assert!(registered.requested_at <= registered.approved_at);
    assert!(registered.approved_at <= registered.at);
    let renamed = &events[1].1["data"];
    assert_eq!(renamed["station"], json!("packing"));
    assert_eq!(renamed["name"], json!("oven tablet"));
    assert_eq!(renamed["kind"], json!("kitchen_station"));
    let revoked = &events[2].1["data"];
    assert_eq!(revoked["pizzeria_id"], json!(app.pizzeria_id));

    // The relay publishes them.
    testkit::eventually("the relay to publish", Duration::from_secs(10), || async {
        let unpublished: i64 =
            sqlx::query_scalar("select count(*) from outbox where published_at is null")
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        (unpublished == 0).then_some(())
    })
    .await;
}
