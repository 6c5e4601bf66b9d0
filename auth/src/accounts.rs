//! What the auth service does: sign in, check a session, revoke sessions, create users, grant
//! and revoke roles, deactivate. Each change takes the caller's transaction and writes its rows,
//! its audit entry and its outbox event together. Who may do what is decided by the routes;
//! these functions only check what makes a change valid.

use std::{sync::Arc, time::Duration};

use access::{Grant, StaffPrincipal};
use anyhow::Context;
use bus::outbox::Outbox;
use chrono::{DateTime, Utc};
use contracts::{Event, SessionRevoked, UserCreated, UserDeactivated, UserRolesChanged};
use serde::Serialize;
use service_kit::rate::RateLimit;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    config::{LoginSettings, SessionSettings},
    db::{
        audit::{self, AuditEntry},
        pizzerias, sessions,
        throttle::{self, Refusal, Reservation},
        users,
    },
    domain::{DisplayName, Login, Password, RoleGrant, ValidationError},
    secrets::{Passwords, new_session_token},
};

/// The service name on everything the auth service publishes (`auth.user.created`).
pub const SERVICE: &str = "auth";

/// What the operations need besides the transaction.
#[derive(Clone)]
pub struct Accounts {
    pub outbox: Outbox,
    pub passwords: Passwords,
    /// Sign-ins from everyone together, shared by every clone.
    pub sign_ins: Arc<RateLimit>,
    pub sessions: SessionSettings,
    pub login: LoginSettings,
}

impl Accounts {
    pub fn new(sessions: SessionSettings, login: LoginSettings) -> anyhow::Result<Self> {
        Ok(Accounts {
            outbox: Outbox::new(SERVICE),
            passwords: Passwords::new(
                login.max_concurrent_verifications,
                login.verification_wait(),
            )?,
            sign_ins: Arc::new(RateLimit::new(login.global_rate)),
            sessions,
            login,
        })
    }
}

/// Why an operation did not happen. The HTTP layer maps each to its status; `Unexpected` is
/// ours and is logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    #[error("{0}")]
    Forbidden(String),
    /// The same for an unknown login, a wrong password and a deactivated account.
    #[error("invalid login or password")]
    BadCredentials,
    #[error("too many attempts")]
    TooManyAttempts {
        code: &'static str,
        retry_after: Duration,
    },
    /// Every password verification slot is taken: the service is overloaded, not the caller
    /// wrong.
    #[error("sign-in is busy")]
    Busy { retry_after: Duration },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Unexpected(anyhow::Error::new(e).context("a database query failed"))
    }
}

/// Where a request came from, for throttling and the audit log.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip: String,
    pub user_agent: Option<String>,
}

/// A user as the API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: Uuid,
    pub login: String,
    pub display_name: String,
    pub active: bool,
    pub roles: Vec<contracts::StaffRoleGrant>,
    pub created_at: DateTime<Utc>,
}

pub async fn user_view(conn: &mut PgConnection, id: Uuid) -> Result<UserView, AuthError> {
    let user = users::find_user(conn, id)
        .await?
        .ok_or(AuthError::NotFound("user"))?;
    let roles = users::list_roles(conn, id).await?;
    Ok(UserView {
        id: user.id,
        login: user.login,
        display_name: user.display_name,
        active: user.active,
        roles: roles.into_iter().map(RoleGrant::to_contract).collect(),
        created_at: user.created_at,
    })
}

// ---------------------------------------------------------------- sign in ---

/// A new session: the token is shown once and stored only as its hash.
#[derive(Debug, Serialize)]
pub struct IssuedSession {
    pub token: String,
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// The absolute end; the session ends sooner if left idle.
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_seconds: u64,
}

/// Signs in. Checks, in order: the global sign-in rate, a free verification slot, then (in one
/// transaction that counts the attempt as a failure before anything is verified) the IP's
/// failure budget and the (login, IP) lockout, then the password (against a dummy hash for
/// unknown logins, so every failure takes as long). A success gives the attempt back.
pub async fn login(
    pool: &PgPool,
    accounts: &Accounts,
    raw_login: &str,
    password: String,
    origin: &Origin,
) -> Result<IssuedSession, AuthError> {
    if raw_login.trim().is_empty() {
        return Err(ValidationError::new("login", "is required").into());
    }
    let login = Login::parse(raw_login)?;
    if password.is_empty() {
        return Err(ValidationError::new("password", "is required").into());
    }
    if password.chars().count() > Password::MAX {
        return Err(ValidationError::new(
            "password",
            format!("must be at most {} characters", Password::MAX),
        )
        .into());
    }
    accounts
        .sign_ins
        .take()
        .map_err(|retry_after| AuthError::TooManyAttempts {
            code: "sign_in_rate_limited",
            retry_after,
        })?;
    let slot = accounts
        .passwords
        .slot()
        .await
        .map_err(|_| AuthError::Busy {
            retry_after: Duration::from_secs(1),
        })?;
    let mut tx = pool.begin().await.context("cannot start the attempt")?;
    let reservation =
        match throttle::reserve_attempt(&mut tx, login.as_str(), &origin.ip, &accounts.login)
            .await?
        {
            Ok(reservation) => reservation,
            Err(refusal) => {
                tx.rollback()
                    .await
                    .context("cannot end a refused attempt")?;
                let (code, until) = match refusal {
                    Refusal::IpThrottled { until } => ("too_many_attempts", until),
                    Refusal::LoginLocked { until } => ("login_locked", until),
                };
                return Err(AuthError::TooManyAttempts {
                    code,
                    retry_after: (until - Utc::now()).to_std().unwrap_or_default(),
                });
            }
        };
    let credentials = users::find_credentials(&mut tx, login.as_str()).await?;
    tx.commit().await.context("cannot commit the attempt")?;
    let matched = accounts
        .passwords
        .verify(
            slot,
            password,
            credentials.as_ref().map(|c| c.password_hash.clone()),
        )
        .await?;

    let mut tx = pool.begin().await.context("cannot start the login")?;
    let user = credentials.filter(|c| matched && c.active);
    let Some(user) = user else {
        let user_id = credentials_id(&mut tx, login.as_str()).await?;
        record_failure(&mut tx, accounts, &login, user_id, origin, reservation).await?;
        tx.commit().await.context("cannot commit a failed login")?;
        return Err(AuthError::BadCredentials);
    };
    throttle::clear_after_success(&mut tx, login.as_str(), &origin.ip).await?;
    let now = Utc::now();
    let token = new_session_token()?;
    let session_id = Uuid::now_v7();
    let expires_at = now
        + chrono::Duration::from_std(accounts.sessions.absolute_timeout())
            .context("absolute timeout out of range")?;
    let token_hash = access::token_digest(&token);
    sessions::insert_session(
        &mut tx,
        &sessions::NewSession {
            id: session_id,
            user_id: user.id,
            token_hash: &token_hash,
            expires_at,
            ip: &origin.ip,
            user_agent: origin.user_agent.as_deref(),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            action: "login_succeeded",
            actor_id: Some(user.id),
            target_user_id: Some(user.id),
            session_id: Some(session_id),
            ip: Some(&origin.ip),
            ..AuditEntry::default()
        },
    )
    .await?;
    tx.commit().await.context("cannot commit the login")?;
    Ok(IssuedSession {
        token,
        session_id,
        user_id: user.id,
        expires_at,
        idle_timeout_seconds: accounts.sessions.idle_timeout().as_secs(),
    })
}

async fn credentials_id(conn: &mut PgConnection, login: &str) -> Result<Option<Uuid>, AuthError> {
    Ok(users::find_credentials(conn, login).await?.map(|c| c.id))
}

async fn record_failure(
    tx: &mut PgConnection,
    accounts: &Accounts,
    login: &Login,
    user_id: Option<Uuid>,
    origin: &Origin,
    reservation: Reservation,
) -> Result<(), AuthError> {
    // The attempt was counted when it was reserved; here it is only written down.
    let Reservation {
        ip_failures,
        lockout,
    } = reservation;
    // The login goes in the details, so failures for unknown logins are visible too.
    let details = serde_json::json!({ "login": login.as_str() });
    audit::record(
        tx,
        AuditEntry {
            action: "login_failed",
            target_user_id: user_id,
            ip: Some(&origin.ip),
            details: Some(details.clone()),
            ..AuditEntry::default()
        },
    )
    .await?;
    if let Some(lockout) = lockout {
        audit::record(
            tx,
            AuditEntry {
                action: "login_locked_out",
                target_user_id: user_id,
                ip: Some(&origin.ip),
                details: Some(serde_json::json!({
                    "login": login.as_str(),
                    "seconds": lockout.as_secs_f64(),
                })),
                ..AuditEntry::default()
            },
        )
        .await?;
    }
    if ip_failures == accounts.login.ip_max_failures {
        audit::record(
            tx,
            AuditEntry {
                action: "login_throttled",
                ip: Some(&origin.ip),
                details: Some(details),
                ..AuditEntry::default()
            },
        )
        .await?;
    }
    Ok(())
}

// ----------------------------------------------------------- introspection ---

/// The principal behind a token, if its session is live; marks the session used (which is
/// what keeps it from going idle). Reads roles fresh every time: a revoked role or a
/// deactivated user stops working at the next check.
pub async fn principal_for_token(
    conn: &mut PgConnection,
    accounts: &Accounts,
    token: &str,
) -> Result<Option<StaffPrincipal>, AuthError> {
    if !access::is_staff_token(token) {
        return Ok(None);
    }
    let idle = accounts.sessions.idle_timeout();
    let Some(session) =
        sessions::touch_live_session(conn, &access::token_digest(token), idle).await?
    else {
        return Ok(None);
    };
    let roles = users::list_roles(conn, session.user_id).await?;
    let idle_end =
        Utc::now() + chrono::Duration::from_std(idle).context("idle timeout out of range")?;
    Ok(Some(StaffPrincipal {
        user_id: session.user_id,
        session_id: session.id,
        login: session.login,
        display_name: session.display_name,
        chain_admin: roles.iter().any(|g| g.role == access::Role::ChainAdmin),
        chain_permissions: chain_permissions(&roles),
        grants: roles
            .iter()
            .filter_map(|g| {
                g.pizzeria_id.map(|pizzeria_id| Grant {
                    pizzeria_id,
                    role: g.role.as_str().to_owned(),
                    permissions: g.role.permissions().to_vec(),
                })
            })
            .collect(),
        expires_at: session.expires_at.min(idle_end),
        language: session.language,
    }))
}

/// What the chain-wide roles other than the chain admin's carry (the on-call roles), once each.
fn chain_permissions(roles: &[crate::domain::RoleGrant]) -> Vec<access::Permission> {
    let mut permissions: Vec<access::Permission> = roles
        .iter()
        .filter(|g| g.pizzeria_id.is_none() && g.role != access::Role::ChainAdmin)
        .flat_map(|g| g.role.permissions().iter().copied())
        .collect();
    permissions.sort_unstable();
    permissions.dedup();
    permissions
}

// ---------------------------------------------------------------- sessions ---

/// Why a session ended early; the wire value of `SessionRevoked.reason`.
#[derive(Debug, Clone, Copy)]
pub enum RevokeReason {
    Logout,
    ByUser,
    ByAdmin,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::ByUser => "revoked_by_user",
            RevokeReason::ByAdmin => "revoked_by_admin",
        }
    }
}

/// Revokes one session of `user_id`. Revoking one that already ended is not an error.
pub async fn revoke_session(
    tx: &mut PgConnection,
    accounts: &Accounts,
    user_id: Uuid,
    session_id: Uuid,
    reason: RevokeReason,
    actor_id: Uuid,
    origin: &Origin,
) -> Result<(), AuthError> {
    if sessions::revoke_session(tx, session_id, reason.as_str()).await? {
        announce_revoked(tx, accounts, user_id, session_id, reason, actor_id, origin).await?;
    }
    Ok(())
}

/// Revokes every session of `user_id`; returns how many.
pub async fn revoke_all_sessions(
    tx: &mut PgConnection,
    accounts: &Accounts,
    user_id: Uuid,
    reason: RevokeReason,
    actor_id: Uuid,
    origin: &Origin,
) -> Result<usize, AuthError> {
    let revoked = sessions::revoke_user_sessions(tx, user_id, reason.as_str()).await?;
    for session_id in &revoked {
        announce_revoked(tx, accounts, user_id, *session_id, reason, actor_id, origin).await?;
    }
    Ok(revoked.len())
}

async fn announce_revoked(
    tx: &mut PgConnection,
    accounts: &Accounts,
    user_id: Uuid,
    session_id: Uuid,
    reason: RevokeReason,
    actor_id: Uuid,
    origin: &Origin,
) -> Result<(), AuthError> {
    let action = match reason {
        RevokeReason::Logout => "logout",
        _ => "session_revoked",
    };
    audit::record(
        tx,
        AuditEntry {
            action,
            actor_id: Some(actor_id),
            target_user_id: Some(user_id),
            session_id: Some(session_id),
            ip: Some(&origin.ip),
            details: Some(serde_json::json!({ "reason": reason.as_str() })),
            ..AuditEntry::default()
        },
    )
    .await?;
    stage(
        tx,
        accounts,
        user_id,
        &SessionRevoked {
            user_id,
            session_id,
            at: Utc::now(),
            reason: reason.as_str().to_owned(),
            actor_id: Some(actor_id),
        },
    )
    .await
}

/// Stages an event about `user_id` with the user's next sequence.
async fn stage<E: Event>(
    tx: &mut PgConnection,
    accounts: &Accounts,
    user_id: Uuid,
    event: &E,
) -> Result<(), AuthError> {
    let sequence = users::next_event_sequence(tx, user_id).await?;
    accounts.outbox.stage(tx, sequence, event).await?;
    Ok(())
}

// ------------------------------------------------------------------- users ---

pub struct NewUser {
    pub login: Login,
    pub display_name: DisplayName,
    pub password: Password,
    pub roles: Vec<RoleGrant>,
}

/// The rule a grant naming a pizzeria auth does not know breaks. Auth learns of pizzerias only
/// from the tracker, so the answer says where to create one; retrying once the tracker's
/// announcement has arrived succeeds.
const UNKNOWN_PIZZERIA: &str = "is not a pizzeria the tracker has announced (a chain admin \
     creates it at the tracker with PUT /api/v1/pizzerias/{id}; auth hears of it moments later)";

/// Fails with a 422 on `field` unless auth has heard of every pizzeria the grants name (from the
/// tracker, which owns them): a clear refusal the caller may retry once the event has arrived.
pub async fn check_pizzerias(
    conn: &mut PgConnection,
    grants: &[(String, RoleGrant)],
) -> Result<(), AuthError> {
    let ids: Vec<Uuid> = grants.iter().filter_map(|(_, g)| g.pizzeria_id).collect();
    let unknown = pizzerias::unknown_pizzerias(conn, &ids).await?;
    if let Some((field, _)) = grants
        .iter()
        .find(|(_, g)| g.pizzeria_id.is_some_and(|id| unknown.contains(&id)))
    {
        return Err(ValidationError::new(field.clone(), UNKNOWN_PIZZERIA).into());
    }
    Ok(())
}

pub async fn create_user(
    tx: &mut PgConnection,
    accounts: &Accounts,
    user: NewUser,
    actor_id: Option<Uuid>,
    origin: &Origin,
) -> Result<UserView, AuthError> {
    let id = Uuid::now_v7();
    let hash = accounts.passwords.hash(user.password).await?;
    if !users::insert_user(
        tx,
        id,
        user.login.as_str(),
        user.display_name.as_str(),
        &hash,
    )
    .await?
    {
        return Err(AuthError::Conflict {
            code: "login_taken",
            field: Some("login"),
            message: "login is already taken".into(),
        });
    }
    for grant in &user.roles {
        users::insert_role(tx, id, *grant, actor_id).await?;
    }
    audit::record(
        tx,
        AuditEntry {
            action: "user_created",
            actor_id,
            target_user_id: Some(id),
            ip: Some(&origin.ip),
            details: Some(serde_json::json!({ "login": user.login.as_str() })),
            ..AuditEntry::default()
        },
    )
    .await?;
    for grant in &user.roles {
        audit_role(tx, "role_granted", *grant, id, actor_id, origin).await?;
    }
    let view = user_view(tx, id).await?;
    stage(
        tx,
        accounts,
        id,
        &UserCreated {
            user_id: id,
            login: view.login.clone(),
            display_name: view.display_name.clone(),
            roles: view.roles.clone(),
            active: true,
            at: Utc::now(),
            actor_id,
        },
    )
    .await?;
    Ok(view)
}

async fn audit_role(
    tx: &mut PgConnection,
    action: &str,
    grant: RoleGrant,
    user_id: Uuid,
    actor_id: Option<Uuid>,
    origin: &Origin,
) -> Result<(), AuthError> {
    audit::record(
        tx,
        AuditEntry {
            action,
            actor_id,
            target_user_id: Some(user_id),
            pizzeria_id: grant.pizzeria_id,
            ip: Some(&origin.ip),
            details: Some(serde_json::json!({ "role": grant.role.as_str() })),
            ..AuditEntry::default()
        },
    )
    .await?;
    Ok(())
}

/// Grants (`grant = true`) or revokes a role. Granting a role the user holds, or revoking one
/// they do not, changes nothing and announces nothing.
pub async fn change_role(
    tx: &mut PgConnection,
    accounts: &Accounts,
    user_id: Uuid,
    role: RoleGrant,
    grant: bool,
    actor_id: Uuid,
    origin: &Origin,
) -> Result<UserView, AuthError> {
    // Locks the user: role changes of one user apply one at a time.
    if !users::lock_user(tx, user_id).await? {
        return Err(AuthError::NotFound("user"));
    }
    let changed = if grant {
        if let Some(pizzeria_id) = role.pizzeria_id
            && !pizzerias::pizzeria_exists(tx, pizzeria_id).await?
        {
            return Err(ValidationError::new("pizzeria_id", UNKNOWN_PIZZERIA).into());
        }
        users::insert_role(tx, user_id, role, Some(actor_id)).await?
    } else {
        users::delete_role(tx, user_id, role).await?
    };
    let view = user_view(tx, user_id).await?;
    if !changed {
        return Ok(view);
    }
    let action = if grant {
        "role_granted"
    } else {
        "role_revoked"
    };
    audit_role(tx, action, role, user_id, Some(actor_id), origin).await?;
    let event = UserRolesChanged {
        user_id,
        login: view.login.clone(),
        display_name: view.display_name.clone(),
        roles: view.roles.clone(),
        at: Utc::now(),
        actor_id: Some(actor_id),
    };
    stage(tx, accounts, user_id, &event).await?;
    Ok(view)
}

/// Deactivates the user and ends every session of theirs.
pub async fn deactivate(
    tx: &mut PgConnection,
    accounts: &Accounts,
    user_id: Uuid,
    actor_id: Uuid,
    origin: &Origin,
) -> Result<UserView, AuthError> {
    if users::find_user(tx, user_id).await?.is_none() {
        return Err(AuthError::NotFound("user"));
    }
    if users::deactivate_user(tx, user_id).await? {
        // The sessions end with the user; one UserDeactivated tells every cache.
        sessions::revoke_user_sessions(tx, user_id, "user_deactivated").await?;
        audit::record(
            tx,
            AuditEntry {
                action: "user_deactivated",
                actor_id: Some(actor_id),
                target_user_id: Some(user_id),
                ip: Some(&origin.ip),
                ..AuditEntry::default()
            },
        )
        .await?;
        stage(
            tx,
            accounts,
            user_id,
            &UserDeactivated {
                user_id,
                at: Utc::now(),
                actor_id: Some(actor_id),
            },
        )
        .await?;
    }
    user_view(tx, user_id).await
}
