//! [`StaffVerifier`]: token in, principal out, through the auth service's introspection and a
//! short cache that is only trusted while the bus subscription proves it is connected.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    principal::{IntrospectionRequest, IntrospectionResponse, StaffPrincipal},
    token::{is_staff_token, token_digest},
};

/// The header that carries the service key on introspection requests.
pub const INTROSPECTION_KEY_HEADER: &str = "x-introspection-key";

/// What a service puts in its config to check staff tokens, e.g.
///
/// ```toml
/// [access]
/// auth_url = "http://127.0.0.1:8083"
/// introspection_key = "..."   # APP_ACCESS__INTROSPECTION_KEY
/// cache_ttl_ms = 10000
/// ```
#[derive(Debug, Clone, Deserialize)]
pub struct AccessSettings {
    /// The auth service's base URL.
    pub auth_url: String,
    /// The key the auth service expects on `/internal/v1/introspect`.
    pub introspection_key: SecretString,
    /// How long an answer may be reused. Revocations do not wait for it: they arrive as events
    /// and evict at once. It bounds staleness only if auth could not publish an event at all.
    #[serde(default = "default_cache_ttl_ms")]
    pub cache_ttl_ms: u64,
    /// How long one introspection may take before the request fails with a 503.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// At most this many tokens are cached; beyond it the cache starts over.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
}

fn default_cache_ttl_ms() -> u64 {
    10_000
}

fn default_request_timeout_ms() -> u64 {
    2_000
}

fn default_cache_capacity() -> usize {
    100_000
}

/// Why a token could not be checked. Not "the token is bad" (that is `Ok(None)`): the auth
/// service could not answer, so the caller should answer 503, never let the request through.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the auth service could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the auth service answered {0}")]
    BadAnswer(String),
}

/// Checks staff tokens. Cheap to clone: every clone shares the cache.
#[derive(Clone)]
pub struct StaffVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    introspect_url: String,
    key: SecretString,
    ttl: Duration,
    capacity: usize,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], Entry>,
    /// Bumped by every invalidation, so an introspection that started before an invalidation
    /// does not store its (possibly stale) answer after it.
    generation: u64,
    /// Until when the bus subscription has proven itself connected. The cache is read and
    /// written only before this instant.
    lease_until: Option<Instant>,
}

struct Entry {
    principal: Option<Arc<StaffPrincipal>>,
    until: Instant,
}

impl Cache {
    fn usable(&self, now: Instant) -> bool {
        self.lease_until.is_some_and(|until| now < until)
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.generation += 1;
    }
}

impl StaffVerifier {
    pub fn new(settings: &AccessSettings) -> Result<Self, AccessError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .build()
            .map_err(AccessError::Unreachable)?;
        Ok(StaffVerifier {
            inner: Arc::new(Inner {
                http,
                introspect_url: format!(
                    "{}/internal/v1/introspect",
                    settings.auth_url.trim_end_matches('/')
                ),
                key: settings.introspection_key.clone(),
                ttl: Duration::from_millis(settings.cache_ttl_ms),
                capacity: settings.cache_capacity.max(1),
                cache: Mutex::default(),
            }),
        })
    }

    /// Who `token` belongs to: `Ok(None)` for a token that is not a staff token, or is unknown,
    /// expired or revoked, or whose user is deactivated.
    pub async fn verify(&self, token: &str) -> Result<Option<Arc<StaffPrincipal>>, AccessError> {
        if !is_staff_token(token) {
            return Ok(None);
        }
        let key = token_digest(token);
        let generation = {
            let now = Instant::now();
            let cache = self.cache();
            if cache.usable(now)
                && let Some(entry) = cache.entries.get(&key)
                && now < entry.until
            {
                return Ok(entry.principal.clone());
            }
            cache.generation
        };
        let principal = self.introspect(token).await?.map(Arc::new);
        let now = Instant::now();
        let mut cache = self.cache();
        if cache.usable(now) && cache.generation == generation {
            let mut until = now + self.inner.ttl;
            if let Some(p) = &principal {
                // Never past the session's own end.
                let left = (p.expires_at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default();
                until = until.min(now + left);
            }
            if cache.entries.len() >= self.inner.capacity {
                cache.entries.retain(|_, e| now < e.until);
                if cache.entries.len() >= self.inner.capacity {
                    cache.entries.clear();
                }
            }
            cache.entries.insert(
                key,
                Entry {
                    principal: principal.clone(),
                    until,
                },
            );
        }
        Ok(principal)
    }

    async fn introspect(&self, token: &str) -> Result<Option<StaffPrincipal>, AccessError> {
        let response = self
            .inner
            .http
            .post(&self.inner.introspect_url)
            .header(INTROSPECTION_KEY_HEADER, self.inner.key.expose_secret())
            .json(&IntrospectionRequest {
                token: token.to_owned(),
            })
            .send()
            .await
            .map_err(AccessError::Unreachable)?;
        if !response.status().is_success() {
            return Err(AccessError::BadAnswer(response.status().to_string()));
        }
        let answer: IntrospectionResponse = response
            .json()
            .await
            .map_err(|e| AccessError::BadAnswer(format!("an unreadable body ({e})")))?;
        Ok(match (answer.active, answer.session) {
            (true, Some(session)) => Some(session.into()),
            _ => None,
        })
    }

    /// Forgets every cached session of `user_id`: what a role change, a deactivation or a
    /// revoked session means for the cache.
    pub fn invalidate_user(&self, user_id: Uuid) {
        let mut cache = self.cache();
        cache
            .entries
            .retain(|_, e| e.principal.as_ref().is_none_or(|p| p.user_id != user_id));
        cache.generation += 1;
    }

    /// Forgets everything.
    pub fn invalidate_all(&self) {
        self.cache().clear();
    }

    /// Whether answers are being cached right now (the subscription holds its lease).
    pub fn cache_in_use(&self) -> bool {
        self.cache().usable(Instant::now())
    }

    /// How many answers are cached.
    pub fn cached_entries(&self) -> usize {
        self.cache().entries.len()
    }

    /// Called by the subscription after it proved its connection: the cache may be used until
    /// `until`. After a lapse the cache starts empty, because events may have been missed.
    pub(crate) fn renew_lease(&self, until: Instant) {
        let mut cache = self.cache();
        if !cache.usable(Instant::now()) {
            cache.clear();
        }
        cache.lease_until = Some(until);
    }

    /// Called by the subscription when it loses its connection: bypass the cache from now on.
    pub(crate) fn end_lease(&self) {
        let mut cache = self.cache();
        cache.lease_until = None;
        cache.clear();
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (entries are independent), so a poisoned lock is still usable.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
