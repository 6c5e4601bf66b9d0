//! The order sources that may place orders over HTTP, and their keys. Over the bus a source is
//! trusted as the publisher of its message; over HTTP it proves itself with
//! `Authorization: Bearer <key>`. The settings hold only the SHA-256 of each key, so a leaked
//! config file lets nobody place orders. Each source's keys serve only the pizzerias configured
//! for it (`[order_source_pizzerias]`), so the till of one pizzeria cannot place orders in
//! another, and each key has its own rate limit (`[intake_rate]`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use service_kit::rate::{RateLimit, RateSettings};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The keys of every order source, parsed from the settings (`[order_sources]`: a source's
/// name and the hex SHA-256 of its key; several digests, comma-separated, while a key is
/// rotated; an empty value turns the source off; `[order_source_pizzerias]`: the same name and
/// the pizzeria ids its keys serve, comma-separated, or `*` for every pizzeria).
#[derive(Clone)]
pub struct SourceKeys {
    keys: Vec<Arc<SourceKey>>,
}

/// One intake key: whose it is, where it may place orders, and its own rate limit.
pub struct SourceKey {
    pub source: String,
    digest: [u8; 32],
    pizzerias: Pizzerias,
    rate: RateLimit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pizzerias {
    /// A source the whole chain sells through: the website, the contact centre.
    Every,
    Only(BTreeSet<Uuid>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceKeyError {
    #[error("order_sources.{0}: a source name must be 1 to 32 characters of a-z, 0-9, - or _")]
    BadName(String),
    #[error("order_sources.{0}: each key must be given as 64 hex digits (its SHA-256)")]
    BadDigest(String),
    #[error(
        "order_source_pizzerias.{0}: must list the pizzeria ids (UUIDs) the source's keys serve, \
         comma-separated, or be * for every pizzeria"
    )]
    BadPizzerias(String),
    #[error(
        "order_sources.{0} has a key but order_source_pizzerias.{0} names no pizzeria: list the \
         pizzerias its keys serve (or * for every pizzeria)"
    )]
    Unbound(String),
}

impl SourceKeys {
    pub fn parse(
        settings: &BTreeMap<String, String>,
        pizzerias: &BTreeMap<String, String>,
        rate: RateSettings,
    ) -> Result<Self, SourceKeyError> {
        let mut keys = Vec::new();
        for (source, value) in settings {
            let name_ok = (1..=32).contains(&source.len())
                && source.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !name_ok {
                return Err(SourceKeyError::BadName(source.clone()));
            }
            let digests: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .collect();
            if digests.is_empty() {
                continue;
            }
            let serves = parse_pizzerias(source, pizzerias.get(source))?;
            for digest in digests {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(digest, &mut bytes)
                    .map_err(|_| SourceKeyError::BadDigest(source.clone()))?;
                keys.push(Arc::new(SourceKey {
                    source: source.clone(),
                    digest: bytes,
                    pizzerias: serves.clone(),
                    rate: RateLimit::new(rate),
                }));
            }
        }
        Ok(SourceKeys { keys })
    }

    /// The key `key` is, if any. Every stored digest is compared, each in constant time, so
    /// how long this takes says nothing about which digest came close.
    pub fn source_of(&self, key: &str) -> Option<Arc<SourceKey>> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for stored in &self.keys {
            if constant_time_eq(&presented, &stored.digest) && found.is_none() {
                found = Some(Arc::clone(stored));
            }
        }
        found
    }

    /// Whether any source can place orders over HTTP at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl SourceKey {
    /// Whether this key may place orders in `pizzeria_id`.
    pub fn serves(&self, pizzeria_id: Uuid) -> bool {
        match &self.pizzerias {
            Pizzerias::Every => true,
            Pizzerias::Only(ids) => ids.contains(&pizzeria_id),
        }
    }

    /// Takes one request from this key's budget, or says how long until there is one.
    pub fn take(&self) -> Result<(), Duration> {
        self.rate.take()
    }
}

impl std::fmt::Debug for SourceKey {
    // The digest stays out of logs: it is not the key, but it need not be spread around.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceKey")
            .field("source", &self.source)
            .field("pizzerias", &self.pizzerias)
            .finish_non_exhaustive()
    }
}

fn parse_pizzerias(source: &str, value: Option<&String>) -> Result<Pizzerias, SourceKeyError> {
    let value = value.map(|v| v.trim()).unwrap_or_default();
    if value == "*" {
        return Ok(Pizzerias::Every);
    }
    let ids = value
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| Uuid::try_parse(id).map_err(|_| SourceKeyError::BadPizzerias(source.to_owned())))
        .collect::<Result<BTreeSet<Uuid>, _>>()?;
    if ids.is_empty() {
        return Err(SourceKeyError::Unbound(source.to_owned()));
    }
    Ok(Pizzerias::Only(ids))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);
    const C: Uuid = Uuid::from_u128(0xc);

    fn digest_of(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    fn settings(entries: &[(&str, String)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn rate() -> RateSettings {
        RateSettings {
            per_second: 1.0 / 3600.0,
            burst: 2,
        }
    }

    fn everywhere(sources: &[&str]) -> BTreeMap<String, String> {
        sources
            .iter()
            .map(|s| ((*s).to_owned(), "*".into()))
            .collect()
    }

    #[test]
    fn a_key_names_its_source_and_rotation_keeps_both_keys() {
        let keys = SourceKeys::parse(
            &settings(&[
                ("cashier", digest_of("till-key")),
                (
                    "site",
                    format!(
                        "{}, {}",
                        digest_of("old-site-key"),
                        digest_of("new-site-key")
                    ),
                ),
                ("contact-centre", String::new()),
            ]),
            &everywhere(&["cashier", "site"]),
            rate(),
        )
        .unwrap();
        let source = |key: &str| keys.source_of(key).map(|k| k.source.clone());
        assert_eq!(source("till-key").as_deref(), Some("cashier"));
        assert_eq!(source("old-site-key").as_deref(), Some("site"));
        assert_eq!(source("new-site-key").as_deref(), Some("site"));
        assert_eq!(source("till-key "), None);
        assert_eq!(source(""), None);
        assert_eq!(source(&digest_of("till-key")), None, "the digest is no key");
        assert!(!keys.is_empty());
    }

    #[test]
    fn a_key_serves_only_its_pizzerias() {
        let keys = SourceKeys::parse(
            &settings(&[("till-ab", digest_of("ab")), ("site", digest_of("site"))]),
            &settings(&[
                ("till-ab", format!("{A}, {B}")),
                ("site", " * ".into()),
                ("unused", "not even a uuid".into()),
            ]),
            rate(),
        )
        .unwrap();
        let till = keys.source_of("ab").unwrap();
        assert!(till.serves(A) && till.serves(B));
        assert!(!till.serves(C));
        assert!(keys.source_of("site").unwrap().serves(C));
    }

    #[test]
    fn each_key_has_its_own_rate_limit() {
        let keys = SourceKeys::parse(
            &settings(&[("a", digest_of("a")), ("b", digest_of("b"))]),
            &everywhere(&["a", "b"]),
            rate(),
        )
        .unwrap();
        let a = keys.source_of("a").unwrap();
        assert!(a.take().is_ok() && a.take().is_ok());
        let wait = a.take().expect_err("the burst is spent");
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        // The same key found again shares its budget; another key has its own.
        assert!(keys.source_of("a").unwrap().take().is_err());
        assert!(keys.source_of("b").unwrap().take().is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let parse = |keys: &[(&str, String)], pizzerias: &[(&str, String)]| {
            SourceKeys::parse(&settings(keys), &settings(pizzerias), rate()).map(|_| ())
        };
        assert_eq!(
            parse(&[("cashier", "abc".into())], &[("cashier", "*".into())]),
            Err(SourceKeyError::BadDigest("cashier".into()))
        );
        assert_eq!(
            parse(&[("Cashier!", digest_of("k"))], &[]),
            Err(SourceKeyError::BadName("Cashier!".into()))
        );
        // A key must say where it serves: nothing is not "everywhere".
        assert_eq!(
            parse(&[("cashier", digest_of("k"))], &[]),
            Err(SourceKeyError::Unbound("cashier".into()))
        );
        assert_eq!(
            parse(&[("cashier", digest_of("k"))], &[("cashier", " ".into())]),
            Err(SourceKeyError::Unbound("cashier".into()))
        );
        assert_eq!(
            parse(
                &[("cashier", digest_of("k"))],
                &[("cashier", "A, B".into())]
            ),
            Err(SourceKeyError::BadPizzerias("cashier".into()))
        );
        // A source turned off needs no pizzerias.
        assert_eq!(parse(&[("cashier", String::new())], &[]), Ok(()));
        assert!(
            SourceKeys::parse(&BTreeMap::new(), &BTreeMap::new(), rate())
                .unwrap()
                .is_empty()
        );
    }
}
