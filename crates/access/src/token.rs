//! What staff session and device tokens look like, and the digest under which they are stored
//! and cached.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRngCore, rngs::OsRng};
use sha2::{Digest, Sha256};

/// Staff session tokens start with this, so a service can tell them from device tokens
/// before asking anyone.
pub const STAFF_TOKEN_PREFIX: &str = "kst_";

/// Device tokens (station tablets, TV boards) start with this.
pub const DEVICE_TOKEN_PREFIX: &str = "kdt_";

/// Whether `token` could be a staff token at all: the prefix and a sane length. Anything else
/// is refused without a network round trip.
pub fn is_staff_token(token: &str) -> bool {
    looks_like(token, STAFF_TOKEN_PREFIX)
}

/// Whether `token` could be a device token at all, by the same rules.
pub fn is_device_token(token: &str) -> bool {
    looks_like(token, DEVICE_TOKEN_PREFIX)
}

fn looks_like(token: &str, prefix: &str) -> bool {
    token.starts_with(prefix)
        && (prefix.len() + 16..=256).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_graphic())
}

/// `bytes` random bytes from the OS random source, base64url without padding: the body of a
/// new token or device code.
pub fn random_url_safe(bytes: usize) -> Result<String, rand::rand_core::OsError> {
    let mut buf = vec![0u8; bytes];
    OsRng.try_fill_bytes(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// SHA-256 of the token. The auth database keeps only this, and the cache is keyed by it, so
/// neither holds a usable token. A plain hash is enough because the token has 256 random bits:
/// there is nothing to brute-force.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_staff_tokens() {
        assert!(is_staff_token(
            "kst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(!is_staff_token(
            "kdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(!is_staff_token("kst_short"));
        assert!(!is_staff_token(
            "kst_AAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(!is_staff_token(&format!("kst_{}", "A".repeat(300))));
        assert!(is_device_token(
            "kdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(!is_device_token(
            "kst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
    }

    #[test]
    fn the_digest_is_sha256() {
        assert_eq!(
            hex_of(&token_digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn random_text_is_url_safe_and_fresh() {
        let a = random_url_safe(32).unwrap_or_default();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(a, random_url_safe(32).unwrap_or_default());
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
