//! The dead-letter API reads a queue once for a burst of requests, and again once acted on.

use bus::dead_letters::snapshot;
use lapin::{BasicProperties, options::BasicPublishOptions};

use super::*;

/// Puts a message straight into the legacy sync's dead-letter queue, as an operator could.
async fn dead_letter(channel: &lapin::Channel, bus: &BusSettings, body: &[u8]) {
    let queue = topology::dead_letter_queue_name(&bus.exchange, topology::LEGACY_SYNC);
    channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_burst_of_views_shares_one_read_of_the_dead_letters() {
    let bus = test_bus();
    let connection = lapin::Connection::connect(
        secrecy::ExposeSecret::expose_secret(&bus.url),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    topology::declare_dead_letter_queue(&channel, &bus, topology::LEGACY_SYNC)
        .await
        .unwrap();
    dead_letter(&channel, &bus, b"first").await;
    let long = Duration::from_secs(600);
    let spec = topology::LEGACY_SYNC;

    let first = snapshot::letters(&bus, spec, long).await.unwrap();
    assert_eq!(first.len(), 1);
    dead_letter(&channel, &bus, b"second").await;
    // Within the snapshot's life the same read serves again: the queue is not read.
    let again = snapshot::letters(&bus, spec, long).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(again.len(), 1);
    // Once acted on (or once too old), the next view reads the queue again.
    snapshot::forget(&bus, spec).await;
    let after = snapshot::letters(&bus, spec, long).await.unwrap();
    assert_eq!(after.len(), 2);
    let stale = snapshot::letters(&bus, spec, Duration::ZERO).await.unwrap();
    assert!(!Arc::ptr_eq(&after, &stale));
    assert_eq!(stale.len(), 2);
    // Reading takes nothing away: both letters are still in the queue.
    assert_eq!(dead_letters::list(&bus, spec).await.unwrap().len(), 2);
    let _ = connection.close(200, "done".into()).await;
}
