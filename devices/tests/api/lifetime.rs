//! Device tokens end when left unused for `tokens.idle_lifetime_ms`, and every use moves the end
//! on (a silent renewal: the device never sees it).

use chrono::{DateTime, Utc};

use crate::helpers::*;

async fn expires_at(app: &TestApp, device_id: &str) -> DateTime<Utc> {
    sqlx::query_scalar("select token_expires_at from devices where id = $1::uuid")
        .bind(device_id)
        .fetch_one(&app.db.pool)
        .await
        .expect("the device's token end")
}

/// Moves the token's end to `from_now` (an SQL interval such as `1 minute` or `-1 second`).
async fn end_token_in(app: &TestApp, device_id: &str, from_now: &str) {
    sqlx::query("update devices set token_expires_at = now() + $2::interval where id = $1::uuid")
        .bind(device_id)
        .bind(from_now)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_in_use_is_renewed_and_an_unused_one_ends() {
    let app = spawn_app().await;
    let tablet = app.pair(app.tablet("oven")).await;
    let (token, id) = (
        tablet["access_token"].as_str().unwrap(),
        tablet["device_id"].as_str().unwrap(),
    );
    // Born with the configured idle lifetime (30 days).
    let born = expires_at(&app, id).await;
    assert!(born > Utc::now() + chrono::Duration::days(29), "{born}");

    // Nearly at its end: a use gives it the whole lifetime again.
    end_token_in(&app, id, "1 minute").await;
    assert_eq!(app.introspect(token).await["active"], true);
    let renewed = expires_at(&app, id).await;
    assert!(
        renewed > Utc::now() + chrono::Duration::days(29),
        "{renewed}"
    );

    // Past its end: refused, and a refused check renews nothing.
    end_token_in(&app, id, "-1 second").await;
    assert_eq!(
        app.introspect(token).await,
        serde_json::json!({ "active": false })
    );
    assert!(expires_at(&app, id).await < Utc::now());
}
