use reqwest::redirect::Policy;
use service_kit::shutdown::Shutdown;
use web::{config::Settings, startup::Application};

pub struct TestApp {
    pub address: String,
    /// The listener `/metrics` is served on.
    pub ops_address: String,
    pub client: reqwest::Client,
    shutdown: Shutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A closed port: what an unreachable service looks like.
pub const NOWHERE: &str = "http://127.0.0.1:9";

/// The web on a free port; every upstream unreachable unless `configure` says otherwise.
pub async fn spawn_web(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = web::config::load().expect("settings");
    settings.application.port = 0;
    settings.ops.port = 0;
    settings.upstream.tracker_url = NOWHERE.into();
    settings.upstream.auth_url = NOWHERE.into();
    settings.upstream.devices_url = NOWHERE.into();
    settings.upstream.timeout_ms = 2000;
    settings.access.auth_url = NOWHERE.into();
    settings.device_access.devices_url = NOWHERE.into();
    if let Ok(url) = std::env::var("AMQP_URL") {
        settings.bus.url = url.into();
    }
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the web builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let ops_address = format!(
        "http://127.0.0.1:{}",
        app.ops_port().expect("an ops listener")
    );
    let shutdown = app.shutdown().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        client: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("a client"),
        address,
        ops_address,
        shutdown,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the web answers")
    }

    /// A form POST as a browser on this site sends it, with the CSRF cookie and field.
    pub async fn post_form(
        &self,
        path: &str,
        csrf: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf)];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(path))
            .header("origin", &self.address)
            .header("cookie", format!("kitchen_csrf={csrf}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).expect("a form"))
            .send()
            .await
            .expect("the web answers")
    }
}

pub const CSRF: &str = "0123456789abcdef0123456789abcdef0123456789a";

/// A real auth service on a free port with its own database and a chain admin
/// (`web.admin` / `web-admin-password-1`); stopped when dropped.
pub struct TestAuth {
    pub url: String,
    pub db: testkit::TestDatabase,
    shutdown: Shutdown,
}

impl Drop for TestAuth {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn spawn_auth(configure: impl FnOnce(&mut auth::config::Settings)) -> TestAuth {
    let db = testkit::TestDatabase::create(&auth::db::MIGRATOR).await;
    let mut settings = auth::config::load().expect("auth settings");
    settings.database = db.settings.clone();
    settings.application.port = 0;
    settings.bus = testkit::test_bus();
    configure(&mut settings);
    auth::startup::create_admin(&settings, "web.admin", "Web Admin", "web-admin-password-1")
        .await
        .expect("an admin");
    let app = auth::startup::Application::build(settings)
        .await
        .expect("auth builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown().clone();
    tokio::spawn(app.run_until_stopped());
    TestAuth { url, db, shutdown }
}
