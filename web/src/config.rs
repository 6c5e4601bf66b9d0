//! The web's settings: built-in defaults from `config/base.toml`, then `APP_CONFIG_FILE`, then
//! `APP_*` environment variables (see `service_kit::config`).

use std::time::Duration;

use access::{AccessSettings, DeviceAccessSettings};
use anyhow::Context;
use serde::Deserialize;
use service_kit::config::{BusSettings, HttpSettings};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub application: HttpSettings,
    pub upstream: UpstreamSettings,
    pub access: AccessSettings,
    pub device_access: DeviceAccessSettings,
    pub bus: BusSettings,
    pub cookies: CookieSettings,
    pub screens: ScreenSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    pub tracker_url: String,
    pub auth_url: String,
    pub devices_url: String,
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
}
