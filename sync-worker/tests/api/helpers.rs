use std::time::Duration;

use bus::{
    Publisher,
    consumer::ConsumerSettings,
    dead_letters::DeadLetter,
    topology::{self, LEGACY_SYNC},
};
use chrono::{DateTime, TimeDelta, Utc};
use contracts::{
    Envelope, Event, OrderAcceptedByTracker, OrderHandedOver, OrderInWork, OrderItem, OrderPacked,
    OrderRunningLate, OrderSource, ProductCategory, ProductRemakeRequested, ProductStageCompleted,
    ProductStageUndone, TrackedProduct, routing_key,
};
use lapin::{options::QueueDeclareOptions, types::FieldTable};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use sync_worker::{config::Settings, db::MIGRATOR, startup::Application};
use testkit::{TestDatabase, eventually};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a test waits for the worker before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Retries quick enough for a test, patient enough that an order's accepted event, published
/// last, still lands before its other events are dead-lettered.
pub fn patient_retries() -> ConsumerSettings {
    ConsumerSettings {
        prefetch: 100,
        batch_size: 20,
        partitions: 4,
        retry_delays_ms: vec![100, 200, 400],
        max_attempts: 10,
        max_wait_ms: 60_000,
        ..ConsumerSettings::default()
    }
}

/// Retries that give up fast, for the dead-letter tests.
pub fn impatient_retries() -> ConsumerSettings {
    ConsumerSettings {
        retry_delays_ms: vec![50, 100],
        max_attempts: 3,
        max_wait_ms: 200,
        ..patient_retries()
    }
}

pub struct TestApp {
    pub port: u16,
    pub db: TestDatabase,
    pub bus: BusSettings,
    pub publisher: Publisher,
    pub client: reqwest::Client,
    /// Auth (and devices) beside the worker, for the dead-letter API; see
    /// [`spawn_app_with_access`].
    pub peers: Option<system_tests::AccessPeers>,
    settings: Settings,
    running: Option<(Shutdown, JoinHandle<anyhow::Result<()>>)>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(patient_retries()).await
}

pub async fn spawn_app_with(consumer: ConsumerSettings) -> TestApp {
    spawn(consumer, testkit::test_bus(), None).await
}

/// A worker whose dead-letter API checks staff sessions at a real auth service.
pub async fn spawn_app_with_access(consumer: ConsumerSettings) -> TestApp {
    let bus = testkit::test_bus();
    let peers = system_tests::AccessPeers::start(&bus).await;
    spawn(consumer, bus, Some(peers)).await
}

async fn spawn(
    consumer: ConsumerSettings,
    bus: BusSettings,
    peers: Option<system_tests::AccessPeers>,
) -> TestApp {
    service_kit::telemetry::init();
    let db = TestDatabase::create(&MIGRATOR).await;
    let mut settings = Settings::load().expect("the default settings load");
    settings.application.port = 0;
    settings.database = db.settings.clone();
    settings.bus = bus.clone();
    settings.consumer = consumer;
    if let Some(peers) = &peers {
        settings.access = peers.access.clone();
    }
    // Declares the worker's queue, so what a test publishes before the worker runs waits there.
    // A broker that accepts the socket but never answers would otherwise hang the test.
    let publisher = tokio::time::timeout(PATIENCE, Publisher::connect(&bus, "sync-worker-test"))
        .await
        .expect("the broker answers in time")
        .expect("connect the test publisher");
    let mut app = TestApp {
        port: 0,
        db,
        bus,
        publisher,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("build an HTTP client"),
        peers,
        settings,
        running: None,
    };
    app.start().await;
    app
}

impl TestApp {
    /// The retention the worker declares the history stream with.
    pub fn history_retention(&self) -> bus::stream::Retention {
        self.settings.history.retention()
    }

    pub async fn start(&mut self) {
        assert!(self.running.is_none(), "the worker is running already");
        let app = Application::build(self.settings.clone())
            .await
            .expect("build the sync worker");
        self.port = app.port();
        let shutdown = app.shutdown().clone();
        self.running = Some((shutdown, tokio::spawn(app.run_until_stopped())));
        // Ready means the consumer has declared its retry and dead-letter queues.
        eventually("the worker ready", PATIENCE, || async {
            let response = self
                .client
                .get(self.url("/health/ready"))
                .send()
                .await
                .ok()?;
            (response.status().as_u16() == 200).then_some(())
        })
        .await;
    }

    /// Stops the worker the way SIGTERM would, and waits until it has.
    pub async fn stop(&mut self) {
        let (shutdown, task) = self.running.take().expect("the worker is running");
        shutdown.trigger();
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the worker stops in time")
            .expect("the worker task does not panic")
            .expect("the worker stops cleanly");
    }

    /// The settings the worker runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn publish(&self, message: &Message) {
        self.publisher
            .publish(&message.routing_key, &message.envelope)
            .await
            .expect("publish an event");
    }

    pub async fn publish_all(&self, messages: &[Message]) {
        for message in messages {
            self.publish(message).await;
        }
    }

    /// Publishes one subject's events as they happened, and another's newest first and twice
    /// (as a relay that lost its confirms would send them), then waits until all are handled.
    pub async fn publish_straight_and_shuffled(&self, straight: &[Message], shuffled: &[Message]) {
        self.publish_all(straight).await;
        let mut reversed = shuffled.to_vec();
        reversed.reverse();
        self.publish_all(&reversed).await;
        self.publish_all(&reversed).await;
        self.wait_until_drained().await;
    }

    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        self.publisher
            .publish_raw(routing_key, body)
            .await
            .expect("publish a raw message");
    }

    pub async fn order(&self, order_uuid: Uuid) -> Option<OrderRow> {
        sqlx::query_as(
            "select id, order_number, client_name, status, order_type, is_late
             from orders where order_uuid = $1",
        )
        .bind(order_uuid)
        .fetch_optional(&self.db.pool)
        .await
        .expect("read orders")
    }

    pub async fn items(&self, order_id: i32) -> Vec<ItemRow> {
        sqlx::query_as(
            "select line_no, product_name, category, size, quantity, modifiers
             from order_items where order_id = $1 order by line_no",
        )
        .bind(order_id)
        .fetch_all(&self.db.pool)
        .await
        .expect("read order_items")
    }

    /// The order's legacy timeline, as the shift-manager screen sorts it.
    pub async fn history(&self, order_id: i32) -> Vec<HistoryRow> {
        sqlx::query_as(
            "select h.status, h.stage, h.station, h.product_name, h.actor, h.comment,
                    i.line_no as item_line
             from order_history h
             left join order_items i on i.id = h.order_item_id
             where h.order_id = $1
             order by h.happened_at, h.event_sequence, h.id",
        )
        .bind(order_id)
        .fetch_all(&self.db.pool)
        .await
        .expect("read order_history")
    }

    /// Everything the legacy tables say about one order, once `done` holds for its row.
    pub async fn wait_for_order(
        &self,
        order_uuid: Uuid,
        what: &str,
        done: impl Fn(&OrderRow) -> bool,
    ) -> LegacyView {
        let order = eventually(what, PATIENCE, || async {
            self.order(order_uuid).await.filter(|order| done(order))
        })
        .await;
        LegacyView {
            items: self.items(order.id).await,
            history: self.history(order.id).await,
            order,
        }
    }

    /// Waits until the worker's queue and retry queues have stayed empty for a moment: every
    /// copy of every event published so far has been handled, duplicates included.
    pub async fn wait_until_drained(&self) {
        let connection = bus::connection::connect(&self.bus, "sync-worker-test-drain")
            .await
            .expect("connect to the broker");
        let channel = connection.create_channel().await.expect("open a channel");
        let queues = topology::queues_holding_events(
            &self.bus,
            LEGACY_SYNC,
            self.settings.consumer.retry_delays_ms.len(),
        );
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        eventually("the worker's queues drained", PATIENCE, || async {
            // Twice, a beat apart: a message being handled is in no queue's ready count.
            for _ in 0..2 {
                for queue in &queues {
                    let declared = channel
                        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                        .await
                        .expect("look at a queue");
                    if declared.message_count() > 0 {
                        return None;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some(())
        })
        .await;
        let _ = connection.close(200, "drained".into()).await;
    }

    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        bus::dead_letters::list(&self.bus, LEGACY_SYNC)
            .await
            .expect("list the dead letters")
    }

    /// Waits until the dead-letter queue holds `count` messages.
    pub async fn wait_for_dead_letters(&self, count: usize) -> Vec<DeadLetter> {
        eventually(&format!("{count} dead letters"), PATIENCE, || async {
            let letters = self.dead_letters().await;
            (letters.len() >= count).then_some(letters)
        })
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((shutdown, _)) = &self.running {
            shutdown.trigger();
        }
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OrderRow {
    pub id: i32,
    pub order_number: i32,
    pub client_name: String,
    pub status: i16,
    pub order_type: i16,
    pub is_late: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ItemRow {
    pub line_no: i16,
    pub product_name: String,
    pub category: String,
    pub size: Option<String>,
    pub quantity: i16,
    pub modifiers: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HistoryRow {
    pub status: Option<i16>,
    pub stage: Option<String>,
    pub station: Option<String>,
    pub product_name: Option<String>,
    pub actor: Option<String>,
    pub comment: Option<String>,
    pub item_line: Option<i16>,
}

/// The legacy rows of one order, without the keys that differ between two mirrored orders.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyView {
    pub order: OrderRow,
    pub items: Vec<ItemRow>,
    pub history: Vec<HistoryRow>,
}

impl LegacyView {
    pub fn without_keys(mut self) -> Self {
        self.order.id = 0;
        self.order.order_number = 0;
        self
    }
}

/// An envelope ready to publish, as the tracker's relay would send it.
#[derive(Debug, Clone)]
pub struct Message {
    pub routing_key: String,
    pub envelope: Envelope,
}

impl Message {
    /// A tracker event.
    pub fn new<E: Event>(sequence: i64, event: &E) -> Self {
        Message::from_service("tracker", sequence, event)
    }

    /// An event as `service` (`auth`, `devices`) publishes it through its outbox.
    pub fn from_service<E: Event>(service: &str, sequence: i64, event: &E) -> Self {
        Message {
            routing_key: routing_key::<E>(service),
            envelope: Envelope::wrap(service, event, sequence, None).expect("wrap an event"),
        }
    }
}

/// A tracker order: two pepperoni and a cola, three products.
pub struct TestOrder {
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub number: u32,
    pub products: [Uuid; 3],
    pub start: DateTime<Utc>,
}

impl TestOrder {
    pub fn new(number: u32) -> Self {
        TestOrder {
            order_id: Uuid::new_v4(),
            pizzeria_id: Uuid::new_v4(),
            number,
            products: [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()],
            start: Utc::now() - TimeDelta::minutes(30),
        }
    }

    /// A time `seconds` into the order, so the timeline sorts the way the events were sent.
    fn at(&self, seconds: i64) -> DateTime<Utc> {
        self.start + TimeDelta::seconds(seconds)
    }

    pub fn accepted(&self) -> Message {
        Message::new(
            1,
            &OrderAcceptedByTracker {
                order_id: self.order_id,
                pizzeria_id: self.pizzeria_id,
                number: self.number,
                customer_name: "Anna".into(),
                show_number_only: false,
                source: OrderSource::Delivery,
                placed_at: self.at(0),
                accepted_at: self.at(1),
                target_seconds: 900,
                items: vec![
                    OrderItem {
                        product_id: Uuid::new_v4(),
                        name: "Pepperoni".into(),
                        category: ProductCategory::Pizza,
                        size: Some("30 cm".into()),
                        quantity: 2,
                        modifiers: vec!["no onion".into(), "extra cheese".into()],
                        allergens: vec![],
                    },
                    OrderItem {
                        product_id: Uuid::new_v4(),
                        name: "Cola".into(),
                        category: ProductCategory::Drink,
                        size: Some("0.5 l".into()),
                        quantity: 1,
                        modifiers: vec![],
                        allergens: vec![],
                    },
                ],
                products: vec![
                    self.product(0, 0, &["make", "oven", "pack"]),
                    self.product(1, 0, &["make", "oven", "pack"]),
                    self.product(2, 1, &["pack"]),
                ],
            },
        )
    }

    fn product(&self, unit: usize, item_index: u32, route: &[&str]) -> TrackedProduct {
        TrackedProduct {
            id: self.products[unit],
            item_index,
            route: route.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    pub fn in_work(&self, sequence: i64) -> Message {
        Message::new(
            sequence,
            &OrderInWork {
                order_id: self.order_id,
                pizzeria_id: self.pizzeria_id,
                at: self.at(sequence),
            },
        )
    }

    pub fn packed(&self, sequence: i64) -> Message {
        Message::new(
            sequence,
            &OrderPacked {
                order_id: self.order_id,
                pizzeria_id: self.pizzeria_id,
                at: self.at(sequence),
            },
        )
    }

    pub fn tap(&self, sequence: i64, unit: usize, station: &str) -> Message {
        Message::new(
            sequence,
            &ProductStageCompleted {
                order_id: self.order_id,
                pizzeria_id: self.pizzeria_id,
                product_id: self.products[unit],
                product_name: if unit == 2 { "Cola" } else { "Pepperoni" }.into(),
                station: station.into(),
                started_at: self.at(sequence - 1),
                completed_at: self.at(sequence),
                duration_ms: 1000,
                target_seconds: 60,
                actor: Some("Ivan".into()),
                next_station: None,
            },
        )
    }

    /// Every event of the order's life, in the tracker's sequence: accepted, in work, taps with
    /// an undo and a remake, running late, packed, handed over.
    pub fn whole_life(&self) -> Vec<Message> {
        vec![
            self.accepted(),
            self.in_work(2),
            self.tap(3, 0, "make"),
            Message::new(
                4,
                &ProductStageUndone {
                    order_id: self.order_id,
                    pizzeria_id: self.pizzeria_id,
                    product_id: self.products[0],
                    station: "make".into(),
                    undone_at: self.at(4),
                    actor: Some("Ivan".into()),
                },
            ),
            self.tap(5, 0, "make"),
            self.tap(6, 1, "make"),
            Message::new(
                7,
                &ProductRemakeRequested {
                    order_id: self.order_id,
                    pizzeria_id: self.pizzeria_id,
                    product_id: self.products[1],
                    first_station: "make".into(),
                    requested_at: self.at(7),
                    reason: Some("burnt edge".into()),
                    actor: Some("Olga".into()),
                },
            ),
            self.tap(8, 1, "make"),
            Message::new(
                9,
                &OrderRunningLate {
                    order_id: self.order_id,
                    pizzeria_id: self.pizzeria_id,
                    at: self.at(9),
                    target_seconds: 900,
                },
            ),
            self.tap(10, 2, "pack"),
            self.packed(11),
            Message::new(
                12,
                &OrderHandedOver {
                    order_id: self.order_id,
                    pizzeria_id: self.pizzeria_id,
                    at: self.at(12),
                    actor: Some("courier 7".into()),
                },
            ),
        ]
    }
}
