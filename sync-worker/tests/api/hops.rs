//! Every envelope gathers its hops: a test that the list survives retries, a dead letter and a
//! replay, and ends, whole, in the inbox row of the consumer that finally handled it.

use chrono::{DateTime, Utc};
use contracts::{Envelope, Hop};
use uuid::Uuid;

use crate::helpers::{TestOrder, impatient_retries, spawn_app};

fn steps(hops: &[Hop]) -> Vec<(&str, &str)> {
    hops.iter()
        .map(|h| (h.service.as_str(), h.step.as_str()))
        .collect()
}

#[tokio::test]
async fn a_hop_list_survives_retries_a_dead_letter_and_a_replay() {
    let app = crate::helpers::spawn_app_with(impatient_retries()).await;
    let order = TestOrder::new(951);
    // As the tracker's relay sends it: one hop already.
    let relay = Hop {
        service: "tracker".into(),
        step: "published".into(),
        instance: "tracker-7f9c".into(),
        pid: 4242,
        received_at: "2026-11-30T09:00:00Z".parse().unwrap(),
        handled_at: "2026-11-30T09:00:00.020Z".parse().unwrap(),
    };
    let mut early = order.in_work(2);
    early.envelope.hops = vec![relay.clone()];
    app.publish(&early).await;

    // Its order is never accepted in time: retried, then dead-lettered, each step recorded.
    let letters = app.wait_for_dead_letters(1).await;
    let dead: Envelope = serde_json::from_str(&letters[0].body).unwrap();
    let path = steps(&dead.hops);
    assert_eq!(path[0], ("tracker", "published"), "{path:?}");
    assert_eq!(
        dead.hops[0], relay,
        "the hops before this consumer are kept as they came"
    );
    assert!(
        path[1..path.len() - 1]
            .iter()
            .all(|s| *s == ("legacy-sync", "retried")),
        "{path:?}"
    );
    assert!(path.len() >= 3, "at least one retry: {path:?}");
    assert_eq!(path.last(), Some(&("legacy-sync", "dead_lettered")));
    for hop in &dead.hops[1..] {
        assert_eq!(hop.pid, std::process::id());
        assert!(hop.received_at <= hop.handled_at, "{hop:?}");
    }

    // Fixed and replayed: the inbox keeps the whole path, with the replay and the handling.
    app.publish(&order.accepted()).await;
    app.wait_for_order(order.order_id, "the order accepted", |o| o.status == 1)
        .await;
    assert_eq!(
        bus::dead_letters::replay(
            &app.bus,
            bus::topology::LEGACY_SYNC,
            Some(early.envelope.id)
        )
        .await
        .unwrap(),
        1
    );
    app.wait_for_order(order.order_id, "the replayed event applied", |o| {
        o.status == 2
    })
    .await;
    let kept: serde_json::Value = sqlx::query_scalar(
        "select hops from inbox where consumer = 'legacy-sync' and event_id = $1",
    )
    .bind(early.envelope.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let kept: Vec<Hop> = serde_json::from_value(kept).unwrap();
    let path = steps(&kept);
    assert_eq!(kept[..dead.hops.len()], dead.hops[..], "{path:?}");
    assert_eq!(
        &path[dead.hops.len()..],
        &[("legacy-sync", "replayed"), ("legacy-sync", "handled")]
    );
    // The replay's hop starts when the letter was dead-lettered.
    let failed_at: DateTime<Utc> = letters[0].failed_at.as_deref().unwrap().parse().unwrap();
    assert_eq!(kept[dead.hops.len()].received_at, failed_at);
}

#[tokio::test]
async fn an_event_without_hops_gets_its_handled_hop_and_old_rows_stay_null() {
    let app = spawn_app().await;
    let order = TestOrder::new(952);
    let accepted = order.accepted();
    assert!(accepted.envelope.hops.is_empty());
    app.publish(&accepted).await;
    app.wait_for_order(order.order_id, "the order accepted", |o| o.status == 1)
        .await;
    let kept: Option<serde_json::Value> = sqlx::query_scalar(
        "select hops from inbox where consumer = 'legacy-sync' and event_id = $1",
    )
    .bind(accepted.envelope.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let kept: Vec<Hop> = serde_json::from_value(kept.unwrap()).unwrap();
    assert_eq!(steps(&kept), [("legacy-sync", "handled")]);
    // A row from before the column: null, and nothing breaks on it.
    sqlx::query("insert into inbox (consumer, event_id) values ('legacy-sync', $1)")
        .bind(Uuid::now_v7())
        .execute(&app.db.pool)
        .await
        .unwrap();
}
