//! Integration-test support. Tests talk to the real PostgreSQL and RabbitMQ that `make test`
//! starts (named by `DATABASE_URL` and `AMQP_URL`); each test gets its own database, and its own
//! RabbitMQ vhost and exchange (and so its own queues), so the whole suite runs in parallel.

// Test support: a setup step that fails should fail the test loudly, with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    path::PathBuf,
    process::Command,
    str::FromStr,
    time::{Duration, Instant},
};

use secrecy::SecretString;
use service_kit::config::{BusSettings, DatabaseSettings};
use sqlx::{
    Connection, Executor, PgConnection, PgPool, migrate::Migrator, postgres::PgConnectOptions,
};
use uuid::Uuid;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test`, which starts PostgreSQL and RabbitMQ")
    })
}

/// A database of its own for one test, migrated, dropped again when the test ends.
pub struct TestDatabase {
    pub pool: PgPool,
    pub settings: DatabaseSettings,
}

impl TestDatabase {
    pub async fn create(migrator: &Migrator) -> Self {
        let url = env("DATABASE_URL");
        let name = format!("test_{}", Uuid::new_v4().simple());
        let server = PgConnectOptions::from_str(&url).expect("DATABASE_URL is a PostgreSQL URL");
        let mut admin = PgConnection::connect_with(&server)
            .await
            .expect("connect to the test PostgreSQL");
        admin
            .execute(sqlx::AssertSqlSafe(format!(r#"create database "{name}""#)))
            .await
            .expect("create the test database");
        admin.close().await.ok();

        let settings = DatabaseSettings {
            url: Some(SecretString::from(url)),
            host: String::new(),
            port: 0,
            username: String::new(),
            password: SecretString::from(String::new()),
            database_name: name,
            require_ssl: false,
            max_connections: 10,
        };
        let pool = PgPool::connect_with(settings.connect_options().expect("options"))
            .await
            .expect("connect to the test database");
        migrator
            .run(&pool)
            .await
            .expect("migrate the test database");
        TestDatabase { pool, settings }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context we could rely on, so a short-lived thread with
        // its own runtime removes the database. `with (force)` ends the pool's connections.
        let name = self.settings.database_name.clone();
        let Ok(server) = PgConnectOptions::from_str(&env("DATABASE_URL")) else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect_with(&server).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"drop database if exists "{name}" with (force)"#
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Bus settings of the test's own: an exchange (and so queues) of its own, in a RabbitMQ
/// vhost of the test process's own, which is deleted with everything in it when the process
/// ends. Under nextest every test is a process of its own, so every test has its own vhost;
/// nothing in it needs an expiry. The test connects as the `AMQP_URL` user, who therefore
/// publishes every source's routing keys (`bus::publishers`).
pub fn test_bus() -> BusSettings {
    let vhost = process_vhost();
    let url = env("AMQP_URL");
    let uri: lapin::uri::AMQPUri = url.parse().expect("AMQP_URL is an AMQP URL");
    let user = uri.authority.userinfo.username.clone();
    let url = format!(
        "amqp://{}:{}@{}:{}/{vhost}",
        uri.authority.userinfo.username,
        uri.authority.userinfo.password,
        uri.authority.host,
        uri.authority.port
    );
    BusSettings {
        url: SecretString::from(url),
        exchange: format!("test-{}", Uuid::new_v4().simple()),
        publishers: all_sources_published_by(&user),
        partitions: 4,
    }
}

/// Every source belongs to `user`: in a test one user plays every service.
pub fn all_sources_published_by(user: &str) -> std::collections::BTreeMap<String, String> {
    bus::publishers::SOURCES
        .iter()
        .map(|source| ((*source).to_owned(), user.to_owned()))
        .collect()
}

/// The management API of the test broker: `RABBITMQ_MANAGEMENT_URL`, or the AMQP port minus
/// 40000 on the AMQP host (how `scripts/stack.sh` sets it up).
pub fn management_url() -> String {
    if let Ok(url) = std::env::var("RABBITMQ_MANAGEMENT_URL") {
        return url.trim_end_matches('/').to_owned();
    }
    let uri: lapin::uri::AMQPUri = env("AMQP_URL").parse().expect("AMQP_URL is an AMQP URL");
    format!(
        "http://{}:{}",
        uri.authority.host,
        uri.authority.port.saturating_sub(40_000)
    )
}

/// One call to the management API as the `AMQP_URL` user (an administrator in `make test`),
/// with curl, which `scripts/lib.sh` needs anyway. Returns the HTTP status.
pub fn management(method: &str, path: &str, body: Option<&str>) -> u16 {
    let uri: lapin::uri::AMQPUri = env("AMQP_URL").parse().expect("AMQP_URL is an AMQP URL");
    let credentials = format!(
        "{}:{}",
        uri.authority.userinfo.username, uri.authority.userinfo.password
    );
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
        .args(["-u", &credentials, "-H", "content-type: application/json"]);
    if let Some(body) = body {
        curl.args(["--data", body]);
    }
    let out = curl
        .arg(format!("{}/api/{path}", management_url()))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "the management API did not answer {method} /api/{path}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Creates (once per process) a vhost in which the `AMQP_URL` user may do anything, and a
/// watcher that deletes it when this process is gone, however it ends: a test that panics, or
/// one nextest kills at its timeout, cleans up all the same.
fn process_vhost() -> String {
    static VHOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VHOST
        .get_or_init(|| {
            let vhost = format!("test-{}", Uuid::new_v4().simple());
            let status = management("PUT", &format!("vhosts/{vhost}"), None);
            assert!(
                (200..300).contains(&status),
                "creating the test vhost {vhost}: HTTP {status}"
            );
            let uri: lapin::uri::AMQPUri =
                env("AMQP_URL").parse().expect("AMQP_URL is an AMQP URL");
            let user = uri.authority.userinfo.username;
            let status = management(
                "PUT",
                &format!("permissions/{vhost}/{user}"),
                Some(r#"{"configure":".*","write":".*","read":".*"}"#),
            );
            assert!(
                (200..300).contains(&status),
                "granting {user} the test vhost {vhost}: HTTP {status}"
            );
            delete_when_this_process_ends(&format!("vhosts/{vhost}"));
            vhost
        })
        .clone()
}

/// Has a watcher delete `path` of the management API once this process is gone. Its output
/// goes nowhere, so nextest does not wait for it as a leaked process.
fn delete_when_this_process_ends(path: &str) {
    let uri: lapin::uri::AMQPUri = env("AMQP_URL").parse().expect("AMQP_URL is an AMQP URL");
    let credentials = format!(
        "{}:{}",
        uri.authority.userinfo.username, uri.authority.userinfo.password
    );
    let _ = Command::new("bash")
        .args([
            "-c",
            r#"tail --pid="$1" -f /dev/null; curl -sS -o /dev/null -X DELETE -u "$2" "$3""#,
            "test-reaper",
            &std::process::id().to_string(),
            &credentials,
            &format!("{}/api/{path}", management_url()),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// A RabbitMQ user of the test's own (`test-<name>-<random>`) with every right in `bus`'s vhost,
/// and `bus` as that user: another service, or an intruder holding some service's password.
/// It publishes nothing of its own unless `publishers` says so. Deleted when the process ends.
pub fn other_user(bus: &BusSettings, name: &str) -> BusSettings {
    use secrecy::ExposeSecret;
    let uri: lapin::uri::AMQPUri = bus.url.expose_secret().parse().expect("an AMQP URL");
    let user = format!("test-{name}-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let password = Uuid::new_v4().simple().to_string();
    let status = management(
        "PUT",
        &format!("users/{user}"),
        Some(&format!(r#"{{"password":"{password}","tags":""}}"#)),
    );
    assert!(
        (200..300).contains(&status),
        "creating user {user}: HTTP {status}"
    );
    delete_when_this_process_ends(&format!("users/{user}"));
    let status = management(
        "PUT",
        &format!("permissions/{}/{user}", uri.vhost),
        Some(r#"{"configure":".*","write":".*","read":".*"}"#),
    );
    assert!(
        (200..300).contains(&status),
        "granting {user}: HTTP {status}"
    );
    let mut other = bus.clone();
    other.url = SecretString::from(format!(
        "amqp://{user}:{password}@{}:{}/{}",
        uri.authority.host, uri.authority.port, uri.vhost
    ));
    other
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`. Tests wait
/// for asynchronous effects this way instead of sleeping a fixed time.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn knows_pizzerias(auth_db: &PgPool, ids: &[Uuid]) -> bool {
    let known: i64 = sqlx::query_scalar("select count(*) from pizzerias where id = any($1)")
        .bind(ids)
        .fetch_one(auth_db)
        .await
        .expect("auth's pizzerias");
    usize::try_from(known).ok() == Some(ids.len())
}

/// Waits until the auth database behind `auth_db` knows every pizzeria of `ids` (its consumer
/// applied the tracker's announcements).
pub async fn auth_knows_pizzerias(auth_db: &PgPool, ids: &[Uuid]) {
    eventually(
        "auth to learn of the pizzerias",
        Duration::from_secs(60),
        || async { knows_pizzerias(auth_db, ids).await.then_some(()) },
    )
    .await;
}

/// A RabbitMQ node of one test's own, for tests that restart the broker (the shared test
/// broker must not be restarted under the other tests). Stopped when dropped.
pub struct PrivateBroker {
    pub node: String,
    pub url: String,
    dir: PathBuf,
}

fn node_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rabbitmq-node.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PrivateBroker {
    pub fn start() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        let node = format!("kitchen-test-{}@localhost", &id[..12]);
        let port = free_port();
        // `make test` names a folder it cleans up even if a test dies before its Drop runs.
        let base = std::env::var_os("KITCHEN_TEST_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("kitchen-broker-{}", &id[..12]));
        let status = Command::new("bash")
            .arg(node_script())
            .args(["start", &dir.to_string_lossy(), &node, &port.to_string()])
            .status()
            .expect("run scripts/rabbitmq-node.sh");
        assert!(status.success(), "starting a private RabbitMQ node failed");
        PrivateBroker {
            node,
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            dir,
        }
    }

    /// The whole broker is the test's own, with its default user playing every service.
    pub fn bus(&self) -> BusSettings {
        BusSettings {
            url: SecretString::from(self.url.clone()),
            exchange: "kitchen".into(),
            publishers: all_sources_published_by("guest"),
            partitions: 4,
        }
    }

    /// Stops and starts the broker application: connections drop, durable queues survive.
    /// Asynchronous, so the services under test keep running while the broker is away.
    pub async fn restart(&self) {
        let status = tokio::process::Command::new("bash")
            .arg(node_script())
            .args(["restart", &self.node])
            .status()
            .await
            .expect("run scripts/rabbitmq-node.sh");
        assert!(
            status.success(),
            "restarting the private RabbitMQ node failed"
        );
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(node_script())
            .args(["stop", &self.node])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy in front of the broker that can stop passing bytes while both sides stay
/// connected: a half-open connection, as a dead NAT entry or a frozen host makes one, which
/// neither side notices for minutes.
pub struct FreezableProxy {
    pub port: u16,
    frozen: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl FreezableProxy {
    /// Starts passing connections on a free local port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (frozen, watch) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pass(client_read, server_write, watch.clone()));
                tokio::spawn(pass(server_read, client_write, watch.clone()));
            }
        });
        FreezableProxy {
            port,
            frozen,
            accept,
        }
    }

    /// In front of the broker `bus` points at: the same settings, through the proxy.
    pub async fn in_front_of(bus: &BusSettings) -> (Self, BusSettings) {
        use secrecy::ExposeSecret;
        let url = bus.url.expose_secret().to_owned();
        let (scheme_and_user, rest) = url.split_once('@').expect("an AMQP URL with user@host");
        let (host_port, vhost) = rest.split_once('/').unwrap_or((rest, ""));
        let proxy = Self::start(host_port.to_owned()).await;
        let mut through = bus.clone();
        through.url = SecretString::from(format!(
            "{scheme_and_user}@127.0.0.1:{}/{vhost}",
            proxy.port
        ));
        (proxy, through)
    }

    /// Holds every byte in both directions from now on; connections stay open.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 64 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// The `Content-Type` of a response, or "" without one.
pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The problem (RFC 9457) of an error response, checked the way every client may rely on it:
/// served as `application/problem+json`, its `status` the response's, its `type` the stable
/// URI of its `code`. Panics, naming the body, on anything else: tests read error bodies only
/// through this.
pub async fn problem(response: reqwest::Response) -> service_kit::http::Problem {
    let status = response.status();
    let content_type = content_type(&response);
    let body = response.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    assert!(
        status.is_client_error() || status.is_server_error(),
        "not an error: {status}: {text}"
    );
    assert_eq!(
        content_type,
        service_kit::http::PROBLEM_JSON,
        "{status}: {text}"
    );
    let problem = service_kit::http::Problem::parse(&body)
        .unwrap_or_else(|| panic!("not a problem body: {status}: {text}"));
    assert_eq!(problem.status, status.as_u16(), "{text}");
    assert_eq!(
        problem.type_uri,
        format!("{}{}", service_kit::http::PROBLEM_TYPE_PREFIX, problem.code),
        "{text}"
    );
    problem
}

/// A response's JSON body; panics if it has none.
pub async fn json_body(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("a JSON body")
}

/// The `field` of a problem body, checked by [`problem`]: where the request broke a rule.
pub async fn error_field(response: reqwest::Response) -> String {
    let problem = problem(response).await;
    match problem.field {
        Some(field) => field,
        None => panic!("no field in {problem:?}"),
    }
}

/// The `rule` of a problem body: the rule the request broke.
pub async fn error_rule(response: reqwest::Response) -> String {
    let problem = problem(response).await;
    match problem.rule {
        Some(rule) => rule,
        None => panic!("no rule in {problem:?}"),
    }
}

/// The stable `code` of a problem body.
pub async fn error_code(response: reqwest::Response) -> String {
    problem(response).await.code
}

/// A JSON string that holds a UUID; panics on anything else.
pub fn uuid_of(value: &serde_json::Value) -> Uuid {
    value.as_str().and_then(|s| s.parse().ok()).expect("a UUID")
}
