//! The web's settings: built-in defaults from `config/base.toml`, then `APP_CONFIG_FILE`, then
//! `APP_*` environment variables (see `service_kit::config`).

use std::time::Duration;

use access::{AccessSettings, DeviceAccessSettings};
use anyhow::Context;
use serde::Deserialize;
use service_kit::{
    client::TrustedProxies,
    config::{BusSettings, HttpSettings},
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Demo or empty secrets are refused at `serve` unless this is set (`APP_DEVELOPMENT`).
    #[serde(default)]
    pub development: bool,
    pub application: HttpSettings,
    /// A listener of its own for `/metrics`, which the public one does not serve.
    pub ops: HttpSettings,
    pub upstream: UpstreamSettings,
    pub access: AccessSettings,
    pub device_access: DeviceAccessSettings,
    pub bus: BusSettings,
    pub cookies: CookieSettings,
    pub screens: ScreenSettings,
    #[serde(default)]
    pub network: NetworkSettings,
    #[serde(default)]
    pub operations: OperationsSettings,
}

/// Where the operations pages read the broker's own figures: the RabbitMQ management plugin's
/// HTTP API, with a user tagged `monitoring` (read-only).
#[derive(Debug, Clone, Deserialize)]
pub struct OperationsSettings {
    /// `APP_OPERATIONS__MANAGEMENT_URL`, e.g. `http://rabbitmq:15672`.
    pub management_url: String,
    pub management_username: String,
    pub management_password: secrecy::SecretString,
    /// The virtual host the services use.
    pub vhost: String,
}

impl Default for OperationsSettings {
    fn default() -> Self {
        OperationsSettings {
            management_url: "http://127.0.0.1:15672".to_owned(),
            management_username: "guest".to_owned(),
            management_password: "guest".into(),
            vhost: "/".to_owned(),
        }
    }
}

/// The TLS proxy or load balancer in front of the web.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkSettings {
    /// Whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
    /// `Strict-Transport-Security: max-age=...` on every answer served over TLS; 0 turns it
    /// off.
    #[serde(default = "one_year")]
    pub hsts_max_age_seconds: u64,
}

fn one_year() -> u64 {
    365 * 24 * 3600
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            trusted_proxies: TrustedProxies::default(),
            hsts_max_age_seconds: one_year(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    pub tracker_url: String,
    pub auth_url: String,
    pub devices_url: String,
    /// The sync worker's dead-letter API, for the operations page.
    pub sync_worker_url: String,
    pub timeout_ms: u64,
}

impl UpstreamSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CookieSettings {
    pub secure: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScreenSettings {
    pub client_id: String,
    pub poll_seconds: u64,
    pub board_max_orders: usize,
    pub board_ready_seconds: i64,
    pub undo_seconds: i64,
    /// How long a station shows an alert such as "CANCELLED #4204".
    pub alert_seconds: i64,
    pub public_origin: String,
    /// Open live-update streams (`/events`) one staff session or device may hold at once.
    pub max_streams_per_viewer: usize,
}

impl Settings {
    /// Refuses demo or empty secrets outside development mode.
    pub fn check_secrets(&self) -> anyhow::Result<()> {
        service_kit::secrets::SecretCheck::new(self.development)
            .secret("access.introspection_key", &self.access.introspection_key)
            .secret(
                "device_access.introspection_key",
                &self.device_access.introspection_key,
            )
            .finish()
    }
}

pub fn load() -> anyhow::Result<Settings> {
    service_kit::config::load(include_str!("../config/base.toml"))
        .context("cannot read the web settings")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_defaults_load() {
        let settings = super::load().expect("base.toml is valid");
        assert_eq!(settings.application.port, 8080);
        assert_eq!(settings.screens.board_max_orders, 16);
        assert!(settings.cookies.secure);
    }

    #[test]
    fn the_demo_secrets_of_the_defaults_serve_only_in_development() {
        let mut settings = super::load().expect("base.toml is valid");
        assert!(settings.check_secrets().is_err());
        settings.development = true;
        assert!(settings.check_secrets().is_ok());
    }
}
