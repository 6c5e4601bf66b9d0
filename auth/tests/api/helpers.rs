use auth::{config::Settings, startup::Application};
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use system_tests::AccessPeers;
use testkit::TestDatabase;
pub use testkit::{error_code, error_field, json_body, uuid_of};
use uuid::Uuid;

pub const ADMIN_LOGIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "kitchen-password-1";

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub bus: BusSettings,
    pub settings: Settings,
    pub client: reqwest::Client,
    /// A registered pizzeria.
    pub pizzeria_id: Uuid,
    pub admin_id: Uuid,
    pub admin_token: String,
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

/// An app on a free port with its own database and exchange, a chain admin signed in, and one
/// registered pizzeria. Client IPs come from `X-Forwarded-For`, so tests can play several.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        service_kit::telemetry::init();
    }
    let db = TestDatabase::create(&auth::db::MIGRATOR).await;
    let mut settings = auth::config::load().expect("settings");
    settings.database = db.settings.clone();
    settings.application.host = "127.0.0.1".into();
    settings.application.port = 0;
    settings.bus = testkit::test_bus();
    // The tests connect from 127.0.0.1 and play the web, which forwards the client.
    settings.network.trusted_proxies = "127.0.0.1".parse().expect("an address");
    configure(&mut settings);
    let bus = settings.bus.clone();
    let admin_id =
        auth::startup::create_admin(&settings, ADMIN_LOGIN, "Chain Admin", ADMIN_PASSWORD)
            .await
            .expect("the first admin");
    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown().clone();
    tokio::spawn(app.run_until_stopped());
    let mut app = TestApp {
        address,
        db,
        bus,
        settings,
        client: reqwest::Client::new(),
        pizzeria_id: Uuid::now_v7(),
        admin_id,
        admin_token: String::new(),
        shutdown,
    };
    app.admin_token = app.login_ok(ADMIN_LOGIN, ADMIN_PASSWORD).await;
    app.register_pizzeria(app.pizzeria_id).await;
    app
}

impl TestApp {
    /// Gives the app the pizzeria as its consumer would on the tracker's announcement
    /// (`system_tests::give_auth_pizzerias`; the consumer itself: `pizzerias.rs`).
    pub async fn register_pizzeria(&self, id: Uuid) {
        system_tests::give_auth_pizzerias(&self.db, &[id]).await;
    }
}

/// An app that checks device tokens against a real devices service: `AccessPeers` (a devices
/// app with an auth of its own, whose chain admin pairs the devices) on the app's bus, so
/// `devices.#` events reach the app's device cache. Both of the app's pizzerias (the
/// registered one and a second one) are registered there too.
pub async fn spawn_app_beside_devices() -> (TestApp, AccessPeers) {
    let bus = testkit::test_bus();
    let peers = AccessPeers::start(&bus).await;
    let app = spawn_app_with(|settings| {
        settings.bus = bus.clone();
        settings.device_access = peers.device_access.clone();
    })
    .await;
    peers.register_pizzerias(&[app.pizzeria_id]).await;
    (app, peers)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn login_from(&self, ip: &str, login: &str, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/sessions"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .expect("request")
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.login_from("10.0.0.1", login, password).await
    }

    /// Signs in and returns the token.
    pub async fn login_ok(&self, login: &str, password: &str) -> String {
        let response = self.login(login, password).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body = json_body(response).await;
        body["token"].as_str().expect("a token").to_owned()
    }

    pub async fn get_with(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_with(&self, token: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put_with(&self, token: &str, path: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_with(&self, token: &str, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Creates a user (as the admin) with `role` in the app's pizzeria; returns the id.
    pub async fn create_staff(&self, login: &str, role: &str) -> Uuid {
        self.create_user(
            login,
            json!({ "role": role, "pizzeria_id": self.pizzeria_id }),
        )
        .await
    }

    /// Creates a user (as the admin) holding `grant` (`{"role", "pizzeria_id"}`); returns the
    /// id.
    async fn create_user(&self, login: &str, grant: Value) -> Uuid {
        let response = self
            .post_with(
                &self.admin_token,
                "/api/v1/users",
                &json!({
                    "login": login,
                    "display_name": format!("{login} (test)"),
                    "password": PASSWORD,
                    "roles": [grant],
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        uuid_of(&json_body(response).await["id"])
    }

    /// Creates a user (as the admin) with a chain-wide `role` (`on_call`, `operations_viewer`:
    /// held without a pizzeria) and signs them in: (user id, token).
    pub async fn chain_staff_session(&self, login: &str, role: &str) -> (Uuid, String) {
        let id = self.create_user(login, json!({ "role": role })).await;
        (id, self.login_ok(login, PASSWORD).await)
    }

    /// Creates a staff member and signs them in: (user id, token).
    pub async fn staff_session(&self, login: &str, role: &str) -> (Uuid, String) {
        let id = self.create_staff(login, role).await;
        (id, self.login_ok(login, PASSWORD).await)
    }

    pub async fn introspect_with_key(&self, key: &str, token: &str) -> Response {
        self.client
            .post(self.url("/internal/v1/introspect"))
            .header(access::INTROSPECTION_KEY_HEADER, key)
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("request")
    }

    /// The introspection answer for `token`.
    pub async fn introspect(&self, token: &str) -> Value {
        let key = self.settings.introspection.key.expose_secret().to_owned();
        let response = self.introspect_with_key(&key, token).await;
        assert_eq!(response.status(), StatusCode::OK);
        json_body(response).await
    }

    pub async fn grant(&self, user_id: Uuid, role: &str) -> Response {
        self.post_with(
            &self.admin_token,
            &format!("/api/v1/users/{user_id}/roles"),
            &json!({ "role": role, "pizzeria_id": self.pizzeria_id }),
        )
        .await
    }

    /// Revokes `role` in the test pizzeria, as a revocation is spelt: `DELETE`.
    pub async fn revoke(&self, user_id: Uuid, role: &str) -> Response {
        self.delete_with(
            &self.admin_token,
            &format!(
                "/api/v1/users/{user_id}/roles/{role}?pizzeria_id={}",
                self.pizzeria_id
            ),
        )
        .await
    }

    /// Audit actions concerning `user_id` (as actor or target), oldest first.
    pub async fn audit_actions(&self, user_id: Uuid) -> Vec<String> {
        sqlx::query_scalar(
            "select action from audit_log where target_user_id = $1 or actor_id = $1 order by id",
        )
        .bind(user_id)
        .fetch_all(&self.db.pool)
        .await
        .expect("audit rows")
    }

    /// Outbox rows: (routing key, envelope), in staging order.
    pub async fn outbox(&self) -> Vec<(String, Value)> {
        sqlx::query_as("select routing_key, payload from outbox order by id")
            .fetch_all(&self.db.pool)
            .await
            .expect("outbox rows")
    }
}
