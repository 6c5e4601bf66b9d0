//! The actix-web side: [`Staff`] turns the request's staff token into a principal or a 401;
//! [`Caller`] takes a staff token or a device token, told apart by their prefixes.

use std::{ops::Deref, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, http::header, web};
use futures_util::future::LocalBoxFuture;
use service_kit::http::ClientError;
use uuid::Uuid;

use crate::{
    DeviceKind, DevicePrincipal, DeviceVerifier, Permission, StaffPrincipal, StaffVerifier,
    token::is_device_token,
};

/// The cookie the web UI carries the staff session token in (`HttpOnly`, `Secure`,
/// `SameSite=Strict`). Only the web reads it; the APIs never do (see [`request_token`]).
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

    /// 403 unless the caller holds `permission` across the chain (a chain admin, or an on-call
    /// role): for what belongs to no pizzeria, such as the bus's dead letters.
    pub fn require_chain_wide(&self, permission: Permission) -> Result<(), ClientError> {
        if self.can_chain_wide(permission) {
            Ok(())
        } else {
            Err(ClientError::forbidden(format!(
                "you need the {permission} permission across the chain"
            )))
        }
    }
}

/// Staff read dead letters with `operations.read` and replay or discard them with
/// `operations.replay`, both held across the chain (a chain admin, or an on-call role).
impl bus::dead_letters::http::Operator for Staff {
    fn require_read(&self) -> Result<(), ClientError> {
        self.require_chain_wide(Permission::OperationsRead)
    }

    fn require_replay(&self) -> Result<(), ClientError> {
        self.require_chain_wide(Permission::OperationsReplay)
    }

    fn actor(&self) -> bus::dead_letters::audit::Actor {
        bus::dead_letters::audit::Actor {
            id: self.user_id,
            name: self.display_name.clone(),
        }
    }
}

fn forbidden(permission: Permission) -> ClientError {
    ClientError::forbidden(format!(
        "you need the {permission} permission in this pizzeria"
    ))
}

/// The token of the request: `Authorization: Bearer <token>`, and nothing else. The APIs take
/// no cookie: a browser sends cookies by itself, so a page on a sibling origin (or an XSS there)
/// could make a signed-in manager's browser call them; a Bearer token has to be put there on
/// purpose, which only the web does, server-side.
pub fn request_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
}

impl FromRequest for Staff {
    type Error = ClientError;
    type Future = LocalBoxFuture<'static, Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = request_token(req);
        let verifier = req.app_data::<web::Data<StaffVerifier>>().cloned();
        Box::pin(async move {
            let verifier = verifier.ok_or_else(|| misconfigured("Staff", "StaffVerifier"))?;
            let token = token.ok_or_else(|| {
                ClientError::unauthorized(
                    "sign in: send Authorization: Bearer <staff session token>",
                )
            })?;
            verify_staff(&verifier, &token).await.map(Staff)
        })
    }
}

async fn verify_staff(
    verifier: &StaffVerifier,
    token: &str,
) -> Result<Arc<StaffPrincipal>, ClientError> {
    match verifier.verify(token).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(ClientError::unauthorized(
            "the session is invalid, expired or revoked; sign in again",
        )),
        Err(e) => Err(unavailable(
            e,
            "cannot check a staff token",
            "auth_unavailable",
            "sign-in cannot be checked right now; try again shortly",
        )),
    }
}

fn unavailable(e: crate::AccessError, log: &str, code: &'static str, message: &str) -> ClientError {
    tracing::error!(error = format!("{:#}", anyhow::Error::new(e)), "{log}");
    ClientError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
}

/// The app was built without what an extractor needs: our mistake, logged, never a pass.
fn misconfigured(extractor: &str, data: &str) -> ClientError {
    tracing::error!("the {extractor} extractor needs a web::Data<{data}> in the app");
    ClientError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "something went wrong on our side; it has been logged",
    )
}

/// Whoever is calling: a signed-in staff member (`kst_` token) or a kitchen device (`kdt_`
/// token). Needs a `web::Data<StaffVerifier>` and a `web::Data<DeviceVerifier>` in the app. A
/// missing, unknown, expired or revoked token is a 401; the `require_*` helpers give 403s.
///
/// ```ignore
/// async fn queue(caller: Caller, scope: StationScope) -> Result<HttpResponse, ApiError> {
///     caller.require_station(scope.pizzeria_id, scope.station.as_str())?;
///     ...
/// }
/// ```
#[derive(Debug, Clone)]
pub enum Caller {
    Staff(Arc<StaffPrincipal>),
    Device(Arc<DevicePrincipal>),
}

impl Caller {
    pub fn staff(&self) -> Option<&StaffPrincipal> {
        match self {
            Caller::Staff(s) => Some(s),
            Caller::Device(_) => None,
        }
    }

    pub fn device(&self) -> Option<&DevicePrincipal> {
        match self {
            Caller::Staff(_) => None,
            Caller::Device(d) => Some(d),
        }
    }

    /// Who to record as the actor: the staff member's display name or the device's name.
    pub fn display_name(&self) -> &str {
        match self {
            Caller::Staff(s) => &s.display_name,
            Caller::Device(d) => &d.name,
        }
    }

    /// A staff permission; a device holds none, so it gets a 403.
    pub fn require(&self, pizzeria_id: Uuid, permission: Permission) -> Result<(), ClientError> {
        match self {
            Caller::Staff(s) => Staff(s.clone()).require(pizzeria_id, permission),
            Caller::Device(_) => Err(ClientError::forbidden(format!(
                "a device cannot do this; a staff member with {permission} can"
            ))),
        }
    }

    /// The station's work: the tablet of `station` in `pizzeria_id`, or staff with
    /// `kitchen.work` there.
    pub fn require_station(&self, pizzeria_id: Uuid, station: &str) -> Result<(), ClientError> {
        match self {
            Caller::Device(d) if d.is_station(pizzeria_id, station) => Ok(()),
            Caller::Device(_) => Err(ClientError::forbidden(format!(
                "this device is not the {station} tablet of this pizzeria"
            ))),
            Caller::Staff(_) => self.require(pizzeria_id, Permission::KitchenWork),
        }
    }

    /// The TV order board: an order-board device of `pizzeria_id`, or staff with `orders.read`
    /// there.
    pub fn require_board(&self, pizzeria_id: Uuid) -> Result<(), ClientError> {
        match self {
            Caller::Device(d) if d.is_kind(pizzeria_id, DeviceKind::OrderBoard) => Ok(()),
            Caller::Device(_) => Err(ClientError::forbidden(
                "this device is not an order board of this pizzeria",
            )),
            Caller::Staff(_) => self.require(pizzeria_id, Permission::OrdersRead),
        }
    }
}

impl FromRequest for Caller {
    type Error = ClientError;
    type Future = LocalBoxFuture<'static, Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = request_token(req);
        let staff = req.app_data::<web::Data<StaffVerifier>>().cloned();
        let devices = req.app_data::<web::Data<DeviceVerifier>>().cloned();
        let client = devices.as_ref().map(|d| d.client_of(req));
        Box::pin(async move {
            let token = token.ok_or_else(|| {
                ClientError::unauthorized(
                    "sign in: send Authorization: Bearer <staff session or device token>",
                )
            })?;
            if !is_device_token(&token) {
                let staff = staff.ok_or_else(|| misconfigured("Caller", "StaffVerifier"))?;
                return verify_staff(&staff, &token).await.map(Caller::Staff);
            }
            let (Some(devices), Some(client)) = (devices, client) else {
                return Err(misconfigured("Caller", "DeviceVerifier"));
            };
            match devices.verify(&token, &client).await {
                Ok(Some(device)) => Ok(Caller::Device(device)),
                Ok(None) => Err(ClientError::unauthorized(
                    "the device token is invalid or revoked; pair the device again",
                )),
                Err(e) => Err(unavailable(
                    e,
                    "cannot check a device token",
                    "devices_unavailable",
                    "the device cannot be checked right now; try again shortly",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn reads_a_bearer_token_and_never_the_cookie() {
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
        assert_eq!(request_token(&req), None);
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
            chain_permissions: vec![],
            grants: vec![],
            expires_at: chrono::Utc::now(),
            language: None,
        }));
        let err = staff
            .require(Uuid::new_v4(), Permission::OrdersManage)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(err.message.contains("orders.manage"));
    }

    #[test]
    fn a_device_gets_its_own_station_or_board_only() {
        let (here, there) = (Uuid::new_v4(), Uuid::new_v4());
        let device = |kind, station: Option<&str>| {
            Caller::Device(Arc::new(DevicePrincipal {
                device_id: Uuid::new_v4(),
                pizzeria_id: here,
                kind,
                station: station.map(str::to_owned),
                name: "Tablet".into(),
                language: None,
                board_mode: None,
            }))
        };
        let oven = device(DeviceKind::KitchenStation, Some("oven"));
        assert!(oven.require_station(here, "oven").is_ok());
        assert!(oven.require_station(here, "dough").is_err());
        assert!(oven.require_station(there, "oven").is_err());
        assert!(oven.require_board(here).is_err());
        assert!(oven.require(here, Permission::KitchenWork).is_err());
        let board = device(DeviceKind::OrderBoard, None);
        assert!(board.require_board(here).is_ok());
        assert!(board.require_board(there).is_err());
        assert!(board.require_station(here, "oven").is_err());
        let motivation = device(DeviceKind::MotivationBoard, None);
        assert_eq!(
            motivation.require_board(here).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(oven.display_name(), "Tablet");
        assert!(oven.device().is_some() && oven.staff().is_none());
    }
}
