//! The station tablet: one card per product waiting at this station, oldest first. Tap a card
//! when the stage is done; undo for a while after; check in so taps carry your name.

use access::DeviceKind;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use askama::Template;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    config::Settings,
    errors::{LiveError, PageError, html},
    screens::{self, Modifier},
    session::{self, ACTOR_COOKIE, Csrf, DeviceViewer, Form, clear_cookie},
    upstream::{Body, Service, UpstreamError},
};

use super::{
    AppState, cookies, live_fragment, see_other, staff::screen_of, uuid_param, wants_json,
    with_csrf,
};

/// The station of a station tablet; any other device goes to its own screen.
fn station_of(viewer: &DeviceViewer) -> Result<String, PageError> {
    match (&viewer.device.kind, &viewer.device.station) {
        (DeviceKind::KitchenStation, Some(station)) => Ok(station.clone()),
        (kind, _) => Err(PageError::Elsewhere(screen_of(*kind))),
    }
}

#[derive(Debug, Deserialize)]
struct QueueEntry {
    product_id: Uuid,
    order_number: i32,
    product_name: String,
    size: Option<String>,
    modifiers: Vec<String>,
    entered_at: DateTime<Utc>,
    target_seconds: i64,
    pass: i32,
}

#[derive(Debug, Deserialize)]
struct Queue {
    products: Vec<QueueEntry>,
}

pub struct Card {
    product_id: Uuid,
    number: i32,
    name: String,
    size: String,
    modifiers: Vec<Modifier>,
    allergy: bool,
    /// Unix milliseconds, for the timer script.
    entered_ms: i64,
    target_seconds: i64,
    target: String,
    remake: bool,
}

#[derive(Template)]
#[template(path = "station_cards.html")]
struct StationCards {
    csrf: String,
    cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "station.html")]
struct StationPage {
    csrf: String,
    station: String,
    station_title: String,
    device_name: String,
    actor: Option<String>,
    cards: Vec<Card>,
    poll_seconds: u64,
    undo_seconds: i64,
    undo_until_ms: i64,
    problem: Option<String>,
}

async fn cards(
    state: &AppState,
    viewer: &DeviceViewer,
    station: &str,
) -> Result<Vec<Card>, PageError> {
    let path = format!(
        "/api/v1/pizzerias/{}/stations/{station}/queue",
        viewer.device.pizzeria_id
    );
    let queue: Queue = state
        .upstream
        .get_conditional(Service::Tracker, &path, &viewer.token)
        .await
        .map_err(PageError::for_device)?;
    Ok(queue
        .products
        .into_iter()
        .map(|p| {
            let modifiers = screens::modifiers(&p.modifiers);
            Card {
                allergy: modifiers.iter().any(|m| m.allergy),
                product_id: p.product_id,
                number: p.order_number,
                name: p.product_name,
                size: p.size.unwrap_or_default(),
                modifiers,
                entered_ms: p.entered_at.timestamp_millis(),
                target_seconds: p.target_seconds,
                target: screens::duration(p.target_seconds),
                remake: p.pass > 1,
            }
        })
        .collect())
}

/// `<user id>|<display name>` of who checked in.
fn actor(req: &HttpRequest) -> Option<(String, String)> {
    let raw = session::cookie(req, ACTOR_COOKIE)?;
    let outer: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={raw}")).ok()?;
    let inner = &outer.first()?.1;
    let decoded: Vec<(String, String)> = serde_urlencoded::from_str(inner).ok()?;
    let get = |k: &str| decoded.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some((get("id")?, get("name")?))
}

#[derive(Debug, Deserialize)]
pub struct StationQuery {
    tapped: Option<i64>,
    problem: Option<String>,
}

/// `GET /station`
pub async fn station_page(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    csrf: Csrf,
    query: web::Query<StationQuery>,
) -> Result<HttpResponse, PageError> {
    let station = station_of(&viewer)?;
    let page = StationPage {
        csrf: csrf.token.clone(),
        station_title: screens::station_title(&station),
        cards: cards(&state, &viewer, &station).await?,
        station,
        device_name: viewer.device.name.clone(),
        actor: actor(&req).map(|(_, name)| name),
        poll_seconds: settings.screens.poll_seconds,
        undo_seconds: settings.screens.undo_seconds,
        undo_until_ms: query
            .tapped
            .map_or(0, |t| t + settings.screens.undo_seconds * 1000),
        problem: query.problem.clone(),
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// `GET /station/live`: the cards, for the page script (304 when unchanged).
pub async fn station_live(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
) -> Result<HttpResponse, LiveError> {
    let station = station_of(&viewer)?;
    let cards = StationCards {
        csrf: csrf.token.clone(),
        cards: cards(&state, &viewer, &station).await?,
    };
    let body = cards
        .render()
        .map_err(|e| PageError::Internal(anyhow::anyhow!("cannot render the cards: {e}")))?;
    Ok(with_csrf(live_fragment(&req, body), &csrf))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

/// A refusal the kitchen can act on (409: moved on, nothing to undo, window passed).
fn kitchen_problem(e: &UpstreamError) -> Option<String> {
    let message = match e.code()? {
        "product_moved_on" | "not_at_station" => {
            "This product is no longer at this station. The screen has been refreshed."
        }
        "nothing_to_undo" => "There is nothing to undo at this station.",
        "undo_window_passed" => "Too late to undo that tap.",
        "order_cancelled" => "This order was cancelled.",
        "order_handed_over" => "This order was already handed over.",
        _ if e.status() == Some(StatusCode::CONFLICT) => {
            "That did not work; the screen has been refreshed."
        }
        _ => return None,
    };
    Some(message.to_owned())
}

async fn kitchen_action(
    req: &HttpRequest,
    viewer: &DeviceViewer,
    state: &AppState,
    path: String,
) -> Result<HttpResponse, PageError> {
    let body = match actor(req) {
        Some((_, name)) => json!({ "actor": name }),
        None => json!({}),
    };
    let answer: Result<serde_json::Value, _> = state
        .upstream
        .call(
            Service::Tracker,
            Method::POST,
            &path,
            Some(&viewer.token),
            Body::Json(&body),
        )
        .await;
    let json = wants_json(req);
    match answer {
        Ok(_) if json => Ok(HttpResponse::Ok().json(json!({ "ok": true }))),
        Ok(_) => Ok(see_other(&format!(
            "/station?tapped={}",
            Utc::now().timestamp_millis()
        ))),
        Err(e) => match kitchen_problem(&e) {
            Some(problem) if json => {
                Ok(HttpResponse::Conflict().json(json!({ "ok": false, "message": problem })))
            }
            Some(problem) => Ok(see_other(&format!(
                "/station?{}",
                serde_urlencoded::to_string([("problem", problem.as_str())]).unwrap_or_default()
            ))),
            None => Err(PageError::for_device(e)),
        },
    }
}

/// `POST /station/tap/{product_id}`: the stage is done, by whoever checked in.
pub async fn tap(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let station = station_of(&viewer)?;
    let product_id = uuid_param(&req, "product_id")?;
    let path = format!(
        "/api/v1/pizzerias/{}/stations/{station}/products/{product_id}/tap",
        viewer.device.pizzeria_id
    );
    kitchen_action(&req, &viewer, &state, path).await
}

/// `POST /station/undo`: the station's last tap comes back.
pub async fn undo(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let station = station_of(&viewer)?;
    let path = format!(
        "/api/v1/pizzerias/{}/stations/{station}/undo",
        viewer.device.pizzeria_id
    );
    kitchen_action(&req, &viewer, &state, path).await
}

#[derive(Debug, Clone, Deserialize)]
struct StaffMember {
    id: Uuid,
    display_name: String,
}

#[derive(Debug, Deserialize)]
struct StaffList {
    staff: Vec<StaffMember>,
}

/// The pizzeria's kitchen staff, from auth, asked with the tablet's own token (auth lets a
/// station tablet read its own pizzeria's kitchen staff, and nothing else of its staff).
async fn kitchen_staff(
    state: &AppState,
    viewer: &DeviceViewer,
) -> Result<Vec<StaffMember>, UpstreamError> {
    let path = format!(
        "/api/v1/pizzerias/{}/staff?role=kitchen_staff",
        viewer.device.pizzeria_id
    );
    let list: StaffList = state
        .upstream
        .get(Service::Auth, &path, &viewer.token)
        .await?;
    Ok(list.staff)
}

#[derive(Template)]
#[template(path = "checkin.html")]
struct CheckinPage {
    csrf: String,
    station_title: String,
    staff: Vec<(Uuid, String)>,
    current: Option<String>,
    problem: Option<&'static str>,
}

/// `GET /station/checkin`: pick your name.
pub async fn checkin_page(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    let station = station_of(&viewer)?;
    let staff = kitchen_staff(&state, &viewer)
        .await
        .map_err(PageError::for_device)?;
    let problem = staff.is_empty().then_some(
        "Nobody has the kitchen staff role in this pizzeria yet. Taps still count, with the tablet's name; ask the shift manager to add the team.",
    );
    let page = CheckinPage {
        csrf: csrf.token.clone(),
        station_title: screens::station_title(&station),
        staff: staff.into_iter().map(|s| (s.id, s.display_name)).collect(),
        current: actor(&req).map(|(_, name)| name),
        problem,
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

#[derive(Debug, Deserialize)]
pub struct CheckinForm {
    user_id: Uuid,
}

/// `POST /station/checkin`: only a name from auth's list can be chosen.
pub async fn checkin(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    Form(form): Form<CheckinForm>,
) -> Result<HttpResponse, PageError> {
    station_of(&viewer)?;
    let staff = kitchen_staff(&state, &viewer)
        .await
        .map_err(PageError::for_device)?;
    let member = staff
        .into_iter()
        .find(|s| s.id == form.user_id)
        .ok_or_else(|| PageError::NotFound("staff member".into()))?;
    let id = member.id.to_string();
    let value =
        serde_urlencoded::to_string([("id", id.as_str()), ("name", member.display_name.as_str())])
            .unwrap_or_default();
    // URL-encoded once more, so the cookie value holds no `;`, `,` or spaces.
    let value = serde_urlencoded::to_string([("v", value)]).unwrap_or_default();
    let value = value.trim_start_matches("v=");
    let mut response = see_other("/station");
    response.headers_mut().append(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&cookies(&req).set(ACTOR_COOKIE, value, Some(16 * 3600)))
            .map_err(|e| PageError::Internal(e.into()))?,
    );
    Ok(response)
}

/// `POST /station/checkout`
pub async fn checkout(
    viewer: DeviceViewer,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    station_of(&viewer)?;
    let mut response = see_other("/station");
    response.headers_mut().append(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&clear_cookie(ACTOR_COOKIE))
            .map_err(|e| PageError::Internal(e.into()))?,
    );
    Ok(response)
}
