//! Kitchen devices: what a device token is bound to ([`DevicePrincipal`]), the wire format of
//! the devices service's introspection, and [`DeviceVerifier`], which asks it with a short
//! cache kept honest by `devices.#` events (see [`crate::CacheInvalidation`]).

use std::{fmt, sync::Arc, time::Duration};

use actix_web::HttpRequest;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use service_kit::client::TrustedProxies;
use uuid::Uuid;

use crate::{
    cache::{Introspector, LeasedCache, Lookup},
    token::{is_device_token, token_digest},
    verifier::{
        AccessError, default_cache_capacity, default_cache_ttl_ms, default_request_timeout_ms,
    },
};

/// What a device is for; chosen by the staff member who approves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A tablet at one kitchen station (dough, topping, oven, packing...).
    KitchenStation,
    /// The TV in the dining room that shows which orders are ready.
    OrderBoard,
    /// The kitchen's motivation board (stage times, the shift's pace).
    MotivationBoard,
    /// The shift manager's screen.
    ShiftManagerScreen,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 4] = [
        DeviceKind::KitchenStation,
        DeviceKind::OrderBoard,
        DeviceKind::MotivationBoard,
        DeviceKind::ShiftManagerScreen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::KitchenStation => "kitchen_station",
            DeviceKind::OrderBoard => "order_board",
            DeviceKind::MotivationBoard => "motivation_board",
            DeviceKind::ShiftManagerScreen => "shift_manager_screen",
        }
    }

    /// `None` for a name this build does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether a device of this kind works at one station (and so must name it).
    pub fn has_station(self) -> bool {
        self == DeviceKind::KitchenStation
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered, unrevoked device: what its token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrincipal {
    pub device_id: Uuid,
    pub pizzeria_id: Uuid,
    pub kind: DeviceKind,
    /// The station code of a [`DeviceKind::KitchenStation`] tablet; `None` for other kinds.
    pub station: Option<String>,
    pub name: String,
    /// The language its screen speaks (a code of [`crate::LANGUAGES`]); `None`: the browser's.
    pub language: Option<String>,
    /// How a TV board shows customers (`name`, `number`, `icon`); `None` for other kinds.
    pub board_mode: Option<String>,
}

impl DevicePrincipal {
    /// Whether this is the tablet of `station` in `pizzeria_id`.
    pub fn is_station(&self, pizzeria_id: Uuid, station: &str) -> bool {
        self.pizzeria_id == pizzeria_id
            && self.kind == DeviceKind::KitchenStation
            && self.station.as_deref() == Some(station)
    }

    /// Whether this is a device of `kind` in `pizzeria_id`.
    pub fn is_kind(&self, pizzeria_id: Uuid, kind: DeviceKind) -> bool {
        self.pizzeria_id == pizzeria_id && self.kind == kind
    }
}

/// Where a request came from: forwarded to introspection so the devices service can show a
/// device's last IP and user agent, and recorded by the services themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The client behind the trusted proxies (see `service_kit::client`), and its user agent
    /// cut to 200 characters.
    pub fn of(req: &HttpRequest, trusted_proxies: &TrustedProxies) -> Self {
        ClientInfo {
            ip: trusted_proxies.client_address(req),
            user_agent: service_kit::client::user_agent(req),
        }
    }
}

/// The devices service's `POST /internal/v1/introspect` body: the token and the end client the
/// calling service saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceIntrospectionRequest {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientInfo>,
}

/// `{"active": false}` for a token that is unknown or revoked; otherwise `active` and the
/// device's binding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceIntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device_id: Uuid,
    pub pizzeria_id: Uuid,
    /// A kind name; one this build does not know makes the device inactive here.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_mode: Option<String>,
}

impl From<&DevicePrincipal> for DeviceInfo {
    fn from(d: &DevicePrincipal) -> Self {
        DeviceInfo {
            device_id: d.device_id,
            pizzeria_id: d.pizzeria_id,
            kind: d.kind.as_str().to_owned(),
            station: d.station.clone(),
            name: d.name.clone(),
            language: d.language.clone(),
            board_mode: d.board_mode.clone(),
        }
    }
}

impl DeviceInfo {
    /// The principal, unless the kind is one this build does not know (a newer devices
    /// service): such a device gets no access here rather than the wrong access.
    pub fn into_principal(self) -> Option<DevicePrincipal> {
        Some(DevicePrincipal {
            kind: DeviceKind::parse(&self.kind)?,
            device_id: self.device_id,
            pizzeria_id: self.pizzeria_id,
            station: self.station,
            name: self.name,
            language: self.language,
            board_mode: self.board_mode,
        })
    }
}

/// What a service puts in its config to check device tokens, e.g.
///
/// ```toml
/// [device_access]
/// devices_url = "http://127.0.0.1:8084"
/// introspection_key = "..."   # APP_DEVICE_ACCESS__INTROSPECTION_KEY
/// cache_ttl_ms = 10000
/// ```
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAccessSettings {
    /// The devices service's base URL.
    pub devices_url: String,
    /// The key the devices service expects on `/internal/v1/introspect`.
    pub introspection_key: SecretString,
    /// How long an answer may be reused; revocations arrive as events and evict at once. A
    /// device's last-seen time is recorded on each introspection, so at this granularity.
    #[serde(default = "default_cache_ttl_ms")]
    pub cache_ttl_ms: u64,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
    /// The proxies (the web, a load balancer) whose `X-Forwarded-For` is believed when the
    /// device's IP is forwarded to introspection; empty: the peer address.
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
}

/// Checks device tokens. Cheap to clone: every clone shares the cache.
#[derive(Clone)]
pub struct DeviceVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    introspector: Introspector,
    cache: LeasedCache<DevicePrincipal>,
    trusted_proxies: TrustedProxies,
}

impl DeviceVerifier {
    pub fn new(settings: &DeviceAccessSettings) -> Result<Self, AccessError> {
        Ok(DeviceVerifier {
            inner: Arc::new(Inner {
                introspector: Introspector::new(
                    &settings.devices_url,
                    settings.introspection_key.clone(),
                    Duration::from_millis(settings.request_timeout_ms),
                )?,
                cache: LeasedCache::new(
                    Duration::from_millis(settings.cache_ttl_ms),
                    settings.cache_capacity,
                ),
                trusted_proxies: settings.trusted_proxies.clone(),
            }),
        })
    }

    /// The device `token` belongs to: `Ok(None)` for a token that is not a device token, or is
    /// unknown or revoked. `client` is the end client, recorded as the device's last IP and
    /// user agent when the devices service is asked (not on a cache hit).
    pub async fn verify(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Option<Arc<DevicePrincipal>>, AccessError> {
        if !is_device_token(token) {
            return Ok(None);
        }
        let key = token_digest(token);
        let generation = match self.inner.cache.lookup(&key) {
            Lookup::Hit(device) => return Ok(device),
            Lookup::Miss { generation } => generation,
        };
        let answer: DeviceIntrospectionResponse = self
            .inner
            .introspector
            .ask(&DeviceIntrospectionRequest {
                token: token.to_owned(),
                client: Some(client.clone()),
            })
            .await?;
        let device = match (answer.active, answer.device) {
            (true, Some(device)) => device.into_principal().map(Arc::new),
            _ => None,
        };
        self.inner
            .cache
            .store(key, generation, device.clone(), None);
        Ok(device)
    }

    /// The client of `req` as this verifier is configured to see it.
    pub fn client_of(&self, req: &HttpRequest) -> ClientInfo {
        ClientInfo::of(req, &self.inner.trusted_proxies)
    }

    /// Forgets the cached answer for `device_id`: what a rename or a revocation means.
    pub fn invalidate_device(&self, device_id: Uuid) {
        self.inner.cache.evict(|d| d.device_id == device_id);
    }

    pub fn invalidate_all(&self) {
        self.inner.cache.clear();
    }

    /// Whether answers are being cached right now (the subscription holds its lease).
    pub fn cache_in_use(&self) -> bool {
        self.inner.cache.in_use()
    }

    pub fn cached_entries(&self) -> usize {
        self.inner.cache.len()
    }

    pub(crate) fn cache_lease(&self) -> &LeasedCache<DevicePrincipal> {
        &self.inner.cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_only_tablets_have_a_station() {
        for k in DeviceKind::ALL {
            assert_eq!(DeviceKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap_or_default(),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(DeviceKind::parse("toaster"), None);
        let with_station: Vec<_> = DeviceKind::ALL
            .into_iter()
            .filter(|k| k.has_station())
            .collect();
        assert_eq!(with_station, vec![DeviceKind::KitchenStation]);
    }

    #[test]
    fn an_unknown_kind_gives_no_principal() {
        let info = DeviceInfo {
            device_id: Uuid::new_v4(),
            pizzeria_id: Uuid::new_v4(),
            kind: "hologram".into(),
            station: None,
            name: "H".into(),
            language: Some("ru".into()),
            board_mode: None,
        };
        assert!(info.clone().into_principal().is_none());
        let tablet = DeviceInfo {
            kind: "kitchen_station".into(),
            station: Some("oven".into()),
            ..info
        }
        .into_principal()
        .unwrap_or_else(|| panic!("a tablet"));
        assert!(tablet.is_station(tablet.pizzeria_id, "oven"));
        assert!(!tablet.is_station(tablet.pizzeria_id, "dough"));
        assert!(!tablet.is_station(Uuid::new_v4(), "oven"));
        assert_eq!(DeviceInfo::from(&tablet).kind, "kitchen_station");
    }
}
