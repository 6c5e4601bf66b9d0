//! What the devices service does: hand out device and user codes, let a staff member approve or
//! deny them, exchange an approved code for a device token once, rename and revoke devices.
//! Each change takes the caller's transaction and stages its outbox event in it. Who may do
//! what is decided by the routes; these functions only check what makes a change valid.

use access::{ClientInfo, StaffPrincipal};
use anyhow::Context;
use bus::outbox::Outbox;
use chrono::{DateTime, Utc};
use contracts::{DeviceRegistered, DeviceRenamed, DeviceRevoked};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    config::{OAuthSettings, PairingSettings, TokenSettings},
    db::{
        authorizations::{self, Approval, AuthorizationRow, NewAuthorization},
        devices::{self, DeviceRow, NewDevice},
        throttle,
    },
    domain::{Binding, BoardMode, DeviceCode, DeviceName, Language, StationCode, UserCode},
    secrets::{new_device_code, new_device_token, new_user_code},
};

/// The service name on everything the devices service publishes (`devices.device.revoked`).
pub const SERVICE: &str = "devices";

/// The grant type of RFC 8628 §3.4.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How much `slow_down` adds to a device code's polling interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECS: i32 = 5;

/// What the operations need besides the transaction.
#[derive(Clone)]
pub struct Pairing {
    pub outbox: Outbox,
    pub oauth: OAuthSettings,
    pub tokens: TokenSettings,
    pub throttle: PairingSettings,
}

impl Pairing {
    pub fn new(oauth: OAuthSettings, tokens: TokenSettings, throttle: PairingSettings) -> Self {
        Pairing {
            outbox: Outbox::new(SERVICE),
            oauth,
            tokens,
            throttle,
        }
    }
}

// ------------------------------------------------------------- the device ---

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u32,
}

/// The client IP asked for more pairing requests than its budget allows in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRequests {
    pub retry_after: std::time::Duration,
}

/// A new pairing request from a device: fresh codes, the requester's IP and user agent kept
/// for the approver. Each request counts against the client IP's budget
/// (`pairing.ip_max_requests` per `pairing.window_ms`), even one refused for it, so a client
/// cannot fill the table with requests.
pub async fn request_codes(
    pool: &PgPool,
    pairing: &Pairing,
    client_id: &str,
    scope: Option<&str>,
    client: &ClientInfo,
) -> anyhow::Result<Result<DeviceAuthorization, TooManyRequests>> {
    let mut conn = pool.acquire().await.context("no database connection")?;
    // In the code-entry budgets' table, under a key of its own kind.
    let (requests, until) = throttle::count_lookup(
        &mut conn,
        &format!("pairing-ip:{}", client.ip),
        pairing.throttle.window().as_secs_f64(),
    )
    .await
    .context("counting the pairing request")?;
    if requests > pairing.throttle.ip_max_requests {
        tracing::warn!(ip = %client.ip, requests, "pairing requests throttled");
        return Ok(Err(TooManyRequests {
            retry_after: (until - Utc::now()).to_std().unwrap_or_default(),
        }));
    }
    let device_code = new_device_code()?;
    let hash = access::token_digest(device_code.as_str());
    // A live request with the same user code is a 1 in 10^10 chance per live code; draw again.
    for _ in 0..5 {
        let user_code = new_user_code()?;
        let inserted = authorizations::insert_authorization(
            &mut conn,
            &NewAuthorization {
                id: Uuid::now_v7(),
                device_code_hash: &hash,
                user_code: user_code.as_str(),
                client_id,
                scope,
                lifetime_secs: pairing.oauth.code_lifetime().as_secs_f64(),
                interval_seconds: i32::try_from(pairing.oauth.interval_seconds)
                    .context("interval_seconds out of range")?,
                ip: &client.ip,
                user_agent: client.user_agent.as_deref(),
            },
        )
        .await
        .context("storing the pairing request")?;
        if inserted {
            let display = user_code.display();
            let separator = if pairing.oauth.verification_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            return Ok(Ok(DeviceAuthorization {
                device_code: device_code.as_str().to_owned(),
                verification_uri: pairing.oauth.verification_uri.clone(),
                verification_uri_complete: format!(
                    "{}{separator}user_code={display}",
                    pairing.oauth.verification_uri
                ),
                user_code: display,
                expires_in: pairing.oauth.code_lifetime().as_secs(),
                interval: pairing.oauth.interval_seconds,
            }));
        }
    }
    anyhow::bail!("no free user code after 5 draws")
}

/// The token response: a standard bearer token plus what the device's interface needs. No
/// `expires_in`: the token ends only when revoked or left unused for `tokens.idle_lifetime_ms`,
/// and each use starts that time again, so there is no fixed end to announce.
#[derive(Debug, Serialize)]
pub struct IssuedDevice {
    pub access_token: String,
    pub token_type: &'static str,
    pub device_id: Uuid,
    pub kind: String,
    pub pizzeria_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    pub name: String,
}

/// Why a poll got no token (RFC 8628 §3.5 and RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollRefusal {
    Pending,
    SlowDown,
    Denied,
    Expired,
    /// Unknown, or already exchanged.
    InvalidGrant(&'static str),
}

/// One poll of the token endpoint with a device code. The request row is locked, so two polls
/// of one code are taken one after the other, and a code is exchanged at most once.
pub async fn poll(
    pool: &PgPool,
    pairing: &Pairing,
    device_code: &DeviceCode,
    client_id: &str,
    client: &ClientInfo,
) -> anyhow::Result<Result<IssuedDevice, PollRefusal>> {
    let mut tx = pool.begin().await.context("cannot start the poll")?;
    let hash = access::token_digest(device_code.as_str());
    let Some(request) = authorizations::lock_by_device_code(&mut tx, &hash).await? else {
        return Ok(Err(PollRefusal::InvalidGrant(
            "device_code is unknown to this service",
        )));
    };
    if request.client_id != client_id {
        return Ok(Err(PollRefusal::InvalidGrant(
            "device_code was issued to another client",
        )));
    }
    let outcome = match request.status.as_str() {
        "redeemed" => Err(PollRefusal::InvalidGrant(
            "device_code was already exchanged for a token",
        )),
        "denied" => Err(PollRefusal::Denied),
        _ if request.expires_at <= request.now => Err(PollRefusal::Expired),
        "approved" => Ok(register(&mut tx, pairing, &request, client).await?),
        _ => {
            let too_soon = request.last_polled_at.is_some_and(|last| {
                (request.now - last).num_milliseconds() < i64::from(request.interval_seconds) * 1000
            });
            authorizations::record_poll(&mut tx, request.id, too_soon).await?;
            Err(if too_soon {
                PollRefusal::SlowDown
            } else {
                PollRefusal::Pending
            })
        }
    };
    tx.commit().await.context("cannot commit the poll")?;
    Ok(outcome)
}

/// The approved device picks up its token: the device exists from now on.
async fn register(
    tx: &mut PgConnection,
    pairing: &Pairing,
    request: &AuthorizationRow,
    client: &ClientInfo,
) -> anyhow::Result<IssuedDevice> {
    let (Some(pizzeria_id), Some(kind), Some(name), Some(approved_by), Some(approved_at)) = (
        request.pizzeria_id,
        request.kind.as_deref(),
        request.name.as_deref(),
        request.decided_by,
        request.decided_at,
    ) else {
        anyhow::bail!("approved request {} lacks its choices", request.id);
    };
    let token = new_device_token()?;
    let device_id = Uuid::now_v7();
    let device = devices::insert_device(
        tx,
        &NewDevice {
            id: device_id,
            pizzeria_id,
            kind,
            name,
            station: request.station.as_deref(),
            language: request.language.as_deref(),
            token_hash: &access::token_digest(&token),
            authorization_id: request.id,
            approved_by,
            approved_by_name: request.decided_by_name.as_deref().unwrap_or_default(),
            requested_at: request.requested_at,
            approved_at,
            ip: &client.ip,
            user_agent: client.user_agent.as_deref(),
            token_lifetime_secs: pairing.tokens.idle_lifetime().as_secs_f64(),
        },
    )
    .await?;
    authorizations::mark_redeemed(tx, request.id, device_id).await?;
    pairing
        .outbox
        .stage(
            tx,
            1,
            &DeviceRegistered {
                device_id,
                pizzeria_id,
                kind: device.kind.clone(),
                name: device.name.clone(),
                station: device.station.clone(),
                approved_by,
                approved_by_name: device.approved_by_name.clone(),
                requested_at: device.requested_at,
                approved_at: device.approved_at,
                at: device.created_at,
            },
        )
        .await?;
    Ok(IssuedDevice {
        access_token: token,
        token_type: "Bearer",
        device_id,
        kind: device.kind,
        pizzeria_id,
        station: device.station,
        name: device.name,
    })
}

// ---------------------------------------------------------- the approver ---

/// A pairing request as the approver sees it.
#[derive(Debug, Serialize)]
pub struct AuthorizationView {
    pub user_code: String,
    pub status: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Who asked: the device's IP and user agent.
    pub ip: String,
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pizzeria_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
}

impl From<AuthorizationRow> for AuthorizationView {
    fn from(row: AuthorizationRow) -> Self {
        let user_code = UserCode::parse(&row.user_code)
            .map(|c| c.display())
            .unwrap_or(row.user_code);
        AuthorizationView {
            user_code,
            status: row.status,
            client_id: row.client_id,
            scope: row.scope,
            requested_at: row.requested_at,
            expires_at: row.expires_at,
            ip: row.ip,
            user_agent: row.user_agent,
            decided_at: row.decided_at,
            decided_by: row.decided_by,
            pizzeria_id: row.pizzeria_id,
            kind: row.kind,
            name: row.name,
            station: row.station,
        }
    }
}

/// What the approver chose.
#[derive(Debug, Clone)]
pub struct Choice {
    pub pizzeria_id: Uuid,
    pub binding: Binding,
    pub name: DeviceName,
    /// The language of its screen; `None`: the browser's.
    pub language: Option<Language>,
}

/// Why a decision did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// No live request has this user code (never issued, expired, or already exchanged).
    #[error("no pending device request has this code")]
    NotFound,
    #[error("this device request was already {0}")]
    AlreadyDecided(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for DecisionError {
    fn from(e: sqlx::Error) -> Self {
        DecisionError::Unexpected(anyhow::Error::new(e).context("a database query failed"))
    }
}

/// The live request behind a user code, locked.
pub async fn find_live(
    tx: &mut PgConnection,
    code: &UserCode,
) -> Result<AuthorizationRow, DecisionError> {
    authorizations::lock_live_by_user_code(tx, code.as_str())
        .await?
        .ok_or(DecisionError::NotFound)
}

fn pending(row: &AuthorizationRow) -> Result<(), DecisionError> {
    if row.status == "pending" {
        Ok(())
    } else {
        Err(DecisionError::AlreadyDecided(row.status.clone()))
    }
}

pub async fn approve(
    tx: &mut PgConnection,
    code: &UserCode,
    choice: &Choice,
    staff: &StaffPrincipal,
) -> Result<AuthorizationView, DecisionError> {
    let row = find_live(tx, code).await?;
    pending(&row)?;
    authorizations::approve(
        tx,
        &Approval {
            id: row.id,
            by: staff.user_id,
            by_name: &staff.display_name,
            pizzeria_id: choice.pizzeria_id,
            kind: choice.binding.kind.as_str(),
            name: choice.name.as_str(),
            station: choice.binding.station_str(),
            language: choice.language.map(Language::as_str),
        },
    )
    .await?;
    decided(tx, row.id).await
}

/// A denial is final: every later poll of the device code gets `access_denied`.
pub async fn deny(
    tx: &mut PgConnection,
    code: &UserCode,
    staff: &StaffPrincipal,
) -> Result<AuthorizationView, DecisionError> {
    let row = find_live(tx, code).await?;
    pending(&row)?;
    authorizations::deny(tx, row.id, staff.user_id, &staff.display_name).await?;
    decided(tx, row.id).await
}

async fn decided(tx: &mut PgConnection, id: Uuid) -> Result<AuthorizationView, DecisionError> {
    let row = authorizations::find_authorization(tx, id)
        .await?
        .ok_or(DecisionError::NotFound)?;
    Ok(row.into())
}

// ------------------------------------------------------------ management ---

/// A new name and/or station for a device; what is left out stays.
#[derive(Debug, Default)]
pub struct DeviceChange {
    pub name: Option<DeviceName>,
    pub station: Option<StationCode>,
    pub language: Option<Language>,
    /// For a TV board only.
    pub board_mode: Option<BoardMode>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("device not found")]
    NotFound,
    #[error("device was revoked")]
    Revoked,
    #[error("{0}")]
    Invalid(#[from] crate::domain::ValidationError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ManageError {
    fn from(e: sqlx::Error) -> Self {
        ManageError::Unexpected(anyhow::Error::new(e).context("a database query failed"))
    }
}

/// Renames a device or moves a tablet to another station; announces `DeviceRenamed` when
/// anything changed.
pub async fn change_device(
    tx: &mut PgConnection,
    pairing: &Pairing,
    pizzeria_id: Uuid,
    device_id: Uuid,
    change: DeviceChange,
    actor_id: Uuid,
) -> Result<DeviceRow, ManageError> {
    let device = devices::lock_device(tx, pizzeria_id, device_id)
        .await?
        .ok_or(ManageError::NotFound)?;
    if device.revoked_at.is_some() {
        return Err(ManageError::Revoked);
    }
    let kind = access::DeviceKind::parse(&device.kind)
        .with_context(|| format!("device {device_id} has an unknown kind {}", device.kind))?;
    let station = match change.station {
        Some(station) => Binding::with_station(kind, Some(station))?
            .station
            .map(|s| s.as_str().to_owned()),
        None => device.station.clone(),
    };
    if change.board_mode.is_some() && kind != access::DeviceKind::OrderBoard {
        return Err(crate::domain::ValidationError::new(
            "board_mode",
            "is only for a TV order board",
        )
        .into());
    }
    let name = change
        .name
        .map_or_else(|| device.name.clone(), |n| n.as_str().to_owned());
    let language = change
        .language
        .map(|l| l.as_str().to_owned())
        .or_else(|| device.language.clone());
    let board_mode = change
        .board_mode
        .map_or_else(|| device.board_mode.clone(), |m| m.as_str().to_owned());
    let setup = devices::DeviceSetup {
        name: &name,
        station: station.as_deref(),
        language: language.as_deref(),
        board_mode: &board_mode,
    };
    let before = devices::DeviceSetup {
        name: &device.name,
        station: device.station.as_deref(),
        language: device.language.as_deref(),
        board_mode: &device.board_mode,
    };
    if setup == before {
        return Ok(device);
    }
    // Every change is announced as `DeviceRenamed` (the device's state after it): that event
    // is what evicts the device's cached introspection answer in every service, so a new
    // language or board mode shows on the screen at its next refresh.
    let (device, sequence) = devices::update_device(tx, device_id, &setup).await?;
    pairing
        .outbox
        .stage(
            tx,
            sequence,
            &DeviceRenamed {
                device_id,
                pizzeria_id,
                kind: device.kind.clone(),
                name: device.name.clone(),
                station: device.station.clone(),
                at: Utc::now(),
                actor_id,
            },
        )
        .await?;
    Ok(device)
}

/// Revokes a device: its token is refused from the next request on. Revoking a revoked device
/// is not an error and announces nothing.
pub async fn revoke_device(
    tx: &mut PgConnection,
    pairing: &Pairing,
    pizzeria_id: Uuid,
    device_id: Uuid,
    actor_id: Uuid,
) -> Result<(), ManageError> {
    let device = devices::lock_device(tx, pizzeria_id, device_id)
        .await?
        .ok_or(ManageError::NotFound)?;
    if let Some((at, sequence)) = devices::revoke_device(tx, device_id, actor_id).await? {
        pairing
            .outbox
            .stage(
                tx,
                sequence,
                &DeviceRevoked {
                    device_id,
                    pizzeria_id,
                    kind: device.kind,
                    at,
                    actor_id,
                },
            )
            .await?;
    }
    Ok(())
}
