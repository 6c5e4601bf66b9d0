//! The tracker owns pizzerias and announces them: a new one as `PizzeriaRegistered`, a change of
//! name or time zone as `PizzeriaChanged`, each with the pizzeria's next sequence.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_new_pizzeria_and_its_changes_are_announced_in_order() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let events = async || -> Vec<(String, String, i64, serde_json::Value)> {
        sqlx::query_as(
            "select routing_key, payload->>'type', (payload->>'sequence')::bigint, payload->'data'
             from outbox where payload->>'subject' = $1 order by id",
        )
        .bind(id.to_string())
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
    };

    let body = json!({ "name": "Syktyvkar-1" });
    assert_eq!(
        app.put_pizzeria(id, &body).await.status(),
        StatusCode::CREATED
    );
    let staged = events().await;
    assert_eq!(staged.len(), 1, "{staged:?}");
    let (key, kind, sequence, data) = &staged[0];
    assert_eq!(
        (key.as_str(), kind.as_str(), *sequence),
        ("tracker.pizzeria.registered", "PizzeriaRegistered", 1)
    );
    assert_eq!(data["name"], "Syktyvkar-1");
    assert_eq!(data["time_zone"], "UTC");

    // The same again changes nothing, so says nothing; stations alone are the kitchen's own.
    assert_eq!(app.put_pizzeria(id, &body).await.status(), StatusCode::OK);
    let stations = json!({ "name": "Syktyvkar-1", "stations": [{ "code": "grill" }] });
    assert_eq!(
        app.put_pizzeria(id, &stations).await.status(),
        StatusCode::OK
    );
    assert_eq!(events().await.len(), 1);

    let renamed = json!({ "name": "Syktyvkar-2", "time_zone": "Europe/Moscow" });
    assert_eq!(
        app.put_pizzeria(id, &renamed).await.status(),
        StatusCode::OK
    );
    let staged = events().await;
    assert_eq!(staged.len(), 2, "{staged:?}");
    let (key, kind, sequence, data) = &staged[1];
    assert_eq!(
        (key.as_str(), kind.as_str(), *sequence),
        ("tracker.pizzeria.changed", "PizzeriaChanged", 2)
    );
    assert_eq!(data["name"], "Syktyvkar-2");
    assert_eq!(data["time_zone"], "Europe/Moscow");

    // A refused change announces nothing either.
    let bad = json!({ "name": "Syktyvkar-3", "time_zone": "Mars/Olympus" });
    assert_eq!(
        app.put_pizzeria(id, &bad).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(events().await.len(), 2);
}
