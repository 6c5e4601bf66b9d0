//! The auth service's settings: built-in defaults from `config/base.toml`, then
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
    pub sessions: SessionSettings,
    pub login: LoginSettings,
    pub introspection: IntrospectionSettings,
    pub network: NetworkSettings,
    /// Checking device tokens: station tablets read the kitchen staff list.
    pub device_access: access::DeviceAccessSettings,
    /// The consumer of the tracker's pizzeria announcements.
    #[serde(default)]
    pub consumer: bus::ConsumerSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    pub idle_timeout_ms: u64,
    pub absolute_timeout_ms: u64,
    /// An ended session is deleted this long after its absolute end (`auth::retention`).
    pub retention_ms: u64,
}

impl SessionSettings {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_millis(self.retention_ms)
    }

    pub fn absolute_timeout(&self) -> Duration {
        Duration::from_millis(self.absolute_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoginSettings {
    pub max_failures: i32,
    pub lockout_base_ms: u64,
    pub lockout_max_ms: u64,
    pub failure_memory_ms: u64,
    pub ip_max_failures: i32,
    pub ip_window_ms: u64,
    /// argon2 computations (19 MiB each) that may run at once in this process.
    pub max_concurrent_verifications: usize,
    /// How long a sign-in waits for one of them before it gets a 503 with `Retry-After`.
    pub verification_wait_ms: u64,
    /// Sign-ins this process accepts, from everyone together; beyond it a 429.
    pub global_rate: service_kit::rate::RateSettings,
}

impl LoginSettings {
    pub fn verification_wait(&self) -> Duration {
        Duration::from_millis(self.verification_wait_ms)
    }

    /// The lockout after `previous` earlier ones: doubling from the base, capped.
    pub fn lockout(&self, previous: i32) -> Duration {
        let factor = 1u64 << previous.clamp(0, 20);
        Duration::from_millis(
            self.lockout_base_ms
                .saturating_mul(factor)
                .min(self.lockout_max_ms),
        )
    }
}

#[derive(Clone, Deserialize)]
pub struct IntrospectionSettings {
    pub key: SecretString,
}

/// The proxies in front of auth (the web) whose `X-Forwarded-For` is believed.
pub use service_kit::client::NetworkSettings;

impl Settings {
    /// Refuses demo or empty secrets outside development mode.
    pub fn check_secrets(&self) -> anyhow::Result<()> {
        service_kit::secrets::SecretCheck::new(self.development)
            .secret("introspection.key", &self.introspection.key)
            .secret(
                "device_access.introspection_key",
                &self.device_access.introspection_key,
            )
            .finish()
    }
}

pub fn load() -> anyhow::Result<Settings> {
    service_kit::config::load(include_str!("../config/base.toml"))
        .context("cannot read the auth settings")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_defaults_load() {
        let settings = super::load().expect("base.toml is valid");
        assert_eq!(settings.application.port, 8083);
        assert_eq!(settings.database.database_name, "auth");
        assert_eq!(settings.sessions.idle_timeout().as_secs(), 1800);
        assert_eq!(settings.device_access.devices_url, "http://127.0.0.1:8084");
    }

    #[test]
    fn the_demo_secrets_of_the_defaults_serve_only_in_development() {
        let mut settings = super::load().expect("base.toml is valid");
        let refused = settings.check_secrets().expect_err("demo keys are refused");
        assert!(
            refused.to_string().contains("introspection.key"),
            "{refused}"
        );
        settings.development = true;
        assert!(settings.check_secrets().is_ok());
        settings.development = false;
        settings.introspection.key = "a-real-introspection-key".into();
        settings.device_access.introspection_key = "a-real-device-key".into();
        assert!(settings.check_secrets().is_ok());
        settings.introspection.key = "".into();
        assert!(settings.check_secrets().is_err());
    }

    #[test]
    fn lockouts_double_and_cap() {
        let login = super::load().expect("base.toml is valid").login;
        assert_eq!(login.lockout(0).as_secs(), 30);
        assert_eq!(login.lockout(1).as_secs(), 60);
        assert_eq!(login.lockout(3).as_secs(), 240);
        assert_eq!(login.lockout(10).as_secs(), 900);
        assert_eq!(login.lockout(1000).as_secs(), 900);
    }
}
