//! The tracker's settings: built-in defaults from `config/base.toml`, then `APP_CONFIG_FILE`,
//! then `APP_*` environment variables (see `service_kit::config`).

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context;

use bus::consumer::ConsumerSettings;
use serde::Deserialize;
use service_kit::{
    config::{BusSettings, DatabaseSettings, HttpSettings},
    rate::RateSettings,
};

#[derive(Clone, Deserialize)]
pub struct Settings {
    /// Demo or empty secrets are refused at `serve` unless this is set (`APP_DEVELOPMENT`).
    #[serde(default)]
    pub development: bool,
    pub application: HttpSettings,
    pub database: DatabaseSettings,
    pub bus: BusSettings,
    /// The consumer of `OrderPlaced` / `OrderCancelled` from the order sources.
    pub intake: ConsumerSettings,
    pub kitchen: KitchenSettings,
    /// Staff sessions, checked against the auth service.
    pub access: access::AccessSettings,
    /// Station tablets and TV boards, checked against the devices service.
    pub device_access: access::DeviceAccessSettings,
    /// Who may place orders over HTTP: a source's name and the hex SHA-256 of its key (several,
    /// comma-separated, while a key is rotated). Parsed by [`crate::sources::SourceKeys`].
    #[serde(default)]
    pub order_sources: BTreeMap<String, String>,
    /// Where each source's keys may place orders: the source's name and the pizzeria ids,
    /// comma-separated, or `*` for every pizzeria. A source with a key must be listed here.
    #[serde(default)]
    pub order_source_pizzerias: BTreeMap<String, String>,
    /// The rate limit of each intake key over HTTP, per tracker instance.
    pub intake_rate: RateSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KitchenSettings {
    pub undo_window_ms: u64,
    pub late_sweep_interval_ms: u64,
    pub late_sweep_batch: i64,
}

impl KitchenSettings {
    pub fn undo_window(&self) -> Duration {
        Duration::from_millis(self.undo_window_ms)
    }

    pub fn late_sweep_interval(&self) -> Duration {
        // A zero interval would spin; a tenth of a second is the fastest useful pace.
        Duration::from_millis(self.late_sweep_interval_ms.max(100))
    }
}

/// The intake key `make run` prints for trying the tracker by hand; its digest is in the
/// defaults.
const DEMO_INTAKE_KEY: &str = "dev-intake-key-change-me";

impl Settings {
    /// Refuses demo or empty secrets outside development mode: the introspection keys, and an
    /// order source that would accept the demo intake key anyone can read in this repository.
    pub fn check_secrets(&self) -> anyhow::Result<()> {
        let sources = self.source_keys()?;
        service_kit::secrets::SecretCheck::new(self.development)
            .secret("access.introspection_key", &self.access.introspection_key)
            .secret(
                "device_access.introspection_key",
                &self.device_access.introspection_key,
            )
            .refuse_if(
                sources.source_of(DEMO_INTAKE_KEY).is_some(),
                "order_sources accepts the demo intake key",
            )
            .finish()
    }

    /// The order sources' keys, with the pizzerias each serves and its rate limit.
    pub fn source_keys(&self) -> anyhow::Result<crate::sources::SourceKeys> {
        crate::sources::SourceKeys::parse(
            &self.order_sources,
            &self.order_source_pizzerias,
            self.intake_rate,
        )
        .context("reading order_sources and order_source_pizzerias")
    }
}

pub fn load() -> anyhow::Result<Settings> {
    service_kit::config::load(include_str!("../config/base.toml"))
        .context("cannot read the tracker settings")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_defaults_load() {
        let settings = super::load().expect("base.toml is valid");
        assert_eq!(settings.application.port, 8081);
        assert_eq!(settings.database.database_name, "tracker");
        assert_eq!(settings.bus.exchange, "kitchen");
        assert_eq!(settings.kitchen.undo_window().as_secs(), 30);
        assert_eq!(settings.access.auth_url, "http://127.0.0.1:8083");
        assert_eq!(settings.device_access.devices_url, "http://127.0.0.1:8084");
        assert_eq!(settings.device_access.cache_ttl_ms, 60_000);
        let sources = settings.source_keys().unwrap();
        let demo = sources.source_of(super::DEMO_INTAKE_KEY).unwrap();
        assert_eq!(demo.source, "cashier");
        // The demo key places orders in the demo pizzeria `make run` seeds, and nowhere else.
        assert!(demo.serves(crate::startup::DEMO_PIZZERIA_ID));
        assert!(!demo.serves(uuid::Uuid::now_v7()));
    }

    #[test]
    fn the_demo_secrets_of_the_defaults_serve_only_in_development() {
        let mut settings = super::load().expect("base.toml is valid");
        let refused = settings.check_secrets().expect_err("demo keys are refused");
        for named in [
            "access.introspection_key",
            "device_access.introspection_key",
            "demo intake key",
        ] {
            assert!(refused.to_string().contains(named), "{refused}");
        }
        settings.development = true;
        assert!(settings.check_secrets().is_ok());
        settings.development = false;
        settings.access.introspection_key = "a-real-introspection-key".into();
        settings.device_access.introspection_key = "a-real-device-key".into();
        settings
            .order_sources
            .insert("cashier".into(), hex::encode([7u8; 32]));
        assert!(settings.check_secrets().is_ok());
    }
}
