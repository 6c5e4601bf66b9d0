//! `POST /internal/v1/introspect`: the other services ask who a token belongs to.

use access::{
    INTROSPECTION_KEY_HEADER, IntrospectionRequest, IntrospectionResponse, SessionInfo, UserStatus,
    UserStatusRequest, UserStatusResponse, has_service_key,
};
use actix_web::{HttpRequest, HttpResponse, web};
use service_kit::http::{ClientError, Deferred, Json};
use sqlx::PgPool;

use crate::{accounts, accounts::Accounts, config::IntrospectionSettings, db::users};

use super::ApiError;

pub async fn introspect(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
    settings: web::Data<IntrospectionSettings>,
    body: Deferred<Json<IntrospectionRequest>>,
) -> Result<HttpResponse, ApiError> {
    require_service_key(&req, &settings)?;
    let Json(body) = body.get()?;
    let mut conn = pool.acquire().await.map_err(accounts::AuthError::from)?;
    let principal = accounts::principal_for_token(&mut conn, &accounts, &body.token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(IntrospectionResponse {
            active: principal.is_some(),
            session: principal.as_ref().map(SessionInfo::from),
        }))
}

fn require_service_key(
    req: &HttpRequest,
    settings: &IntrospectionSettings,
) -> Result<(), ApiError> {
    if has_service_key(req, &settings.key) {
        Ok(())
    } else {
        Err(ClientError::unauthorized(format!(
            "send the service key in {INTROSPECTION_KEY_HEADER}"
        ))
        .into())
    }
}

/// At most this many users per question: one pizzeria's approvers, with room to spare.
const MAX_USERS_ASKED: usize = 1000;

/// `POST /internal/v1/users/status`: whether users are still active (the devices service shows
/// managers which devices were approved by someone since deactivated).
pub async fn users_status(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    settings: web::Data<IntrospectionSettings>,
    body: Deferred<Json<UserStatusRequest>>,
) -> Result<HttpResponse, ApiError> {
    require_service_key(&req, &settings)?;
    let Json(body) = body.get()?;
    if body.user_ids.len() > MAX_USERS_ASKED {
        return Err(ClientError::invalid(
            "user_ids",
            format!("must name at most {MAX_USERS_ASKED} users"),
        )
        .into());
    }
    let mut conn = pool.acquire().await.map_err(accounts::AuthError::from)?;
    let users = users::users_active(&mut conn, &body.user_ids).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(UserStatusResponse {
            users: users
                .into_iter()
                .map(|(user_id, active)| UserStatus { user_id, active })
                .collect(),
        }))
}
