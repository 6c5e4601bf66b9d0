//! The HTTP API. The device's own endpoints follow OAuth 2.0 (`/oauth/...`, form-encoded in,
//! RFC 6749 JSON errors out); staff endpoints live under `/api/v1` and take the caller from
//! their session token (`access::Staff`, checked against the auth service); the other
//! services' introspection lives under `/internal/v1` behind the service key.

mod approval;
mod introspect;
mod manage;
mod oauth;

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, http::header, web};
use service_kit::http::{ClientError, internal_error_response, path_param};
use uuid::Uuid;

use crate::{
    domain::ValidationError,
    pairing::{DecisionError, ManageError},
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/oauth/device_authorization",
        web::post().to(oauth::device_authorization),
    )
    .route("/oauth/token", web::post().to(oauth::token))
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(oauth::metadata),
    )
    .service(
        web::scope("/api/v1")
            .route(
                "/device-authorizations/lookup",
                web::post().to(approval::lookup),
            )
            .route(
                "/device-authorizations/approve",
                web::post().to(approval::approve),
            )
            .route(
                "/device-authorizations/deny",
                web::post().to(approval::deny),
            )
            .route(
                "/pizzerias/{pizzeria_id}/devices",
                web::get().to(manage::list),
            )
            .route(
                "/pizzerias/{pizzeria_id}/devices/{device_id}",
                web::patch().to(manage::change),
            )
            .route(
                "/pizzerias/{pizzeria_id}/devices/{device_id}",
                web::delete().to(manage::revoke),
            ),
    )
    .route(
        "/internal/v1/introspect",
        web::post().to(introspect::introspect),
    );
}

/// Everything a staff endpoint can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("too many code entries")]
    TooManyAttempts { retry_after: Duration },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ClientError::from(e).into()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Unexpected(anyhow::Error::new(e).context("a database query failed"))
    }
}

impl From<DecisionError> for ApiError {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::NotFound => ClientError {
                field: Some("user_code".into()),
                ..ClientError::not_found("device request with this user_code")
            }
            .into(),
            DecisionError::AlreadyDecided(status) => ClientError::conflict(
                "already_decided",
                format!("this device request was already {status}"),
            )
            .into(),
            DecisionError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::NotFound => ClientError::not_found("device").into(),
            ManageError::Revoked => {
                ClientError::conflict("device_revoked", "the device was revoked").into()
            }
            ManageError::Invalid(v) => v.into(),
            ManageError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Client(e) => e.status,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Client(e) => e.error_response(),
            ApiError::TooManyAttempts { retry_after } => {
                let mut response = ClientError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "too many device codes entered; wait and try again",
                )
                .error_response();
                let seconds = ceil_secs(*retry_after).max(1);
                if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            ApiError::Unexpected(e) => internal_error_response(e),
        }
    }
}

const UUID_RULE: &str = "must be a UUID";

pub fn uuid_param(req: &HttpRequest, name: &str) -> Result<Uuid, ClientError> {
    path_param(req, name, UUID_RULE)
}

/// A duration as whole seconds, rounded up (for `Retry-After`).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
