//! Device codes, user codes and device tokens, all from the OS random source.

use anyhow::Context;
use rand::{TryRngCore, rngs::OsRng};

use crate::domain::{DeviceCode, USER_CODE_ALPHABET, USER_CODE_LENGTH, UserCode};

/// 256 random bits: far more than the 128 RFC 8628 asks of a device code.
pub fn new_device_code() -> anyhow::Result<DeviceCode> {
    let text = access::random_url_safe(32).context("the OS random source failed")?;
    DeviceCode::parse(&text).map_err(|e| anyhow::anyhow!("a fresh device code: {e}"))
}

/// A device token: `kdt_` and 256 bits from the OS random source.
pub fn new_device_token() -> anyhow::Result<String> {
    let text = access::random_url_safe(32).context("the OS random source failed")?;
    Ok(format!("{}{text}", access::DEVICE_TOKEN_PREFIX))
}

/// 8 letters, each uniform over the 20 of the alphabet: bytes of 240 and above are drawn
/// again, so no letter is likelier than another (20^8 ≈ 2.6·10^10 codes).
pub fn new_user_code() -> anyhow::Result<UserCode> {
    let mut letters = [0u8; USER_CODE_LENGTH];
    let mut filled = 0;
    let mut buf = [0u8; 16];
    while filled < USER_CODE_LENGTH {
        OsRng
            .try_fill_bytes(&mut buf)
            .context("the OS random source failed")?;
        for b in buf {
            if filled < USER_CODE_LENGTH && b < 240 {
                letters[filled] = USER_CODE_ALPHABET[usize::from(b % 20)];
                filled += 1;
            }
        }
    }
    Ok(UserCode::from_letters(letters))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_tokens_have_their_shapes() {
        let code = new_user_code().expect("a code");
        assert_eq!(UserCode::parse(&code.display()).expect("parses"), code);
        assert_ne!(new_user_code().expect("a code"), code);
        assert_eq!(new_device_code().expect("a code").as_str().len(), 43);
        let token = new_device_token().expect("a token");
        assert!(access::is_device_token(&token));
        assert_eq!(token.len(), 4 + 43);
    }

    #[test]
    fn every_letter_of_the_alphabet_turns_up() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(new_user_code().expect("a code").as_str().bytes());
        }
        assert_eq!(seen.len(), 20);
    }
}
