use bus::consumer::ConsumerSettings;
use contracts::OrderInWork;
use sync_worker::dead_letters;

use crate::helpers::{Message, TestOrder, impatient_retries, spawn_app_with};

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_their_reason_and_do_not_block_the_queue() {
    let app = spawn_app_with(impatient_retries()).await;

    // Not JSON at all.
    app.publish_raw("tracker.order.packed", b"{ this is not json")
        .await;
    // A known type whose data is not that type.
    let orphan = TestOrder::new(501);
    let mut broken = orphan.in_work(2);
    broken.envelope.data = serde_json::json!({ "order_id": "not a uuid" });
    app.publish(&broken).await;
    // A sound event whose handler keeps failing: its order is never accepted.
    let early = orphan.packed(3);
    app.publish(&early).await;
    // Behind them, an order that must still be mirrored.
    let order = TestOrder::new(502);
    app.publish_all(&order.whole_life()).await;

    app.wait_for_order(order.order_id, "the order behind the poison", |o| {
        o.status == 4
    })
    .await;
    let letters = app.wait_for_dead_letters(3).await;
    assert_eq!(letters.len(), 3, "{letters:#?}");

    let not_json = letters
        .iter()
        .find(|l| l.body.starts_with("{ this is not json"))
        .expect("the invalid JSON is a dead letter");
    assert!(
        not_json
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("JSON"),
        "{not_json:?}"
    );

    let undecodable = letters
        .iter()
        .find(|l| l.event_id == Some(broken.envelope.id.to_string()))
        .expect("the undecodable event is a dead letter");
    assert_eq!(
        undecodable.attempts,
        Some(1),
        "never retried: {undecodable:?}"
    );
    assert_eq!(
        undecodable.routing_key.as_deref(),
        Some("tracker.order.in_work")
    );
    assert!(
        undecodable
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("cannot be decoded"),
        "{undecodable:?}"
    );

    let failing = letters
        .iter()
        .find(|l| l.event_id == Some(early.envelope.id.to_string()))
        .expect("the event of an unknown order is a dead letter once it has waited max_wait_ms");
    // It waits by time, not by attempts: at least one retry, however many fit in the wait.
    assert!(failing.attempts.is_some_and(|n| n >= 2), "{failing:?}");
    assert_eq!(failing.event_type.as_deref(), Some("OrderPacked"));
    assert!(
        failing
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("not mirrored yet"),
        "{failing:?}"
    );

    // The listing prints one line a letter, naming the reason.
    let mut out = Vec::new();
    let count = dead_letters::list(&app.bus, &mut out).await.unwrap();
    assert_eq!(count, 3);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&early.envelope.id.to_string()), "{out}");
    let attempts = failing.attempts.unwrap_or_default();
    assert!(out.contains(&format!("attempts={attempts}")), "{out}");
}

#[tokio::test]
async fn a_dead_letter_is_applied_once_its_cause_is_fixed_and_it_is_replayed() {
    let app = spawn_app_with(impatient_retries()).await;
    let order = TestOrder::new(601);

    let early = order.in_work(2);
    app.publish(&early).await;
    let letters = app.wait_for_dead_letters(1).await;
    assert_eq!(letters[0].event_id, Some(early.envelope.id.to_string()));

    // The cause is fixed: the accepted event arrives.
    app.publish(&order.accepted()).await;
    app.wait_for_order(order.order_id, "the order accepted", |o| o.status == 1)
        .await;
    // A dead letter of some other event stays where it is.
    let other = Message::new(
        2,
        &OrderInWork {
            order_id: uuid::Uuid::new_v4(),
            pizzeria_id: uuid::Uuid::new_v4(),
            at: chrono::Utc::now(),
        },
    );
    app.publish(&other).await;
    app.wait_for_dead_letters(2).await;

    let replayed = dead_letters::replay(&app.bus, Some(early.envelope.id))
        .await
        .unwrap();
    assert_eq!(replayed, 1);

    let view = app
        .wait_for_order(order.order_id, "the replayed event applied", |o| {
            o.status == 2
        })
        .await;
    assert_eq!(view.history.len(), 2);
    let left = app.dead_letters().await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0].event_id, Some(other.envelope.id.to_string()));
}

#[tokio::test]
async fn bad_data_in_a_batch_dead_letters_only_its_own_event() {
    // One lane, so that the three orders share a batch.
    let mut app = spawn_app_with(ConsumerSettings {
        partitions: 1,
        ..impatient_retries()
    })
    .await;
    let before = TestOrder::new(801);
    let bad = TestOrder::new(802);
    let after = TestOrder::new(803);
    let mut poisoned = bad.accepted();
    // PostgreSQL text cannot hold a NUL: the batch's order insert fails as a whole.
    poisoned.envelope.data["customer_name"] = serde_json::json!("An\u{0}na");

    // Published while the worker is stopped, so that they arrive together in one batch.
    app.stop().await;
    app.publish_all(&[before.accepted(), poisoned.clone(), after.accepted()])
        .await;
    app.start().await;

    app.wait_for_order(before.order_id, "the order before", |o| o.status == 1)
        .await;
    app.wait_for_order(after.order_id, "the order after", |o| o.status == 1)
        .await;
    let letters = app.wait_for_dead_letters(1).await;
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0].event_id, Some(poisoned.envelope.id.to_string()));
    assert_eq!(letters[0].attempts, Some(1), "bad data is never retried");
    assert!(app.order(bad.order_id).await.is_none());
}
