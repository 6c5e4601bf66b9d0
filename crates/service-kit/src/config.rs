//! Layered configuration: the service's built-in defaults, then an optional file named by
//! `APP_CONFIG_FILE`, then environment variables such as `APP_DATABASE__PORT=5433`.
//!
//! The defaults are compiled in (each service passes its `config/base.toml`), so a binary runs
//! the same from any working directory.

use std::{net::TcpListener, str::FromStr};

use anyhow::Context;

use ::config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, de::DeserializeOwned};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

/// Reads the settings of a service from its defaults, the optional file and the environment.
pub fn load<T: DeserializeOwned>(defaults_toml: &str) -> Result<T, ::config::ConfigError> {
    let mut builder = Config::builder().add_source(File::from_str(defaults_toml, FileFormat::Toml));
    if let Ok(path) = std::env::var("APP_CONFIG_FILE") {
        builder = builder.add_source(File::with_name(&path).required(true));
    }
    builder
        .add_source(
            Environment::with_prefix("APP")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        )
        .build()?
        .try_deserialize()
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    /// 0 picks a free port, which is what the tests do.
    pub port: u16,
}

impl HttpSettings {
    /// Binds the listener every service's `Application::build` starts from, and reads back the
    /// port it got (the real one when `port` is 0).
    pub fn bind(&self) -> anyhow::Result<(TcpListener, u16)> {
        let address = format!("{}:{}", self.host, self.port);
        let listener =
            TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;
        let port = listener
            .local_addr()
            .with_context(|| format!("no local address for {address}"))?
            .port();
        Ok((listener, port))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// A server URL such as `postgres://user:pass@host:5432/`. When given it replaces host,
    /// port, username and password; the database name still comes from `database_name`,
    /// because several services share one server but never a database.
    #[serde(default)]
    pub url: Option<SecretString>,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: SecretString,
    pub database_name: String,
    #[serde(default)]
    pub require_ssl: bool,
    pub max_connections: u32,
}

impl DatabaseSettings {
    /// Options for the server, without choosing a database.
    pub fn server_options(&self) -> Result<PgConnectOptions, sqlx::Error> {
        let options = match &self.url {
            Some(url) => PgConnectOptions::from_str(url.expose_secret())?,
            None => PgConnectOptions::new()
                .host(&self.host)
                .port(self.port)
                .username(&self.username)
                .password(self.password.expose_secret()),
        };
        let ssl = if self.require_ssl {
            PgSslMode::Require
        } else {
            PgSslMode::Prefer
        };
        Ok(options.ssl_mode(ssl).application_name("kitchen"))
    }

    /// Options for the service's own database.
    pub fn connect_options(&self) -> Result<PgConnectOptions, sqlx::Error> {
        Ok(self.server_options()?.database(&self.database_name))
    }

    /// A pool that connects on first use, so a service starts (and reports not-ready) while
    /// PostgreSQL is still coming up.
    ///
    /// A connection is tested (a round trip) before it is handed out only when it has been idle
    /// for [`PING_IF_IDLE_FOR`]. sqlx tests every checkout by default, which made a station
    /// poll two round trips instead of one and a tap seven instead of six (docs/BENCHMARKS.md,
    /// issue #8). Under load a connection comes back within milliseconds; one that sat idle
    /// through a PostgreSQL restart is still caught here, as before.
    pub fn lazy_pool(&self) -> Result<sqlx::PgPool, sqlx::Error> {
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(self.connect_options()?))
    }
}

/// How long a pooled connection may sit idle before it is tested on checkout.
pub const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, Clone, Deserialize)]
pub struct BusSettings {
    pub url: SecretString,
    /// The durable topic exchange every service publishes to. Tests use a unique name each.
    pub exchange: String,
    /// Who publishes each source's routing keys (`tracker` in `tracker.order.accepted`): the
    /// RabbitMQ user a consumer expects in the message's `user_id`. A source not named here
    /// belongs to the user of its own name (`bus::publishers`), which is how `make run` and the
    /// manifests create them; e.g. `APP_BUS__PUBLISHERS__CASHIER=till-eu1`.
    #[serde(default)]
    pub publishers: std::collections::BTreeMap<String, String>,
    /// How many partitions (quorum queues) each durable consumer's queue is split into, by
    /// order id (`bus::topology`). Publishers declare the partitions too, so every replica of
    /// every service must use the same number.
    #[serde(default = "default_partitions")]
    pub partitions: u16,
}

fn default_partitions() -> u16 {
    4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Settings {
        database: DatabaseSettings,
    }

    const DEFAULTS: &str = r#"
        [database]
        host = "127.0.0.1"
        port = 5432
        username = "postgres"
        password = "secret"
        database_name = "tracker"
        max_connections = 10
    "#;

    #[test]
    fn a_server_url_keeps_the_services_own_database() {
        let mut settings: Settings = load(DEFAULTS).expect("defaults load");
        settings.database.url = Some("postgres://u:p@db.example:6543/postgres".into());
        let options = settings.database.connect_options().expect("valid url");
        assert_eq!(options.get_host(), "db.example");
        assert_eq!(options.get_port(), 6543);
        assert_eq!(options.get_database(), Some("tracker"));
    }

    #[test]
    fn port_zero_binds_a_free_port_and_reads_it_back() {
        let http = HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
        };
        let (listener, port) = http.bind().expect("a free port");
        assert_ne!(port, 0);
        assert_eq!(listener.local_addr().map(|a| a.port()).ok(), Some(port));
        let taken = HttpSettings { port, ..http };
        assert!(taken.bind().is_err(), "the port is taken");
    }

    #[test]
    fn defaults_apply_without_a_url() {
        let settings: Settings = load(DEFAULTS).expect("defaults load");
        let options = settings.database.connect_options().expect("options");
        assert_eq!(options.get_port(), 5432);
        assert_eq!(options.get_database(), Some("tracker"));
    }
}
