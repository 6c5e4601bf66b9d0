//! The HTTP API, one module per audience. Every handler takes its pizzeria from the path
//! through [`PizzeriaScope`] or [`StationScope`] and its caller through `access::Caller` (a
//! staff session or a kitchen device; a missing or dead token is a 401), and checks the caller
//! may act in that pizzeria before it reads anything (a 403 otherwise). The caller comes first
//! among the arguments, so a request without a token gets its 401 before any other complaint.
//! Order intake takes an order source's key instead ([`intake::OrderSourceKey`]).

mod board;
mod intake;
mod kitchen;
mod manager;
mod pizzerias;
mod who;

pub use who::KitchenStaff;

use access::{Caller, DeviceKind, Permission};
use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    dev::Payload,
    http::{StatusCode, header},
    web,
};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use service_kit::http::{ClientError, internal_error_response, parse_json, path_param};
use uuid::Uuid;

use crate::{
    domain::{Conflict, StationCode, ValidationError},
    kitchen::KitchenError,
    versions::{Lookup, VersionKey, Versions},
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        // actix tries the routes in this order, and every path with a `{segment}` is a regex
        // match (`regex_lite` was 7-10% of the tracker's CPU under load: docs/BENCHMARKS.md).
        // The station poll, the tap and the board come first, so the requests that are nearly
        // all of the load stop at the first to third try. No two of these patterns can match
        // the same path, so the order changes nothing else.
        web::scope("/api/v1")
            .route(
                "/pizzerias/{pizzeria_id}/stations/{station}/queue",
                web::get().to(kitchen::station_queue),
            )
            .route(
                "/pizzerias/{pizzeria_id}/stations/{station}/products/{product_id}/tap",
                web::post().to(kitchen::tap),
            )
            .route(
                "/pizzerias/{pizzeria_id}/board",
                web::get().to(board::board),
            )
            .route("/orders", web::post().to(intake::post_order))
            .route(
                "/pizzerias/{pizzeria_id}",
                web::put().to(pizzerias::put_pizzeria),
            )
            .route(
                "/pizzerias/{pizzeria_id}",
                web::get().to(pizzerias::get_pizzeria),
            )
            .route(
                "/pizzerias/{pizzeria_id}/routes/{category}",
                web::put().to(pizzerias::put_route),
            )
            .route(
                "/pizzerias/{pizzeria_id}/stations/{station}/taps/{tap_id}/undo",
                web::post().to(kitchen::undo),
            )
            .route(
                "/pizzerias/{pizzeria_id}/stations/{station}/taps/{tap_id}/recall",
                web::post().to(kitchen::recall),
            )
            .route(
                "/pizzerias/{pizzeria_id}/orders",
                web::get().to(manager::list_orders),
            )
            .route(
                "/pizzerias/{pizzeria_id}/orders/{order_id}",
                web::get().to(manager::get_order),
            )
            .route(
                "/pizzerias/{pizzeria_id}/orders/{order_id}/cancel",
                web::post().to(manager::cancel),
            )
            .route(
                "/pizzerias/{pizzeria_id}/orders/{order_id}/hand-over",
                web::post().to(manager::hand_over),
            )
            .route(
                "/pizzerias/{pizzeria_id}/orders/{order_id}/rush",
                web::post().to(manager::rush),
            )
            .route(
                "/pizzerias/{pizzeria_id}/orders/{order_id}/products/{product_id}/remake",
                web::post().to(manager::remake),
            )
            .route(
                "/pizzerias/{pizzeria_id}/reports/stations",
                web::get().to(manager::station_report),
            )
            .route(
                "/pizzerias/{pizzeria_id}/reports/actors",
                web::get().to(manager::actor_report),
            ),
    );
}

/// Everything a handler can fail with. Client mistakes become 4xx bodies that name the field
/// or the state that stopped them; anything else is logged and answered with a bare 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Kitchen(#[from] KitchenError),
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Kitchen(KitchenError::Unexpected(e))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Kitchen(KitchenError::Unexpected(e.into()))
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Kitchen(KitchenError::Invalid(e))
    }
}

impl From<Conflict> for ApiError {
    fn from(e: Conflict) -> Self {
        ApiError::Kitchen(KitchenError::Conflict(e))
    }
}

impl ApiError {
    fn client_error(&self) -> Option<ClientError> {
        match self {
            ApiError::Client(e) => Some(e.clone()),
            ApiError::Kitchen(KitchenError::NotFound(what)) => Some(ClientError::not_found(what)),
            ApiError::Kitchen(KitchenError::Conflict(c)) => {
                Some(ClientError::conflict(c.code, c.message))
            }
            ApiError::Kitchen(KitchenError::Invalid(v)) => {
                Some(ClientError::invalid(&v.field, &v.rule))
            }
            ApiError::Kitchen(KitchenError::Unexpected(_)) => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.client_error()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, |e| e.status)
    }

    fn error_response(&self) -> HttpResponse {
        match (self.client_error(), self) {
            (Some(e), _) => e.error_response(),
            (None, ApiError::Kitchen(KitchenError::Unexpected(e))) => internal_error_response(e),
            (None, other) => internal_error_response(&anyhow::anyhow!("{other}")),
        }
    }
}

const UUID_RULE: &str = "must be a UUID";

/// The pizzeria a request acts in, from `{pizzeria_id}`.
#[derive(Debug, Clone, Copy)]
pub struct PizzeriaScope {
    pub pizzeria_id: Uuid,
}

impl FromRequest for PizzeriaScope {
    type Error = ClientError;
    type Future = std::future::Ready<Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            path_param(req, "pizzeria_id", UUID_RULE)
                .map(|pizzeria_id| PizzeriaScope { pizzeria_id }),
        )
    }
}

/// The station a tablet acts at, from `{pizzeria_id}` and `{station}`.
#[derive(Debug, Clone)]
pub struct StationScope {
    pub pizzeria_id: Uuid,
    pub station: StationCode,
}

impl FromRequest for StationScope {
    type Error = ClientError;
    type Future = std::future::Ready<Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let scope = path_param(req, "pizzeria_id", UUID_RULE).and_then(|pizzeria_id| {
            Ok(StationScope {
                pizzeria_id,
                station: path_param(
                    req,
                    "station",
                    "must be 1 to 32 characters of a-z, 0-9, - or _",
                )?,
            })
        });
        std::future::ready(scope)
    }
}

/// A UUID from the path, or a 400 naming the parameter.
pub fn uuid_param(req: &HttpRequest, name: &str) -> Result<Uuid, ClientError> {
    path_param(req, name, UUID_RULE)
}

/// A JSON body that may be left out entirely (`POST .../tap` with no body): an empty body is
/// `T::default()`, anything else must be JSON and is read like [`service_kit::http::Json`].
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ClientError;
    type Future = LocalBoxFuture<'static, Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(service_kit::http::unreadable_body)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            if !is_json {
                return Err(ClientError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "unsupported_media_type",
                    ..ClientError::malformed("Content-Type", "must be application/json")
                });
            }
            parse_json(&bytes).map(OptionalJson)
        })
    }
}

/// Pizzeria configuration (stations, routes, target times) is the chain's menu engineering, and
/// no per-pizzeria permission fits it, so only a chain admin may change it.
pub fn require_chain_admin(caller: &Caller) -> Result<(), ClientError> {
    match caller.staff() {
        Some(staff) if staff.chain_admin => Ok(()),
        _ => Err(ClientError::forbidden(
            "only a chain admin can configure pizzerias",
        )),
    }
}

/// Anyone of the pizzeria: staff with a role there (or a chain admin), or one of its devices.
pub fn require_member(caller: &Caller, pizzeria_id: Uuid) -> Result<(), ClientError> {
    let member = match caller {
        Caller::Staff(staff) => staff.works_in(pizzeria_id),
        Caller::Device(device) => device.pizzeria_id == pizzeria_id,
    };
    if member {
        Ok(())
    } else {
        Err(ClientError::forbidden("you do not work in this pizzeria"))
    }
}

/// The kitchen's reports: staff with `reports.read` in the pizzeria, or its motivation board
/// (the kitchen screen that shows them). `access::Caller` has `require_station` and
/// `require_board` for the other devices; this one is the tracker's, as only it serves reports.
pub fn require_reports(caller: &Caller, pizzeria_id: Uuid) -> Result<(), ClientError> {
    match caller {
        Caller::Device(device) if device.is_kind(pizzeria_id, DeviceKind::MotivationBoard) => {
            Ok(())
        }
        Caller::Device(_) => Err(ClientError::forbidden(
            "this device is not a motivation board of this pizzeria",
        )),
        Caller::Staff(_) => caller.require(pizzeria_id, Permission::ReportsRead),
    }
}

pub fn parse_reason(raw: Option<&str>) -> Result<Option<crate::domain::Reason>, ValidationError> {
    raw.map(crate::domain::Reason::parse).transpose()
}

/// A weak ETag from a version counter: the body also carries `generated_at`, so two bodies of
/// one version are equivalent, not byte-identical.
pub fn weak_etag(prefix: &str, version: i64) -> String {
    format!("W/\"{prefix}{version}\"")
}

/// Whether the request's `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for
/// If-None-Match), or is `*`.
pub fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag);
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == ours)
}

/// The current version of `key`: from memory when the version map can answer (no database
/// round trip), else from `read_database`, whose answer then fills the map. `None` when the
/// station or pizzeria does not exist.
pub async fn current_version(
    versions: &Versions,
    key: VersionKey,
    read_database: impl Future<Output = anyhow::Result<Option<i64>>>,
) -> anyhow::Result<Option<i64>> {
    match versions.lookup(&key) {
        Lookup::Known(version) => Ok(Some(version)),
        Lookup::Miss { generation } => {
            let version = read_database.await?;
            if let Some(version) = version {
                versions.store(key, version, generation);
            }
            Ok(version)
        }
    }
}

/// 304 with the tag, for a poll that already has the current version.
pub fn not_modified(etag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .finish()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_reads_lists() {
        let etag = weak_etag("q", 7);
        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"q6\", W/\"q7\""))
            .to_http_request();
        assert!(if_none_match(&req, &etag));
        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"q7\""))
            .to_http_request();
        assert!(if_none_match(&req, &etag));
        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "W/\"q8\""))
            .to_http_request();
        assert!(!if_none_match(&req, &etag));
        assert!(!if_none_match(
            &TestRequest::default().to_http_request(),
            &etag
        ));
    }
}
