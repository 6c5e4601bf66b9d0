//! The kitchen end to end: an `OrderPlaced` on the bus, the tracker's stations tapped one by one
//! over HTTP by the station tablets, the order handed over by the shift manager, and the legacy
//! monolith's tables filled by the sync worker, all against real PostgreSQL and RabbitMQ, with
//! the real auth and devices services checking who calls the tracker.

// Test code: a failed step should fail the test on the spot, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use access::Role;
use bus::Publisher;
use chrono::Utc;
use contracts::{OrderItem, OrderPlaced, OrderSource, ProductCategory};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use system_tests::{AccessPeers, run, test_settings};
use testkit::{PrivateBroker, TestDatabase, eventually};
use uuid::Uuid;

mod pizzerias;
mod problems;

// Generous: CI runs two suites at once on two cores, and a broker restart costs seconds.
const WAIT: Duration = Duration::from_secs(60);

/// A tracker on `bus` with its own database, checking callers at `peers`: its address, its
/// shutdown and its database (dropped with it).
async fn tracker_beside(
    peers: &AccessPeers,
    bus: &BusSettings,
) -> (String, Shutdown, TestDatabase) {
    let tracker_db = TestDatabase::create(&tracker::db::MIGRATOR).await;
    let mut settings: tracker::config::Settings = test_settings!(tracker, tracker_db, bus);
    settings.access = peers.access.clone();
    settings.device_access = peers.device_access.clone();
    let (url, shutdown) = run!(tracker, settings);
    (url, shutdown, tracker_db)
}

/// A tracker and a sync worker sharing one bus, each with its own database, with auth and
/// devices beside them; the pizzeria's station tablets paired and its shift manager signed in.
struct Kitchen {
    tracker_url: String,
    pizzeria_id: Uuid,
    tracker_db: TestDatabase,
    legacy_db: TestDatabase,
    bus: BusSettings,
    client: reqwest::Client,
    /// The station tablets' tokens by station.
    tablets: HashMap<String, String>,
    /// The shift manager's session token.
    manager: String,
    /// Kitchen staff by the name the scenarios tap as: a tablet may only name someone on the
    /// pizzeria's kitchen staff list, by user id.
    cooks: HashMap<&'static str, Uuid>,
    _peers: AccessPeers,
    shutdowns: Vec<Shutdown>,
}

impl Drop for Kitchen {
    fn drop(&mut self) {
        for shutdown in &self.shutdowns {
            shutdown.trigger();
        }
    }
}

impl Kitchen {
    async fn start() -> Self {
        Self::start_on(testkit::test_bus()).await
    }

    async fn start_on(bus: BusSettings) -> Self {
        if std::env::var("TEST_LOG").is_ok() {
            service_kit::telemetry::init();
        }
        let peers = AccessPeers::start(&bus).await;
        let tracker_db = TestDatabase::create(&tracker::db::MIGRATOR).await;
        let legacy_db = TestDatabase::create(&sync_worker::db::MIGRATOR).await;

        let mut tracker_settings: tracker::config::Settings =
            test_settings!(tracker, tracker_db, bus);
        tracker_settings.intake.retry_delays_ms = vec![100, 200];
        tracker_settings.access = peers.access.clone();
        tracker_settings.device_access = peers.device_access.clone();
        let (tracker_url, tracker_shutdown) = run!(tracker, tracker_settings);

        let mut sync_settings = sync_worker::config::Settings::load().unwrap();
        sync_settings.database = legacy_db.settings.clone();
        sync_settings.application.port = 0;
        sync_settings.bus = bus.clone();
        sync_settings.consumer.retry_delays_ms = vec![100, 200, 400];
        sync_settings.consumer.max_attempts = 20;
        let sync_app = sync_worker::startup::Application::build(sync_settings)
            .await
            .unwrap();

        let shutdowns = vec![tracker_shutdown, sync_app.shutdown().clone()];
        tokio::spawn(sync_app.run_until_stopped());

        let pizzeria_id = Uuid::now_v7();
        let client = reqwest::Client::new();
        let response = client
            .put(format!("{tracker_url}/api/v1/pizzerias/{pizzeria_id}"))
            .bearer_auth(&peers.admin_token)
            .json(&json!({ "name": "Pizzeria on Lenina 1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        // The tracker announces it; auth, which learns of pizzerias only that way, grants roles
        // in it once it has heard.
        peers.await_pizzerias(&[pizzeria_id]).await;
        let mut tablets = HashMap::new();
        for station in ["dough", "topping", "oven", "packing"] {
            let tablet = peers.station_tablet(pizzeria_id, station).await;
            tablets.insert(station.to_owned(), tablet.token);
        }
        let manager = peers.staff(Role::ShiftManager, pizzeria_id).await.token;
        let mut cooks = HashMap::new();
        for name in ["Pavel", "Olga"] {
            let cook = peers.staff(Role::KitchenStaff, pizzeria_id).await;
            cooks.insert(name, cook.user_id);
        }
        Kitchen {
            tracker_url,
            pizzeria_id,
            tracker_db,
            legacy_db,
            bus,
            client,
            tablets,
            manager,
            cooks,
            _peers: peers,
            shutdowns,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/pizzerias/{}{path}",
            self.tracker_url, self.pizzeria_id
        )
    }

    fn order(&self, number: u32) -> OrderPlaced {
        let item = |name: &str, category, quantity| OrderItem {
            product_id: Uuid::new_v4(),
            name: name.into(),
            category,
            size: Some("30 cm".into()),
            quantity,
            modifiers: vec!["no onion".into()],
            allergens: vec![],
        };
        OrderPlaced {
            promised_at: None,
            order_id: Uuid::now_v7(),
            pizzeria_id: self.pizzeria_id,
            number,
            customer_name: "Anna".into(),
            show_number_only: false,
            source: OrderSource::Restaurant,
            placed_at: Utc::now(),
            items: vec![
                item("Pepperoni", ProductCategory::Pizza, 1),
                item("Cola", ProductCategory::Drink, 2),
            ],
        }
    }

    async fn order_detail(&self, order_id: Uuid) -> Option<Value> {
        let response = self
            .client
            .get(self.url(&format!("/orders/{order_id}")))
            .bearer_auth(&self.manager)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(response.status(), StatusCode::OK);
        Some(response.json().await.unwrap())
    }

    async fn wait_for_order(&self, order_id: Uuid) -> Value {
        eventually("the tracker to accept the order", WAIT, || {
            self.order_detail(order_id)
        })
        .await
    }

    /// Taps every product of the order through every station, as the station tablets would.
    async fn tap_through(&self, order_id: Uuid, actor: &str) {
        for _ in 0..50 {
            let detail = self.order_detail(order_id).await.unwrap();
            let waiting: Vec<(String, String)> = detail["products"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| {
                    Some((
                        p["id"].as_str()?.to_owned(),
                        p["station"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            if waiting.is_empty() {
                return;
            }
            for (product, station) in waiting {
                let response = self
                    .client
                    .post(self.url(&format!("/stations/{station}/products/{product}/tap")))
                    .bearer_auth(&self.tablets[&station])
                    .json(&json!({ "actor_id": self.cooks[actor] }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "tap at {station}");
            }
        }
        panic!("the order never left the stations");
    }

    async fn hand_over(&self, order_id: Uuid) {
        let response = self
            .client
            .post(self.url(&format!("/orders/{order_id}/hand-over")))
            .bearer_auth(&self.manager)
            // The manager is recorded as themselves.
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn legacy_status(&self, order_id: Uuid) -> Option<i16> {
        sqlx::query_scalar("select status from orders where order_uuid = $1")
            .bind(order_id)
            .fetch_optional(&self.legacy_db.pool)
            .await
            .unwrap()
    }

    async fn wait_legacy_status(&self, order_id: Uuid, status: i16) {
        eventually(&format!("legacy status {status}"), WAIT, || async {
            (self.legacy_status(order_id).await == Some(status)).then_some(())
        })
        .await;
    }

    async fn legacy_history(&self, order_id: Uuid) -> Vec<String> {
        legacy_history(&self.legacy_db.pool, order_id).await
    }

    /// The tracker's timeline in the same words.
    async fn tracker_timeline(&self, order_id: Uuid) -> Vec<String> {
        let detail = self.order_detail(order_id).await.unwrap();
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
                match text("kind").as_str() {
                    "OrderAcceptedByTracker" => "status 1".into(),
                    "OrderInWork" => "status 2".into(),
                    "OrderPacked" => "status 3".into(),
                    "OrderHandedOver" => "status 4".into(),
                    "OrderCancelled" => "status 5".into(),
                    "ProductStageCompleted" => {
                        format!("completed at {} by {}", text("station"), text("actor"))
                    }
                    other => other.to_owned(),
                }
            })
            .collect()
    }

    async fn legacy_count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.legacy_db.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn an_order_from_the_bus_goes_through_every_station_and_into_the_legacy_tables() {
    let kitchen = Kitchen::start().await;
    let cashier = Publisher::connect(&kitchen.bus, "cashier").await.unwrap();
    let order = kitchen.order(42);
    cashier.publish_event("cashier", 1, &order).await.unwrap();

    let detail = kitchen.wait_for_order(order.order_id).await;
    assert_eq!(detail["order"]["status"], "accepted");
    assert_eq!(
        detail["products"].as_array().unwrap().len(),
        3,
        "1 pizza + 2 drinks"
    );
    kitchen.wait_legacy_status(order.order_id, 1).await;

    kitchen.tap_through(order.order_id, "Pavel").await;
    let detail = kitchen.order_detail(order.order_id).await.unwrap();
    assert_eq!(detail["order"]["status"], "packed");
    kitchen.wait_legacy_status(order.order_id, 3).await;

    kitchen.hand_over(order.order_id).await;
    kitchen.wait_legacy_status(order.order_id, 4).await;

    let items: i64 = sqlx::query_scalar(
        "select count(*) from order_items i join orders o on o.id = i.order_id where o.order_uuid = $1",
    )
    .bind(order.order_id)
    .fetch_one(&kitchen.legacy_db.pool)
    .await
    .unwrap();
    assert_eq!(items, 2, "one legacy row per sold line");

    let timeline = kitchen.tracker_timeline(order.order_id).await;
    // 4 stages for the pizza, 1 for each drink, plus accepted, in work, packed, handed over.
    assert_eq!(timeline.len(), 4 + 2 + 4, "{timeline:#?}");
    let history = eventually("the legacy history to catch up", WAIT, || async {
        let history = kitchen.legacy_history(order.order_id).await;
        (history.len() == timeline.len()).then_some(history)
    })
    .await;
    assert_eq!(history, timeline);
}

#[tokio::test]
async fn duplicated_and_redelivered_events_leave_the_same_end_state() {
    let kitchen = Kitchen::start().await;
    let cashier = Publisher::connect(&kitchen.bus, "cashier").await.unwrap();
    let order = kitchen.order(7);
    // The cashier's message arrives twice (a retry on its side).
    cashier.publish_event("cashier", 1, &order).await.unwrap();
    cashier.publish_event("cashier", 1, &order).await.unwrap();
    kitchen.wait_for_order(order.order_id).await;
    kitchen.tap_through(order.order_id, "Olga").await;
    kitchen.hand_over(order.order_id).await;
    kitchen.wait_legacy_status(order.order_id, 4).await;
    let history = eventually("the whole history", WAIT, || async {
        let history = kitchen.legacy_history(order.order_id).await;
        (history.len() == 10).then_some(history)
    })
    .await;

    // As if the relay crashed before marking anything sent: every event goes out again.
    // The order's events (the outbox also holds the pizzeria's announcement).
    let republished =
        sqlx::query("update outbox set published_at = null where payload->>'subject' = $1")
            .bind(order.order_id.to_string())
            .execute(&kitchen.tracker_db.pool)
            .await
            .unwrap()
            .rows_affected();
    assert_eq!(republished, 10);
    eventually("the relay to republish", WAIT, || async {
        let unsent: i64 =
            sqlx::query_scalar("select count(*) from outbox where published_at is null")
                .fetch_one(&kitchen.tracker_db.pool)
                .await
                .unwrap();
        (unsent == 0).then_some(())
    })
    .await;
    // The consumer has seen them all again once its inbox counts only originals.
    eventually("the duplicates to be consumed", WAIT, || async {
        let dropped = kitchen.consumer_duplicates().await;
        (dropped >= 10.0).then_some(())
    })
    .await;

    assert_eq!(kitchen.legacy_history(order.order_id).await, history);
    assert_eq!(kitchen.legacy_status(order.order_id).await, Some(4));
    assert_eq!(kitchen.legacy_count("select count(*) from orders").await, 1);
    let tracker_orders: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(&kitchen.tracker_db.pool)
        .await
        .unwrap();
    assert_eq!(
        tracker_orders, 1,
        "the doubled OrderPlaced was accepted once"
    );
}

#[tokio::test]
async fn events_replayed_in_reverse_order_reach_the_same_legacy_state() {
    let kitchen = Kitchen::start().await;
    let cashier = Publisher::connect(&kitchen.bus, "cashier").await.unwrap();
    let order = kitchen.order(9);
    cashier.publish_event("cashier", 1, &order).await.unwrap();
    kitchen.wait_for_order(order.order_id).await;
    kitchen.tap_through(order.order_id, "Olga").await;
    kitchen.hand_over(order.order_id).await;
    kitchen.wait_legacy_status(order.order_id, 4).await;
    let expected_history = eventually("the whole history", WAIT, || async {
        let history = kitchen.legacy_history(order.order_id).await;
        (history.len() == 10).then_some(history)
    })
    .await;

    // A second legacy database and worker get the tracker's events newest first.
    let other = TestDatabase::create(&sync_worker::db::MIGRATOR).await;
    let bus = testkit::test_bus();
    let mut settings = sync_worker::config::Settings::load().unwrap();
    settings.database = other.settings.clone();
    settings.application.port = 0;
    settings.bus = bus.clone();
    settings.consumer.retry_delays_ms = vec![50, 100, 200];
    settings.consumer.max_attempts = 30;
    let worker = sync_worker::startup::Application::build(settings)
        .await
        .unwrap();
    let stop = worker.shutdown().clone();
    tokio::spawn(worker.run_until_stopped());

    let events: Vec<(String, sqlx::types::Json<contracts::Envelope>)> =
        sqlx::query_as("select routing_key, payload from outbox order by id desc")
            .fetch_all(&kitchen.tracker_db.pool)
            .await
            .unwrap();
    let publisher = Publisher::connect(&bus, "replayer").await.unwrap();
    for (routing_key, envelope) in &events {
        publisher.publish(routing_key, &envelope.0).await.unwrap();
    }

    let status: i16 = eventually("the reversed stream to settle", WAIT, || async {
        let history: i64 = sqlx::query_scalar("select count(*) from order_history")
            .fetch_one(&other.pool)
            .await
            .unwrap();
        if history < 10 {
            return None;
        }
        sqlx::query_scalar("select status from orders where order_uuid = $1")
            .bind(order.order_id)
            .fetch_optional(&other.pool)
            .await
            .unwrap()
    })
    .await;
    stop.trigger();
    assert_eq!(status, 4, "a stale event never overwrote the newer status");
    assert_eq!(
        legacy_history(&other.pool, order.order_id).await,
        expected_history
    );
}

#[tokio::test]
async fn a_broker_restart_in_the_middle_of_a_stream_of_orders_loses_nothing() {
    let broker = PrivateBroker::start();
    let kitchen = Kitchen::start_on(broker.bus()).await;
    let total = 40;
    let orders: Vec<OrderPlaced> = (0..total).map(|n| kitchen.order(n + 1)).collect();
    let cashier = Publisher::connect(&kitchen.bus, "cashier").await.unwrap();
    for order in &orders[..total as usize / 2] {
        cashier.publish_event("cashier", 1, order).await.unwrap();
    }
    cashier.close().await;
    // Taps keep the tracker's outbox busy while the broker goes away.
    kitchen.wait_for_order(orders[0].order_id).await;
    let tapping = kitchen.tap_through(orders[0].order_id, "Pavel");
    let (_, ()) = tokio::join!(tapping, broker.restart());

    let cashier = eventually("the broker to come back", WAIT, || async {
        Publisher::connect(&kitchen.bus, "cashier").await.ok()
    })
    .await;
    for order in &orders[total as usize / 2..] {
        cashier.publish_event("cashier", 1, order).await.unwrap();
    }
    for order in &orders {
        kitchen
            .wait_legacy_status(
                order.order_id,
                if order.order_id == orders[0].order_id {
                    3
                } else {
                    1
                },
            )
            .await;
    }
    assert_eq!(
        kitchen.legacy_count("select count(*) from orders").await,
        total as i64
    );
    // Every order has exactly one accepted row; the tapped one has its 6 stages and 2 statuses.
    assert_eq!(
        kitchen
            .legacy_count("select count(*) from order_history where status = 1")
            .await,
        total as i64
    );
    let first = kitchen.legacy_history(orders[0].order_id).await;
    assert_eq!(first, kitchen.tracker_timeline(orders[0].order_id).await);
}

/// A legacy `order_history` row: status, stage, station, actor.
type HistoryRow = (Option<i16>, Option<String>, Option<String>, Option<String>);

/// The legacy history as comparable lines, in the order the monolith's screen shows it.
async fn legacy_history(pool: &sqlx::PgPool, order_id: Uuid) -> Vec<String> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "select h.status, h.stage, h.station, h.actor from order_history h \
             join orders o on o.id = h.order_id where o.order_uuid = $1 \
             order by h.happened_at, h.event_sequence, h.id",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(status, stage, station, actor)| match status {
            Some(status) => format!("status {status}"),
            None => format!(
                "{} at {} by {}",
                stage.unwrap_or_default(),
                station.unwrap_or_default(),
                actor.unwrap_or_default()
            ),
        })
        .collect()
}

impl Kitchen {
    /// How many duplicates this kitchen's sync worker has dropped, from the process metrics
    /// (labelled by queue, and every test has queues of its own).
    async fn consumer_duplicates(&self) -> f64 {
        let queue = format!("queue=\"{}.legacy-sync\"", self.bus.exchange);
        service_kit::metrics::render()
            .lines()
            .filter(|l| l.starts_with("consumer_messages_total") && l.contains(&queue))
            .filter(|l| l.contains("outcome=\"duplicate\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The metric names an expression or dashboard mentions: words starting with one of our
/// metric prefixes, with a histogram's `_bucket`, `_sum` and `_count` taken off.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    const PREFIXES: &[&str] = &[
        "http_",
        "consumer_",
        "outbox_",
        "relay_",
        "dead_letter_",
        "process_",
    ];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| PREFIXES.iter().any(|prefix| word.starts_with(prefix)))
        .map(|word| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(word)
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_name_metrics_the_services_export() {
    let kitchen = Kitchen::start().await;
    let cashier = Publisher::connect(&kitchen.bus, "cashier").await.unwrap();
    let order = kitchen.order(7);
    cashier.publish_event("cashier", 1, &order).await.unwrap();
    kitchen.wait_for_order(order.order_id).await;
    kitchen.tap_through(order.order_id, "Pavel").await;
    kitchen.wait_legacy_status(order.order_id, 3).await;

    // The tracker and the sync worker run in this process and share its registry, so one
    // scrape shows both services' metrics.
    let exported = eventually("the relay's and consumers' metrics", WAIT, || async {
        let text = kitchen
            .client
            .get(format!("{}/metrics", kitchen.tracker_url))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let names: std::collections::BTreeSet<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        names.contains("outbox_backlog").then_some(names)
    })
    .await;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
    for file in ["alerts.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let named = metric_names(&text);
        assert!(!named.is_empty(), "{file} names no metric of ours");
        let missing: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics no service exports: {missing:?}"
        );
    }
}
