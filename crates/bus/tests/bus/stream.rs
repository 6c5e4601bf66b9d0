//! The history stream: every event published to the exchange can be read back from it, from
//! any point, up to where it ended when the reader opened.

use bus::stream::{HistoryReader, Retention, StartAt};

use super::*;

async fn declare_stream(h: &Harness) {
    let (connection, channel) = h.broker_channel().await;
    let retention = Retention {
        max_age: Some("1D".to_owned()),
        max_length_bytes: Some(100_000_000),
    };
    topology::declare_event_stream(&channel, &h.bus, &retention)
        .await
        .unwrap();
    let _ = connection.close(200, "declared".into()).await;
}

/// Reads the stream from `start` to its end; the ids of the events, in stream order.
async fn read_ids(bus: &BusSettings, start: StartAt) -> Vec<Uuid> {
    let mut reader = HistoryReader::open(bus, "history-test", start, 10)
        .await
        .unwrap();
    let mut ids = Vec::new();
    while let Some(message) = reader.next().await.unwrap() {
        let envelope = message.event(bus).unwrap();
        assert_eq!(message.routing_key, "tracker.order.packed");
        assert!(message.offset >= 0, "{message:?}");
        ids.push(envelope.id);
    }
    reader.close().await;
    ids
}

async fn staged_ids(h: &Harness) -> Vec<Uuid> {
    sqlx::query_scalar("select (payload->>'id')::uuid from outbox order by id")
        .fetch_all(&h.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_event_published_through_the_relay_can_be_read_back_from_the_stream() {
    let h = Harness::start().await;
    declare_stream(&h).await;
    // More than the reader's prefetch of 10, so the reader's acks must keep the broker sending.
    for sequence in 1..=25 {
        h.stage(Uuid::new_v4(), sequence).await;
    }
    h.wait_applied(25).await;
    let staged = staged_ids(&h).await;
    assert_eq!(read_ids(&h.bus, StartAt::First).await, staged);
    // Read again: a stream is not consumed away.
    assert_eq!(read_ids(&h.bus, StartAt::First).await, staged);
    // From a position: the 11th event on.
    let mut reader = HistoryReader::open(&h.bus, "history-test", StartAt::First, 10)
        .await
        .unwrap();
    let mut offsets = Vec::new();
    while let Some(message) = reader.next().await.unwrap() {
        offsets.push(message.offset);
    }
    reader.close().await;
    let eleventh = u64::try_from(offsets[10]).unwrap();
    assert_eq!(
        read_ids(&h.bus, StartAt::Offset(eleventh)).await,
        staged[10..]
    );
}

#[tokio::test]
async fn a_read_ends_where_the_stream_ended_when_it_began() {
    let h = Harness::start().await;
    declare_stream(&h).await;
    h.stage(Uuid::new_v4(), 1).await;
    h.wait_applied(1).await;
    let before = staged_ids(&h).await;

    let mut reader = HistoryReader::open(&h.bus, "history-test", StartAt::First, 10)
        .await
        .unwrap();
    // Published after the reader opened: beyond its end.
    h.stage(Uuid::new_v4(), 2).await;
    h.wait_applied(2).await;
    let mut read = Vec::new();
    while let Some(message) = reader.next().await.unwrap() {
        read.push(message.event(&h.bus).unwrap().id);
    }
    reader.close().await;
    assert_eq!(read, before);

    // A later reader starting at a time before both sees both (a time is a chunk boundary to
    // the second, so it starts at or before the first).
    let since = Utc::now() - chrono::Duration::minutes(5);
    assert_eq!(
        read_ids(&h.bus, StartAt::Time(since)).await,
        staged_ids(&h).await
    );
}

#[tokio::test]
async fn reading_a_stream_nobody_declared_says_so() {
    let bus = test_bus();
    let refused = HistoryReader::open(&bus, "history-test", StartAt::First, 10)
        .await
        .err()
        .expect("no stream");
    assert!(
        format!("{refused:#}").contains("does not exist yet"),
        "{refused:#}"
    );
}
