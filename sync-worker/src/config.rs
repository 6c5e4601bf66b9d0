use anyhow::Context;
use bus::consumer::ConsumerSettings;
use serde::Deserialize;
use service_kit::config::{BusSettings, DatabaseSettings, HttpSettings};

const DEFAULTS: &str = include_str!("../config/base.toml");

#[derive(Clone, Deserialize)]
pub struct Settings {
    /// The ops server: health and metrics.
    pub application: HttpSettings,
    /// The legacy database.
    pub database: DatabaseSettings,
    pub bus: BusSettings,
    pub consumer: ConsumerSettings,
    /// How the events are mirrored: `max_sequence_jump`.
    #[serde(default)]
    pub mirror: crate::mirror::LegacyMirror,
}

impl Settings {
    /// The compiled-in defaults, then `APP_CONFIG_FILE`, then `APP_*` environment variables.
    pub fn load() -> anyhow::Result<Self> {
        service_kit::config::load(DEFAULTS).context("reading the sync worker's settings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_load() {
        let settings: Settings = service_kit::config::load(DEFAULTS).expect("defaults");
        assert_eq!(settings.application.port, 8082);
        assert_eq!(settings.database.database_name, "legacy");
        assert_eq!(settings.bus.exchange, "kitchen");
        assert!(settings.consumer.max_attempts as usize > settings.consumer.retry_delays_ms.len());
    }
}
