//! Who the simulated tablets are: one chain admin's staff session for all of them.
//!
//! The tracker wants a caller on every poll and tap (a station tablet's device token, or staff
//! with `kitchen.work`). Pairing 30,000 tablets through the device flow is not possible (each
//! approval is rate-limited by design), so the generator signs in as a chain admin at the auth
//! service and the tablets send that session. Each request still goes through the tracker's
//! full caller check, answered from its leased verifier cache after the first, as a device
//! token would be once cached.
//!
//! Why `--sessions` (several sign-ins of the same admin, dealt out to the tablets in turn): a
//! cached answer expires after the verifier's TTL, and with one token for everybody it expires
//! for all 30,000 tablets at the same instant. Every request in flight then misses and asks
//! auth, and the introspections queue on that one session row, stalling polls for seconds every
//! TTL. Distinct device tokens expire one by one, each costing its own tablet one introspection;
//! a hundred sessions, first used at times spread over the first poll interval, come close.

use std::path::Path;

use anyhow::Context;
use reqwest::StatusCode;
use serde::Deserialize;

#[derive(Debug, Clone, clap::Args)]
pub struct SessionArgs {
    /// The auth service, where the generator signs in.
    #[arg(long, default_value = "http://127.0.0.1:8083", value_parser = crate::limits::loopback_url)]
    pub auth: String,
    /// A chain admin's login (`auth create-admin`).
    #[arg(long)]
    pub login: String,
    /// A file holding that admin's password (kept off the command line, where `ps` shows it).
    #[arg(long)]
    pub password_file: std::path::PathBuf,
    /// How many sessions to sign in and deal out to the tablets (see above).
    #[arg(long, default_value_t = 1)]
    pub sessions: usize,
}

#[derive(Deserialize)]
struct Issued {
    token: String,
}

/// Signs in `--sessions` times (one after another: each sign-in costs auth an argon2 hash) and
/// returns the session tokens.
pub async fn sign_in_all(
    client: &reqwest::Client,
    args: &SessionArgs,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        (1..=1000).contains(&args.sessions),
        "--sessions must be between 1 and 1000"
    );
    let password = read_password(&args.password_file)?;
    let mut tokens = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        tokens.push(sign_in(client, args, &password).await?);
    }
    Ok(tokens)
}

async fn sign_in(
    client: &reqwest::Client,
    args: &SessionArgs,
    password: &str,
) -> anyhow::Result<String> {
    let url = format!("{}/api/v1/sessions", args.auth.trim_end_matches('/'));
    let response = client
        .post(&url)
        .json(&serde_json::json!({ "login": args.login, "password": password }))
        .send()
        .await
        .with_context(|| format!("cannot reach auth at {url}"))?;
    let status = response.status();
    if status != StatusCode::CREATED {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("signing in as {} answered {status}: {body}", args.login);
    }
    let issued: Issued = response
        .json()
        .await
        .context("an unreadable answer to the sign-in")?;
    Ok(issued.token)
}

fn read_password(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    let password = text.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "{} is empty", path.display());
    Ok(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_file_loses_its_line_end_only() {
        let path = std::env::temp_dir().join(format!("loadgen-pw-{}", std::process::id()));
        std::fs::write(&path, " secret pass \n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_password(&path).unwrap_or_else(|e| panic!("{e}")),
            " secret pass "
        );
        std::fs::write(&path, "\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(read_password(&path).is_err());
        let _ = std::fs::remove_file(&path);
    }
}
