//! The device's side of RFC 8628: `POST /oauth/device_authorization` (§3.1–3.2) and
//! `POST /oauth/token` with the device-code grant (§3.4–3.5). Form-encoded in, JSON out, errors
//! in RFC 6749 §5.2's shape: `{"error": ..., "error_description": ...}`, the description naming
//! the parameter at fault.

use std::collections::HashMap;

use access::ClientInfo;
use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
    web,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use service_kit::http::internal_error_response;
use sqlx::PgPool;

use crate::{
    config::{NetworkSettings, OAuthSettings},
    domain::DeviceCode,
    pairing::{self, DEVICE_CODE_GRANT, Pairing, PollRefusal},
};

/// An OAuth error response, or a failure of ours (a logged 500).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{error}: {description}")]
    Refused {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
    /// Too many pairing requests from this client: 429 with `Retry-After`.
    #[error("slow_down: too many pairing requests")]
    TooManyRequests { retry_after: std::time::Duration },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl OAuthError {
    fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError::Refused {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        OAuthError::Refused {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::Refused { status, .. } => *status,
            OAuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            OAuthError::Refused {
                status,
                error,
                description,
            } => {
                let mut response = HttpResponse::build(*status);
                response.insert_header((header::CACHE_CONTROL, "no-store"));
                if *status == StatusCode::UNAUTHORIZED {
                    response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"devices\""));
                }
                response.json(ErrorBody {
                    error,
                    error_description: &description_text(description),
                })
            }
            // RFC 8628 has no error for the authorization endpoint's rate; `slow_down` is what
            // it says to a device polling too fast, and means the same here.
            OAuthError::TooManyRequests { retry_after } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let mut response = HttpResponse::TooManyRequests();
                response.insert_header((header::CACHE_CONTROL, "no-store"));
                response.insert_header((header::RETRY_AFTER, seconds.max(1)));
                response.json(ErrorBody {
                    error: "slow_down",
                    error_description: "too many device codes requested from this address; \
                                        wait Retry-After seconds",
                })
            }
            OAuthError::Unexpected(e) => internal_error_response(e),
        }
    }
}

/// RFC 6749 §5.2 allows only printable ASCII without `"` and `\` in `error_description`. A
/// description can quote what the client sent (a parameter name), so anything else becomes `?`.
fn description_text(description: &str) -> String {
    description
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '?',
        })
        .collect()
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        OAuthError::Unexpected(anyhow::Error::new(e).context("a database query failed"))
    }
}

/// The form parameters; each may appear once (RFC 6749 §3.1).
struct Form(HashMap<String, String>);

impl Form {
    fn read(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "body must be application/x-www-form-urlencoded",
            ));
        }
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(OAuthError::invalid_request(format!(
                    "{name} must not be sent more than once"
                )));
            }
        }
        Ok(Form(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The client: `client_id` in the form, or HTTP Basic credentials (what many client libraries
/// send); it must be one this service knows.
fn client_id(req: &HttpRequest, form: &Form, oauth: &OAuthSettings) -> Result<String, OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| {
            let decoded = STANDARD
                .decode(credentials.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    OAuthError::invalid_client("the Authorization header is not valid Basic")
                })?;
            let id = decoded.split(':').next().unwrap_or_default();
            // RFC 6749 §2.3.1: the id is form-encoded inside the Basic credentials.
            Ok::<_, OAuthError>(
                form_urlencoded::parse(format!("id={id}").as_bytes())
                    .map(|(_, v)| v.into_owned())
                    .next()
                    .unwrap_or_default(),
            )
        })
        .transpose()?;
    let id = match (basic, form.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return Err(OAuthError::invalid_request(
                "client_id differs from the client in the Authorization header",
            ));
        }
        (Some(id), _) => id,
        (None, Some(id)) => id.to_owned(),
        (None, None) => return Err(OAuthError::invalid_request("client_id is required")),
    };
    if oauth.knows_client(&id) {
        Ok(id)
    } else {
        Err(OAuthError::invalid_client(
            "client_id is not a known client",
        ))
    }
}

/// A scope as RFC 6749 §3.3 writes it: space-separated tokens of printable ASCII without `"`
/// and `\`. This service grants no scopes; it keeps what was asked for the approver.
fn scope(form: &Form) -> Result<Option<String>, OAuthError> {
    let Some(scope) = form.get("scope") else {
        return Ok(None);
    };
    let valid = scope.len() <= 200
        && scope
            .bytes()
            .all(|b| b == b' ' || (b'!'..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if valid {
        Ok(Some(scope.to_owned()))
    } else {
        Err(OAuthError::bad_request(
            "invalid_scope",
            "scope must be at most 200 characters of space-separated printable ASCII tokens",
        ))
    }
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}

/// `POST /oauth/device_authorization`: a device asks for codes.
pub async fn device_authorization(
    req: HttpRequest,
    body: web::Bytes,
    pool: web::Data<PgPool>,
    pairing: web::Data<Pairing>,
    network: web::Data<NetworkSettings>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::read(&req, &body)?;
    let client_id = client_id(&req, &form, &pairing.oauth)?;
    let scope = scope(&form)?;
    let client = ClientInfo::of(&req, &network.trusted_proxies);
    let codes = pairing::request_codes(&pool, &pairing, &client_id, scope.as_deref(), &client)
        .await?
        .map_err(|refused| OAuthError::TooManyRequests {
            retry_after: refused.retry_after,
        })?;
    Ok(no_store(HttpResponse::Ok().json(codes)))
}

/// `POST /oauth/token`: the device polls with its device code until it gets its token.
pub async fn token(
    req: HttpRequest,
    body: web::Bytes,
    pool: web::Data<PgPool>,
    pairing: web::Data<Pairing>,
    network: web::Data<NetworkSettings>,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::read(&req, &body)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    if grant_type != DEVICE_CODE_GRANT {
        return Err(OAuthError::bad_request(
            "unsupported_grant_type",
            format!("grant_type must be {DEVICE_CODE_GRANT}"),
        ));
    }
    let client_id = client_id(&req, &form, &pairing.oauth)?;
    let device_code = form
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
    let device_code =
        DeviceCode::parse(device_code).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let client = ClientInfo::of(&req, &network.trusted_proxies);
    let refusal = match pairing::poll(&pool, &pairing, &device_code, &client_id, &client).await? {
        Ok(issued) => return Ok(no_store(HttpResponse::Ok().json(issued))),
        Err(refusal) => refusal,
    };
    Err(match refusal {
        PollRefusal::Pending => OAuthError::bad_request(
            "authorization_pending",
            "device_code is waiting for a staff member to approve it",
        ),
        PollRefusal::SlowDown => OAuthError::bad_request(
            "slow_down",
            format!(
                "device_code was polled too often; its interval grew by {} s",
                pairing::SLOW_DOWN_SECS
            ),
        ),
        PollRefusal::Denied => {
            OAuthError::bad_request("access_denied", "device_code was denied by a staff member")
        }
        PollRefusal::Expired => OAuthError::bad_request(
            "expired_token",
            "device_code has expired; ask for a new code",
        ),
        PollRefusal::InvalidGrant(why) => OAuthError::bad_request("invalid_grant", why),
    })
}

/// The authorization server's metadata (RFC 8414 §2), so that a standard OAuth client finds the
/// device flow's endpoints from the address of this service alone.
#[derive(Debug, Serialize)]
struct Metadata {
    issuer: String,
    device_authorization_endpoint: String,
    token_endpoint: String,
    grant_types_supported: [&'static str; 1],
    /// Required by RFC 8414; empty, as this server has no authorization endpoint.
    response_types_supported: [&'static str; 0],
    /// Devices are public clients: they send their `client_id` and no secret.
    token_endpoint_auth_methods_supported: [&'static str; 1],
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn metadata(req: HttpRequest, pairing: web::Data<Pairing>) -> HttpResponse {
    let issuer = match &pairing.oauth.issuer {
        Some(issuer) => issuer.trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    HttpResponse::Ok().json(Metadata {
        device_authorization_endpoint: format!("{issuer}/oauth/device_authorization"),
        token_endpoint: format!("{issuer}/oauth/token"),
        issuer,
        grant_types_supported: [DEVICE_CODE_GRANT],
        response_types_supported: [],
        token_endpoint_auth_methods_supported: ["none"],
    })
}
