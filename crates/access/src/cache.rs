//! What [`StaffVerifier`](crate::StaffVerifier) and [`DeviceVerifier`](crate::DeviceVerifier)
//! share: the introspection call to the service that owns the tokens, and a short cache of its
//! answers that is only used under the lease of a bus subscription ([`crate::CacheInvalidation`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, de::DeserializeOwned};

use crate::verifier::{AccessError, INTROSPECTION_KEY_HEADER};

/// `POST <base>/internal/v1/introspect` (or another internal path) with the service key, JSON
/// in and out.
pub(crate) struct Introspector {
    http: reqwest::Client,
    url: String,
    key: SecretString,
}

impl Introspector {
    pub(crate) fn new(
        base_url: &str,
        key: SecretString,
        timeout: Duration,
    ) -> Result<Self, AccessError> {
        Self::at(base_url, "/internal/v1/introspect", key, timeout)
    }

    pub(crate) fn at(
        base_url: &str,
        path: &str,
        key: SecretString,
        timeout: Duration,
    ) -> Result<Self, AccessError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(AccessError::Unreachable)?;
        Ok(Introspector {
            http,
            url: format!("{}{path}", base_url.trim_end_matches('/')),
            key,
        })
    }

    pub(crate) async fn ask<Q: Serialize, A: DeserializeOwned>(
        &self,
        question: &Q,
    ) -> Result<A, AccessError> {
        let response = self
            .http
            .post(&self.url)
            .header(INTROSPECTION_KEY_HEADER, self.key.expose_secret())
            .json(question)
            .send()
            .await
            .map_err(AccessError::Unreachable)?;
        if !response.status().is_success() {
            return Err(AccessError::BadAnswer(response.status().to_string()));
        }
        response
            .json()
            .await
            .map_err(|e| AccessError::BadAnswer(format!("an unreadable body ({e})")))
    }
}

/// Answers keyed by the token's SHA-256, negative ones included (an unknown token never
/// becomes valid). Read and written only while a lease is held.
pub(crate) struct LeasedCache<V> {
    ttl: Duration,
    capacity: usize,
    state: Mutex<State<V>>,
}

struct State<V> {
    entries: HashMap<[u8; 32], Entry<V>>,
    /// Bumped by every invalidation, so a lookup that started before an invalidation does not
    /// store its (possibly stale) answer after it.
    generation: u64,
    /// Until when the bus subscription has proven itself connected.
    lease_until: Option<Instant>,
}

struct Entry<V> {
    value: Option<Arc<V>>,
    until: Instant,
}

impl<V> State<V> {
    fn usable(&self, now: Instant) -> bool {
        self.lease_until.is_some_and(|until| now < until)
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.generation += 1;
    }
}

/// What a lookup found: a cached answer, or a miss to be filled with [`LeasedCache::store`].
pub(crate) enum Lookup<V> {
    Hit(Option<Arc<V>>),
    Miss { generation: u64 },
}

impl<V> LeasedCache<V> {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        LeasedCache {
            ttl,
            capacity: capacity.max(1),
            state: Mutex::new(State {
                entries: HashMap::new(),
                generation: 0,
                lease_until: None,
            }),
        }
    }

    pub(crate) fn lookup(&self, key: &[u8; 32]) -> Lookup<V> {
        let now = Instant::now();
        let state = self.state();
        if state.usable(now)
            && let Some(entry) = state.entries.get(key)
            && now < entry.until
        {
            return Lookup::Hit(entry.value.clone());
        }
        Lookup::Miss {
            generation: state.generation,
        }
    }

    /// Stores an answer fetched after a miss, for the TTL but never longer than `at_most`, and
    /// only if nothing was invalidated since the miss and the lease still holds.
    pub(crate) fn store(
        &self,
        key: [u8; 32],
        generation: u64,
        value: Option<Arc<V>>,
        at_most: Option<Duration>,
    ) {
        let now = Instant::now();
        let mut state = self.state();
        if !state.usable(now) || state.generation != generation {
            return;
        }
        let until = now + at_most.map_or(self.ttl, |d| d.min(self.ttl));
        if state.entries.len() >= self.capacity {
            state.entries.retain(|_, e| now < e.until);
            if state.entries.len() >= self.capacity {
                state.entries.clear();
            }
        }
        state.entries.insert(key, Entry { value, until });
    }

    /// Forgets every positive answer `stale` says is stale.
    pub(crate) fn evict(&self, stale: impl Fn(&V) -> bool) {
        let mut state = self.state();
        state
            .entries
            .retain(|_, e| e.value.as_deref().is_none_or(|v| !stale(v)));
        state.generation += 1;
    }

    pub(crate) fn clear(&self) {
        self.state().clear();
    }

    pub(crate) fn in_use(&self) -> bool {
        self.state().usable(Instant::now())
    }

    pub(crate) fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// After a lapse the cache starts empty, because events may have been missed.
    pub(crate) fn renew_lease(&self, until: Instant) {
        let mut state = self.state();
        if !state.usable(Instant::now()) {
            state.clear();
        }
        state.lease_until = Some(until);
    }

    pub(crate) fn end_lease(&self) {
        let mut state = self.state();
        state.lease_until = None;
        state.clear();
    }

    fn state(&self) -> MutexGuard<'_, State<V>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (entries are independent), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(cache: &LeasedCache<u32>, key: &[u8; 32]) -> Option<Option<u32>> {
        match cache.lookup(key) {
            Lookup::Hit(v) => Some(v.as_deref().copied()),
            Lookup::Miss { .. } => None,
        }
    }

    fn generation(cache: &LeasedCache<u32>, key: &[u8; 32]) -> u64 {
        match cache.lookup(key) {
            Lookup::Hit(_) => panic!("expected a miss"),
            Lookup::Miss { generation } => generation,
        }
    }

    #[test]
    fn without_a_lease_nothing_is_stored() {
        let cache = LeasedCache::new(Duration::from_secs(10), 10);
        let g = generation(&cache, &[1; 32]);
        cache.store([1; 32], g, Some(Arc::new(7)), None);
        assert_eq!(hit(&cache, &[1; 32]), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn an_invalidation_in_flight_wins() {
        let cache = LeasedCache::new(Duration::from_secs(10), 10);
        cache.renew_lease(Instant::now() + Duration::from_secs(5));
        let g = generation(&cache, &[1; 32]);
        cache.evict(|v: &u32| *v == 7);
        cache.store([1; 32], g, Some(Arc::new(7)), None);
        assert_eq!(hit(&cache, &[1; 32]), None);
        let g = generation(&cache, &[1; 32]);
        cache.store([1; 32], g, Some(Arc::new(7)), None);
        cache.store([2; 32], g, None, None);
        assert_eq!(hit(&cache, &[1; 32]), Some(Some(7)));
        assert_eq!(hit(&cache, &[2; 32]), Some(None));
        cache.evict(|v| *v == 7);
        assert_eq!(hit(&cache, &[1; 32]), None);
        assert_eq!(hit(&cache, &[2; 32]), Some(None), "negative answers stay");
        cache.end_lease();
        assert_eq!(cache.len(), 0);
        assert!(!cache.in_use());
    }
}
