use std::time::Duration;

use access::{DeviceAccessSettings, DeviceVerifier};
use devices::{config::Settings, startup::Application};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use testkit::TestDatabase;
pub use testkit::{error_field, json_body};
use uuid::Uuid;

pub const CLIENT_ID: &str = "kitchen-web";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ADMIN_LOGIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "kitchen-password-1";
/// Where staff and devices come from unless a test says otherwise (`X-Forwarded-For`).
pub const IP: &str = "10.0.0.1";

/// The auth service the staff sign in to.
pub struct AuthApp {
    pub address: String,
    /// Kept so the database lives as long as the app; the helpers read its pizzerias.
    db: TestDatabase,
}

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub auth: AuthApp,
    pub bus: BusSettings,
    pub settings: Settings,
    pub client: reqwest::Client,
    /// A registered pizzeria, where the staff below work.
    pub pizzeria_id: Uuid,
    pub admin_token: String,
    /// A shift manager: `devices.approve`, not `devices.manage`.
    pub manager_token: String,
    /// An office manager: `devices.approve` and `devices.manage`.
    pub office_token: String,
    shutdown: Vec<Shutdown>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for s in &self.shutdown {
            s.trigger();
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A devices app and an auth app on free ports, each with its own database, on one exchange of
/// the test's own; a chain admin, a shift manager and an office manager of one registered
/// pizzeria signed in. Client IPs come from `X-Forwarded-For`, so tests can play several.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        service_kit::telemetry::init();
    }
    let bus = testkit::test_bus();

    let auth_db = TestDatabase::create(&auth::db::MIGRATOR).await;
    let mut auth_settings = auth::config::load().expect("auth settings");
    auth_settings.database = auth_db.settings.clone();
    auth_settings.application.host = "127.0.0.1".into();
    auth_settings.application.port = 0;
    auth_settings.bus = bus.clone();
    auth_settings.network.trusted_proxies = "127.0.0.1".parse().expect("an address");
    auth::startup::create_admin(&auth_settings, ADMIN_LOGIN, "Chain Admin", ADMIN_PASSWORD)
        .await
        .expect("the first admin");
    let auth_app = auth::startup::Application::build(auth_settings.clone())
        .await
        .expect("auth builds");
    let auth_address = format!("http://127.0.0.1:{}", auth_app.port());
    let auth_shutdown = auth_app.shutdown().clone();
    tokio::spawn(auth_app.run_until_stopped());

    let db = TestDatabase::create(&devices::db::MIGRATOR).await;
    let mut settings = devices::config::load().expect("devices settings");
    settings.database = db.settings.clone();
    settings.application.host = "127.0.0.1".into();
    settings.application.port = 0;
    settings.bus = bus.clone();
    settings.access.auth_url = auth_address.clone();
    settings.access.introspection_key =
        SecretString::from(auth_settings.introspection.key.expose_secret().to_owned());
    settings.network.trusted_proxies = "127.0.0.1".parse().expect("an address");
    configure(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("devices builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown().clone();
    tokio::spawn(app.run_until_stopped());

    let mut app = TestApp {
        address,
        db,
        auth: AuthApp {
            address: auth_address,
            db: auth_db,
        },
        bus,
        settings,
        client: reqwest::Client::new(),
        pizzeria_id: Uuid::now_v7(),
        admin_token: String::new(),
        manager_token: String::new(),
        office_token: String::new(),
        shutdown: vec![shutdown, auth_shutdown],
    };
    app.admin_token = app.login(ADMIN_LOGIN, ADMIN_PASSWORD).await;
    app.register_pizzeria(app.pizzeria_id).await;
    app.manager_token = app.staff_session("manager", "shift_manager").await;
    app.office_token = app.staff_session("office", "office_manager").await;
    app
}

impl TestApp {
    /// Gives auth the pizzeria as auth's consumer would on the tracker's `PizzeriaRegistered`
    /// (auth learns of pizzerias only from the tracker), so roles can be granted there.
    pub async fn register_pizzeria(&self, id: Uuid) {
        let mut conn = self.auth.db.pool.acquire().await.expect("a connection");
        auth::db::pizzerias::apply_announced_pizzeria(&mut conn, id, "Test pizzeria", 0)
            .await
            .expect("the pizzeria in auth's database");
    }
}

/// The RFC 6749 `error` of an OAuth error response (always a 4xx).
pub async fn oauth_error(response: Response) -> String {
    let status = response.status();
    let body = json_body(response).await;
    assert!(status.is_client_error(), "{status}: {body}");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
        .to_owned()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn auth_url(&self, path: &str) -> String {
        format!("{}{path}", self.auth.address)
    }

    /// Signs in at auth from [`IP`] and returns the token.
    pub async fn login(&self, login: &str, password: &str) -> String {
        let response = self
            .client
            .post(self.auth_url("/api/v1/sessions"))
            .header("x-forwarded-for", IP)
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::CREATED);
        json_body(response).await["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// Creates a staff member with `role` in the app's pizzeria and signs them in.
    pub async fn staff_session(&self, login: &str, role: &str) -> String {
        let response = self
            .client
            .post(self.auth_url("/api/v1/users"))
            .bearer_auth(&self.admin_token)
            .json(&json!({
                "login": login,
                "display_name": format!("{login} (test)"),
                "password": PASSWORD,
                "roles": [{ "role": role, "pizzeria_id": self.pizzeria_id }],
            }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::CREATED);
        self.login(login, PASSWORD).await
    }

    // ------------------------------------------------------------ device ---

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .header("x-forwarded-for", "10.9.9.9")
            .header("user-agent", "KitchenTablet/1.0")
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// A device asks for codes; the response body.
    pub async fn request_code(&self) -> Value {
        let response = self
            .post_form("/oauth/device_authorization", &[("client_id", CLIENT_ID)])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        json_body(response).await
    }

    pub async fn poll(&self, device_code: &str) -> Response {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", CLIENT_ID),
                ("device_code", device_code),
            ],
        )
        .await
    }

    // ---------------------------------------------------------- approver ---

    pub async fn post_with(&self, token: &str, path: &str, body: &Value) -> Response {
        self.post_from(IP, token, path, body).await
    }

    pub async fn post_from(&self, ip: &str, token: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("x-forwarded-for", ip)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn lookup(&self, token: &str, user_code: &str) -> Response {
        self.lookup_from(IP, token, user_code).await
    }

    pub async fn lookup_from(&self, ip: &str, token: &str, user_code: &str) -> Response {
        self.post_from(
            ip,
            token,
            "/api/v1/device-authorizations/lookup",
            &json!({ "user_code": user_code }),
        )
        .await
    }

    pub async fn approve(&self, token: &str, user_code: &str, choice: Value) -> Response {
        let mut body = choice;
        body["user_code"] = json!(user_code);
        self.post_with(token, "/api/v1/device-authorizations/approve", &body)
            .await
    }

    pub async fn deny(&self, token: &str, user_code: &str) -> Response {
        self.post_with(
            token,
            "/api/v1/device-authorizations/deny",
            &json!({ "user_code": user_code }),
        )
        .await
    }

    /// The choice for a station tablet of the app's pizzeria.
    pub fn tablet(&self, station: &str) -> Value {
        json!({
            "pizzeria_id": self.pizzeria_id,
            "kind": "kitchen_station",
            "station": station,
            "name": format!("{station} tablet"),
        })
    }

    pub fn board(&self) -> Value {
        json!({ "pizzeria_id": self.pizzeria_id, "kind": "order_board", "name": "Dining room TV" })
    }

    /// A device paired all the way: codes, the manager's approval of `choice`, the token
    /// response.
    pub async fn pair(&self, choice: Value) -> Value {
        let codes = self.request_code().await;
        let response = self
            .approve(
                &self.manager_token,
                codes["user_code"].as_str().expect("a user code"),
                choice,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = self
            .poll(codes["device_code"].as_str().expect("a device code"))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        json_body(response).await
    }

    // ---------------------------------------------------------- managers ---

    pub async fn list_devices(&self, token: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/pizzerias/{}/devices", self.pizzeria_id)))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn change_device(&self, token: &str, device_id: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(&format!(
                "/api/v1/pizzerias/{}/devices/{device_id}",
                self.pizzeria_id
            )))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn revoke_device(&self, token: &str, device_id: &str) -> Response {
        self.client
            .delete(self.url(&format!(
                "/api/v1/pizzerias/{}/devices/{device_id}",
                self.pizzeria_id
            )))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    // -------------------------------------------------- other services ---

    pub async fn introspect_with_key(&self, key: &str, token: &str) -> Response {
        self.client
            .post(self.url("/internal/v1/introspect"))
            .header(access::INTROSPECTION_KEY_HEADER, key)
            .json(&json!({
                "token": token,
                "client": { "ip": "10.7.7.7", "user_agent": "TrackerProxy/2" },
            }))
            .send()
            .await
            .expect("request")
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let key = self.settings.introspection.key.expose_secret().to_owned();
        let response = self.introspect_with_key(&key, token).await;
        assert_eq!(response.status(), StatusCode::OK);
        json_body(response).await
    }

    /// A device verifier as another service would configure it, with a TTL far longer than
    /// the 1 s bound: only events can make its cache let go in time.
    pub fn device_verifier(&self) -> DeviceVerifier {
        DeviceVerifier::new(&DeviceAccessSettings {
            devices_url: self.address.clone(),
            introspection_key: SecretString::from(
                self.settings.introspection.key.expose_secret().to_owned(),
            ),
            cache_ttl_ms: 600_000,
            request_timeout_ms: 2_000,
            cache_capacity: 1_000,
            trusted_proxies: Default::default(),
        })
        .expect("a device verifier")
    }

    pub fn staff_verifier(&self) -> access::StaffVerifier {
        access::StaffVerifier::new(&self.settings.access).expect("a staff verifier")
    }

    /// Outbox rows: (routing key, envelope), in staging order.
    pub async fn outbox(&self) -> Vec<(String, Value)> {
        sqlx::query_as("select routing_key, payload from outbox order by id")
            .fetch_all(&self.db.pool)
            .await
            .expect("outbox rows")
    }
}

/// Waits until the verifier's subscription holds its lease.
pub async fn wait_for_lease(in_use: impl Fn() -> bool) {
    testkit::eventually(
        "the access cache to subscribe",
        Duration::from_secs(10),
        || async { in_use().then_some(()) },
    )
    .await;
}
