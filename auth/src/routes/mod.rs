//! The HTTP API. Staff endpoints live under `/api/v1` and take the caller from the session
//! token ([`Caller`], checked against the database on every request); the one route kitchen
//! devices read too takes [`StaffOrDevice`]; the dead letters of auth's consumer
//! (`/api/v1/dead-letters`, served by `bus::dead_letters::http`) take [`Operator`]. The other
//! services' introspection lives under `/internal/v1` behind the service key.

mod audit;
mod introspect;
mod pizzerias;
mod sessions;
mod users;

use std::{sync::Arc, time::Duration};

use access::{Permission, StaffPrincipal};
use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, http::StatusCode,
    http::header, web,
};
use bus::dead_letters::http::Operator as DeadLetterOperator;
use futures_util::future::LocalBoxFuture;
use service_kit::http::{ClientError, internal_error_response, path_param};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    accounts::{self, Accounts, AuthError, Origin},
    config::NetworkSettings,
    domain::ValidationError,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route("/sessions", web::post().to(sessions::login))
            .route("/sessions", web::get().to(sessions::list_mine))
            .route("/sessions", web::delete().to(sessions::revoke_mine))
            .route("/sessions/current", web::delete().to(sessions::logout))
            .route(
                "/sessions/{session_id}",
                web::delete().to(sessions::revoke_one),
            )
            .route("/me", web::get().to(sessions::me))
            .route("/me/language", web::put().to(sessions::set_my_language))
            .route("/users", web::post().to(users::create))
            .route("/users/{user_id}", web::get().to(users::get))
            .route(
                "/users/{user_id}/roles",
                web::post().to(users::role_by_body::<true>),
            )
            .route(
                "/users/{user_id}/roles/{role}",
                web::delete().to(users::revoke_role),
            )
            // Deprecated: the POST spelling of the DELETE above.
            .route(
                "/users/{user_id}/roles/revoke",
                web::post().to(users::role_by_body::<false>),
            )
            .route(
                "/users/{user_id}/deactivate",
                web::post().to(users::deactivate),
            )
            .route(
                "/users/{user_id}/sessions",
                web::get().to(sessions::list_for_user),
            )
            .route(
                "/users/{user_id}/sessions",
                web::delete().to(sessions::revoke_for_user),
            )
            .route(
                "/pizzerias/{pizzeria_id}/staff",
                web::get().to(pizzerias::staff),
            )
            .route("/audit", web::get().to(audit::list)),
    )
    .route(
        "/internal/v1/introspect",
        web::post().to(introspect::introspect),
    )
    .route(
        "/internal/v1/users/status",
        web::post().to(introspect::users_status),
    );
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Auth(AuthError::Invalid(e))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Auth(e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Auth(AuthError::Unexpected(e))
    }
}

impl ApiError {
    fn client_error(&self) -> Option<ClientError> {
        Some(match self {
            ApiError::Client(e) => e.clone(),
            ApiError::Auth(AuthError::NotFound(what)) => ClientError::not_found(what),
            ApiError::Auth(AuthError::Invalid(v)) => ClientError::invalid(&v.field, &v.rule),
            ApiError::Auth(AuthError::Conflict {
                code,
                field,
                message,
            }) => ClientError {
                field: field.map(str::to_owned),
                ..ClientError::conflict(code, message.clone())
            },
            ApiError::Auth(AuthError::Forbidden(message)) => ClientError::forbidden(message),
            ApiError::Auth(AuthError::BadCredentials) => ClientError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid login or password",
            ),
            ApiError::Auth(AuthError::TooManyAttempts {
                code: code @ "sign_in_rate_limited",
                ..
            }) => ClientError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code,
                "too many sign-ins right now; wait and try again",
            ),
            ApiError::Auth(AuthError::TooManyAttempts { code, .. }) => ClientError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code,
                "too many failed sign-in attempts; wait and try again",
            ),
            ApiError::Auth(AuthError::Busy { .. }) => ClientError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "sign_in_busy",
                "sign-in is busy right now; try again in a moment",
            ),
            ApiError::Auth(AuthError::Unexpected(_)) => return None,
        })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.client_error()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, |e| e.status)
    }

    fn error_response(&self) -> HttpResponse {
        match (self.client_error(), self) {
            (
                Some(e),
                ApiError::Auth(
                    AuthError::TooManyAttempts { retry_after, .. }
                    | AuthError::Busy { retry_after },
                ),
            ) => {
                let mut response = e.error_response();
                let seconds = ceil_secs(*retry_after).max(1);
                if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            (Some(e), _) => e.error_response(),
            (None, ApiError::Auth(AuthError::Unexpected(e))) => internal_error_response(e),
            (None, other) => internal_error_response(&anyhow::anyhow!("{other}")),
        }
    }
}

/// Where the request came from: the client behind the trusted proxies (the right-most
/// `X-Forwarded-For` hop that is not one), and its user agent.
pub fn origin(req: &HttpRequest, network: &NetworkSettings) -> Origin {
    Origin {
        ip: network.trusted_proxies.client_address(req),
        user_agent: service_kit::client::user_agent(req),
    }
}

/// The signed-in staff member making the request, checked against the database every time.
pub struct Caller {
    pub principal: Arc<StaffPrincipal>,
    pub origin: Origin,
}

impl Caller {
    pub fn id(&self) -> Uuid {
        self.principal.user_id
    }

    pub fn require_chain_admin(&self) -> Result<(), ApiError> {
        if self.principal.chain_admin {
            Ok(())
        } else {
            Err(ClientError::forbidden("only a chain admin may do this").into())
        }
    }

    pub fn require(&self, pizzeria_id: Uuid, permission: Permission) -> Result<(), ApiError> {
        if self.principal.can(pizzeria_id, permission) {
            Ok(())
        } else {
            Err(ClientError::forbidden(format!(
                "you need the {permission} permission in this pizzeria"
            ))
            .into())
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = access::request_token(req);
        let pool = req.app_data::<web::Data<PgPool>>().cloned();
        let accounts = req.app_data::<web::Data<Accounts>>().cloned();
        let network = req.app_data::<web::Data<NetworkSettings>>().cloned();
        let origin = network.as_ref().map(|n| origin(req, n));
        Box::pin(async move {
            let (Some(pool), Some(accounts), Some(origin)) = (pool, accounts, origin) else {
                return Err(
                    anyhow::anyhow!("the app lacks its pool, accounts or network data").into(),
                );
            };
            let Some(token) = token else {
                return Err(ClientError::unauthorized(
                    "sign in: send Authorization: Bearer <staff session token>",
                )
                .into());
            };
            let mut conn = pool.acquire().await.map_err(AuthError::from)?;
            match accounts::principal_for_token(&mut conn, &accounts, &token).await? {
                Some(principal) => Ok(Caller {
                    principal: Arc::new(principal),
                    origin,
                }),
                None => Err(ClientError::unauthorized(
                    "the session is invalid, expired or revoked; sign in again",
                )
                .into()),
            }
        })
    }
}

/// The caller of auth's dead-letter API (`bus::dead_letters::http`, consumer `auth-pizzerias`):
/// a [`Caller`], checked in auth's own database like every staff route here, taken as the
/// [`access::Staff`] the other services use there, so the operations rights (`operations.read`
/// to read, `operations.replay` to replay or discard, held across the chain) are the same
/// everywhere.
pub struct Operator(access::Staff);

impl FromRequest for Operator {
    type Error = ClientError;
    type Future = LocalBoxFuture<'static, Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            match caller.await {
                Ok(caller) => Ok(Operator(access::Staff(caller.principal))),
                Err(e) => Err(e.client_error().unwrap_or_else(|| {
                    // The dead-letter API answers with client errors only; the cause is ours
                    // (the database), so it is logged and the caller told to retry.
                    tracing::error!(error = ?e, "cannot check the dead-letter caller's session");
                    ClientError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "auth_unavailable",
                        "sign-in cannot be checked right now; try again shortly",
                    )
                })),
            }
        })
    }
}

impl DeadLetterOperator for Operator {
    fn require_read(&self) -> Result<(), ClientError> {
        self.0.require_read()
    }

    fn require_replay(&self) -> Result<(), ClientError> {
        self.0.require_replay()
    }

    fn actor(&self) -> bus::dead_letters::audit::Actor {
        self.0.actor()
    }
}

/// Whoever calls a route that kitchen devices use too, as the [`access::Caller`] every service
/// uses: a staff session, checked in the database as for [`Caller`], or a device token
/// (`kdt_`), asked of the devices service through the shared [`access::DeviceVerifier`] and its
/// cache. A device token needs a `web::Data<DeviceVerifier>` in the app.
pub struct StaffOrDevice(pub access::Caller);

impl FromRequest for StaffOrDevice {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if access::request_token(req).is_some_and(|t| access::is_device_token(&t)) {
            let device = access::Caller::from_request(req, payload);
            return Box::pin(async move { Ok(StaffOrDevice(device.await?)) });
        }
        let staff = Caller::from_request(req, payload);
        Box::pin(async move { Ok(StaffOrDevice(access::Caller::Staff(staff.await?.principal))) })
    }
}

const UUID_RULE: &str = "must be a UUID";

pub fn uuid_param(req: &HttpRequest, name: &str) -> Result<Uuid, ClientError> {
    path_param(req, name, UUID_RULE)
}

/// A duration as whole seconds, rounded up (for `Retry-After`-like fields).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
