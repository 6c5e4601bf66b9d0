//! The bus machinery against a real PostgreSQL and RabbitMQ: what the outbox relay and the
//! consumer promise, independent of any one service.

// Test code: a failed step should fail the test on the spot, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use anyhow::anyhow;
use bus::{
    BatchError, Consumer, ConsumerSettings, Handler, HandlerError, Incoming, Outbox, Publisher,
    Relay, dead_letters, topology,
};
use chrono::Utc;
use contracts::OrderPacked;
use service_kit::{config::BusSettings, shutdown::Shutdown};
use sqlx::{PgConnection, PgPool};
use testkit::{PrivateBroker, TestDatabase, eventually, test_bus};
use uuid::Uuid;

mod snapshot;
mod stream;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");
const WAIT: Duration = Duration::from_secs(20);

/// Records every event it applies. Subjects named in `failures` fail that many times
/// (`u32::MAX`: always) before they succeed, transiently or as waiting for an earlier event.
#[derive(Default)]
struct Recorder {
    failures: Mutex<HashMap<String, (u32, bool)>>,
    /// How often each event was handed to the handler, failed runs included.
    presented: Mutex<HashMap<Uuid, u32>>,
}

impl Recorder {
    fn fail(&self, subject: Uuid, times: u32) {
        self.failures
            .lock()
            .unwrap()
            .insert(subject.to_string(), (times, false));
    }

    /// Fails `subject` as an event whose order has not arrived yet.
    fn wait(&self, subject: Uuid, times: u32) {
        self.failures
            .lock()
            .unwrap()
            .insert(subject.to_string(), (times, true));
    }

    fn failure(&self, event: &Incoming) -> Option<HandlerError> {
        *self
            .presented
            .lock()
            .unwrap()
            .entry(event.envelope.id)
            .or_default() += 1;
        let mut failures = self.failures.lock().unwrap();
        let (left, waiting) = failures.get_mut(&event.envelope.subject)?;
        if *left == 0 {
            return None;
        }
        *left = left.saturating_sub(1);
        Some(if *waiting {
            HandlerError::Waiting(anyhow!("order not there yet"))
        } else {
            HandlerError::Transient(anyhow!("lock timed out"))
        })
    }

    fn most_presented(&self, except: &[Uuid]) -> u32 {
        let presented = self.presented.lock().unwrap();
        presented
            .iter()
            .filter(|(id, _)| !except.contains(id))
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }
}

impl Handler for Recorder {
    async fn handle(&self, conn: &mut PgConnection, event: &Incoming) -> Result<(), HandlerError> {
        if let Some(error) = self.failure(event) {
            return Err(error);
        }
        let data: OrderPacked = event
            .envelope
            .decode()
            .map_err(|e| HandlerError::Permanent(anyhow!(e)))?;
        sqlx::query(
            "insert into applied (event_id, subject, sequence, attempt) values ($1, $2, $3, $4)",
        )
        .bind(event.envelope.id)
        .bind(data.order_id.to_string())
        .bind(event.envelope.sequence)
        .bind(event.attempt as i32)
        .execute(conn)
        .await
        .map_err(|e| HandlerError::Transient(e.into()))?;
        Ok(())
    }
}

/// The same, but writing a whole batch with one set-based insert, as a fast handler would.
struct BatchRecorder(Arc<Recorder>);

impl Handler for BatchRecorder {
    const BATCHED: bool = true;

    async fn handle(&self, conn: &mut PgConnection, event: &Incoming) -> Result<(), HandlerError> {
        self.0.handle(conn, event).await
    }

    async fn handle_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a Incoming],
    ) -> Result<(), BatchError> {
        // Every failing event at once, as a set-based handler finds them.
        let failed: Vec<(usize, HandlerError)> = events
            .iter()
            .enumerate()
            .filter_map(|(index, event)| Some((index, self.0.failure(event)?)))
            .collect();
        if !failed.is_empty() {
            return Err(BatchError::Events(failed));
        }
        let ids: Vec<Uuid> = events.iter().map(|e| e.envelope.id).collect();
        let subjects: Vec<String> = events.iter().map(|e| e.envelope.subject.clone()).collect();
        let sequences: Vec<i64> = events.iter().map(|e| e.envelope.sequence).collect();
        let attempts: Vec<i32> = events.iter().map(|e| e.attempt as i32).collect();
        sqlx::query(
            "insert into applied (event_id, subject, sequence, attempt) \
             select * from unnest($1::uuid[], $2::text[], $3::bigint[], $4::int[])",
        )
        .bind(&ids)
        .bind(&subjects)
        .bind(&sequences)
        .bind(&attempts)
        .execute(conn)
        .await
        .map_err(|e| BatchError::Batch(e.into()))?;
        Ok(())
    }
}

struct Harness {
    db: TestDatabase,
    bus: BusSettings,
    recorder: Arc<Recorder>,
    shutdown: Shutdown,
}

fn fast_retries() -> ConsumerSettings {
    ConsumerSettings {
        retry_delays_ms: vec![50, 100],
        max_attempts: 3,
        max_wait_ms: 60_000,
        batch_size: 50,
        ..ConsumerSettings::default()
    }
}

impl Harness {
    async fn start() -> Self {
        Self::start_on(test_bus()).await
    }

    async fn start_on(bus: BusSettings) -> Self {
        Self::start_with(bus, false).await
    }

    /// A database and a bus with nothing running on them yet.
    async fn idle(bus: BusSettings) -> Self {
        Harness {
            db: TestDatabase::create(&MIGRATOR).await,
            bus,
            recorder: Arc::new(Recorder::default()),
            shutdown: Shutdown::new(),
        }
    }

    async fn start_with(bus: BusSettings, batched: bool) -> Self {
        let harness = Self::idle(bus).await;
        harness.spawn_relay();
        if batched {
            harness.spawn_consumer(Arc::new(BatchRecorder(harness.recorder.clone())));
        } else {
            harness.spawn_consumer(harness.recorder.clone());
        }
        harness
    }

    /// A connection of the test's own to the broker, to act on the topology as an operator.
    async fn broker_channel(&self) -> (lapin::Connection, lapin::Channel) {
        let connection = lapin::Connection::connect(
            secrecy::ExposeSecret::expose_secret(&self.bus.url),
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        (connection, channel)
    }

    fn pool(&self) -> PgPool {
        self.db.pool.clone()
    }

    fn spawn_relay(&self) {
        let relay = Relay::new(
            self.pool(),
            self.bus.clone(),
            "tracker",
            Arc::new(AtomicBool::new(false)),
            self.shutdown.clone(),
        );
        tokio::spawn(relay.run());
    }

    fn spawn_consumer<H: Handler>(&self, handler: Arc<H>) {
        let consumer = Consumer::new(
            self.pool(),
            self.bus.clone(),
            topology::LEGACY_SYNC,
            fast_retries(),
            handler,
            Arc::new(AtomicBool::new(false)),
            self.shutdown.clone(),
        );
        tokio::spawn(consumer.run());
    }

    /// A consumer with the harness's recorder that stops on a shutdown of its own, returned.
    fn spawn_stoppable_consumer(&self) -> Shutdown {
        let shutdown = Shutdown::new();
        tokio::spawn(
            Consumer::new(
                self.pool(),
                self.bus.clone(),
                topology::LEGACY_SYNC,
                fast_retries(),
                self.recorder.clone(),
                Arc::new(AtomicBool::new(false)),
                shutdown.clone(),
            )
            .run(),
        );
        shutdown
    }

    /// Stages one event per order in its own transaction, as a service would.
    async fn stage(&self, order_id: Uuid, sequence: i64) {
        let mut tx = self.db.pool.begin().await.unwrap();
        Outbox::new("tracker")
            .stage(&mut tx, sequence, &packed(order_id))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn applied_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from applied")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn wait_applied(&self, n: i64) {
        eventually(&format!("{n} events applied"), WAIT, || async {
            (self.applied_count().await >= n).then_some(())
        })
        .await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

const UNPUBLISHED: &str = "select count(*) from outbox where published_at is null";

/// The one number a `select count(*) …` gives.
async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

fn packed(order_id: Uuid) -> OrderPacked {
    OrderPacked {
        order_id,
        pizzeria_id: Uuid::new_v4(),
        at: Utc::now(),
    }
}

#[tokio::test]
async fn staged_events_are_published_consumed_and_marked_sent() {
    let h = Harness::start().await;
    for _ in 0..25 {
        h.stage(Uuid::new_v4(), 1).await;
    }
    h.wait_applied(25).await;
    let unsent = count(&h.db.pool, UNPUBLISHED).await;
    eventually("every outbox row marked published", WAIT, || async {
        (count(&h.db.pool, UNPUBLISHED).await == 0).then_some(())
    })
    .await;
    assert!(unsent <= 25);
    assert_eq!(h.applied_count().await, 25);
}

#[tokio::test]
async fn a_row_that_commits_after_a_later_id_is_not_skipped() {
    let h = Harness::start().await;
    let early = Uuid::new_v4();
    let late = Uuid::new_v4();
    // The first transaction takes the lower id but commits last.
    let mut slow = h.db.pool.begin().await.unwrap();
    Outbox::new("tracker")
        .stage(&mut slow, 1, &packed(early))
        .await
        .unwrap();
    h.stage(late, 1).await;
    h.wait_applied(1).await;
    slow.commit().await.unwrap();
    h.wait_applied(2).await;
    let subjects: Vec<String> =
        sqlx::query_scalar("select subject from applied order by applied_at")
            .fetch_all(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(subjects, vec![late.to_string(), early.to_string()]);
}

#[tokio::test]
async fn a_duplicated_event_is_applied_once() {
    let h = Harness::start().await;
    let publisher = Publisher::connect(&h.bus, "test").await.unwrap();
    let envelope = contracts::Envelope::wrap("tracker", &packed(Uuid::new_v4()), 1, None).unwrap();
    for _ in 0..3 {
        publisher
            .publish("tracker.order.packed", &envelope)
            .await
            .unwrap();
    }
    // A different event after the duplicates proves they were all consumed.
    publisher
        .publish_event("tracker", 1, &packed(Uuid::new_v4()))
        .await
        .unwrap();
    h.wait_applied(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.applied_count().await, 2);
}

#[tokio::test]
async fn a_transient_failure_is_retried_without_blocking_the_others() {
    let h = Harness::start().await;
    let flaky = Uuid::new_v4();
    h.recorder.fail(flaky, 2);
    h.stage(flaky, 1).await;
    for _ in 0..10 {
        h.stage(Uuid::new_v4(), 1).await;
    }
    h.wait_applied(11).await;
    let attempt: i32 = sqlx::query_scalar("select attempt from applied where subject = $1")
        .bind(flaky.to_string())
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(attempt, 3, "applied on the third try");
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_their_reason_and_can_be_replayed() {
    let h = Harness::start().await;
    let publisher = Publisher::connect(&h.bus, "test").await.unwrap();
    publisher
        .publish_raw("tracker.order.packed", b"{not json")
        .await
        .unwrap();
    let stuck = Uuid::new_v4();
    h.recorder.fail(stuck, u32::MAX);
    let stuck_envelope = publisher
        .publish_event("tracker", 1, &packed(stuck))
        .await
        .unwrap();
    for _ in 0..5 {
        publisher
            .publish_event("tracker", 1, &packed(Uuid::new_v4()))
            .await
            .unwrap();
    }
    h.wait_applied(5).await;

    let letters = eventually("two dead letters", WAIT, || async {
        let letters = dead_letters::list(&h.bus, topology::LEGACY_SYNC)
            .await
            .unwrap();
        (letters.len() == 2).then_some(letters)
    })
    .await;
    let garbage = letters
        .iter()
        .find(|l| l.body == "{not json")
        .expect("the garbage");
    assert!(
        garbage
            .error
            .as_deref()
            .unwrap()
            .contains("not a CloudEvents JSON envelope")
    );
    assert_eq!(
        garbage.attempts,
        Some(1),
        "undecodable messages are not retried"
    );
    let stuck_letter = letters
        .iter()
        .find(|l| l.event_id.as_deref() == Some(&stuck_envelope.id.to_string()))
        .expect("the failing event");
    assert_eq!(stuck_letter.attempts, Some(3));
    assert_eq!(
        stuck_letter.routing_key.as_deref(),
        Some("tracker.order.packed")
    );
    assert!(
        stuck_letter
            .error
            .as_deref()
            .unwrap()
            .contains("lock timed out")
    );
    assert!(stuck_letter.error_chain.is_some());

    // The cause is fixed; replay just that event.
    h.recorder.fail(stuck, 0);
    let replayed = dead_letters::replay(&h.bus, topology::LEGACY_SYNC, Some(stuck_envelope.id))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    h.wait_applied(6).await;
    let left = dead_letters::list(&h.bus, topology::LEGACY_SYNC)
        .await
        .unwrap();
    assert_eq!(
        left.len(),
        1,
        "the garbage stays until someone deals with it"
    );
}

#[tokio::test]
async fn a_broker_restart_mid_stream_loses_nothing_and_applies_nothing_twice() {
    let broker = PrivateBroker::start();
    let h = Harness::start_on(broker.bus()).await;
    let total = 300;
    let staging = {
        let pool = h.pool();
        tokio::spawn(async move {
            for i in 0..total {
                let mut tx = pool.begin().await.unwrap();
                Outbox::new("tracker")
                    .stage(&mut tx, 1, &packed(Uuid::new_v4()))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    h.wait_applied(20).await;
    broker.restart().await;
    staging.await.unwrap();
    eventually(
        "every event applied after the restart",
        Duration::from_secs(60),
        || async { (h.applied_count().await >= total).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.applied_count().await, total, "nothing applied twice");
    let unsent = count(&h.db.pool, UNPUBLISHED).await;
    assert_eq!(unsent, 0);
}

#[tokio::test]
async fn a_batched_handler_isolates_the_failing_event_and_applies_the_rest() {
    let h = Harness::start_with(test_bus(), true).await;
    let flaky = Uuid::new_v4();
    h.recorder.fail(flaky, 1);
    // Staged in one transaction, so they reach the consumer together and share a batch.
    let mut tx = h.db.pool.begin().await.unwrap();
    let outbox = Outbox::new("tracker");
    for i in 0..30 {
        let order = if i == 15 { flaky } else { Uuid::new_v4() };
        outbox.stage(&mut tx, 1, &packed(order)).await.unwrap();
    }
    tx.commit().await.unwrap();
    h.wait_applied(30).await;
    let attempt: i32 = sqlx::query_scalar("select attempt from applied where subject = $1")
        .bind(flaky.to_string())
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(attempt, 2, "the failing event was retried once, on its own");
    let first_tries: i64 = sqlx::query_scalar("select count(*) from applied where attempt = 1")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(first_tries, 29);
}

#[tokio::test]
async fn an_event_waiting_for_its_order_outlasts_the_attempt_budget() {
    let h = Harness::start().await;
    let early = Uuid::new_v4();
    // Three times the attempts a transient failure gets: an outage upstream lasting that long
    // must not send the event to the dead letters.
    h.recorder.wait(early, 9);
    h.stage(early, 1).await;
    h.wait_applied(1).await;
    let attempt: i32 = sqlx::query_scalar("select attempt from applied where subject = $1")
        .bind(early.to_string())
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(attempt, 10, "applied once its order was there");
    let dead = dead_letters::list(&h.bus, topology::LEGACY_SYNC)
        .await
        .unwrap();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
}

#[tokio::test]
async fn a_batch_full_of_waiting_events_is_run_again_once_not_once_per_event() {
    let h = Harness::start_with(test_bus(), true).await;
    let waiting: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    for order in &waiting {
        h.recorder.wait(*order, 1);
    }
    let mut tx = h.db.pool.begin().await.unwrap();
    let outbox = Outbox::new("tracker");
    let mut waiting_ids = Vec::new();
    for i in 0..40 {
        let order = if i % 4 == 0 {
            waiting[i / 4]
        } else {
            Uuid::new_v4()
        };
        let id = outbox.stage(&mut tx, 1, &packed(order)).await.unwrap();
        if i % 4 == 0 {
            waiting_ids.push(id);
        }
    }
    tx.commit().await.unwrap();
    h.wait_applied(40).await;
    assert!(
        h.recorder.most_presented(&waiting_ids) <= 2,
        "an event that could be applied was run {} times",
        h.recorder.most_presented(&waiting_ids)
    );
}

#[tokio::test]
async fn a_retry_queue_that_went_missing_loses_nothing() {
    let h = Harness::start().await;
    h.stage(Uuid::new_v4(), 1).await;
    h.wait_applied(1).await;
    // Someone deletes the first retry queue under the running consumer.
    let (connection, channel) = h.broker_channel().await;
    channel
        .queue_delete(
            topology::retry_queue_name(&h.bus.exchange, topology::LEGACY_SYNC, 0)
                .as_str()
                .into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    let flaky = Uuid::new_v4();
    h.recorder.fail(flaky, 1);
    h.stage(flaky, 1).await;
    // The retry comes back unroutable; the original must stay unacknowledged until the
    // consumer has declared its queues again, and then be applied.
    h.wait_applied(2).await;
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn settled_messages_are_acknowledged_and_not_delivered_again() {
    let h = Harness::start().await;
    for _ in 0..60 {
        h.stage(Uuid::new_v4(), 1).await;
    }
    h.wait_applied(60).await;
    let (connection, channel) = h.broker_channel().await;
    // Acks of a batch go out together once every earlier delivery is settled; once they
    // are out, nothing is left in any partition, ready or unacknowledged.
    eventually("every delivery acknowledged", WAIT, || async {
        h.shutdown.trigger();
        for queue in topology::partition_queue_names(&h.bus, topology::LEGACY_SYNC) {
            let (consumers, messages) = queue_state(&channel, &queue).await;
            if consumers != 0 || messages != 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    let _ = connection.close(200, "done".into()).await;
}

/// How many consumers a queue has, and how many messages are ready in it.
async fn queue_state(channel: &lapin::Channel, queue: &str) -> (u32, u32) {
    let state = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    (state.consumer_count(), state.message_count())
}

/// A relay of its own for a test, with its readiness flag and its shutdown.
fn relay_of(db: &TestDatabase, bus: &BusSettings) -> (Relay, Arc<AtomicBool>, Shutdown) {
    let ready = Arc::new(AtomicBool::new(false));
    let shutdown = Shutdown::new();
    let relay = Relay::new(
        db.pool.clone(),
        bus.clone(),
        "tracker",
        ready.clone(),
        shutdown.clone(),
    );
    (relay, ready, shutdown)
}

#[tokio::test]
async fn a_relay_whose_confirms_never_come_gives_up_and_reports_not_ready() {
    let db = TestDatabase::create(&MIGRATOR).await;
    let (proxy, bus) = testkit::FreezableProxy::in_front_of(&test_bus()).await;
    let (relay, ready, shutdown) = relay_of(&db, &bus);
    tokio::spawn(relay.with_confirm_timeout(Duration::from_millis(500)).run());
    let is_ready = |want: bool| {
        let ready = ready.clone();
        async move { (ready.load(std::sync::atomic::Ordering::Relaxed) == want).then_some(()) }
    };
    eventually("the relay connected", WAIT, || is_ready(true)).await;

    // The link goes half-open: the publish leaves, no confirm ever comes back.
    proxy.freeze();
    let mut tx = db.pool.begin().await.unwrap();
    Outbox::new("tracker")
        .stage(&mut tx, 1, &packed(Uuid::new_v4()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    eventually("the relay to give up and report not ready", WAIT, || {
        is_ready(false)
    })
    .await;

    // Once the link is back, a new session publishes the row.
    proxy.thaw();
    eventually(
        "the row published after the link came back",
        WAIT,
        || async { (count(&db.pool, UNPUBLISHED).await == 0).then_some(()) },
    )
    .await;
    shutdown.trigger();
}

/// The sequence of every event of the test's observer queue, in the order the broker holds them.
async fn sequences_in(channel: &lapin::Channel, queue: &str) -> Vec<i64> {
    let mut sequences = Vec::new();
    while let Some(message) = channel
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        let body: serde_json::Value = serde_json::from_slice(&message.delivery.data).unwrap();
        sequences.push(body["sequence"].as_i64().unwrap());
    }
    sequences
}

#[tokio::test]
async fn a_refused_event_is_not_overtaken_by_a_later_event_of_its_order() {
    let db = TestDatabase::create(&MIGRATOR).await;
    let bus = test_bus();
    let (relay, ready, shutdown) = relay_of(&db, &bus);
    tokio::spawn(relay.run());
    // Connected means the exchange is declared, and the relay idles until a row comes.
    eventually("the relay connected", WAIT, || async {
        ready
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(())
    })
    .await;

    let connection = lapin::Connection::connect(
        secrecy::ExposeSecret::expose_secret(&bus.url),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let declare = |name: String, args: lapin::types::FieldTable, key: &'static str| {
        let channel = channel.clone();
        let exchange = bus.exchange.clone();
        async move {
            channel
                .queue_declare(
                    name.as_str().into(),
                    lapin::options::QueueDeclareOptions::default(),
                    args,
                )
                .await
                .unwrap();
            channel
                .queue_bind(
                    name.as_str().into(),
                    exchange.as_str().into(),
                    key.into(),
                    lapin::options::QueueBindOptions::default(),
                    lapin::types::FieldTable::default(),
                )
                .await
                .unwrap();
        }
    };
    // Sees everything the relay publishes, in the broker's order.
    let observer = format!("{}.observer", bus.exchange);
    declare(
        observer.clone(),
        lapin::types::FieldTable::default(),
        "tracker.#",
    )
    .await;
    // Takes nothing, and makes the broker nack every `order.packed` routed to it.
    let full = format!("{}.full", bus.exchange);
    let mut args = lapin::types::FieldTable::default();
    args.insert(
        "x-max-length".into(),
        lapin::types::AMQPValue::LongLongInt(0),
    );
    args.insert(
        "x-overflow".into(),
        lapin::types::AMQPValue::LongString("reject-publish".into()),
    );
    declare(full.clone(), args, "tracker.order.packed").await;

    // Sequence 2 will be refused; 1 and 3 would be confirmed.
    let order_id = Uuid::new_v4();
    let in_work = contracts::OrderInWork {
        order_id,
        pizzeria_id: Uuid::new_v4(),
        at: Utc::now(),
    };
    let outbox = Outbox::new("tracker");
    let mut tx = db.pool.begin().await.unwrap();
    outbox.stage(&mut tx, 1, &in_work).await.unwrap();
    outbox.stage(&mut tx, 2, &packed(order_id)).await.unwrap();
    outbox.stage(&mut tx, 3, &in_work).await.unwrap();
    tx.commit().await.unwrap();

    // Marked published only once the pass that took all three rows is over.
    eventually("sequence 1 published", WAIT, || async {
        (count(
            &db.pool,
            "select count(*) from outbox where published_at is not null \
             and payload->>'sequence' = '1'",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
    // The broker takes `order.packed` again; every row goes out.
    channel
        .queue_delete(
            full.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    eventually("every row published", WAIT, || async {
        (count(&db.pool, UNPUBLISHED).await == 0).then_some(())
    })
    .await;
    // The refused publish of 2 may still have reached the observer (the broker nacks when any
    // of the queues refuses), so 2 can come twice: a repeat is fine, consumers are idempotent.
    // Going back is not: without the waves the observer holds 1, 3, 2.
    let seen = sequences_in(&channel, &observer).await;
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "out of sequence: {seen:?}"
    );
    let mut distinct = seen.clone();
    distinct.dedup();
    assert_eq!(distinct, vec![1, 2, 3], "{seen:?}");
    shutdown.trigger();
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn pruning_keeps_what_deduplication_still_needs() {
    let h = Harness::start().await;
    let publisher = Publisher::connect(&h.bus, "test").await.unwrap();
    let old = publisher
        .publish_event("tracker", 1, &packed(Uuid::new_v4()))
        .await
        .unwrap();
    let recent = publisher
        .publish_event("tracker", 1, &packed(Uuid::new_v4()))
        .await
        .unwrap();
    h.wait_applied(2).await;
    h.stage(Uuid::new_v4(), 1).await;
    h.wait_applied(3).await;
    sqlx::query("update inbox set processed_at = now() - interval '8 days' where event_id = $1")
        .bind(old.id)
        .execute(&h.db.pool)
        .await
        .unwrap();
    eventually("the staged row published", WAIT, || async {
        let published = "select count(*) from outbox where published_at is not null";
        (count(&h.db.pool, published).await == 1).then_some(())
    })
    .await;
    sqlx::query("update outbox set published_at = now() - interval '2 days'")
        .execute(&h.db.pool)
        .await
        .unwrap();
    h.stage(Uuid::new_v4(), 1).await;
    h.wait_applied(4).await;

    let week = Duration::from_secs(7 * 24 * 3600);
    let pruned = bus::retention::prune_inbox(&h.db.pool, "legacy-sync", week)
        .await
        .unwrap();
    assert_eq!(pruned, 1, "only the id older than the retention");
    let pruned = bus::retention::prune_outbox(&h.db.pool, Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    assert_eq!(pruned, 1, "only the row published before the retention");
    let outbox_left: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(outbox_left, 1);

    // A late duplicate of an event still in the inbox is still recognised.
    publisher
        .publish("tracker.order.packed", &recent)
        .await
        .unwrap();
    publisher
        .publish_event("tracker", 1, &packed(Uuid::new_v4()))
        .await
        .unwrap();
    h.wait_applied(5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.applied_count().await,
        5,
        "the duplicate was not applied again"
    );
}

#[tokio::test]
async fn one_relay_per_database_publishes_and_a_standby_takes_over() {
    let h = Harness::start().await;
    h.stage(Uuid::new_v4(), 1).await;
    h.wait_applied(1).await;
    // A second instance of the service starts its relay against the same database.
    let standby_shutdown = Shutdown::new();
    let standby_ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(
        Relay::new(
            h.pool(),
            h.bus.clone(),
            "tracker",
            standby_ready.clone(),
            standby_shutdown.clone(),
        )
        .run(),
    );
    eventually("the second relay connected", WAIT, || async {
        standby_ready
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(())
    })
    .await;
    let leaders = || async {
        sqlx::query_scalar::<_, i64>(
            // The relay's lock has one key (objsubid 1); the consumer's pruning leader holds a
            // two-key one (`service_kit::leader`).
            "select count(*) from pg_locks where locktype = 'advisory' and granted \
             and objsubid = 1 \
             and database = (select oid from pg_database where datname = current_database())",
        )
        .fetch_one(&h.db.pool)
        .await
        .unwrap()
    };
    assert_eq!(leaders().await, 1, "one relay leads");

    // The leader goes away (its service stops); the standby publishes from now on.
    h.shutdown.trigger();
    let consumer_shutdown = h.spawn_stoppable_consumer();
    for _ in 0..5 {
        h.stage(Uuid::new_v4(), 1).await;
    }
    h.wait_applied(6).await;
    assert_eq!(leaders().await, 1, "the standby leads now");
    standby_shutdown.trigger();
    consumer_shutdown.trigger();
}

/// Every dead letter of the harness's consumer, once there are `n`.
async fn dead_letters_of(bus: &BusSettings, n: usize) -> Vec<dead_letters::DeadLetter> {
    eventually(&format!("{n} dead letters"), WAIT, || async {
        // A quorum queue declared a moment ago may not have started its member yet: the broker
        // then refuses `basic.get` with `noproc`, which is "not yet", not a failure.
        match dead_letters::list(bus, topology::LEGACY_SYNC).await {
            Ok(letters) => (letters.len() == n).then_some(letters),
            Err(e) => {
                eprintln!("reading the dead letters failed, trying again: {e:#}");
                None
            }
        }
    })
    .await
}

#[tokio::test]
async fn an_event_from_a_user_that_does_not_own_its_routing_key_is_dead_lettered() {
    let h = Harness::start().await;
    // The owner of `tracker.*` (the test user) first, which also declares the queues.
    let owner = Publisher::connect(&h.bus, "test").await.unwrap();
    owner
        .publish_event("tracker", 1, &packed(Uuid::new_v4()))
        .await
        .unwrap();
    // Someone holding another user's password, say the web's, publishes as the tracker.
    let intruder_bus = testkit::other_user(&h.bus, "web");
    let intruder = Publisher::connect(&intruder_bus, "test").await.unwrap();
    let forged = intruder
        .publish_event("tracker", 2, &packed(Uuid::new_v4()))
        .await
        .unwrap();

    let letters = dead_letters_of(&h.bus, 1).await;
    let letter = &letters[0];
    assert_eq!(letter.event_id.as_deref(), Some(&*forged.id.to_string()));
    let error = letter.error.as_deref().unwrap();
    assert!(
        error.contains("tracker.order.packed was published by RabbitMQ user `test-web-")
            && error.contains("belongs to `guest`"),
        "{error}"
    );
    assert_eq!(letter.attempts, Some(1), "a forged event is not retried");
    // The forged event is refused before any batch, so its dead letter can come before the
    // owner's batch commits: wait for that one, then check nothing else was applied.
    h.wait_applied(1).await;
    assert_eq!(
        h.applied_count().await,
        1,
        "only the owner's event is applied"
    );
}

#[tokio::test]
async fn an_event_whose_type_does_not_match_its_routing_key_is_dead_lettered() {
    let h = Harness::start().await;
    let owner = Publisher::connect(&h.bus, "test").await.unwrap();
    // The tracker's user may publish `tracker.*`, but handlers dispatch on the type: a user
    // event under a tracker key must not reach the staff mirror.
    let mut disguised =
        contracts::Envelope::wrap("tracker", &packed(Uuid::new_v4()), 1, None).unwrap();
    disguised.event_type = <contracts::UserRolesChanged as contracts::Event>::TYPE.to_owned();
    owner
        .publish("tracker.order.packed", &disguised)
        .await
        .unwrap();
    let letters = dead_letters_of(&h.bus, 1).await;
    let error = letters[0].error.as_deref().unwrap();
    assert!(
        error.contains("must travel as tracker.user.roles_changed"),
        "{error}"
    );
}

#[tokio::test]
async fn a_retried_event_keeps_its_publisher_when_the_consumer_is_another_user() {
    // As deployed: the relay publishes as one user, the consumer connects as another and
    // re-publishes the failing event to its retry queue as itself.
    let publisher_bus = test_bus();
    let consumer_bus = testkit::other_user(&publisher_bus, "sync-worker");
    let db = TestDatabase::create(&MIGRATOR).await;
    let recorder = Arc::new(Recorder::default());
    let shutdown = Shutdown::new();
    let consumer = Consumer::new(
        db.pool.clone(),
        consumer_bus.clone(),
        topology::LEGACY_SYNC,
        fast_retries(),
        recorder.clone(),
        Arc::new(AtomicBool::new(false)),
        shutdown.clone(),
    );
    tokio::spawn(consumer.run());
    let flaky = Uuid::new_v4();
    recorder.fail(flaky, 2);
    let publisher = Publisher::connect(&publisher_bus, "test").await.unwrap();
    publisher
        .publish_event("tracker", 1, &packed(flaky))
        .await
        .unwrap();
    eventually("the flaky event applied", WAIT, || async {
        let attempt: Option<i32> =
            sqlx::query_scalar("select attempt from applied where subject = $1")
                .bind(flaky.to_string())
                .fetch_optional(&db.pool)
                .await
                .unwrap();
        attempt
    })
    .await;
    assert!(
        dead_letters::list(&consumer_bus, topology::LEGACY_SYNC)
            .await
            .unwrap()
            .is_empty()
    );
    shutdown.trigger();
}

/// A consumer's handler that also counts what it applied, to tell two replicas apart.
struct Replica {
    recorder: Arc<Recorder>,
    applied: std::sync::atomic::AtomicUsize,
}

impl Handler for Replica {
    async fn handle(&self, conn: &mut PgConnection, event: &Incoming) -> Result<(), HandlerError> {
        self.recorder.handle(conn, event).await?;
        self.applied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// The consumers of the test's vhost as the management API lists them: (queue, connection,
/// whether the broker lets it take deliveries).
fn consumers_of(bus: &BusSettings) -> Vec<(String, String, bool)> {
    let url = secrecy::ExposeSecret::expose_secret(&bus.url).to_owned();
    let vhost = url.rsplit('/').next().unwrap().to_owned();
    let uri: lapin::uri::AMQPUri = std::env::var("AMQP_URL").unwrap().parse().unwrap();
    let out = std::process::Command::new("curl")
        .args(["-fsS", "-u"])
        .arg(format!(
            "{}:{}",
            uri.authority.userinfo.username, uri.authority.userinfo.password
        ))
        .arg(format!(
            "{}/api/consumers/{vhost}",
            testkit::management_url()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "listing the consumers");
    let consumers: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    consumers
        .iter()
        .map(|c| {
            (
                c["queue"]["name"].as_str().unwrap_or_default().to_owned(),
                c["channel_details"]["connection_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["active"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Each order's sequences in the order they were applied.
async fn applied_sequences(pool: &PgPool) -> HashMap<String, Vec<i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select subject, sequence from applied order by applied_at")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut orders: HashMap<String, Vec<i64>> = HashMap::new();
    for (subject, sequence) in rows {
        orders.entry(subject).or_default().push(sequence);
    }
    orders
}

#[tokio::test]
async fn two_replicas_share_the_partitions_in_order_and_the_survivor_takes_over() {
    let h = Harness::idle(test_bus()).await;
    h.spawn_relay();
    let partitions = topology::partition_queue_names(&h.bus, topology::LEGACY_SYNC);
    let replicas: Vec<Arc<Replica>> = (0..2)
        .map(|_| {
            Arc::new(Replica {
                recorder: h.recorder.clone(),
                applied: Default::default(),
            })
        })
        .collect();
    // The first replica subscribes to every partition before the second starts, so the
    // broker makes it the active consumer of all of them and the second one waits.
    for replica in &replicas {
        let ready = Arc::new(AtomicBool::new(false));
        tokio::spawn(
            Consumer::new(
                h.pool(),
                h.bus.clone(),
                topology::LEGACY_SYNC,
                fast_retries(),
                replica.clone(),
                ready.clone(),
                h.shutdown.clone(),
            )
            .run(),
        );
        eventually("the replica consumes", WAIT, || async {
            ready
                .load(std::sync::atomic::Ordering::Relaxed)
                .then_some(())
        })
        .await;
    }
    // The management API's view lags the broker by its statistics interval.
    eventually(
        "a consumer per replica on every partition",
        WAIT,
        || async {
            let consumers = consumers_of(&h.bus);
            partitions
                .iter()
                .all(|queue| consumers.iter().filter(|(q, _, _)| q == queue).count() == 2)
                .then_some(())
        },
    )
    .await;

    // Many orders' events, interleaved, each order's in sequence.
    let stage_wave = |orders: Vec<Uuid>| {
        let h = &h;
        async move {
            for sequence in 1..=5 {
                for order in &orders {
                    h.stage(*order, sequence).await;
                }
            }
        }
    };
    stage_wave((0..20).map(|_| Uuid::new_v4()).collect()).await;
    h.wait_applied(100).await;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    assert_eq!(replicas[0].applied.load(relaxed), 100);
    assert_eq!(
        replicas[1].applied.load(relaxed),
        0,
        "the waiting replica took nothing"
    );

    // The active replica's connection dies (as when its process is killed): the broker makes
    // the other replica's consumer active on every partition.
    let killed: HashSet<String> = consumers_of(&h.bus)
        .into_iter()
        .filter(|(_, _, active)| *active)
        .map(|(_, connection, _)| connection)
        .collect();
    assert_eq!(killed.len(), 1, "one replica is active on every partition");
    for name in &killed {
        let path = format!(
            "connections/{}",
            name.replace(' ', "%20").replace('>', "%3E")
        );
        assert_eq!(testkit::management("DELETE", &path, None), 204);
    }
    eventually(
        "the other replica active on every partition",
        WAIT,
        || async {
            let consumers = consumers_of(&h.bus);
            let taken_over = partitions.iter().all(|queue| {
                consumers
                    .iter()
                    .any(|(q, c, active)| q == queue && *active && !killed.contains(c))
            });
            taken_over.then_some(())
        },
    )
    .await;
    stage_wave((0..20).map(|_| Uuid::new_v4()).collect()).await;
    h.wait_applied(200).await;
    assert_eq!(
        replicas[1].applied.load(relaxed),
        100,
        "the survivor took the second wave"
    );

    for (order, sequences) in applied_sequences(&h.db.pool).await {
        assert_eq!(
            sequences,
            vec![1, 2, 3, 4, 5],
            "order {order} applied out of order"
        );
    }
    assert_eq!(h.applied_count().await, 200, "nothing applied twice");
    assert!(
        dead_letters::list(&h.bus, topology::LEGACY_SYNC)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_once_per_cluster_job_runs_in_one_replica_and_another_takes_over_when_it_dies() {
    use service_kit::leader::Leader;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    let db = TestDatabase::create(&MIGRATOR).await;
    let shutdown = Shutdown::new();
    // Two replicas of a job that counts its runs, as the late sweeper sweeps, each with a
    // pool of its own as separate processes have.
    let runs: Arc<[AtomicUsize; 2]> = Arc::new(Default::default());
    let mut pools = Vec::new();
    for replica in 0..2 {
        let runs = runs.clone();
        let pool = PgPool::connect_with((*db.pool.connect_options()).clone())
            .await
            .unwrap();
        pools.push(pool.clone());
        tokio::spawn(
            Leader::new(pool, "test-sweep", shutdown.clone()).run(move || {
                let runs = runs.clone();
                async move {
                    loop {
                        runs[replica].fetch_add(1, Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }),
        );
    }
    let leader = eventually("one replica sweeping", WAIT, || async {
        (0..2).find(|&r| runs[r].load(Relaxed) >= 10)
    })
    .await;
    let standby = 1 - leader;
    assert_eq!(runs[standby].load(Relaxed), 0, "only the leader sweeps");

    // The leader's process dies: it can reach the database no more (its pool is closed; the
    // lock's connection is not the pool's) and its connection ends.
    pools[leader].close().await;
    let terminated: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' \
         and objsubid = 2 and granted \
         and database = (select oid from pg_database where datname = current_database())",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(terminated, vec![true], "one lock, held by the leader");
    eventually("the standby sweeping", WAIT, || async {
        (runs[standby].load(Relaxed) >= 10).then_some(())
    })
    .await;
    // The old leader's job stops once its next check finds the connection gone: its count
    // stands still while the new leader's grows by more than a check interval's worth of runs.
    eventually("the old leader stopped sweeping", WAIT, || async {
        let (old, new) = (runs[leader].load(Relaxed), runs[standby].load(Relaxed));
        while runs[standby].load(Relaxed) < new + 40 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (runs[leader].load(Relaxed) == old).then_some(())
    })
    .await;
    shutdown.trigger();
}

/// Publishes an order's event straight to the exchange as its owner would, with no subject
/// header (as a publisher of an earlier release did), and waits for the confirm.
async fn publish_unpartitioned(bus: &BusSettings, channel: &lapin::Channel, order_id: Uuid) {
    let envelope = contracts::Envelope::wrap("tracker", &packed(order_id), 1, None).unwrap();
    let properties = bus::publishers::stamp(
        lapin::BasicProperties::default()
            .with_message_id(envelope.id.to_string().into())
            .with_delivery_mode(2),
        &bus::publishers::own_user(bus),
    );
    channel
        .basic_publish(
            bus.exchange.as_str().into(),
            "tracker.order.packed".into(),
            lapin::options::BasicPublishOptions::default(),
            &serde_json::to_vec(&envelope).unwrap(),
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_single_queue_of_earlier_releases_is_unbound_and_drained() {
    let h = Harness::idle(test_bus()).await;
    // The topology of an earlier release: one queue, bound to the exchange, holding an event.
    let (connection, channel) = h.broker_channel().await;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    topology::declare_exchange(&channel, &h.bus.exchange)
        .await
        .unwrap();
    let old = topology::queue_name(&h.bus.exchange, topology::LEGACY_SYNC);
    let mut quorum = lapin::types::FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            old.as_str().into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            quorum,
        )
        .await
        .unwrap();
    for binding in topology::LEGACY_SYNC.bindings {
        channel
            .queue_bind(
                old.as_str().into(),
                h.bus.exchange.as_str().into(),
                (*binding).into(),
                Default::default(),
                Default::default(),
            )
            .await
            .unwrap();
    }
    publish_unpartitioned(&h.bus, &channel, Uuid::new_v4()).await;
    assert_eq!(
        queue_state(&channel, &old).await.1,
        1,
        "the event waits in the old queue"
    );

    // This release's consumer starts: it applies what waited in the old queue.
    let consumer_shutdown = h.spawn_stoppable_consumer();
    h.wait_applied(1).await;
    consumer_shutdown.trigger();
    eventually("the consumer gone", WAIT, || async {
        (queue_state(&channel, &old).await.0 == 0).then_some(())
    })
    .await;

    // The old queue is no longer bound: a new event goes to a partition only.
    publish_unpartitioned(&h.bus, &channel, Uuid::new_v4()).await;
    assert_eq!(
        queue_state(&channel, &old).await.1,
        0,
        "nothing new in the old queue"
    );
    let mut waiting = 0;
    for queue in topology::partition_queue_names(&h.bus, topology::LEGACY_SYNC) {
        waiting += queue_state(&channel, &queue).await.1;
    }
    assert_eq!(waiting, 1, "the new event waits in a partition");
    let _ = connection.close(200, "done".into()).await;
}
