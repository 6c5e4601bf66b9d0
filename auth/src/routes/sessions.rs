//! Signing in and out, and the sessions a user (or an admin) can see and end.

use access::SessionInfo;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use service_kit::http::{ClientError, Json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    accounts::{self, Accounts, RevokeReason},
    config::NetworkSettings,
    db::{sessions, users},
    domain::Language,
};

use super::{ApiError, Caller, origin, uuid_param};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    login: String,
    password: String,
}

/// `POST /api/v1/sessions`: 201 with the token (shown once). No cookie: the API takes only
/// Bearer tokens, and the web keeps the token in a cookie of its own.
pub async fn login(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
    network: web::Data<NetworkSettings>,
    Json(body): Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let origin = origin(&req, &network);
    let issued = accounts::login(&pool, &accounts, &body.login, body.password, &origin).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(issued))
}

/// `GET /api/v1/me`: who the token belongs to and what they may do where.
pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(SessionInfo::from(caller.principal.as_ref()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageBody {
    /// `null` (or left out): the browser's language again.
    language: Option<String>,
}

/// `PUT /api/v1/me/language`: the language the caller's screens speak, on every computer they
/// sign in at. Answers like `GET /api/v1/me`, with the new language. No event: only the web
/// reads it, and the web drops its own cached answer for the user when it makes the change.
pub async fn set_my_language(
    caller: Caller,
    pool: web::Data<PgPool>,
    Json(body): Json<LanguageBody>,
) -> Result<HttpResponse, ApiError> {
    let language = body
        .language
        .as_deref()
        .map(Language::parse)
        .transpose()?
        .map(Language::as_str);
    let mut conn = pool.acquire().await.context("no database connection")?;
    users::set_language(&mut conn, caller.id(), language).await?;
    let mut info = SessionInfo::from(caller.principal.as_ref());
    info.language = language.map(str::to_owned);
    Ok(HttpResponse::Ok().json(info))
}

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
}

#[derive(Serialize)]
struct SessionView {
    #[serde(flatten)]
    session: sessions::SessionRow,
    current: bool,
}

async fn session_list(
    pool: &PgPool,
    accounts: &Accounts,
    user_id: Uuid,
    current: Uuid,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool.acquire().await.context("no database connection")?;
    let rows =
        sessions::list_live_sessions(&mut conn, user_id, accounts.sessions.idle_timeout()).await?;
    Ok(HttpResponse::Ok().json(SessionList {
        sessions: rows
            .into_iter()
            .map(|session| SessionView {
                current: session.id == current,
                session,
            })
            .collect(),
    }))
}

/// `GET /api/v1/sessions`: the caller's live sessions, newest first.
pub async fn list_mine(
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    session_list(&pool, &accounts, caller.id(), caller.principal.session_id).await
}

/// `GET /api/v1/users/{user_id}/sessions` (chain admin).
pub async fn list_for_user(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let user_id = uuid_param(&req, "user_id")?;
    if user_id != caller.id() {
        caller.require_chain_admin()?;
    }
    let mut conn = pool.acquire().await.context("no database connection")?;
    if users::find_user(&mut conn, user_id).await?.is_none() {
        return Err(ClientError::not_found("user").into());
    }
    drop(conn);
    session_list(&pool, &accounts, user_id, caller.principal.session_id).await
}

/// `DELETE /api/v1/sessions/current`: logout.
pub async fn logout(
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = pool.begin().await.context("cannot start the logout")?;
    accounts::revoke_session(
        &mut tx,
        &accounts,
        caller.id(),
        caller.principal.session_id,
        RevokeReason::Logout,
        caller.id(),
        &caller.origin,
    )
    .await?;
    tx.commit().await.context("cannot commit the logout")?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/sessions/{session_id}`: the caller's own session, or anyone's for a chain
/// admin. Someone else's session is a 404 to everyone else, so ids cannot be probed.
pub async fn revoke_one(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let session_id = uuid_param(&req, "session_id")?;
    let mut tx = pool.begin().await.context("cannot start the revocation")?;
    let owner = sessions::find_session_owner(&mut tx, session_id)
        .await?
        .filter(|owner| *owner == caller.id() || caller.principal.chain_admin)
        .ok_or_else(|| ClientError::not_found("session"))?;
    let reason = if owner == caller.id() {
        RevokeReason::ByUser
    } else {
        RevokeReason::ByAdmin
    };
    accounts::revoke_session(
        &mut tx,
        &accounts,
        owner,
        session_id,
        reason,
        caller.id(),
        &caller.origin,
    )
    .await?;
    tx.commit().await.context("cannot commit the revocation")?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct Revoked {
    revoked: usize,
}

/// `DELETE /api/v1/sessions`: every session of the caller, this one included.
pub async fn revoke_mine(
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = pool.begin().await.context("cannot start the revocation")?;
    let revoked = accounts::revoke_all_sessions(
        &mut tx,
        &accounts,
        caller.id(),
        RevokeReason::ByUser,
        caller.id(),
        &caller.origin,
    )
    .await?;
    tx.commit().await.context("cannot commit the revocation")?;
    Ok(HttpResponse::Ok().json(Revoked { revoked }))
}

/// `DELETE /api/v1/users/{user_id}/sessions` (chain admin): every session of that user.
pub async fn revoke_for_user(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let user_id = uuid_param(&req, "user_id")?;
    if user_id != caller.id() {
        caller.require_chain_admin()?;
    }
    let mut tx = pool.begin().await.context("cannot start the revocation")?;
    if users::find_user(&mut tx, user_id).await?.is_none() {
        return Err(ClientError::not_found("user").into());
    }
    let reason = if user_id == caller.id() {
        RevokeReason::ByUser
    } else {
        RevokeReason::ByAdmin
    };
    let revoked = accounts::revoke_all_sessions(
        &mut tx,
        &accounts,
        user_id,
        reason,
        caller.id(),
        &caller.origin,
    )
    .await?;
    tx.commit().await.context("cannot commit the revocation")?;
    Ok(HttpResponse::Ok().json(Revoked { revoked }))
}
