//! The order sources that may place orders over HTTP, and their keys. Over the bus a source is
//! trusted as the publisher of its message; over HTTP it proves itself with
//! `Authorization: Bearer <key>`. The settings hold only the SHA-256 of each key, so a leaked
//! config file lets nobody place orders.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The keys of every order source, parsed from the settings (`[order_sources]`: a source's
/// name and the hex SHA-256 of its key; several digests, comma-separated, while a key is
/// rotated; an empty value turns the source off).
#[derive(Debug, Clone)]
pub struct SourceKeys {
    /// (source, digest) for every key.
    digests: Vec<(String, [u8; 32])>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceKeyError {
    #[error("order_sources.{0}: a source name must be 1 to 32 characters of a-z, 0-9, - or _")]
    BadName(String),
    #[error("order_sources.{0}: each key must be given as 64 hex digits (its SHA-256)")]
    BadDigest(String),
}

impl SourceKeys {
    pub fn parse(settings: &BTreeMap<String, String>) -> Result<Self, SourceKeyError> {
        let mut digests = Vec::new();
        for (source, value) in settings {
            let name_ok = (1..=32).contains(&source.len())
                && source.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !name_ok {
                return Err(SourceKeyError::BadName(source.clone()));
            }
            for digest in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(digest, &mut bytes)
                    .map_err(|_| SourceKeyError::BadDigest(source.clone()))?;
                digests.push((source.clone(), bytes));
            }
        }
        Ok(SourceKeys { digests })
    }

    /// The source `key` belongs to, if any. Every stored digest is compared, each in constant
    /// time, so how long this takes says nothing about which digest came close.
    pub fn source_of(&self, key: &str) -> Option<&str> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for (source, digest) in &self.digests {
            if constant_time_eq(&presented, digest) && found.is_none() {
                found = Some(source.as_str());
            }
        }
        found
    }

    /// Whether any source can place orders over HTTP at all.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    fn settings(entries: &[(&str, String)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_key_names_its_source_and_rotation_keeps_both_keys() {
        let keys = SourceKeys::parse(&settings(&[
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
        ]))
        .unwrap();
        assert_eq!(keys.source_of("till-key"), Some("cashier"));
        assert_eq!(keys.source_of("old-site-key"), Some("site"));
        assert_eq!(keys.source_of("new-site-key"), Some("site"));
        assert_eq!(keys.source_of("till-key "), None);
        assert_eq!(keys.source_of(""), None);
        assert_eq!(
            keys.source_of(&digest_of("till-key")),
            None,
            "the digest is no key"
        );
        assert!(!keys.is_empty());
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            SourceKeys::parse(&settings(&[("cashier", "abc".into())])).unwrap_err(),
            SourceKeyError::BadDigest("cashier".into())
        );
        assert_eq!(
            SourceKeys::parse(&settings(&[("Cashier!", digest_of("k"))])).unwrap_err(),
            SourceKeyError::BadName("Cashier!".into())
        );
        assert!(SourceKeys::parse(&BTreeMap::new()).unwrap().is_empty());
    }
}
