use anyhow::Context;
use bus::consumer::ConsumerSettings;
use serde::Deserialize;
use service_kit::config::{BusSettings, DatabaseSettings, HttpSettings};

const DEFAULTS: &str = include_str!("../config/base.toml");

#[derive(Clone, Deserialize)]
pub struct Settings {
    /// Demo or empty secrets are refused at `run` unless this is set (`APP_DEVELOPMENT`).
    #[serde(default)]
    pub development: bool,
    /// The HTTP server: health, metrics and the dead-letter API.
    pub application: HttpSettings,
    /// Checking the staff sessions that call the dead-letter API (auth's introspection).
    pub access: access::AccessSettings,
    /// The legacy database.
    pub database: DatabaseSettings,
    pub bus: BusSettings,
    pub consumer: ConsumerSettings,
    #[serde(default)]
    pub mirror: MirrorSettings,
    /// The history stream every event also lands in (`bus::stream`), which this worker
    /// declares and `rebuild` reads.
    pub history: HistorySettings,
}

/// The history stream (`[history]`).
#[derive(Debug, Clone, Deserialize)]
pub struct HistorySettings {
    /// How long the stream keeps events, as RabbitMQ's `x-max-age` (`7D`); `""`: no age limit.
    pub max_age: String,
    /// How large the stream may grow, in bytes; 0: no size limit.
    pub max_length_bytes: u64,
    /// How many messages the broker sends a rebuild ahead (a stream consumer needs one).
    pub prefetch: u16,
}

impl HistorySettings {
    pub fn retention(&self) -> bus::stream::Retention {
        bus::stream::Retention {
            max_age: Some(self.max_age.clone()).filter(|age| !age.is_empty()),
            max_length_bytes: Some(self.max_length_bytes).filter(|bytes| *bytes > 0),
        }
    }
}

/// How the events are mirrored (`[mirror]`).
#[derive(Debug, Clone, Deserialize)]
pub struct MirrorSettings {
    /// How far ahead of what its row last applied an event's `sequence` may be before it is
    /// dead-lettered instead (`mirror::LegacyMirror`).
    pub max_sequence_jump: i64,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        MirrorSettings {
            max_sequence_jump: crate::mirror::DEFAULT_MAX_SEQUENCE_JUMP,
        }
    }
}

impl Settings {
    /// The compiled-in defaults, then `APP_CONFIG_FILE`, then `APP_*` environment variables.
    pub fn load() -> anyhow::Result<Self> {
        service_kit::config::load(DEFAULTS).context("reading the sync worker's settings")
    }

    /// Refuses the demo introspection key outside development mode.
    pub fn check_secrets(&self) -> anyhow::Result<()> {
        service_kit::secrets::SecretCheck::new(self.development)
            .secret("access.introspection_key", &self.access.introspection_key)
            .finish()
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
        assert_eq!(settings.access.auth_url, "http://127.0.0.1:8083");
        let retention = settings.history.retention();
        assert_eq!(retention.max_age.as_deref(), Some("7D"));
        assert!(retention.max_length_bytes.is_some());
    }

    #[test]
    fn the_demo_introspection_key_serves_only_in_development() {
        let mut settings: Settings = service_kit::config::load(DEFAULTS).expect("defaults");
        let refused = settings
            .check_secrets()
            .expect_err("the demo key is refused");
        assert!(
            refused.to_string().contains("access.introspection_key"),
            "{refused}"
        );
        settings.development = true;
        assert!(settings.check_secrets().is_ok());
    }
}
