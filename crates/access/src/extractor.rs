//! The actix-web side: [`Staff`] turns the request's token into a principal or a 401.

use std::{ops::Deref, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, http::header, web};
use futures_util::future::LocalBoxFuture;
use service_kit::http::ClientError;
use uuid::Uuid;

use crate::{Permission, StaffPrincipal, StaffVerifier};

/// The cookie the web UI will carry the staff session token in (`HttpOnly`, `Secure`,
/// `SameSite=Strict`), for browsers that cannot set an `Authorization` header on every request.
pub const SESSION_COOKIE: &str = "kitchen_staff_session";

/// A signed-in staff member. Needs a `web::Data<StaffVerifier>` in the app.
///
/// ```ignore
/// async fn cancel(staff: Staff, scope: PizzeriaScope) -> Result<HttpResponse, ApiError> {
///     staff.require(scope.pizzeria_id, Permission::OrdersManage)?;
///     ...
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Staff(pub Arc<StaffPrincipal>);

impl Deref for Staff {
    type Target = StaffPrincipal;
    fn deref(&self) -> &StaffPrincipal {
        &self.0
    }
}

impl Staff {
    /// 403 unless the caller may do `permission` in `pizzeria_id`.
    pub fn require(&self, pizzeria_id: Uuid, permission: Permission) -> Result<(), ClientError> {
        if self.can(pizzeria_id, permission) {
            Ok(())
        } else {
            Err(forbidden(permission))
        }
    }
}

fn forbidden(permission: Permission) -> ClientError {
    ClientError::forbidden(format!(
        "you need the {permission} permission in this pizzeria"
    ))
}

/// The token of the request: `Authorization: Bearer <token>`, else the session cookie.
pub fn request_token(req: &HttpRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    bearer.or_else(|| session_cookie(req))
}

/// The session cookie, read by hand: the workspace builds actix-web without its cookie feature.
fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

impl FromRequest for Staff {
    type Error = ClientError;
    type Future = LocalBoxFuture<'static, Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = request_token(req);
        let verifier = req.app_data::<web::Data<StaffVerifier>>().cloned();
        Box::pin(async move {
            let Some(verifier) = verifier else {
                tracing::error!("the Staff extractor needs a web::Data<StaffVerifier> in the app");
                return Err(ClientError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong on our side; it has been logged",
                ));
            };
            let Some(token) = token else {
                return Err(ClientError::unauthorized(
                    "sign in: send Authorization: Bearer <staff session token>",
                ));
            };
            match verifier.verify(&token).await {
                Ok(Some(principal)) => Ok(Staff(principal)),
                Ok(None) => Err(ClientError::unauthorized(
                    "the session is invalid, expired or revoked; sign in again",
                )),
                Err(e) => {
                    tracing::error!(
                        error = format!("{:#}", anyhow::Error::new(e)),
                        "cannot check a staff token"
                    );
                    Err(ClientError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "auth_unavailable",
                        "sign-in cannot be checked right now; try again shortly",
                    ))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn reads_a_bearer_token_before_the_cookie() {
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer kst_abc"))
            .insert_header((header::COOKIE, format!("{SESSION_COOKIE}=kst_cookie")))
            .to_http_request();
        assert_eq!(request_token(&req).as_deref(), Some("kst_abc"));
        let req = TestRequest::default()
            .insert_header((
                header::COOKIE,
                format!("theme=dark; {SESSION_COOKIE}=kst_cookie"),
            ))
            .to_http_request();
        assert_eq!(request_token(&req).as_deref(), Some("kst_cookie"));
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Basic a2l0Y2hlbg=="))
            .to_http_request();
        assert_eq!(request_token(&req), None);
    }

    #[test]
    fn require_names_the_missing_permission() {
        let staff = Staff(Arc::new(StaffPrincipal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            login: "k".into(),
            display_name: "K".into(),
            chain_admin: false,
            grants: vec![],
            expires_at: chrono::Utc::now(),
        }));
        let err = staff
            .require(Uuid::new_v4(), Permission::OrdersManage)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(err.message.contains("orders.manage"));
    }
}
