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
    i18n::{self, Lang, Text, fill},
    session::{Csrf, Form, StaffViewer},
    upstream::{Body, Service, UpstreamError},
};

use super::{
    AppState, client_headers, pizzeria_param, see_other,
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
    /// Its IANA time zone, for the times shown.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".to_owned()
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
    approver_ip: String,
    same_network: bool,
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
    /// `None` when the devices service could not ask auth.
    #[serde(default)]
    approver_active: Option<bool>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    board_mode: Option<String>,
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
    /// The approver has been deactivated since: worth a look, perhaps a revocation.
    approver_gone: bool,
    last_seen: String,
    revoked: bool,
    /// The screen's language code; empty: the browser's.
    language: String,
    language_name: &'static str,
    /// A TV board's way of showing customers; `None` for other kinds.
    board_mode: Option<String>,
    labels: DeviceLabels,
}

/// What the device's own controls are called, for screen readers, and the revoke question.
struct DeviceLabels {
    name: String,
    station: String,
    language: String,
    board_mode: String,
    confirm_revoke: String,
}

impl DeviceLabels {
    fn of(t: &Text, device: &str) -> Self {
        let with = |template: &str| fill(template, &[("name", &device)]);
        DeviceLabels {
            name: with(t.name_of),
            station: with(t.station_of),
            language: with(t.language_of),
            board_mode: with(t.board_mode_of),
            confirm_revoke: with(t.confirm_revoke),
        }
    }
}

struct RequestView {
    user_code: String,
    pending: bool,
    status: &'static str,
    /// "14:05 (code valid until 14:15)".
    requested: String,
    ip: String,
    user_agent: String,
    same_network: bool,
    not_your_network: String,
    in_front_of_me: String,
}

struct ManagedPizzeria {
    id: Uuid,
    name: String,
    stations: Vec<Station>,
    devices: Vec<DeviceLine>,
    /// Rename and move need `devices.manage`; seeing and revoking only `devices.approve`.
    can_manage: bool,
}

/// What the approver had chosen when an approval came back refused, so the form shows it again
/// instead of starting empty.
#[derive(Debug, Clone, Default)]
struct Draft {
    pizzeria_id: Option<Uuid>,
    kind: String,
    station: String,
    name: String,
    language: String,
}

impl Draft {
    fn is_pizzeria(&self, id: &Uuid) -> bool {
        self.pizzeria_id.as_ref() == Some(id)
    }
}

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage {
    t: &'static Text,
    nav: Nav,
    code: String,
    problem: Option<&'static str>,
    notice: Option<&'static str>,
    request: Option<RequestView>,
    approvable: Vec<(Uuid, String)>,
    stations: Vec<Station>,
    kinds: Vec<(&'static str, &'static str)>,
    /// (value, label) of a TV board's ways of showing customers.
    board_modes: Vec<(&'static str, &'static str)>,
    managed: Vec<ManagedPizzeria>,
    /// Some listed pizzeria's devices can be revoked here but not renamed or moved.
    some_unmanaged: bool,
    draft: Draft,
}

pub fn kind_label(kind: &str) -> &'static str {
    let t = i18n::text();
    match DeviceKind::parse(kind) {
        Some(DeviceKind::KitchenStation) => t.kind_station,
        Some(DeviceKind::OrderBoard) => t.kind_board,
        Some(DeviceKind::MotivationBoard) => t.kind_motivation,
        Some(DeviceKind::ShiftManagerScreen) => t.kind_manager_screen,
        None => t.kind_unknown,
    }
}

/// A pairing request's status in words.
fn request_status(status: &str) -> &'static str {
    let t = i18n::text();
    match status {
        "pending" => t.auth_pending,
        "approved" => t.auth_approved,
        "denied" => t.auth_denied,
        "redeemed" => t.auth_redeemed,
        _ => t.auth_expired,
    }
}

/// Why a code or a decision did not go through. Only these codes travel in the query string,
/// never words: a link to `/activate` must not be able to put its own text on this page, which
/// an approver would take for ours (RFC 8628 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    UnknownCode,
    MalformedCode,
    AlreadyDecided,
    TooManyCodes,
    StationRequired,
    NameRequired,
    NotConfirmed,
    FormRefused,
    ChangeRefused,
}

impl Problem {
    const ALL: [Problem; 9] = [
        Problem::UnknownCode,
        Problem::MalformedCode,
        Problem::AlreadyDecided,
        Problem::TooManyCodes,
        Problem::StationRequired,
        Problem::NameRequired,
        Problem::NotConfirmed,
        Problem::FormRefused,
        Problem::ChangeRefused,
    ];

    fn code(self) -> &'static str {
        match self {
            Problem::UnknownCode => "unknown_code",
            Problem::MalformedCode => "malformed_code",
            Problem::AlreadyDecided => "already_decided",
            Problem::TooManyCodes => "too_many_codes",
            Problem::StationRequired => "station_required",
            Problem::NameRequired => "name_required",
            Problem::NotConfirmed => "not_confirmed",
            Problem::FormRefused => "form_refused",
            Problem::ChangeRefused => "change_refused",
        }
    }

    fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    fn message(self) -> &'static str {
        let t = i18n::text();
        match self {
            Problem::UnknownCode => t.p_unknown_code,
            Problem::MalformedCode => t.p_malformed_code,
            Problem::AlreadyDecided => t.p_already_decided,
            Problem::TooManyCodes => t.p_too_many_codes,
            Problem::StationRequired => t.p_station_required,
            Problem::NameRequired => t.p_name_required,
            Problem::NotConfirmed => t.p_not_confirmed,
            Problem::FormRefused => t.p_form_refused,
            Problem::ChangeRefused => t.p_change_refused,
        }
    }
}

/// What a finished action says, by code for the same reason as [`Problem`].
fn notice(code: &str) -> Option<&'static str> {
    let t = i18n::text();
    Some(match code {
        "approved" => t.n_approved,
        "denied" => t.n_denied,
        "renamed" => t.n_renamed,
        "moved" => t.n_moved,
        "revoked" => t.n_revoked,
        "screen_saved" => t.n_screen_saved,
        _ => return None,
    })
}

/// The name of a stored language code, in itself; the browser's when there is none.
fn language_name(code: Option<&str>) -> &'static str {
    code.and_then(Lang::parse)
        .map_or(i18n::text().language_browser, Lang::autonym)
}

#[derive(Debug, Deserialize)]
pub struct ActivateQuery {
    user_code: Option<String>,
    done: Option<String>,
    problem: Option<String>,
}

/// What went wrong with a code; `None` for what the error page handles.
fn code_problem(e: &UpstreamError) -> Option<Problem> {
    Some(match e.status()? {
        StatusCode::NOT_FOUND => Problem::UnknownCode,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => Problem::MalformedCode,
        StatusCode::CONFLICT => Problem::AlreadyDecided,
        StatusCode::TOO_MANY_REQUESTS => Problem::TooManyCodes,
        _ => return None,
    })
}

/// `GET /activate?user_code=`
pub async fn activate_page(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
    query: web::Query<ActivateQuery>,
) -> Result<HttpResponse, PageError> {
    let view = View {
        code: query.user_code.clone().unwrap_or_default(),
        problem: query.problem.as_deref().and_then(Problem::parse),
        notice: query.done.as_deref().and_then(notice),
        draft: Draft::default(),
    };
    let page = render(&req, &viewer, &state, &csrf, view).await?;
    Ok(with_csrf(html(&page)?, &csrf))
}

/// What to show besides what the services say.
struct View {
    code: String,
    problem: Option<Problem>,
    notice: Option<&'static str>,
    draft: Draft,
}

async fn render(
    req: &HttpRequest,
    viewer: &StaffViewer,
    state: &AppState,
    csrf: &Csrf,
    view: View,
) -> Result<ActivatePage, PageError> {
    let principal = &viewer.principal;
    let pizzerias = pizzerias_of(principal);
    let approvable_ids: Vec<Uuid> = pizzerias
        .iter()
        .copied()
        .filter(|p| principal.can(*p, Permission::DevicesApprove))
        .collect();
    // Whoever may approve devices may also see and revoke them; renaming and moving needs
    // devices.manage.
    let listed_ids: Vec<Uuid> = pizzerias
        .iter()
        .copied()
        .filter(|p| {
            principal.can(*p, Permission::DevicesManage)
                || principal.can(*p, Permission::DevicesApprove)
        })
        .collect();
    if listed_ids.is_empty() {
        return Err(PageError::Forbidden("devices".into()));
    }
    let t = i18n::text();
    let mut names: Vec<(Uuid, String, Vec<Station>, chrono_tz::Tz)> = Vec::new();
    for id in &listed_ids {
        let view = pizzeria(state, *id, &viewer.token).await?;
        let tz = i18n::time_zone(&view.time_zone);
        let stations = view
            .stations
            .into_iter()
            .map(|s| Station {
                name: i18n::known_station(&s.code).map_or(s.name, str::to_owned),
                code: s.code,
            })
            .collect();
        names.push((*id, view.name, stations, tz));
    }
    let name_of = |id: Uuid| {
        names
            .iter()
            .find(|(known, _, _, _)| *known == id)
            .map_or_else(|| id.to_string(), |(_, n, _, _)| n.clone())
    };
    let tz_of = |id: Option<Uuid>| {
        names
            .iter()
            .find(|(known, _, _, _)| Some(*known) == id)
            .map_or(chrono_tz::Tz::UTC, |(_, _, _, tz)| *tz)
    };
    // The station list of the pizzeria the form is for (the draft's, else the first).
    let form_pizzeria = view
        .draft
        .pizzeria_id
        .filter(|id| approvable_ids.contains(id))
        .or(approvable_ids.first().copied());
    let stations = names
        .iter()
        .find(|(known, _, _, _)| Some(*known) == form_pizzeria)
        .map(|(_, _, s, _)| s.clone())
        .unwrap_or_default();

    let code = view.code;
    let mut problem = view.problem;
    let mut request = None;
    if !code.trim().is_empty() && !approvable_ids.is_empty() {
        let answer: Result<Authorization, _> = state
            .upstream
            .call_with(
                Service::Devices,
                Method::POST,
                "/api/v1/device-authorizations/lookup",
                Some(&viewer.token),
                Body::Json(&json!({ "user_code": code.trim() })),
                &client_headers(req),
            )
            .await;
        match answer {
            Ok(a) => {
                // A request belongs to no pizzeria yet: its times are those of the pizzeria
                // the form is for.
                let tz = tz_of(form_pizzeria);
                request = Some(RequestView {
                    pending: a.status == "pending",
                    status: request_status(&a.status),
                    requested: fill(
                        t.code_valid_until,
                        &[
                            ("requested", &i18n::clock(a.requested_at, tz)),
                            ("expires", &i18n::clock(a.expires_at, tz)),
                        ],
                    ),
                    not_your_network: fill(
                        t.not_your_network,
                        &[("ip", &a.ip), ("approver_ip", &a.approver_ip)],
                    ),
                    in_front_of_me: fill(t.in_front_of_me, &[("code", &a.user_code)]),
                    ip: a.ip,
                    user_agent: a.user_agent.unwrap_or_default(),
                    same_network: a.same_network,
                    user_code: a.user_code,
                });
            }
            Err(e) => match code_problem(&e) {
                Some(p) => problem = problem.or(Some(p)),
                None => return Err(e.into()),
            },
        }
    }

    let mut managed = Vec::new();
    for id in &listed_ids {
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
            .find(|(known, _, _, _)| known == id)
            .map(|(_, _, s, _)| s.clone())
            .unwrap_or_default();
        let tz = tz_of(Some(*id));
        managed.push(ManagedPizzeria {
            id: *id,
            name: name_of(*id),
            stations,
            can_manage: principal.can(*id, Permission::DevicesManage),
            devices: list
                .devices
                .into_iter()
                .map(|d| DeviceLine {
                    id: d.device_id,
                    kind: kind_label(&d.kind),
                    labels: DeviceLabels::of(t, &d.name),
                    language_name: language_name(d.language.as_deref()),
                    language: d.language.unwrap_or_default(),
                    board_mode: d
                        .board_mode
                        .filter(|_| d.kind == DeviceKind::OrderBoard.as_str()),
                    station_title: d
                        .station
                        .as_deref()
                        .map(i18n::station_title)
                        .unwrap_or_default(),
                    station: d.station,
                    name: d.name,
                    approved_by: d.approved_by_name,
                    approver_gone: d.approver_active == Some(false),
                    last_seen: d
                        .last_seen_at
                        .map(|at| i18n::clock(at, tz))
                        .unwrap_or_else(|| t.never.into()),
                    revoked: d.revoked_at.is_some(),
                })
                .collect(),
        });
    }

    let home = approvable_ids
        .first()
        .or(listed_ids.first())
        .copied()
        .unwrap_or_default();
    Ok(ActivatePage {
        t,
        board_modes: vec![
            ("name", t.mode_name),
            ("number", t.mode_number),
            ("icon", t.mode_icon),
        ],
        nav: Nav::new(viewer, home, csrf, "devices"),
        code,
        problem: problem.map(Problem::message),
        notice: view.notice,
        request,
        approvable: approvable_ids
            .iter()
            .map(|id| (*id, name_of(*id)))
            .collect(),
        stations,
        kinds: DeviceKind::ALL
            .into_iter()
            .filter(|k| *k != DeviceKind::ShiftManagerScreen)
            .map(|k| (k.as_str(), kind_label(k.as_str())))
            .collect(),
        some_unmanaged: managed.iter().any(|m| !m.can_manage),
        managed,
        draft: Draft {
            pizzeria_id: form_pizzeria,
            ..view.draft
        },
    })
}

#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    user_code: String,
    pizzeria_id: Uuid,
    kind: String,
    station: Option<String>,
    name: String,
    /// The screen's language; empty: the browser's.
    #[serde(default)]
    language: String,
    /// The "this device is in front of me" box; browsers send it only when ticked.
    present: Option<String>,
}

fn back_to(code: &str, problem: Problem) -> HttpResponse {
    see_other(&format!(
        "/activate?{}",
        serde_urlencoded::to_string([("user_code", code), ("problem", problem.code())])
            .unwrap_or_default()
    ))
}

/// What a refused approval means; `None` for what the error page handles.
fn decision_problem(e: &UpstreamError) -> Option<Problem> {
    match e {
        UpstreamError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message,
            ..
        } => Some(if message.starts_with("station") {
            Problem::StationRequired
        } else if message.starts_with("name") {
            Problem::NameRequired
        } else {
            Problem::FormRefused
        }),
        _ => code_problem(e),
    }
}

/// `POST /activate/approve`. A choice that does not fit (no station for a tablet, no name, the
/// box not ticked) shows the page again with what was chosen still filled in.
pub async fn approve(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
    Form(form): Form<ApproveForm>,
) -> Result<HttpResponse, PageError> {
    require(&viewer, form.pizzeria_id, Permission::DevicesApprove)?;
    let has_station = DeviceKind::parse(&form.kind).is_some_and(DeviceKind::has_station);
    let station = form
        .station
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && has_station);
    let name = form.name.trim();
    let checked = if form.present.is_none() {
        Err(Problem::NotConfirmed)
    } else if has_station && station.is_none() {
        Err(Problem::StationRequired)
    } else if name.is_empty() {
        Err(Problem::NameRequired)
    } else {
        Ok(())
    };
    let refused = match checked {
        Err(problem) => Some(problem),
        Ok(()) => {
            let mut body = json!({
                "user_code": form.user_code,
                "pizzeria_id": form.pizzeria_id,
                "kind": form.kind,
                "name": name,
            });
            if let Some(station) = station {
                body["station"] = json!(station);
            }
            if let Some(language) = Lang::parse(&form.language) {
                body["language"] = json!(language.code());
            }
            let answer: Result<serde_json::Value, _> = state
                .upstream
                .call_with(
                    Service::Devices,
                    Method::POST,
                    "/api/v1/device-authorizations/approve",
                    Some(&viewer.token),
                    Body::Json(&body),
                    &client_headers(&req),
                )
                .await;
            match answer {
                Ok(_) => return Ok(see_other("/activate?done=approved")),
                Err(e) => match decision_problem(&e) {
                    // The code itself is the trouble: the form is of no use any more.
                    Some(
                        p @ (Problem::UnknownCode
                        | Problem::MalformedCode
                        | Problem::AlreadyDecided
                        | Problem::TooManyCodes),
                    ) => return Ok(back_to(&form.user_code, p)),
                    Some(p) => Some(p),
                    None => return Err(e.into()),
                },
            }
        }
    };
    let view = View {
        code: form.user_code.clone(),
        problem: refused,
        notice: None,
        draft: Draft {
            pizzeria_id: Some(form.pizzeria_id),
            kind: form.kind.clone(),
            station: station.unwrap_or_default().to_owned(),
            name: form.name.clone(),
            language: form.language.clone(),
        },
    };
    let page = render(&req, &viewer, &state, &csrf, view).await?;
    let mut response = with_csrf(html(&page)?, &csrf);
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct DenyForm {
    user_code: String,
}

/// `POST /activate/deny`
pub async fn deny(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<DenyForm>,
) -> Result<HttpResponse, PageError> {
    let answer: Result<serde_json::Value, _> = state
        .upstream
        .call_with(
            Service::Devices,
            Method::POST,
            "/api/v1/device-authorizations/deny",
            Some(&viewer.token),
            Body::Json(&json!({ "user_code": form.user_code })),
            &client_headers(&req),
        )
        .await;
    match answer {
        Ok(_) => Ok(see_other("/activate?done=denied")),
        Err(e) => match decision_problem(&e) {
            Some(problem) => Ok(back_to(&form.user_code, problem)),
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
    // Revoking is for whoever may approve devices too: a lost tablet goes at once. So is how a
    // screen looks (its language, a board's privacy mode), as it was chosen at approval.
    let as_approver = (method == Method::DELETE || done == "screen_saved")
        && viewer
            .principal
            .can(pizzeria_id, Permission::DevicesApprove);
    if !as_approver {
        require(viewer, pizzeria_id, Permission::DevicesManage)?;
    }
    let path = format!("/api/v1/pizzerias/{pizzeria_id}/devices/{device_id}");
    let body = match &body {
        Some(value) => Body::Json(value),
        None => Body::Empty,
    };
    let answer: Result<serde_json::Value, _> = state
        .upstream
        .call(Service::Devices, method, &path, Some(&viewer.token), body)
        .await;
    let query = match answer {
        Ok(_) => format!("done={done}"),
        Err(UpstreamError::Refused { status, .. })
            if status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY =>
        {
            format!("problem={}", Problem::ChangeRefused.code())
        }
        Err(e) => return Err(e.into()),
    };
    Ok(see_other(&format!("/activate?{query}#devices")))
}

/// `POST /p/{p}/devices/{id}/rename`
pub async fn rename(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<RenameForm>,
) -> Result<HttpResponse, PageError> {
    let body = json!({ "name": form.name.trim() });
    change_device(&req, &viewer, &state, Method::PATCH, Some(body), "renamed").await
}

/// `POST /p/{p}/devices/{id}/move`
pub async fn move_station(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<MoveForm>,
) -> Result<HttpResponse, PageError> {
    let body = json!({ "station": form.station });
    change_device(&req, &viewer, &state, Method::PATCH, Some(body), "moved").await
}

#[derive(Debug, Deserialize)]
pub struct ScreenForm {
    language: String,
    board_mode: Option<String>,
}

/// `POST /p/{p}/devices/{id}/screen`: the language a device's screen speaks and, for a TV
/// board, how it shows customers.
pub async fn screen(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<ScreenForm>,
) -> Result<HttpResponse, PageError> {
    let mut body = json!({});
    if let Some(language) = Lang::parse(&form.language) {
        body["language"] = json!(language.code());
    }
    if let Some(mode) = form.board_mode.as_deref().filter(|m| !m.is_empty()) {
        body["board_mode"] = json!(mode);
    }
    change_device(
        &req,
        &viewer,
        &state,
        Method::PATCH,
        Some(body),
        "screen_saved",
    )
    .await
}

/// `POST /p/{p}/devices/{id}/revoke`
pub async fn revoke(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    change_device(&req, &viewer, &state, Method::DELETE, None, "revoked").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_codes_reach_the_page_never_words_from_a_link() {
        for problem in Problem::ALL {
            assert_eq!(Problem::parse(problem.code()), Some(problem));
        }
        assert_eq!(
            Problem::parse("Your device needs an update: call +1 555 0100"),
            None
        );
        assert_eq!(notice("Approved “Call +1 555 0100”"), None);
        assert!(notice("approved").is_some());
    }
}
