//! Passwords (argon2id) and session tokens (256 random bits).

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRngCore, rngs::OsRng};

use crate::domain::Password;

/// Hashes and checks passwords with argon2id at the OWASP minimum (19 MiB, 2 passes, 1 lane).
/// Fixed in code, not configuration, so a deployment cannot weaken it by accident; stored
/// hashes carry their parameters, so raising them later still verifies old ones.
#[derive(Clone)]
pub struct Passwords {
    /// A hash of a random password nobody knows. Unknown logins are checked against it, so
    /// they cost as much time as a wrong password.
    dummy_hash: String,
}

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl Passwords {
    pub fn new() -> anyhow::Result<Self> {
        let dummy = Password::parse(&random_text(24)?).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Passwords {
            dummy_hash: hash_now(&dummy)?,
        })
    }

    /// The PHC string of `password`, hashed off the async threads.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .context("the hashing task failed")?
    }

    /// Whether `candidate` matches `stored`; with no stored hash (an unknown login) it checks
    /// against the dummy and says no, taking the same time.
    pub async fn verify(&self, candidate: String, stored: Option<String>) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let matched = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("a stored password hash is unreadable: {e}"))?;
            Ok(argon2()?
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .context("the verification task failed")??;
        Ok(known && matched)
    }
}

fn hash_now(password: &Password) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .context("the OS random source failed")?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?
        .to_string())
}

/// `bytes` random bytes from the OS, base64url without padding.
pub fn random_text(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    OsRng
        .try_fill_bytes(&mut buf)
        .context("the OS random source failed")?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A new session token: `kst_` and 256 bits from the OS random source.
pub fn new_session_token() -> anyhow::Result<String> {
    Ok(format!(
        "{}{}",
        access::STAFF_TOKEN_PREFIX,
        random_text(32)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_recognisable() {
        let a = new_session_token().expect("token");
        let b = new_session_token().expect("token");
        assert_ne!(a, b);
        assert!(a.starts_with("kst_"));
        assert_eq!(a.len(), 4 + 43);
        assert!(access::is_staff_token(&a));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_at_the_owasp_minimum_and_verify() {
        let passwords = Passwords::new().expect("passwords");
        let hash = passwords
            .hash(Password::parse("correct horse").expect("valid"))
            .await
            .expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify("wrong horse".into(), Some(hash))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify("correct horse".into(), None)
                .await
                .expect("verify")
        );
    }
}
