use crate::helpers::{HistoryRow, ItemRow, LegacyView, PATIENCE, TestOrder, spawn_app};

fn status(code: i16, actor: Option<&str>) -> HistoryRow {
    HistoryRow {
        status: Some(code),
        stage: None,
        station: None,
        product_name: None,
        actor: actor.map(Into::into),
        comment: None,
        item_line: None,
    }
}

fn product(stage: &str, station: &str, name: &str, line: i16, actor: &str) -> HistoryRow {
    HistoryRow {
        status: None,
        stage: Some(stage.into()),
        station: Some(station.into()),
        product_name: Some(name.into()),
        actor: Some(actor.into()),
        comment: None,
        item_line: Some(line),
    }
}

/// What `TestOrder::whole_life` must leave in the legacy tables.
fn assert_whole_life(view: &LegacyView) {
    assert_eq!(view.order.status, 4, "handed over");
    assert_eq!(view.order.order_type, 2, "delivery");
    assert_eq!(view.order.client_name, "Anna");
    assert!(view.order.is_late);
    assert_eq!(
        view.items,
        vec![
            ItemRow {
                line_no: 0,
                product_name: "Pepperoni".into(),
                category: "pizza".into(),
                size: Some("30 cm".into()),
                quantity: 2,
                modifiers: "no onion,extra cheese".into(),
            },
            ItemRow {
                line_no: 1,
                product_name: "Cola".into(),
                category: "drink".into(),
                size: Some("0.5 l".into()),
                quantity: 1,
                modifiers: String::new(),
            },
        ]
    );
    let remake = HistoryRow {
        comment: Some("burnt edge".into()),
        ..product("remake", "make", "Pepperoni", 0, "Olga")
    };
    assert_eq!(
        view.history,
        vec![
            status(1, None),
            status(2, None),
            product("completed", "make", "Pepperoni", 0, "Ivan"),
            product("undone", "make", "Pepperoni", 0, "Ivan"),
            product("completed", "make", "Pepperoni", 0, "Ivan"),
            product("completed", "make", "Pepperoni", 0, "Ivan"),
            remake,
            product("completed", "make", "Pepperoni", 0, "Ivan"),
            product("completed", "pack", "Cola", 1, "Ivan"),
            status(3, None),
            status(4, Some("courier 7")),
        ]
    );
}

#[tokio::test]
async fn a_whole_order_is_mirrored_into_the_legacy_tables() {
    let app = spawn_app().await;
    let order = TestOrder::new(101);

    app.publish_all(&order.whole_life()).await;

    let view = app
        .wait_for_order(order.order_id, "the order handed over", |o| o.status == 4)
        .await;
    assert_eq!(view.order.order_number, 101);
    assert_whole_life(&view);
}

#[tokio::test]
async fn duplicated_and_shuffled_events_leave_the_same_end_state() {
    let app = spawn_app().await;
    let in_order = TestOrder::new(201);
    let shuffled = TestOrder::new(202);

    app.publish_all(&in_order.whole_life()).await;
    // Newest first, so the accepted event comes last and every other event has to wait for it;
    // then everything again, as a relay that lost its confirms would send it.
    let mut events = shuffled.whole_life();
    events.reverse();
    app.publish_all(&events).await;
    app.publish_all(&events).await;

    let expected = app
        .wait_for_order(in_order.order_id, "the in-order order handed over", |o| {
            o.status == 4
        })
        .await;
    app.wait_until_drained().await;
    let view = app
        .wait_for_order(shuffled.order_id, "the shuffled order handed over", |o| {
            o.status == 4
        })
        .await;
    assert_whole_life(&view);
    assert_eq!(view.without_keys(), expected.without_keys());
}

#[tokio::test]
async fn a_stale_status_event_does_not_overwrite_a_newer_status() {
    let app = spawn_app().await;
    let order = TestOrder::new(301);

    app.publish(&order.accepted()).await;
    app.publish(&order.packed(3)).await;
    app.wait_for_order(order.order_id, "the order packed", |o| o.status == 3)
        .await;
    // In work (sequence 2) was held up somewhere and arrives after packed (sequence 3).
    app.publish(&order.in_work(2)).await;

    let view = testkit::eventually("the late event in the history", PATIENCE, || async {
        let order = app.order(order.order_id).await?;
        let history = app.history(order.id).await;
        (history.len() == 3).then_some((order, history))
    })
    .await;
    assert_eq!(view.0.status, 3, "still packed");
    assert_eq!(
        view.1,
        vec![status(1, None), status(2, None), status(3, None)]
    );
}

#[tokio::test]
async fn a_cancelled_order_keeps_its_reason_in_the_history() {
    let app = spawn_app().await;
    let order = TestOrder::new(701);

    app.publish(&order.accepted()).await;
    app.publish(&crate::helpers::Message::new(
        2,
        &contracts::OrderCancelled {
            order_id: order.order_id,
            pizzeria_id: order.pizzeria_id,
            cancelled_at: chrono::Utc::now(),
            reason: Some("customer left".into()),
            actor: Some("cashier".into()),
        },
    ))
    .await;

    let view = app
        .wait_for_order(order.order_id, "the order cancelled", |o| o.status == 5)
        .await;
    let cancelled = HistoryRow {
        comment: Some("customer left".into()),
        ..status(5, Some("cashier"))
    };
    assert_eq!(view.history, vec![status(1, None), cancelled]);
}

#[tokio::test]
async fn a_cancel_after_the_hand_over_is_a_history_row_and_the_order_stays_handed_over() {
    let app = spawn_app().await;
    let order = TestOrder::new(702);
    let now = chrono::Utc::now();

    app.publish(&order.accepted()).await;
    app.publish(&crate::helpers::Message::new(
        2,
        &contracts::OrderHandedOver {
            order_id: order.order_id,
            pizzeria_id: order.pizzeria_id,
            at: now,
            actor: Some("Olga".into()),
        },
    ))
    .await;
    app.publish(&crate::helpers::Message::new(
        3,
        &contracts::OrderCancelledAfterHandOver {
            order_id: order.order_id,
            pizzeria_id: order.pizzeria_id,
            handed_over_at: now,
            cancelled_at: now - chrono::TimeDelta::seconds(30),
            recorded_at: now + chrono::TimeDelta::seconds(5),
            source: "cashier".into(),
            reason: Some("customer left".into()),
            actor: None,
        },
    ))
    .await;

    let (legacy, history) =
        testkit::eventually("the late cancel in the history", PATIENCE, || async {
            let legacy = app.order(order.order_id).await?;
            let history = app.history(legacy.id).await;
            (history.len() == 3).then_some((legacy, history))
        })
        .await;
    assert_eq!(legacy.status, 4, "still handed over");
    let late_cancel = HistoryRow {
        status: None,
        actor: Some("cashier".into()),
        comment: Some("cancelled by the till after hand-over: customer left".into()),
        ..status(4, None)
    };
    assert_eq!(
        history,
        vec![status(1, None), status(4, Some("Olga")), late_cancel]
    );
}
