//! A revoked device is refused on its next request: introspection says inactive at once, and a
//! cached verifier lets go within the 1 s bound because `DeviceRevoked` reaches it.

use std::time::{Duration, Instant};

use access::{CacheInvalidation, ClientInfo, DeviceVerifier};
use reqwest::StatusCode;
use secrecy::SecretString;
use service_kit::{config::BusSettings, shutdown::Shutdown};

use crate::helpers::*;

const BOUND: Duration = Duration::from_secs(1);

fn client() -> ClientInfo {
    ClientInfo {
        ip: "10.5.5.5".into(),
        user_agent: None,
    }
}

/// Polls `verify` until the device is refused; returns how long that took.
async fn time_until_refused(verifier: &DeviceVerifier, token: &str) -> Duration {
    let started = Instant::now();
    loop {
        if verifier.verify(token, &client()).await.unwrap().is_none() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the cache never let go"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_revoked_device_is_refused_at_once_by_introspection() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let token = tablet["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(token).await["active"], true);
    let response = app
        .revoke_device(&app.office_token, tablet["device_id"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.introspect(token).await,
        serde_json::json!({ "active": false })
    );
    let list = json_body(app.list_devices(&app.office_token).await).await;
    assert!(list["devices"][0]["revoked_at"].is_string());
    // A revoked device cannot be renamed back to life.
    let response = app
        .change_device(
            &app.office_token,
            tablet["device_id"].as_str().unwrap(),
            &serde_json::json!({ "name": "again" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_cached_verifier_refuses_a_revoked_device_within_a_second() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let token = tablet["access_token"].as_str().unwrap();
    // Staff and devices under one subscription, as a service wires them.
    let devices = app.device_verifier();
    let staff = app.staff_verifier();
    let shutdown = Shutdown::new();
    tokio::spawn(
        CacheInvalidation::new(
            (staff.clone(), devices.clone()),
            app.bus.clone(),
            "test",
            shutdown.clone(),
        )
        .run(),
    );
    wait_for_lease(|| devices.cache_in_use() && staff.cache_in_use()).await;
    assert!(devices.verify(token, &client()).await.unwrap().is_some());
    assert_eq!(devices.cached_entries(), 1);
    // Served from the cache now: a revocation behind its back would go unseen...
    let response = app
        .revoke_device(&app.office_token, tablet["device_id"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // ...but the event evicts it.
    let took = time_until_refused(&devices, token).await;
    eprintln!("revoked device refused after {took:?}");
    assert!(took < BOUND, "took {took:?}");
    shutdown.trigger();
}

#[tokio::test]
async fn a_rename_reaches_the_cache_too() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let token = tablet["access_token"].as_str().unwrap();
    let devices = app.device_verifier();
    let shutdown = Shutdown::new();
    tokio::spawn(
        CacheInvalidation::new(devices.clone(), app.bus.clone(), "test", shutdown.clone()).run(),
    );
    wait_for_lease(|| devices.cache_in_use()).await;
    let before = devices.verify(token, &client()).await.unwrap().unwrap();
    assert!(before.is_station(app.pizzeria_id, "oven"));
    app.change_device(
        &app.office_token,
        tablet["device_id"].as_str().unwrap(),
        &serde_json::json!({ "station": "dough" }),
    )
    .await;
    testkit::eventually("the move to reach the cache", BOUND, || async {
        let now = devices.verify(token, &client()).await.unwrap().unwrap();
        now.is_station(app.pizzeria_id, "dough").then_some(())
    })
    .await;
    shutdown.trigger();
}

#[tokio::test]
async fn without_a_subscription_the_device_cache_is_bypassed() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let token = tablet["access_token"].as_str().unwrap();
    let devices = app.device_verifier();
    let shutdown = Shutdown::new();
    // A broker that is not there: the subscription never connects.
    let dead_bus = BusSettings {
        url: SecretString::from("amqp://guest:guest@127.0.0.1:1/%2f".to_owned()),
        ..app.bus.clone()
    };
    tokio::spawn(CacheInvalidation::new(devices.clone(), dead_bus, "test", shutdown.clone()).run());
    assert!(devices.verify(token, &client()).await.unwrap().is_some());
    assert!(!devices.cache_in_use());
    assert_eq!(devices.cached_entries(), 0);
    // Revoked behind its back (no event is published): still seen at once.
    sqlx::query("update devices set revoked_at = now()")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert!(devices.verify(token, &client()).await.unwrap().is_none());
    shutdown.trigger();
}
