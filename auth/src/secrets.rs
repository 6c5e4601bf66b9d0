//! Passwords (argon2id) and session tokens (256 random bits).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRngCore, rngs::OsRng};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::Password;

/// Hashes and checks passwords with argon2id at the OWASP minimum (19 MiB, 2 passes, 1 lane).
/// Fixed in code, not configuration, so a deployment cannot weaken it by accident; stored
/// hashes carry their parameters, so raising them later still verifies old ones.
///
/// Each hash or verification holds 19 MiB and a core for tens of milliseconds, on tokio's
/// blocking pool, which grows without bound. So at most `slots` run at once: a flood of
/// sign-ins then waits (and is turned away, see [`Passwords::slot`]) instead of starving the
/// CPU that introspection, and with it every other service, needs.
#[derive(Clone)]
pub struct Passwords {
    /// A hash of a random password nobody knows. Unknown logins are checked against it, so
    /// they cost as much time as a wrong password.
    dummy_hash: String,
    slots: Arc<Semaphore>,
    slot_wait: Duration,
}

/// Every verification slot stayed taken for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password verification slot is busy")]
pub struct Busy;

/// The right to run one argon2 computation; held until the computation ends, even when the
/// request that asked for it has gone.
pub struct Slot {
    // Held, never read: dropping it frees the slot.
    _permit: OwnedSemaphorePermit,
}

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl Passwords {
    /// At most `slots` (at least one) argon2 computations at a time; a sign-in waits up to
    /// `slot_wait` for one.
    pub fn new(slots: usize, slot_wait: Duration) -> anyhow::Result<Self> {
        let dummy = Password::parse(&random_text(24)?).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Passwords {
            dummy_hash: hash_now(&dummy)?,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            slot_wait,
        })
    }

    /// A verification slot, waiting up to the configured time for one.
    pub async fn slot(&self) -> Result<Slot, Busy> {
        match tokio::time::timeout(self.slot_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot { _permit: permit }),
            // The semaphore is never closed; a timeout is the busy case.
            Ok(Err(_)) | Err(_) => Err(Busy),
        }
    }

    /// The PHC string of `password`, hashed off the async threads. Waits for a slot as long
    /// as it takes: only admins create users and set passwords.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .context("the hashing slots are closed")?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            hash_now(&password)
        })
        .await
        .context("the hashing task failed")?
    }

    /// Whether `candidate` matches `stored`; with no stored hash (an unknown login) it checks
    /// against the dummy and says no, taking the same time. The slot goes with the computation
    /// and is freed when it ends.
    pub async fn verify(
        &self,
        slot: Slot,
        candidate: String,
        stored: Option<String>,
    ) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let matched = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            let _slot = slot;
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
        let passwords = Passwords::new(2, Duration::from_secs(60)).expect("passwords");
        let hash = passwords
            .hash(Password::parse("correct horse").expect("valid"))
            .await
            .expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let verify = |candidate: &str, stored: Option<String>| {
            let (passwords, candidate) = (passwords.clone(), candidate.to_owned());
            async move {
                let slot = passwords.slot().await.expect("a free slot");
                passwords
                    .verify(slot, candidate, stored)
                    .await
                    .expect("verify")
            }
        };
        assert!(verify("correct horse", Some(hash.clone())).await);
        assert!(!verify("wrong horse", Some(hash)).await);
        assert!(!verify("correct horse", None).await);
    }

    #[tokio::test]
    async fn no_more_verifications_run_at_once_than_there_are_slots() {
        let passwords = Passwords::new(1, Duration::from_millis(50)).expect("passwords");
        let held = passwords.slot().await.expect("the one slot");
        assert_eq!(passwords.slot().await.err(), Some(Busy));
        // A verification keeps its slot until it has finished, then frees it.
        assert!(
            !passwords
                .verify(held, "wrong horse".into(), None)
                .await
                .expect("verify")
        );
        assert!(passwords.slot().await.is_ok());
    }
}
