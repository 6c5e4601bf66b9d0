//! Activation, on the manager's computer: type the code a device shows, see who asked, choose
//! what the device becomes (kind, station, name), approve or deny. Below it, the pizzeria's
//! devices: rename, move to another station, revoke.

use access::{DeviceKind, Permission};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    errors::{PageError, html},
    screens,
    session::{Csrf, Form, StaffViewer},
    upstream::{Body, Service, UpstreamError},
};

use super::{
    AppState, pizzeria_param, see_other,
    staff::{Nav, pizzerias_of, require},
    uuid_param, with_csrf,
};

#[derive(Debug, Clone, Deserialize)]
pub struct Station {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pizzeria {
    pub name: String,
    pub stations: Vec<Station>,
}

/// The tracker's view of a pizzeria: its name, stations and routes.
pub async fn pizzeria(
    state: &AppState,
    pizzeria_id: Uuid,
    bearer: &str,
) -> Result<Pizzeria, UpstreamError> {
    state
        .upstream
        .get(
            Service::Tracker,
            &format!("/api/v1/pizzerias/{pizzeria_id}"),
            bearer,
        )
        .await
}

#[derive(Debug, Deserialize)]
struct Authorization {
    user_code: String,
    status: String,
    requested_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: String,
    user_agent: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeviceRow {
    device_id: Uuid,
    kind: String,
    name: String,
    station: Option<String>,
    approved_by_name: String,
    last_seen_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct DeviceList {
    devices: Vec<DeviceRow>,
}

struct DeviceLine {
    id: Uuid,
    name: String,
    kind: &'static str,
    station: Option<String>,
    station_title: String,
    approved_by: String,
    last_seen: String,
    revoked: bool,
}

struct RequestView {
    user_code: String,
    pending: bool,
    status: String,
    requested: String,
    expires: String,
    ip: String,
    user_agent: String,
}

struct ManagedPizzeria {
    id: Uuid,
    name: String,
    stations: Vec<Station>,
    devices: Vec<DeviceLine>,
}

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage {
    nav: Nav,
    code: String,
    problem: Option<String>,
    notice: Option<String>,
    request: Option<RequestView>,
    approvable: Vec<(Uuid, String)>,
    stations: Vec<Station>,
    kinds: Vec<(&'static str, &'static str)>,
    managed: Vec<ManagedPizzeria>,
}

pub fn kind_label(kind: &str) -> &'static str {
    match DeviceKind::parse(kind) {
        Some(DeviceKind::KitchenStation) => "Station tablet",
        Some(DeviceKind::OrderBoard) => "TV order board",
        Some(DeviceKind::MotivationBoard) => "Motivation board",
        Some(DeviceKind::ShiftManagerScreen) => "Shift manager screen",
        None => "Unknown device",
    }
}

#[derive(Debug, Deserialize)]
pub struct ActivateQuery {
    user_code: Option<String>,
    approved: Option<String>,
    denied: Option<String>,
    done: Option<String>,
    problem: Option<String>,
}

/// What went wrong with a code, in words for the manager.
fn code_problem(e: &UpstreamError) -> Option<String> {
    let message = match (e.status()?, e.code().unwrap_or_default()) {
        (StatusCode::NOT_FOUND, _) => {
            "No device is waiting with this code. Check the letters on the device's screen; a code lives 10 minutes."
        }
        (StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST, _) => {
            "A code is 8 letters, such as BCDF-GHJK."
        }
        (StatusCode::CONFLICT, _) => "This device request was already decided.",
        (StatusCode::TOO_MANY_REQUESTS, _) => {
            "Too many codes entered. Wait a minute, then try again."
        }
        _ => return None,
    };
    Some(message.to_owned())
}

/// `GET /activate?user_code=`
pub async fn activate_page(
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
    query: web::Query<ActivateQuery>,
) -> Result<HttpResponse, PageError> {
    let principal = &viewer.principal;
    let pizzerias = pizzerias_of(principal);
    let approvable_ids: Vec<Uuid> = pizzerias
        .iter()
        .copied()
        .filter(|p| principal.can(*p, Permission::DevicesApprove))
        .collect();
    let managed_ids: Vec<Uuid> = pizzerias
        .iter()
        .copied()
        .filter(|p| principal.can(*p, Permission::DevicesManage))
        .collect();
    if approvable_ids.is_empty() && managed_ids.is_empty() {
        return Err(PageError::Forbidden("devices".into()));
    }
    let mut names: Vec<(Uuid, String, Vec<Station>)> = Vec::new();
    let mut first_stations = Vec::new();
    for id in approvable_ids.iter().chain(&managed_ids) {
        if names.iter().any(|(known, _, _)| known == id) {
            continue;
        }
        let view = pizzeria(&state, *id, &viewer.token).await?;
        if first_stations.is_empty() {
            first_stations = view.stations.clone();
        }
        names.push((*id, view.name, view.stations));
    }
    let name_of = |id: Uuid| {
        names
            .iter()
            .find(|(known, _, _)| *known == id)
            .map_or_else(|| id.to_string(), |(_, n, _)| n.clone())
    };

    let code = query.user_code.clone().unwrap_or_default();
    let mut problem = query.problem.clone();
    let mut request = None;
    if !code.trim().is_empty() {
        let answer: Result<Authorization, _> = state
            .upstream
            .call(
                Service::Devices,
                Method::POST,
                "/api/v1/device-authorizations/lookup",
                Some(&viewer.token),
                Body::Json(&json!({ "user_code": code.trim() })),
            )
            .await;
        match answer {
            Ok(a) => {
                request = Some(RequestView {
                    pending: a.status == "pending",
                    status: a.status,
                    requested: screens::clock(a.requested_at),
                    expires: screens::clock(a.expires_at),
                    ip: a.ip,
                    user_agent: a.user_agent.unwrap_or_default(),
                    user_code: a.user_code,
                });
            }
            Err(e) => match code_problem(&e) {
                Some(p) => problem = Some(p),
                None => return Err(e.into()),
            },
        }
    }

    let mut managed = Vec::new();
    for id in &managed_ids {
        let list: DeviceList = state
            .upstream
            .get(
                Service::Devices,
                &format!("/api/v1/pizzerias/{id}/devices"),
                &viewer.token,
            )
            .await?;
        let stations = names
            .iter()
            .find(|(known, _, _)| known == id)
            .map(|(_, _, s)| s.clone())
            .unwrap_or_default();
        managed.push(ManagedPizzeria {
            id: *id,
            name: name_of(*id),
            stations,
            devices: list
                .devices
                .into_iter()
                .map(|d| DeviceLine {
                    id: d.device_id,
                    kind: kind_label(&d.kind),
                    station_title: d
                        .station
                        .as_deref()
                        .map(screens::station_title)
                        .unwrap_or_default(),
                    station: d.station,
                    name: d.name,
                    approved_by: d.approved_by_name,
                    last_seen: d
                        .last_seen_at
                        .map(screens::clock)
                        .unwrap_or_else(|| "never".into()),
                    revoked: d.revoked_at.is_some(),
                })
                .collect(),
        });
    }

    let notice = match (&query.approved, &query.denied, &query.done) {
        (Some(name), _, _) => Some(format!(
            "Approved. “{name}” opens its screen by itself within a few seconds."
        )),
        (_, Some(_), _) => Some("Denied. The device shows a new code.".to_owned()),
        (_, _, Some(done)) => Some(done.clone()),
        _ => None,
    };
    let home = approvable_ids
        .first()
        .or(managed_ids.first())
        .copied()
        .unwrap_or_default();
    let page = ActivatePage {
        nav: Nav::new(&viewer, home, &csrf, "devices"),
        code,
        problem,
        notice,
        request,
        approvable: approvable_ids
            .iter()
            .map(|id| (*id, name_of(*id)))
            .collect(),
        stations: first_stations,
        kinds: DeviceKind::ALL
            .into_iter()
            .filter(|k| *k != DeviceKind::ShiftManagerScreen)
            .map(|k| (k.as_str(), kind_label(k.as_str())))
            .collect(),
        managed,
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    user_code: String,
    pizzeria_id: Uuid,
    kind: String,
    station: Option<String>,
    name: String,
}

fn back_with_problem(code: &str, problem: &str) -> HttpResponse {
    see_other(&format!(
        "/activate?{}",
        serde_urlencoded::to_string([("user_code", code), ("problem", problem)])
            .unwrap_or_default()
    ))
}

/// What a refused approval means, in words; `None` for what the error page handles.
fn decision_problem(e: &UpstreamError) -> Option<String> {
    match (e.status(), e) {
        (Some(StatusCode::UNPROCESSABLE_ENTITY), UpstreamError::Refused { message, .. }) => {
            Some(format!("Check the form: {message}."))
        }
        _ => code_problem(e),
    }
}

/// `POST /activate/approve`
pub async fn approve(
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<ApproveForm>,
) -> Result<HttpResponse, PageError> {
    require(&viewer, form.pizzeria_id, Permission::DevicesApprove)?;
    let station = form.station.as_deref().filter(|s| {
        !s.is_empty() && DeviceKind::parse(&form.kind).is_some_and(DeviceKind::has_station)
    });
    let body = json!({
        "user_code": form.user_code,
        "pizzeria_id": form.pizzeria_id,
        "kind": form.kind,
        "station": station,
        "name": form.name.trim(),
    });
    let answer: Result<serde_json::Value, _> = state
        .upstream
        .call(
            Service::Devices,
            Method::POST,
            "/api/v1/device-authorizations/approve",
            Some(&viewer.token),
            Body::Json(&body),
        )
        .await;
    match answer {
        Ok(_) => Ok(see_other(&format!(
            "/activate?{}",
            serde_urlencoded::to_string([("approved", form.name.trim())]).unwrap_or_default()
        ))),
        Err(e) => match decision_problem(&e) {
            Some(problem) => Ok(back_with_problem(&form.user_code, &problem)),
            None => Err(e.into()),
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct DenyForm {
    user_code: String,
}

/// `POST /activate/deny`
pub async fn deny(
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<DenyForm>,
) -> Result<HttpResponse, PageError> {
    let answer: Result<serde_json::Value, _> = state
        .upstream
        .call(
            Service::Devices,
            Method::POST,
            "/api/v1/device-authorizations/deny",
            Some(&viewer.token),
            Body::Json(&json!({ "user_code": form.user_code })),
        )
        .await;
    match answer {
        Ok(_) => Ok(see_other("/activate?denied=1")),
        Err(e) => match decision_problem(&e) {
            Some(problem) => Ok(back_with_problem(&form.user_code, &problem)),
            None => Err(e.into()),
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct RenameForm {
    name: String,
}

#[derive(Debug, Deserialize)]
pub struct MoveForm {
    station: String,
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

async fn change_device(
    req: &HttpRequest,
    viewer: &StaffViewer,
    state: &AppState,
    method: Method,
    body: Option<serde_json::Value>,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let pizzeria_id = pizzeria_param(req)?;
    let device_id = uuid_param(req, "device_id")?;
    require(viewer, pizzeria_id, Permission::DevicesManage)?;
    let path = format!("/api/v1/pizzerias/{pizzeria_id}/devices/{device_id}");
    let body = match &body {
        Some(value) => Body::Json(value),
        None => Body::Empty,
    };
    let answer: Result<serde_json::Value, _> = state
        .upstream
        .call(Service::Devices, method, &path, Some(&viewer.token), body)
        .await;
    let done = match answer {
        Ok(_) => done.to_owned(),
        Err(UpstreamError::Refused {
            status, message, ..
        }) if status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY => {
            format!("Not changed: {message}.")
        }
        Err(e) => return Err(e.into()),
    };
    Ok(see_other(&format!(
        "/activate?{}#devices",
        serde_urlencoded::to_string([("done", done.as_str())]).unwrap_or_default()
    )))
}

/// `POST /p/{p}/devices/{id}/rename`
pub async fn rename(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<RenameForm>,
) -> Result<HttpResponse, PageError> {
    let body = json!({ "name": form.name.trim() });
    change_device(&req, &viewer, &state, Method::PATCH, Some(body), "Renamed.").await
}

/// `POST /p/{p}/devices/{id}/move`
pub async fn move_station(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<MoveForm>,
) -> Result<HttpResponse, PageError> {
    let body = json!({ "station": form.station });
    change_device(&req, &viewer, &state, Method::PATCH, Some(body), "Moved.").await
}

/// `POST /p/{p}/devices/{id}/revoke`
pub async fn revoke(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    change_device(
        &req,
        &viewer,
        &state,
        Method::DELETE,
        None,
        "Revoked. The device is back at its login code within a second.",
    )
    .await
}
