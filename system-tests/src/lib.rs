//! Tests that run the services together against real PostgreSQL and RabbitMQ; see
//! `tests/system`. The library is what they share with the services' own integration tests:
//! [`AccessPeers`], the real auth and devices services that a service under test asks who is
//! calling, with helpers that make staff and pair devices through their public APIs.

// Test support: a setup step that fails should fail the test loudly, with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use access::{AccessSettings, DeviceAccessSettings, Role};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use testkit::TestDatabase;
use uuid::Uuid;

const ADMIN_LOGIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-password-1";
const PASSWORD: &str = "kitchen-password-1";
/// The display name of the chain admin [`AccessPeers`] acts as.
pub const ADMIN_NAME: &str = "Chain Admin";
/// The device-flow client the devices service knows by default.
const DEVICE_CLIENT: &str = "kitchen-web";
/// Far beyond the 1 s revocation bound: with it, only events (or a lapsed lease) can make a
/// service's cache let go of a revoked session or device in time.
const CACHE_TTL_MS: u64 = 600_000;

/// Tells apart the staff the helpers create: logins are unique in an auth database.
static NEXT_STAFF: AtomicU32 = AtomicU32::new(1);

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub struct StaffMember {
    pub user_id: Uuid,
    pub display_name: String,
    pub token: String,
}

/// A paired device.
#[derive(Debug, Clone)]
pub struct Device {
    pub device_id: Uuid,
    pub name: String,
    pub token: String,
}

/// An auth app and a devices app, each with its own database, on the bus of the service under
/// test (so their events reach its caches), and a chain admin signed in. Stopped on drop.
pub struct AccessPeers {
    pub auth_url: String,
    pub devices_url: String,
    /// The chain admin's session token.
    pub admin_token: String,
    /// What the service under test puts in its settings to check staff sessions here.
    pub access: AccessSettings,
    /// ... and device tokens.
    pub device_access: DeviceAccessSettings,
    client: reqwest::Client,
    /// Auth's and devices' databases.
    _databases: [TestDatabase; 2],
    shutdowns: [Shutdown; 3],
}

impl Drop for AccessPeers {
    fn drop(&mut self) {
        for shutdown in &self.shutdowns {
            shutdown.trigger();
        }
    }
}

/// Gives the auth database `auth_db` the pizzerias as auth's consumer applies the
/// tracker's `PizzeriaRegistered` (`auth::db::pizzerias::apply_announced_pizzeria`), at sequence
/// 0, so a real announcement still overwrites it. Directly, not over the bus: a test may run two
/// auth installations on one bus, and each partition's single active consumer would hand every
/// announcement to one of them. The bus path has tests of its own (auth's
/// `tests/api/pizzerias.rs`, the system test `pizzerias.rs`).
pub async fn give_auth_pizzerias(auth_db: &TestDatabase, ids: &[Uuid]) {
    let mut conn = auth_db
        .pool
        .acquire()
        .await
        .expect("a connection to auth's database");
    for id in ids {
        auth::db::pizzerias::apply_announced_pizzeria(&mut conn, *id, &format!("Pizzeria {id}"), 0)
            .await
            .expect("the pizzeria in auth's database");
    }
}

/// The settings of a service (`tracker`, `auth`, `devices`: a crate with `config::load()`) for
/// a test: its defaults with the test's database, a free port and the test's bus.
#[macro_export]
macro_rules! test_settings {
    ($service:ident, $db:expr, $bus:expr) => {{
        let mut settings = $service::config::load().expect("the service's settings");
        settings.database = $db.settings.clone();
        settings.application.host = "127.0.0.1".into();
        settings.application.port = 0;
        settings.bus = $bus.clone();
        settings
    }};
}

/// Builds a service's `Application` from `settings` and runs it in the background: its
/// address and its shutdown.
#[macro_export]
macro_rules! run {
    ($service:ident, $settings:expr) => {{
        let app = $service::startup::Application::build($settings)
            .await
            .expect("the service builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let shutdown = app.shutdown().clone();
        tokio::spawn(app.run_until_stopped());
        (address, shutdown)
    }};
}

impl AccessPeers {
    pub async fn start(bus: &BusSettings) -> Self {
        let auth_db = TestDatabase::create(&auth::db::MIGRATOR).await;
        let auth_settings = test_settings!(auth, auth_db, bus);
        auth::startup::create_admin(&auth_settings, ADMIN_LOGIN, ADMIN_NAME, ADMIN_PASSWORD)
            .await
            .expect("the first admin");
        let (auth_url, auth_shutdown) = run!(auth, auth_settings.clone());
        let access = AccessSettings {
            auth_url: auth_url.clone(),
            introspection_key: auth_settings.introspection.key.clone(),
            cache_ttl_ms: CACHE_TTL_MS,
            request_timeout_ms: 5_000,
            cache_capacity: 1_000,
        };

        let devices_db = TestDatabase::create(&devices::db::MIGRATOR).await;
        let mut devices_settings = test_settings!(devices, devices_db, bus);
        devices_settings.access = access.clone();
        let (devices_url, devices_shutdown) = run!(devices, devices_settings.clone());
        let device_access = DeviceAccessSettings {
            devices_url: devices_url.clone(),
            introspection_key: devices_settings.introspection.key.clone(),
            cache_ttl_ms: CACHE_TTL_MS,
            request_timeout_ms: 5_000,
            cache_capacity: 1_000,
            trusted_proxies: Default::default(),
        };
        // Devices needs auth to start, and auth needs devices to check device tokens (a station
        // tablet reads its pizzeria's kitchen staff): a second auth instance on the same
        // database, which knows devices, serves the service under test, as a second instance
        // would in production.
        let mut auth_settings = auth_settings;
        auth_settings.device_access = device_access.clone();
        let (auth_url, second_auth_shutdown) = run!(auth, auth_settings);
        let access = AccessSettings {
            auth_url: auth_url.clone(),
            ..access
        };

        let mut peers = AccessPeers {
            auth_url,
            devices_url,
            admin_token: String::new(),
            access,
            device_access,
            client: reqwest::Client::new(),
            _databases: [auth_db, devices_db],
            shutdowns: [auth_shutdown, devices_shutdown, second_auth_shutdown],
        };
        peers.admin_token = peers.login(ADMIN_LOGIN, ADMIN_PASSWORD).await;
        peers
    }

    /// A request to auth or devices (`base`) as the chain admin.
    fn as_admin(&self, method: Method, base: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.admin_token)
    }

    async fn login(&self, login: &str, password: &str) -> String {
        let response = self
            .client
            .post(format!("{}/api/v1/sessions", self.auth_url))
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::CREATED, "{login} signs in");
        body_of(response).await["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// Gives auth the pizzerias, so roles can be granted there ([`give_auth_pizzerias`]). For a
    /// test without a tracker; one with a tracker creates them there and then
    /// [`AccessPeers::await_pizzerias`].
    pub async fn register_pizzerias(&self, ids: &[Uuid]) {
        give_auth_pizzerias(&self._databases[0], ids).await;
    }

    /// Waits until auth has heard of the pizzerias (from the tracker's announcements).
    pub async fn await_pizzerias(&self, ids: &[Uuid]) {
        testkit::auth_knows_pizzerias(&self._databases[0].pool, ids).await;
    }

    /// A new staff member with `role` in `pizzeria_id` (a chain admin holds everywhere),
    /// signed in.
    pub async fn staff(&self, role: Role, pizzeria_id: Uuid) -> StaffMember {
        let n = NEXT_STAFF.fetch_add(1, Ordering::Relaxed);
        let login = format!("{}-{n}", role.as_str().replace('_', "-"));
        let display_name = format!("Staff {n} ({role})");
        let grant = if role.is_chain_wide() {
            json!({ "role": role.as_str() })
        } else {
            json!({ "role": role.as_str(), "pizzeria_id": pizzeria_id })
        };
        let response = self
            .as_admin(Method::POST, &self.auth_url, "/api/v1/users")
            .json(&json!({
                "login": login,
                "display_name": display_name,
                "password": PASSWORD,
                "roles": [grant],
            }))
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "auth creates {login}"
        );
        let user_id = body_of(response).await["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("a user id");
        StaffMember {
            user_id,
            display_name,
            token: self.login(&login, PASSWORD).await,
        }
    }

    /// Takes `role` in `pizzeria_id` away from the user.
    pub async fn revoke_role(&self, user_id: Uuid, role: Role, pizzeria_id: Uuid) {
        let response = self
            .as_admin(
                Method::DELETE,
                &self.auth_url,
                &format!(
                    "/api/v1/users/{user_id}/roles/{}?pizzeria_id={pizzeria_id}",
                    role.as_str()
                ),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "auth revokes the role");
    }

    /// What a device sends the devices service: a form, without any staff token.
    async fn device_form(&self, path: &str, form: &str) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.devices_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "devices answers {path}");
        body_of(response).await
    }

    /// A device paired through the real RFC 8628 flow: it asks for a code, the chain admin
    /// approves it as `kind` (at `station`), and it picks up its token.
    pub async fn pair_device(
        &self,
        pizzeria_id: Uuid,
        kind: &str,
        station: Option<&str>,
        name: &str,
    ) -> Device {
        let codes = self
            .device_form(
                "/oauth/device_authorization",
                &format!("client_id={DEVICE_CLIENT}"),
            )
            .await;
        let mut choice = json!({
            "user_code": codes["user_code"],
            "pizzeria_id": pizzeria_id,
            "kind": kind,
            "name": name,
        });
        // Left out, not null, for a device without a station.
        if let Some(station) = station {
            choice["station"] = json!(station);
        }
        let response = self
            .as_admin(
                Method::POST,
                &self.devices_url,
                "/api/v1/device-authorizations/approve",
            )
            .json(&choice)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "the admin approves");
        let device_code = codes["device_code"].as_str().expect("a device code");
        let issued = self
            .device_form(
                "/oauth/token",
                &format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
                     &device_code={device_code}&client_id={DEVICE_CLIENT}"
                ),
            )
            .await;
        Device {
            device_id: issued["device_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("a device id"),
            name: name.to_owned(),
            token: issued["access_token"].as_str().expect("a token").to_owned(),
        }
    }

    /// The station tablet of `station` in `pizzeria_id`, named "<station> tablet".
    pub async fn station_tablet(&self, pizzeria_id: Uuid, station: &str) -> Device {
        let name = format!("{station} tablet");
        self.pair_device(pizzeria_id, "kitchen_station", Some(station), &name)
            .await
    }

    /// The TV order board of `pizzeria_id`.
    pub async fn tv_board(&self, pizzeria_id: Uuid) -> Device {
        self.pair_device(pizzeria_id, "order_board", None, "Dining room TV")
            .await
    }

    pub async fn revoke_device(&self, pizzeria_id: Uuid, device_id: Uuid) {
        let response = self
            .as_admin(
                Method::DELETE,
                &self.devices_url,
                &format!("/api/v1/pizzerias/{pizzeria_id}/devices/{device_id}"),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "devices revokes");
    }
}

async fn body_of(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}
