//! The devices service's settings: built-in defaults from `config/base.toml`, then
//! `APP_CONFIG_FILE`, then `APP_*` environment variables (see `service_kit::config`).

use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;
use service_kit::config::{BusSettings, DatabaseSettings, HttpSettings};

#[derive(Clone, Deserialize)]
pub struct Settings {
    /// Demo or empty secrets are refused at `serve` unless this is set (`APP_DEVELOPMENT`).
    #[serde(default)]
    pub development: bool,
    pub application: HttpSettings,
    pub database: DatabaseSettings,
    pub bus: BusSettings,
    /// How staff tokens are checked (against the auth service).
    pub access: access::AccessSettings,
    pub oauth: OAuthSettings,
    pub approval: ApprovalSettings,
    pub introspection: IntrospectionSettings,
    pub network: NetworkSettings,
    pub tokens: TokenSettings,
    pub pairing: PairingSettings,
    pub retention: RetentionSettings,
}

/// How many pairing requests (device codes) one client IP may make in a window: each is a row
/// that lives as long as the code, so without a bound a client could fill the table.
#[derive(Debug, Clone, Deserialize)]
pub struct PairingSettings {
    pub ip_max_requests: i32,
    pub window_ms: u64,
}

impl PairingSettings {
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
}

/// How long what has ended is kept before it is pruned.
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// A pairing request no device came from is deleted this long after its code expired.
    pub pairing_requests_ms: u64,
}

impl RetentionSettings {
    pub fn pairing_requests(&self) -> Duration {
        Duration::from_millis(self.pairing_requests_ms)
    }
}

/// Device tokens.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenSettings {
    /// A token unused for this long ends; every use starts the time again.
    pub idle_lifetime_ms: u64,
}

impl TokenSettings {
    pub fn idle_lifetime(&self) -> Duration {
        Duration::from_millis(self.idle_lifetime_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    /// The address devices reach this service at, published as the RFC 8414 `issuer` (and the
    /// base of the endpoints there). Unset: the scheme and host the metadata request came in
    /// with, which is right behind a proxy that passes `Host` or `X-Forwarded-Host` on.
    #[serde(default)]
    pub issuer: Option<String>,
    pub client_ids: Vec<String>,
    pub verification_uri: String,
    pub code_lifetime_ms: u64,
    pub interval_seconds: u32,
}

impl OAuthSettings {
    pub fn code_lifetime(&self) -> Duration {
        Duration::from_millis(self.code_lifetime_ms)
    }

    pub fn knows_client(&self, client_id: &str) -> bool {
        self.client_ids.iter().any(|c| c == client_id)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalSettings {
    pub session_max_lookups: i32,
    pub ip_max_lookups: i32,
    pub window_ms: u64,
}

impl ApprovalSettings {
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
}

#[derive(Clone, Deserialize)]
pub struct IntrospectionSettings {
    pub key: SecretString,
}

/// The proxies in front of devices (the web) whose `X-Forwarded-For` is believed.
pub use service_kit::client::NetworkSettings;

impl Settings {
    /// Refuses demo or empty secrets outside development mode.
    pub fn check_secrets(&self) -> anyhow::Result<()> {
        service_kit::secrets::SecretCheck::new(self.development)
            .secret("introspection.key", &self.introspection.key)
            .secret("access.introspection_key", &self.access.introspection_key)
            .finish()
    }
}

pub fn load() -> anyhow::Result<Settings> {
    service_kit::config::load(include_str!("../config/base.toml"))
        .context("cannot read the devices settings")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_defaults_load() {
        let settings = super::load().expect("base.toml is valid");
        assert_eq!(settings.application.port, 8084);
        assert_eq!(settings.database.database_name, "devices");
        assert_eq!(settings.oauth.code_lifetime().as_secs(), 600);
        assert_eq!(settings.oauth.interval_seconds, 5);
        assert!(settings.oauth.knows_client("kitchen-web"));
        assert!(!settings.oauth.knows_client("kitchen-web2"));
        assert_eq!(settings.approval.window().as_secs(), 60);
        assert_eq!(settings.tokens.idle_lifetime().as_secs(), 30 * 24 * 3600);
        assert_eq!(settings.pairing.window().as_secs(), 600);
        assert_eq!(settings.retention.pairing_requests().as_secs(), 24 * 3600);
    }

    #[test]
    fn the_demo_secrets_of_the_defaults_serve_only_in_development() {
        let mut settings = super::load().expect("base.toml is valid");
        assert!(settings.check_secrets().is_err());
        settings.development = true;
        assert!(settings.check_secrets().is_ok());
        settings.development = false;
        settings.introspection.key = "a-real-device-introspection-key".into();
        settings.access.introspection_key = "a-real-introspection-key".into();
        assert!(settings.check_secrets().is_ok());
    }
}
