//! The station tablet: one card per product waiting at this station, in the order the tracker
//! says to make them, with how many wait in all. Tap a card when the stage is done; undo that
//! very tap for a while after; see cancelled orders; check in so taps carry your name.

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
    i18n::{self, Text, fill},
    screens,
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
    /// `pizza`, `side`...: what the tablet announces.
    #[serde(default)]
    category: String,
    size: Option<String>,
    modifiers: Vec<String>,
    #[serde(default)]
    allergens: Vec<String>,
    entered_at: DateTime<Utc>,
    clock_from: Option<DateTime<Utc>>,
    target_seconds: i64,
    pass: i32,
    #[serde(default)]
    urgent: bool,
    remake_reason: Option<String>,
    order_ready: Option<OrderReady>,
}

#[derive(Debug, Deserialize)]
struct OrderReady {
    ready: i64,
    of: i64,
}

#[derive(Debug, Deserialize)]
struct UndoableTap {
    tap_id: i64,
    order_number: i32,
    product_name: String,
    size: Option<String>,
    undo_until: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct AlertEntry {
    kind: String,
    order_number: i32,
    reason: Option<String>,
    at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct AllDayEntry {
    product_name: String,
    size: Option<String>,
    count: i64,
}

#[derive(Debug, Deserialize)]
struct ReadyEntry {
    order_id: Uuid,
    order_number: i32,
    customer_name: String,
}

#[derive(Debug, Deserialize)]
struct Queue {
    /// At a finishing station (packing): the packed orders it may hand over.
    #[serde(default)]
    ready: Vec<ReadyEntry>,
    #[serde(default)]
    total: i64,
    #[serde(default)]
    all_day: Vec<AllDayEntry>,
    products: Vec<QueueEntry>,
    #[serde(default)]
    undoable: Vec<UndoableTap>,
    /// What this station completed in the last 15 minutes that has not moved past the next
    /// station: what recall can bring back.
    #[serde(default)]
    recallable: Vec<UndoableTap>,
    #[serde(default)]
    alerts: Vec<AlertEntry>,
}

/// The cookie that remembers this tablet's own last tap, so undo names it and survives a
/// reload; it lives as long as the undo window.
const LAST_TAP_COOKIE: &str = "kitchen_last_tap";

pub struct Card {
    product_id: Uuid,
    /// "Pepperoni 30 cm · #4204": what the tablet calls it in a confirmation or a problem with
    /// a tap it queued while offline.
    label: String,
    number: i32,
    name: String,
    size: String,
    modifiers: Vec<String>,
    allergens: Vec<&'static str>,
    /// Unknown allergen codes, shown as they came.
    other_allergens: Vec<String>,
    /// Unix milliseconds when the stage's clock starts, for the timer script.
    clock_ms: i64,
    target_seconds: i64,
    target: String,
    /// "target 1:30 · tap when done".
    target_line: String,
    /// What the tablet says when the card arrives: "New pizza: Pepperoni 30 cm".
    announcement: String,
    remake: bool,
    urgent: bool,
    remake_reason: Option<String>,
    /// At the product's last station, for an order of several: "2 of 3 ready".
    order_ready: Option<String>,
}

impl Card {
    fn has_allergens(&self) -> bool {
        !self.allergens.is_empty() || !self.other_allergens.is_empty()
    }
}

/// What the undo bar offers: this tablet's own last tap, while the tracker still accepts it.
pub struct UndoOffer {
    tap_id: i64,
    label: String,
    until_ms: i64,
}

/// A short notice above the cards, shown until `until_ms`.
pub struct Alert {
    title: String,
    reason: Option<String>,
    until_ms: i64,
}

/// Everything the live part of the station shows.
pub struct Station {
    cards: Vec<Card>,
    total: i64,
    /// "7× Pepperoni 30 cm": every product waiting here, by kind, most first.
    all_day: Vec<String>,
    undo: Option<UndoOffer>,
    /// (tap id, label) of what recall can bring back, newest first.
    recallable: Vec<(i64, String)>,
    alerts: Vec<Alert>,
    /// "showing the first 500, 20 more not shown", when some are.
    showing_first: String,
    more_not_shown: String,
    /// (order id, number, customer name, "Hand over #4204") of packed orders to hand over at
    /// the counter.
    ready: Vec<(Uuid, i32, String, String)>,
}

impl Station {
    /// Products waiting that the list does not show (the tracker lists at most 500).
    fn hidden(&self) -> i64 {
        (self.total - self.cards.len() as i64).max(0)
    }
}

#[derive(Template)]
#[template(path = "station_cards.html")]
struct StationCards {
    t: &'static Text,
    csrf: String,
    live: Station,
}

#[derive(Template)]
#[template(path = "station.html")]
struct StationPage {
    t: &'static Text,
    csrf: String,
    station: String,
    station_title: String,
    device_name: String,
    actor: Option<String>,
    live: Station,
    poll_seconds: u64,
    problem: Option<String>,
    /// The pizzeria's IANA time zone, for the clock; empty: the tablet's own.
    time_zone: String,
}

/// "Pepperoni 30 cm · #4204": how the tablet names a product it tapped or undid.
fn product_label(name: &str, size: Option<&str>, number: i32) -> String {
    match size.filter(|s| !s.is_empty()) {
        Some(size) => format!("{name} {size} · #{number}"),
        None => format!("{name} · #{number}"),
    }
}

/// The offer for `last_tap` if the tracker still lists it as undoable and its window is open.
fn undo_offer(
    undoable: &[UndoableTap],
    last_tap: Option<i64>,
    now: DateTime<Utc>,
) -> Option<UndoOffer> {
    let tap = undoable
        .iter()
        .find(|t| Some(t.tap_id) == last_tap && t.undo_until > now)?;
    Some(UndoOffer {
        tap_id: tap.tap_id,
        label: fill(
            i18n::text().undo_label,
            &[(
                "label",
                &product_label(&tap.product_name, tap.size.as_deref(), tap.order_number),
            )],
        ),
        until_ms: tap.undo_until.timestamp_millis(),
    })
}

/// The alerts younger than `show_for`, newest first.
fn alerts(list: Vec<AlertEntry>, now: DateTime<Utc>, show_for: chrono::Duration) -> Vec<Alert> {
    list.into_iter()
        .filter(|a| now - a.at < show_for)
        .map(|a| Alert {
            title: match a.kind.as_str() {
                "cancelled" => fill(i18n::text().cancelled_alert, &[("n", &a.order_number)]),
                other => format!("{} #{}", other.to_uppercase(), a.order_number),
            },
            reason: a.reason,
            until_ms: (a.at + show_for).timestamp_millis(),
        })
        .collect()
}

/// What a tablet says of a new product, in its own language: "New pizza: Pepperoni 30 cm".
fn announcement(t: &Text, category: &str, name: &str, size: Option<&str>) -> String {
    let what = match category {
        "pizza" => t.js.new_pizza,
        "side" => t.js.new_side,
        "drink" => t.js.new_drink,
        "sauce" => t.js.new_sauce,
        "dessert" => t.js.new_dessert,
        _ => t.js.new_product,
    };
    match size.filter(|s| !s.is_empty()) {
        Some(size) => format!("{what}: {name} {size}"),
        None => format!("{what}: {name}"),
    }
}

fn card(p: QueueEntry) -> Card {
    let t = i18n::text();
    let (allergens, other_allergens) = screens::allergens(&p.allergens);
    let target = screens::duration(p.target_seconds);
    Card {
        target_line: fill(t.target_tap, &[("target", &target)]),
        announcement: announcement(t, &p.category, &p.product_name, p.size.as_deref()),
        label: product_label(&p.product_name, p.size.as_deref(), p.order_number),
        product_id: p.product_id,
        number: p.order_number,
        name: p.product_name,
        size: p.size.unwrap_or_default(),
        modifiers: p.modifiers,
        allergens,
        other_allergens,
        clock_ms: p
            .clock_from
            .unwrap_or(p.entered_at)
            .max(p.entered_at)
            .timestamp_millis(),
        target_seconds: p.target_seconds,
        target,
        remake: p.pass > 1,
        urgent: p.urgent,
        remake_reason: p.remake_reason,
        order_ready: p
            .order_ready
            .filter(|r| r.of > 1)
            .map(|r| fill(t.of_ready, &[("ready", &r.ready), ("of", &r.of)])),
    }
}

async fn station_view(
    req: &HttpRequest,
    state: &AppState,
    settings: &Settings,
    viewer: &DeviceViewer,
    station: &str,
) -> Result<Station, PageError> {
    let path = format!(
        "/api/v1/pizzerias/{}/stations/{station}/queue",
        viewer.device.pizzeria_id
    );
    let queue: Queue = state
        .upstream
        .get_conditional(Service::Tracker, &path, &viewer.token)
        .await
        .map_err(PageError::for_device)?;
    let now = Utc::now();
    let last_tap = session::cookie(req, LAST_TAP_COOKIE).and_then(|v| v.parse().ok());
    let t = i18n::text();
    let total = queue.total.max(queue.products.len() as i64);
    let shown = queue.products.len() as i64;
    let hidden = (total - shown).max(0);
    Ok(Station {
        showing_first: fill(t.showing_first, &[("shown", &shown), ("hidden", &hidden)]),
        more_not_shown: fill(t.more_not_shown, &[("n", &hidden)]),
        total,
        all_day: queue
            .all_day
            .iter()
            .map(|a| match a.size.as_deref().filter(|s| !s.is_empty()) {
                Some(size) => format!("{}× {} {size}", a.count, a.product_name),
                None => format!("{}× {}", a.count, a.product_name),
            })
            .collect(),
        cards: queue.products.into_iter().map(card).collect(),
        ready: queue
            .ready
            .into_iter()
            .map(|r| {
                let label = fill(t.hand_over_n, &[("n", &r.order_number)]);
                (r.order_id, r.order_number, r.customer_name, label)
            })
            .collect(),
        undo: undo_offer(&queue.undoable, last_tap, now),
        recallable: queue
            .recallable
            .iter()
            .map(|t| {
                let label = product_label(&t.product_name, t.size.as_deref(), t.order_number);
                (
                    t.tap_id,
                    fill(i18n::text().bring_back, &[("label", &label)]),
                )
            })
            .collect(),
        alerts: alerts(
            queue.alerts,
            now,
            chrono::Duration::seconds(settings.screens.alert_seconds),
        ),
    })
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
    // The clock shows the pizzeria's time; without an answer, the tablet's own clock (which
    // stands in the pizzeria) is the next best, and no reason to withhold the cards.
    let time_zone = super::activate::pizzeria(&state, viewer.device.pizzeria_id, &viewer.token)
        .await
        .map(|p| p.time_zone)
        .unwrap_or_default();
    let page = StationPage {
        t: i18n::text(),
        time_zone,
        csrf: csrf.token.clone(),
        station_title: i18n::station_title(&station),
        live: station_view(&req, &state, &settings, &viewer, &station).await?,
        station,
        device_name: viewer.device.name.clone(),
        actor: actor(&req).map(|(_, name)| name),
        poll_seconds: settings.screens.poll_seconds,
        problem: query.problem.clone(),
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// `GET /station/live`: the cards, the count, the undo bar and the alerts, for the page script
/// (304 when unchanged).
pub async fn station_live(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    csrf: Csrf,
) -> Result<HttpResponse, LiveError> {
    let station = station_of(&viewer)?;
    let cards = StationCards {
        t: i18n::text(),
        csrf: csrf.token.clone(),
        live: station_view(&req, &state, &settings, &viewer, &station).await?,
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
    let t = i18n::text();
    let message = match e.code()? {
        "product_moved_on" | "not_at_station" => t.moved_on,
        "undo_window_passed" => t.undo_too_late,
        // A tap id this station does not know (an old cookie, another station's tap).
        "not_found" if e.status() == Some(StatusCode::NOT_FOUND) => t.no_longer_here,
        "order_cancelled" => t.order_was_cancelled,
        "order_handed_over" => t.order_was_handed_over,
        // A tap queued while offline, which another tap beat to it.
        "already_done" => t.already_done,
        "not_packed" => t.not_packed,
        // The person checked in here is no longer on the kitchen staff list.
        _ if e.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) => t.actor_refused,
        _ if e.status() == Some(StatusCode::CONFLICT) => t.action_failed,
        _ => return None,
    };
    Some(message.to_owned())
}

/// What the tracker answers a tap or an undo with, as far as the tablet names it.
#[derive(Debug, Deserialize)]
struct ActionAnswer {
    tap_id: i64,
    product_name: String,
    size: Option<String>,
    order_number: i32,
    next_station: Option<String>,
    #[serde(default)]
    repeated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Tap,
    Undo,
    Recall,
}

/// The confirmation: which product of which order, and what happened to it.
fn confirmation(action: Action, answer: &ActionAnswer) -> String {
    let label = product_label(
        &answer.product_name,
        answer.size.as_deref(),
        answer.order_number,
    );
    let t = i18n::text();
    match action {
        Action::Tap => match &answer.next_station {
            Some(next) => fill(
                t.done_to,
                &[("label", &label), ("station", &i18n::station_title(next))],
            ),
            None => fill(t.done_finished, &[("label", &label)]),
        },
        Action::Undo => fill(t.undone, &[("label", &label)]),
        Action::Recall => fill(t.recalled, &[("label", &label)]),
    }
}

/// Who did it, as the tracker takes it: the person checked in here, by id (the tracker checks
/// them against the pizzeria's kitchen staff list), else nobody named: the tablet.
fn actor_body(req: &HttpRequest) -> serde_json::Value {
    match actor(req) {
        Some((id, _)) => json!({ "actor_id": id }),
        None => json!({}),
    }
}

/// An answer to the page script (`ok` and a message) or, without it, back to the station with
/// the problem shown.
fn answer_page(req: &HttpRequest, result: Result<String, String>) -> HttpResponse {
    match (result, wants_json(req)) {
        (Ok(message), true) => HttpResponse::Ok().json(json!({ "ok": true, "message": message })),
        (Ok(_), false) => see_other("/station"),
        (Err(problem), true) => {
            HttpResponse::Conflict().json(json!({ "ok": false, "message": problem }))
        }
        (Err(problem), false) => see_other(&format!(
            "/station?{}",
            serde_urlencoded::to_string([("problem", problem.as_str())]).unwrap_or_default()
        )),
    }
}

/// POSTs `body` to the tracker as the tablet.
async fn post_tracker<T: serde::de::DeserializeOwned>(
    state: &AppState,
    viewer: &DeviceViewer,
    path: &str,
    body: &serde_json::Value,
) -> Result<T, UpstreamError> {
    let token = Some(viewer.token.as_str());
    let body = Body::Json(body);
    state
        .upstream
        .call(Service::Tracker, Method::POST, path, token, body)
        .await
}

#[derive(Debug, Deserialize)]
struct HandedOver {
    order: HandedOverOrder,
}

#[derive(Debug, Deserialize)]
struct HandedOverOrder {
    number: i32,
    customer_name: String,
}

/// `POST /station/hand-over/{order_id}`: the packed order leaves at the counter (a finishing
/// station's tablet; the tracker refuses any other).
pub async fn hand_over(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    station_of(&viewer)?;
    let order_id = uuid_param(&req, "order_id")?;
    let path = format!(
        "/api/v1/pizzerias/{}/orders/{order_id}/hand-over",
        viewer.device.pizzeria_id
    );
    let answer: Result<HandedOver, _> =
        post_tracker(state.get_ref(), &viewer, &path, &actor_body(&req)).await;
    match answer {
        Ok(done) => Ok(answer_page(
            &req,
            Ok(fill(
                i18n::text().handed_over_n,
                &[
                    ("n", &done.order.number),
                    ("name", &done.order.customer_name),
                ],
            )),
        )),
        Err(e) => match kitchen_problem(&e) {
            Some(problem) => Ok(answer_page(&req, Err(problem))),
            None => Err(PageError::for_device(e)),
        },
    }
}

async fn kitchen_action(
    req: &HttpRequest,
    viewer: &DeviceViewer,
    state: &AppState,
    settings: &Settings,
    path: String,
    action: Action,
    client_tap_id: Option<Uuid>,
) -> Result<HttpResponse, PageError> {
    let mut body = actor_body(req);
    if let Some(id) = client_tap_id {
        body["client_tap_id"] = json!(id);
    }
    let answer: Result<ActionAnswer, _> = post_tracker(state, viewer, &path, &body).await;
    let json = wants_json(req);
    match answer {
        Ok(answer) => {
            let message = confirmation(action, &answer);
            let mut response = if json {
                HttpResponse::Ok().json(json!({
                    "ok": true,
                    "message": message,
                    "tap_id": answer.tap_id,
                    "repeated": answer.repeated,
                }))
            } else {
                see_other("/station")
            };
            // This tablet's undo names its own last tap, and a reload keeps it.
            let cookie = match action {
                Action::Tap => cookies(req).set(
                    LAST_TAP_COOKIE,
                    &answer.tap_id.to_string(),
                    Some(settings.screens.undo_seconds),
                ),
                Action::Undo | Action::Recall => clear_cookie(LAST_TAP_COOKIE),
            };
            response.headers_mut().append(
                header::SET_COOKIE,
                header::HeaderValue::from_str(&cookie)
                    .map_err(|e| PageError::Internal(e.into()))?,
            );
            Ok(response)
        }
        Err(e) => match kitchen_problem(&e) {
            Some(problem) => Ok(answer_page(req, Err(problem))),
            None => Err(PageError::for_device(e)),
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct TapForm {
    /// The id the page script made for a tap it may send again (queued while offline).
    #[serde(default)]
    client_tap_id: Option<Uuid>,
}

/// `POST /station/tap/{product_id}`: the stage is done, by whoever checked in.
pub async fn tap(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    Form(form): Form<TapForm>,
) -> Result<HttpResponse, PageError> {
    let station = station_of(&viewer)?;
    let product_id = uuid_param(&req, "product_id")?;
    let path = format!(
        "/api/v1/pizzerias/{}/stations/{station}/products/{product_id}/tap",
        viewer.device.pizzeria_id
    );
    let action = Action::Tap;
    kitchen_action(
        &req,
        &viewer,
        &state,
        &settings,
        path,
        action,
        form.client_tap_id,
    )
    .await
}

/// `POST /station/undo/{tap_id}`: exactly that tap comes back.
pub async fn undo(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    take_back(&req, &viewer, &state, &settings, Action::Undo).await
}

/// `POST /station/recall/{tap_id}`: a product this station completed in the last 15 minutes
/// comes back, if the next station has not made it yet.
pub async fn recall(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    take_back(&req, &viewer, &state, &settings, Action::Recall).await
}

async fn take_back(
    req: &HttpRequest,
    viewer: &DeviceViewer,
    state: &AppState,
    settings: &Settings,
    action: Action,
) -> Result<HttpResponse, PageError> {
    let station = station_of(viewer)?;
    let tap_id: i64 = req
        .match_info()
        .get("tap_id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| PageError::NotFound("tap".into()))?;
    let verb = if action == Action::Recall {
        "recall"
    } else {
        "undo"
    };
    let path = format!(
        "/api/v1/pizzerias/{}/stations/{station}/taps/{tap_id}/{verb}",
        viewer.device.pizzeria_id
    );
    kitchen_action(req, viewer, state, settings, path, action, None).await
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
    t: &'static Text,
    csrf: String,
    station_title: String,
    staff: Vec<(Uuid, String)>,
    current: Option<String>,
    problem: Option<&'static str>,
}

impl CheckinPage {
    fn heading(&self) -> String {
        fill(self.t.who_is_working, &[("station", &self.station_title)])
    }

    fn check_out(&self, name: &str) -> String {
        fill(self.t.check_out, &[("name", &name)])
    }
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
    let t = i18n::text();
    let problem = staff.is_empty().then_some(t.no_kitchen_staff);
    let page = CheckinPage {
        t,
        csrf: csrf.token.clone(),
        station_title: i18n::station_title(&station),
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
