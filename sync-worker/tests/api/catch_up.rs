use crate::helpers::{TestOrder, spawn_app};

#[tokio::test]
async fn events_published_while_the_worker_is_stopped_are_mirrored_when_it_starts() {
    let mut app = spawn_app().await;
    let order = TestOrder::new(401);
    let events = order.whole_life();
    app.publish(&events[0]).await;
    app.wait_for_order(order.order_id, "the order accepted", |o| o.status == 1)
        .await;

    app.stop().await;
    app.publish_all(&events[1..]).await;
    let while_stopped = app.order(order.order_id).await.expect("the order is there");
    assert_eq!(
        while_stopped.status, 1,
        "nobody mirrors while the worker is stopped"
    );

    app.start().await;
    let view = app
        .wait_for_order(order.order_id, "the order handed over", |o| o.status == 4)
        .await;
    assert!(view.order.is_late);
}
