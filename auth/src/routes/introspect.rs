//! `POST /internal/v1/introspect`: the other services ask who a token belongs to.

use access::{
    INTROSPECTION_KEY_HEADER, IntrospectionRequest, IntrospectionResponse, SessionInfo,
    has_service_key,
};
use actix_web::{HttpRequest, HttpResponse, web};
use service_kit::http::{ClientError, Json};
use sqlx::PgPool;

use crate::{accounts, accounts::Accounts, config::IntrospectionSettings};

use super::ApiError;

pub async fn introspect(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
    settings: web::Data<IntrospectionSettings>,
    Json(body): Json<IntrospectionRequest>,
) -> Result<HttpResponse, ApiError> {
    if !has_service_key(&req, &settings.key) {
        return Err(ClientError::unauthorized(format!(
            "send the service key in {INTROSPECTION_KEY_HEADER}"
        ))
        .into());
    }
    let mut conn = pool.acquire().await.map_err(accounts::AuthError::from)?;
    let principal = accounts::principal_for_token(&mut conn, &accounts, &body.token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(IntrospectionResponse {
            active: principal.is_some(),
            session: principal.as_ref().map(SessionInfo::from),
        }))
}
