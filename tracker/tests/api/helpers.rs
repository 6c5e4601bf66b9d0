use std::{collections::BTreeMap, time::Duration};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use sha2::{Digest, Sha256};
use system_tests::{AccessPeers, run, test_settings};
use testkit::TestDatabase;
pub use testkit::{error_code, error_field, error_rule, json_body, uuid_of};
use tracker::config::Settings;
use uuid::Uuid;

/// The order source key the tests' intake uses (`test-till` in the app's settings).
pub const SOURCE_KEY: &str = "test-till-key-0123456789";

/// A tracker with the real auth and devices services beside it, all on one test exchange (so
/// auth's and devices' events reach the tracker's caches). Two pizzerias exist in the tracker
/// and in auth: `pizzeria_id` (A), where the helpers work, and `other_pizzeria_id` (B).
pub struct TestApp {
    pub address: String,
    pub pizzeria_id: Uuid,
    pub other_pizzeria_id: Uuid,
    pub db: TestDatabase,
    pub bus: BusSettings,
    pub client: reqwest::Client,
    /// What the endpoint helpers send: the chain admin's session, who may do anything.
    pub token: String,
    /// Auth and devices: staff, roles and devices for the tests.
    pub peers: AccessPeers,
    shutdown: Shutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// An app on a free port with its own database and exchange, auth and devices beside it, and
/// two pizzerias with the default stations and routes. `configure` adjusts the tracker's
/// settings first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        service_kit::telemetry::init();
    }
    let bus = testkit::test_bus();
    let peers = AccessPeers::start(&bus).await;
    let db = TestDatabase::create(&tracker::db::MIGRATOR).await;
    let mut settings: Settings = test_settings!(tracker, db, bus);
    settings.intake.retry_delays_ms = vec![200];
    settings.intake.max_attempts = 3;
    settings.kitchen.late_sweep_interval_ms = 200;
    settings.access = peers.access.clone();
    settings.device_access = peers.device_access.clone();
    let (pizzeria_id, other_pizzeria_id) = (Uuid::now_v7(), Uuid::now_v7());
    settings.order_sources = BTreeMap::from([(
        "test-till".to_owned(),
        hex::encode(Sha256::digest(SOURCE_KEY.as_bytes())),
    )]);
    // The tests' till serves both pizzerias of the test, and no other.
    settings.order_source_pizzerias = BTreeMap::from([(
        "test-till".to_owned(),
        format!("{pizzeria_id},{other_pizzeria_id}"),
    )]);
    configure(&mut settings);
    let (address, shutdown) = run!(tracker, settings);
    let app = TestApp {
        address,
        pizzeria_id,
        other_pizzeria_id,
        db,
        bus,
        client: reqwest::Client::new(),
        token: peers.admin_token.clone(),
        peers,
        shutdown,
    };
    app.peers
        .register_pizzerias(&[app.pizzeria_id, app.other_pizzeria_id])
        .await;
    for id in [app.pizzeria_id, app.other_pizzeria_id] {
        let response = app
            .put_pizzeria(id, &json!({ "name": "Test pizzeria" }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    app
}

/// An `OrderPlaced` body for the app's pizzeria; `items` are (name, category, quantity).
pub fn order_json(pizzeria_id: Uuid, items: &[(&str, &str, u32)]) -> Value {
    json!({
        "order_id": Uuid::now_v7(),
        "pizzeria_id": pizzeria_id,
        "number": 17,
        "customer_name": "Anna",
        "show_number_only": false,
        "source": "restaurant",
        "placed_at": chrono::Utc::now(),
        "items": items.iter().map(|(name, category, quantity)| json!({
            "product_id": Uuid::now_v7(),
            "name": name,
            "category": category,
            "size": "30 cm",
            "quantity": quantity,
            "modifiers": ["no onion"],
        })).collect::<Vec<_>>(),
    })
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn pizzeria_path(&self) -> String {
        format!("/api/v1/pizzerias/{}", self.pizzeria_id)
    }

    /// A request to the tracker as `token` (`None`: no `Authorization` at all).
    pub fn request_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A request to the tracker as the chain admin.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(Some(&self.token), method, path)
    }

    /// Sends `method path` as `token` with an optional JSON body.
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.request_as(token, method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("request")
    }

    /// POSTs `body` as it is, with the given content type: for malformed requests.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> Response {
        self.request(Method::POST, path)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send_as(Some(&self.token), Method::POST, path, Some(body))
            .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.send_as(Some(&self.token), Method::PUT, path, Some(body))
            .await
    }

    /// `POST /api/v1/orders` with `key` as the order source's key (`None`: no key).
    pub async fn post_order_with(&self, key: Option<&str>, order: &Value) -> Response {
        self.send_as(key, Method::POST, "/api/v1/orders", Some(order))
            .await
    }

    pub async fn post_order(&self, order: &Value) -> Response {
        self.post_order_with(Some(SOURCE_KEY), order).await
    }

    /// POSTs a malformed order with the source's key.
    pub async fn post_order_raw(&self, content_type: &str, body: &str) -> Response {
        self.request_as(Some(SOURCE_KEY), Method::POST, "/api/v1/orders")
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    /// Posts an order for this pizzeria and returns its detail.
    pub async fn place_order(&self, items: &[(&str, &str, u32)]) -> Value {
        let response = self.post_order(&order_json(self.pizzeria_id, items)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        json_body(response).await
    }

    pub async fn put_pizzeria(&self, id: Uuid, body: &Value) -> Response {
        self.put_json(&format!("/api/v1/pizzerias/{id}"), body)
            .await
    }

    pub async fn get_pizzeria(&self) -> Response {
        self.get(&self.pizzeria_path()).await
    }

    pub async fn put_route(&self, category: &str, body: &Value) -> Response {
        self.put_json(&format!("{}/routes/{category}", self.pizzeria_path()), body)
            .await
    }

    pub async fn queue(&self, station: &str, if_none_match: Option<&str>) -> Response {
        let mut request = self.request(
            Method::GET,
            &format!("{}/stations/{station}/queue", self.pizzeria_path()),
        );
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        request.send().await.expect("request")
    }

    /// The product ids waiting at `station`, oldest first.
    pub async fn queue_ids(&self, station: &str) -> Vec<Uuid> {
        let response = self.queue(station, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = json_body(response).await;
        body["products"]
            .as_array()
            .expect("products")
            .iter()
            .map(|p| uuid_of(&p["product_id"]))
            .collect()
    }

    /// A tap at `station` as `token`, with `body` (`None`: no body at all).
    pub async fn tap_as(
        &self,
        token: &str,
        station: &str,
        product_id: Uuid,
        body: Option<&Value>,
    ) -> Response {
        let path = format!(
            "{}/stations/{station}/products/{product_id}/tap",
            self.pizzeria_path()
        );
        self.send_as(Some(token), Method::POST, &path, body).await
    }

    pub async fn tap(&self, station: &str, product_id: Uuid, actor: Option<&str>) -> Response {
        let path = format!(
            "{}/stations/{station}/products/{product_id}/tap",
            self.pizzeria_path()
        );
        match actor {
            Some(actor) => self.post_json(&path, &json!({ "actor": actor })).await,
            None => self.post_raw(&path, "application/json", "").await,
        }
    }

    /// Taps as the chain admin (who acts as themselves) and expects it to work.
    pub async fn tap_ok(&self, station: &str, product_id: Uuid) -> Value {
        let response = self.tap(station, product_id, None).await;
        assert_eq!(response.status(), StatusCode::OK, "tap at {station}");
        json_body(response).await
    }

    /// Undoes the tap `tap_id` (from the tap's response) at `station`.
    pub async fn undo(&self, station: &str, tap_id: i64) -> Response {
        self.post_json(
            &format!(
                "{}/stations/{station}/taps/{tap_id}/undo",
                self.pizzeria_path()
            ),
            &json!({}),
        )
        .await
    }

    /// Recalls the product the tap `tap_id` at `station` sent on.
    pub async fn recall(&self, station: &str, tap_id: i64) -> Response {
        self.post_json(
            &format!(
                "{}/stations/{station}/taps/{tap_id}/recall",
                self.pizzeria_path()
            ),
            &json!({}),
        )
        .await
    }

    pub async fn board(&self, if_none_match: Option<&str>) -> Response {
        let mut request = self.request(Method::GET, &format!("{}/board", self.pizzeria_path()));
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        request.send().await.expect("request")
    }

    pub async fn list_orders(&self, query: &str) -> Response {
        self.get(&format!("{}/orders?{query}", self.pizzeria_path()))
            .await
    }

    pub async fn get_order(&self, order_id: Uuid) -> Response {
        self.get(&format!("{}/orders/{order_id}", self.pizzeria_path()))
            .await
    }

    pub async fn order_detail(&self, order_id: Uuid) -> Value {
        let response = self.get_order(order_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        json_body(response).await
    }

    pub async fn cancel(&self, order_id: Uuid, body: &Value) -> Response {
        self.post_json(
            &format!("{}/orders/{order_id}/cancel", self.pizzeria_path()),
            body,
        )
        .await
    }

    pub async fn hand_over(&self, order_id: Uuid) -> Response {
        self.post_json(
            &format!("{}/orders/{order_id}/hand-over", self.pizzeria_path()),
            &json!({}),
        )
        .await
    }

    pub async fn remake(&self, order_id: Uuid, product_id: Uuid) -> Response {
        self.post_json(
            &format!(
                "{}/orders/{order_id}/products/{product_id}/remake",
                self.pizzeria_path()
            ),
            &json!({ "reason": "burnt" }),
        )
        .await
    }

    pub async fn rush(&self, order_id: Uuid) -> Response {
        self.post_json(
            &format!("{}/orders/{order_id}/rush", self.pizzeria_path()),
            &json!({}),
        )
        .await
    }

    pub async fn station_report(&self, query: &str) -> Response {
        self.get(&format!(
            "{}/reports/stations?{query}",
            self.pizzeria_path()
        ))
        .await
    }

    pub async fn actor_report(&self, query: &str) -> Response {
        self.get(&format!("{}/reports/actors?{query}", self.pizzeria_path()))
            .await
    }

    /// Bumps a version by 1000 in the database *without* notifying (triggers off for this
    /// transaction): what the tracker's version map cannot know about. `station` `None` is the
    /// board. Returns the new version.
    pub async fn bump_version_silently(&self, station: Option<&str>) -> i64 {
        let mut tx = self.db.pool.begin().await.unwrap();
        sqlx::query("set local session_replication_role = replica")
            .execute(&mut *tx)
            .await
            .unwrap();
        let version = self.bump_version_on(&mut tx, station).await;
        tx.commit().await.unwrap();
        version
    }

    /// Bumps a version by 1000 in the database, notifying as any change does (as another
    /// tracker instance's change would). Returns the new version.
    pub async fn bump_version_loudly(&self, station: Option<&str>) -> i64 {
        let mut tx = self.db.pool.begin().await.unwrap();
        let version = self.bump_version_on(&mut tx, station).await;
        tx.commit().await.unwrap();
        version
    }

    async fn bump_version_on(&self, conn: &mut sqlx::PgConnection, station: Option<&str>) -> i64 {
        match station {
            Some(code) => sqlx::query_scalar(
                "update stations set queue_version = queue_version + 1000
                 where pizzeria_id = $1 and code = $2 returning queue_version",
            )
            .bind(self.pizzeria_id)
            .bind(code)
            .fetch_one(conn)
            .await
            .unwrap(),
            None => sqlx::query_scalar(
                "update pizzerias set board_version = board_version + 1000
                 where id = $1 returning board_version",
            )
            .bind(self.pizzeria_id)
            .fetch_one(conn)
            .await
            .unwrap(),
        }
    }

    /// Ends the version listener's database connection (as a network failure or a restarted
    /// PostgreSQL would); returns how many connections were ended.
    pub async fn drop_version_listener(&self) -> i64 {
        sqlx::query_scalar(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity
             where datname = current_database() and application_name = $1",
        )
        .bind(tracker::versions::APPLICATION_NAME)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    /// Waits until a statement in the app's database waits for a lock: the request under test
    /// has reached a row another transaction of the test holds.
    pub async fn wait_until_a_statement_waits_for_a_lock(&self, what: &str) {
        testkit::eventually(what, Duration::from_secs(20), || async {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity \
                 where datname = current_database() and wait_event_type = 'Lock'",
            )
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        })
        .await;
    }

    /// Waits until the relay and the intake consumer are connected. Generous, because CI runs
    /// two suites at once on two cores beside a broker that another test may be starting.
    pub async fn wait_until_ready(&self) {
        testkit::eventually("the app to be ready", Duration::from_secs(60), || async {
            let response = self.get("/health/ready").await;
            (response.status() == StatusCode::OK).then_some(())
        })
        .await;
    }

    /// How many events of type `kind` the order has in the outbox.
    pub async fn events_of(&self, order_id: Uuid, kind: &str) -> usize {
        self.outbox_of(order_id)
            .await
            .iter()
            .filter(|(k, _)| k == kind)
            .count()
    }

    /// The outbox rows of an order as (event type, sequence), in the order they were staged.
    /// Waits until the intake consumer has taken at least `events` bus events (its inbox).
    pub async fn wait_for_inbox(&self, events: i64) {
        testkit::eventually("the inbox to fill", Duration::from_secs(20), || async {
            let seen: i64 = sqlx::query_scalar("select count(*) from inbox")
                .fetch_one(&self.db.pool)
                .await
                .unwrap();
            (seen >= events).then_some(())
        })
        .await;
    }

    pub async fn outbox_of(&self, order_id: Uuid) -> Vec<(String, i64)> {
        sqlx::query_as(
            "select payload->>'type', (payload->>'sequence')::bigint from outbox
             where payload->>'subject' = $1 order by id",
        )
        .bind(order_id.to_string())
        .fetch_all(&self.db.pool)
        .await
        .expect("outbox rows")
    }
}

/// The ids of the order's products in item order.
pub fn product_ids(detail: &Value) -> Vec<Uuid> {
    detail["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| uuid_of(&p["id"]))
        .collect()
}

pub fn order_id(detail: &Value) -> Uuid {
    uuid_of(&detail["order"]["id"])
}

/// The product in `detail` with this id.
pub fn product(detail: &Value, id: Uuid) -> &Value {
    detail["products"]
        .as_array()
        .expect("products")
        .iter()
        .find(|p| uuid_of(&p["id"]) == id)
        .expect("the product is in the order")
}
