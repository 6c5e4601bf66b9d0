//! [`StaffVerifier`]: token in, principal out, through the auth service's introspection and a
//! short cache that is only trusted while the bus subscription proves it is connected.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    cache::{Introspector, LeasedCache, Lookup},
    principal::{IntrospectionRequest, IntrospectionResponse, StaffPrincipal},
    token::{is_staff_token, token_digest},
};

/// The header that carries the service key on introspection requests.
pub const INTROSPECTION_KEY_HEADER: &str = "x-introspection-key";

/// Whether `req` carries `key` in [`INTROSPECTION_KEY_HEADER`]: the check an introspection
/// endpoint makes. Both sides are hashed before comparing, so the comparison takes the same
/// time whatever the caller sent. An empty key matches nothing: otherwise a service configured
/// without a key would take a request without the header as carrying it.
pub fn has_service_key(req: &actix_web::HttpRequest, key: &SecretString) -> bool {
    use secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};
    let Some(sent) = req.headers().get(INTROSPECTION_KEY_HEADER) else {
        return false;
    };
    let key = key.expose_secret().as_bytes();
    !key.is_empty() && Sha256::digest(sent.as_bytes()) == Sha256::digest(key)
}

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

pub(crate) fn default_cache_ttl_ms() -> u64 {
    10_000
}

pub(crate) fn default_request_timeout_ms() -> u64 {
    2_000
}

pub(crate) fn default_cache_capacity() -> usize {
    100_000
}

/// Why a token could not be checked. Not "the token is bad" (that is `Ok(None)`): the service
/// that owns the token (auth for staff, devices for devices) could not answer, so the caller
/// should answer 503, never let the request through.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the introspecting service could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the introspecting service answered {0}")]
    BadAnswer(String),
}

/// Checks staff tokens. Cheap to clone: every clone shares the cache.
#[derive(Clone)]
pub struct StaffVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    introspector: Introspector,
    /// Auth's `/internal/v1/users/status`, behind the same key.
    users: Introspector,
    cache: LeasedCache<StaffPrincipal>,
}

impl StaffVerifier {
    pub fn new(settings: &AccessSettings) -> Result<Self, AccessError> {
        Ok(StaffVerifier {
            inner: Arc::new(Inner {
                introspector: Introspector::new(
                    &settings.auth_url,
                    settings.introspection_key.clone(),
                    Duration::from_millis(settings.request_timeout_ms),
                )?,
                users: Introspector::at(
                    &settings.auth_url,
                    "/internal/v1/users/status",
                    settings.introspection_key.clone(),
                    Duration::from_millis(settings.request_timeout_ms),
                )?,
                cache: LeasedCache::new(
                    Duration::from_millis(settings.cache_ttl_ms),
                    settings.cache_capacity,
                ),
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
        let generation = match self.inner.cache.lookup(&key) {
            Lookup::Hit(principal) => return Ok(principal),
            Lookup::Miss { generation } => generation,
        };
        let principal = self.introspect(token).await?.map(Arc::new);
        // Never cached past the session's own end.
        let left = principal.as_ref().map(|p| {
            (p.expires_at - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        });
        self.inner
            .cache
            .store(key, generation, principal.clone(), left);
        Ok(principal)
    }

    /// Which of `user_ids` are still active, asked of auth (never cached: it is for showing
    /// people, not for checking requests). Users auth does not know are left out.
    pub async fn users_active(
        &self,
        user_ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, bool>, AccessError> {
        let answer: crate::UserStatusResponse = self
            .inner
            .users
            .ask(&crate::UserStatusRequest {
                user_ids: user_ids.to_vec(),
            })
            .await?;
        Ok(answer
            .users
            .into_iter()
            .map(|u| (u.user_id, u.active))
            .collect())
    }

    async fn introspect(&self, token: &str) -> Result<Option<StaffPrincipal>, AccessError> {
        let answer: IntrospectionResponse = self
            .inner
            .introspector
            .ask(&IntrospectionRequest {
                token: token.to_owned(),
            })
            .await?;
        Ok(match (answer.active, answer.session) {
            (true, Some(session)) => Some(session.into()),
            _ => None,
        })
    }

    /// Forgets every cached session of `user_id`: what a role change, a deactivation or a
    /// revoked session means for the cache.
    pub fn invalidate_user(&self, user_id: Uuid) {
        self.inner.cache.evict(|p| p.user_id == user_id);
    }

    /// Forgets everything.
    pub fn invalidate_all(&self) {
        self.inner.cache.clear();
    }

    /// Whether answers are being cached right now (the subscription holds its lease).
    pub fn cache_in_use(&self) -> bool {
        self.inner.cache.in_use()
    }

    /// How many answers are cached.
    pub fn cached_entries(&self) -> usize {
        self.inner.cache.len()
    }

    pub(crate) fn cache_lease(&self) -> &LeasedCache<StaffPrincipal> {
        &self.inner.cache
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_service_key_must_be_sent_and_an_empty_one_opens_nothing() {
        let key = SecretString::from("a-real-key");
        let with = |sent: &str| {
            TestRequest::default()
                .insert_header((INTROSPECTION_KEY_HEADER, sent))
                .to_http_request()
        };
        assert!(has_service_key(&with("a-real-key"), &key));
        assert!(!has_service_key(&with("another-key"), &key));
        assert!(!has_service_key(
            &TestRequest::default().to_http_request(),
            &key
        ));
        let empty = SecretString::from("");
        assert!(!has_service_key(
            &TestRequest::default().to_http_request(),
            &empty
        ));
        assert!(!has_service_key(&with(""), &empty));
    }
}
