//! The shift manager: the current shift's orders filtered by status, with age and late flags;
//! an order's page with its timeline and the actions (cancel, hand over, remake a product);
//! today's performance as server-rendered SVG charts.

use access::Permission;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    charts::{HourChart, StationChart, StationFigures},
    config::Settings,
    errors::{LiveError, PageError, html},
    i18n::{self, Text, fill},
    screens,
    session::{Csrf, Form, StaffViewer},
    upstream::{Body, Service, UpstreamError},
};

use super::{
    AppState, live_fragment, pizzeria_param, see_other,
    staff::{Nav, require},
    uuid_param, with_csrf,
};

#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub name: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub number: i32,
    pub customer_name: String,
    pub show_number_only: bool,
    pub source: String,
    pub accepted_at: DateTime<Utc>,
    pub status: String,
    pub target_seconds: i64,
    pub due_at: DateTime<Utc>,
    pub late: bool,
    pub items: Vec<Item>,
    pub packed_at: Option<DateTime<Utc>>,
    pub handed_over_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// An order source's cancel that came after the hand-over (the tracker keeps the first).
    #[serde(default)]
    pub cancel_after_hand_over_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancel_after_hand_over_source: Option<String>,
    #[serde(default)]
    pub cancel_after_hand_over_reason: Option<String>,
    #[serde(default)]
    pub cancel_after_hand_over_actor: Option<String>,
    /// While a pre-order is held: when it goes to the stations.
    #[serde(default)]
    pub fires_at: Option<DateTime<Utc>>,
}

impl Order {
    fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "accepted" | "in_work")
    }

    /// How long the kitchen has had it: until now while open, until it was packed (or ended)
    /// after.
    fn age_seconds(&self, now: DateTime<Utc>) -> i64 {
        let end = if self.is_open() {
            now
        } else {
            self.packed_at
                .or(self.handed_over_at)
                .or(self.cancelled_at)
                .unwrap_or(now)
        };
        (end - self.accepted_at).num_seconds()
    }

    fn is_late(&self, now: DateTime<Utc>) -> bool {
        self.late || (self.is_open() && now > self.due_at)
    }
}

#[derive(Debug, Deserialize)]
pub struct OrderList {
    pub orders: Vec<Order>,
    /// The pizzeria's time zone and when its day began, for hours of the local day.
    #[serde(default = "utc")]
    pub time_zone: String,
    pub day_start: Option<DateTime<Utc>>,
}

fn utc() -> String {
    "UTC".to_owned()
}

impl OrderList {
    /// The hour of the pizzeria's day an instant falls in (0 to 23), counted from the local
    /// midnight the tracker gave. On the two days a year the clocks change it is off by one
    /// for the hours after the change; the tracker's reports themselves are exact.
    fn local_hour(&self, at: DateTime<Utc>) -> usize {
        let start = self
            .day_start
            .unwrap_or_else(|| at.date_naive().and_time(chrono::NaiveTime::MIN).and_utc());
        usize::try_from((at - start).num_hours())
            .unwrap_or(0)
            .min(23)
    }
}

/// Today's orders (the pizzeria's local day, as the tracker knows it), newest first.
pub async fn todays_orders(
    state: &AppState,
    pizzeria_id: Uuid,
    bearer: &str,
    status: Option<&str>,
    search: Option<&str>,
) -> Result<OrderList, UpstreamError> {
    let mut query = vec![("limit", "500")];
    if let Some(status) = status {
        query.push(("status", status));
    }
    if let Some(search) = search {
        query.push(("q", search));
    }
    let path = format!(
        "/api/v1/pizzerias/{pizzeria_id}/orders?{}",
        serde_urlencoded::to_string(&query).unwrap_or_default()
    );
    state.upstream.get(Service::Tracker, &path, bearer).await
}

pub struct OrderLine {
    id: Uuid,
    number: i32,
    customer: String,
    status: String,
    status_label: &'static str,
    items: String,
    accepted: String,
    age: String,
    late: bool,
    /// A held pre-order: when it fires ("18:40").
    fires: Option<String>,
}

#[derive(Template)]
#[template(path = "orders_table.html")]
struct OrdersTable {
    t: &'static Text,
    pizzeria_id: Uuid,
    lines: Vec<OrderLine>,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    t: &'static Text,
    nav: Nav,
    pizzeria_id: Uuid,
    status: String,
    search: String,
    filters: Vec<(&'static str, &'static str)>,
    lines: Vec<OrderLine>,
    poll_seconds: u64,
    live_url: String,
}

#[derive(Debug, Deserialize)]
pub struct OrdersQuery {
    status: Option<String>,
    /// An order number or part of a name.
    q: Option<String>,
}

impl OrdersQuery {
    /// The search, trimmed and at most 64 characters (the tracker's bound).
    fn search(&self) -> Option<String> {
        let q = self.q.as_deref()?.trim();
        (!q.is_empty()).then(|| q.chars().take(64).collect())
    }
}

fn known_status(status: Option<&str>) -> Option<&'static str> {
    let s = status?;
    screens::STATUSES.iter().copied().find(|value| *value == s)
}

async fn order_lines(
    state: &AppState,
    viewer: &StaffViewer,
    pizzeria_id: Uuid,
    status: Option<&str>,
    search: Option<&str>,
) -> Result<Vec<OrderLine>, PageError> {
    let list = todays_orders(state, pizzeria_id, &viewer.token, status, search).await?;
    let tz = i18n::time_zone(&list.time_zone);
    let t = i18n::text();
    let now = Utc::now();
    Ok(list
        .orders
        .into_iter()
        .map(|o| OrderLine {
            id: o.id,
            number: o.number,
            customer: if o.show_number_only {
                t.number_only.into()
            } else {
                o.customer_name.clone()
            },
            status_label: screens::status_label(&o.status),
            items: o
                .items
                .iter()
                .map(|i| format!("{}× {}", i.quantity, i.name))
                .collect::<Vec<_>>()
                .join(", "),
            accepted: i18n::clock(o.accepted_at, tz),
            age: fill(t.minutes, &[("n", &(o.age_seconds(now) / 60))]),
            late: o.is_late(now),
            fires: o.fires_at.map(|at| scheduled(t, at, tz)),
            status: o.status,
        })
        .collect())
}

/// `GET /p/{p}/orders?status=`
pub async fn orders_page(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    csrf: Csrf,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, PageError> {
    let pizzeria_id = pizzeria_param(&req)?;
    require(&viewer, pizzeria_id, Permission::OrdersRead)?;
    let status = known_status(query.status.as_deref());
    let search = query.search();
    let page = OrdersPage {
        t: i18n::text(),
        nav: Nav::new(&viewer, pizzeria_id, &csrf, "orders"),
        pizzeria_id,
        status: status.unwrap_or_default().to_owned(),
        filters: screens::status_filters(),
        lines: order_lines(&state, &viewer, pizzeria_id, status, search.as_deref()).await?,
        poll_seconds: settings.screens.poll_seconds,
        live_url: format!(
            "/p/{pizzeria_id}/orders/live?{}",
            serde_urlencoded::to_string([
                ("status", status.unwrap_or_default()),
                ("q", search.as_deref().unwrap_or_default()),
            ])
            .unwrap_or_default()
        ),
        search: search.unwrap_or_default(),
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// `GET /p/{p}/orders/live?status=`
pub async fn orders_live(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, LiveError> {
    let pizzeria_id = pizzeria_param(&req)?;
    require(&viewer, pizzeria_id, Permission::OrdersRead)?;
    let status = known_status(query.status.as_deref());
    let lines = order_lines(
        &state,
        &viewer,
        pizzeria_id,
        status,
        query.search().as_deref(),
    )
    .await?;
    let body = OrdersTable {
        t: i18n::text(),
        pizzeria_id,
        lines,
    }
    .render()
    .map_err(|e| PageError::Internal(anyhow::anyhow!("cannot render the orders: {e}")))?;
    Ok(live_fragment(&req, body))
}

#[derive(Debug, Deserialize)]
struct RouteStage {
    station: String,
}

#[derive(Debug, Deserialize)]
struct Product {
    id: Uuid,
    name: String,
    size: Option<String>,
    modifiers: Vec<String>,
    #[serde(default)]
    allergens: Vec<String>,
    route: Vec<RouteStage>,
    pass: i32,
    station: Option<String>,
    done_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub station: Option<String>,
    pub product_id: Option<Uuid>,
    pub actor: Option<String>,
    #[serde(default)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct OrderDetail {
    order: Order,
    products: Vec<Product>,
    timeline: Vec<TimelineEntry>,
}

struct ProductLine {
    id: Uuid,
    name: String,
    size: String,
    modifiers: Vec<String>,
    allergens: Vec<String>,
    route: String,
    place: String,
    remake: bool,
}

struct TimelineLine {
    at: String,
    label: &'static str,
    station: String,
    product: String,
    actor: String,
    note: String,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    t: &'static Text,
    nav: Nav,
    pizzeria_id: Uuid,
    order_id: Uuid,
    number: i32,
    customer: String,
    status: String,
    status_label: &'static str,
    source: String,
    accepted: String,
    due: String,
    age: String,
    target: String,
    late: bool,
    /// A held pre-order: when it fires.
    fires: Option<String>,
    cancel_reason: Option<String>,
    late_cancel: Option<LateCancel>,
    can_manage: bool,
    can_cancel: bool,
    can_hand_over: bool,
    can_remake: bool,
    products: Vec<ProductLine>,
    timeline: Vec<TimelineLine>,
    notice: Option<String>,
    problem: Option<String>,
    /// The path of each of the order's events, for chain admins and on call (`None` for
    /// others), and the services that could not be asked for it.
    paths: Option<Vec<super::ops_paths::EventPathView>>,
    paths_missing: Vec<&'static str>,
}

/// The till cancelled after the kitchen handed the order over: the manager may owe a refund.
struct LateCancel {
    /// "Cancelled by the till after hand-over, at 14:05 by Till 2 (cashier)".
    text: String,
    reason: Option<String>,
}

impl LateCancel {
    fn of(o: &Order, tz: chrono_tz::Tz) -> Option<Self> {
        let at = o.cancel_after_hand_over_at?;
        let source = o.cancel_after_hand_over_source.clone().unwrap_or_default();
        let by = match &o.cancel_after_hand_over_actor {
            Some(actor) if *actor != source => format!("{actor} ({source})"),
            _ => source,
        };
        Some(LateCancel {
            text: fill(
                i18n::text().late_cancel,
                &[("at", &i18n::clock(at, tz)), ("by", &by)],
            ),
            reason: o.cancel_after_hand_over_reason.clone(),
        })
    }
}

impl OrderPage {
    fn title(&self) -> String {
        fill(self.t.order_number, &[("n", &self.number)])
    }

    fn confirm_cancel(&self) -> String {
        fill(self.t.confirm_cancel, &[("n", &self.number)])
    }

    fn say_with(&self, template: &str, name: &str) -> String {
        fill(template, &[("name", &name)])
    }
}

#[derive(Debug, Deserialize)]
pub struct OrderQuery {
    done: Option<String>,
    problem: Option<String>,
}

/// `GET /p/{p}/orders/{id}`
pub async fn order_page(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, PageError> {
    let pizzeria_id = pizzeria_param(&req)?;
    let order_id = uuid_param(&req, "order_id")?;
    require(&viewer, pizzeria_id, Permission::OrdersRead)?;
    let detail: OrderDetail = state
        .upstream
        .get(
            Service::Tracker,
            &format!("/api/v1/pizzerias/{pizzeria_id}/orders/{order_id}"),
            &viewer.token,
        )
        .await?;
    // The pizzeria's time zone, for the clock times below.
    let tz = i18n::time_zone(
        &super::activate::pizzeria(&state, pizzeria_id, &viewer.token)
            .await?
            .time_zone,
    );
    let t = i18n::text();
    let now = Utc::now();
    let o = &detail.order;
    let name_of = |id: Option<Uuid>| {
        id.and_then(|id| detail.products.iter().find(|p| p.id == id))
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    let open_or_packed = matches!(o.status.as_str(), "accepted" | "in_work" | "packed");
    let can_manage = viewer.principal.can(pizzeria_id, Permission::OrdersManage);
    let (paths, paths_missing) =
        match super::ops_paths::order_paths(&state, &viewer, order_id).await? {
            Some((paths, missing)) => (Some(paths), missing),
            None => (None, Vec::new()),
        };
    let page = OrderPage {
        t,
        nav: Nav::new(&viewer, pizzeria_id, &csrf, "orders"),
        pizzeria_id,
        order_id,
        number: o.number,
        customer: if o.show_number_only {
            fill(t.shown_by_number, &[("name", &o.customer_name)])
        } else {
            o.customer_name.clone()
        },
        status_label: screens::status_label(&o.status),
        status: o.status.clone(),
        source: match o.source.as_str() {
            "restaurant" => t.source_restaurant.to_owned(),
            "delivery" => t.source_delivery.to_owned(),
            "pickup" => t.source_pickup.to_owned(),
            other => other.to_owned(),
        },
        accepted: i18n::clock(o.accepted_at, tz),
        due: i18n::clock(o.due_at, tz),
        age: screens::duration(o.age_seconds(now)),
        target: screens::duration(o.target_seconds),
        late: o.is_late(now),
        fires: o.fires_at.map(|at| scheduled(t, at, tz)),
        cancel_reason: o.cancel_reason.clone(),
        late_cancel: LateCancel::of(o, tz),
        can_manage,
        can_cancel: can_manage && open_or_packed,
        can_hand_over: can_manage && o.status == "packed",
        can_remake: can_manage && open_or_packed,
        products: detail
            .products
            .iter()
            .map(|p| ProductLine {
                id: p.id,
                name: p.name.clone(),
                size: p.size.clone().unwrap_or_default(),
                modifiers: p.modifiers.clone(),
                allergens: screens::allergen_names(&p.allergens),
                route: p
                    .route
                    .iter()
                    .map(|s| i18n::station_title(&s.station))
                    .collect::<Vec<_>>()
                    .join(" → "),
                place: match (&p.station, p.done_at) {
                    (Some(station), _) => {
                        fill(t.at_station, &[("station", &i18n::station_title(station))])
                    }
                    (None, Some(_)) if o.status == "cancelled" => t.stopped.into(),
                    (None, Some(_)) => t.done.into(),
                    (None, None) => "—".into(),
                } + &if p.pass > 1 {
                    fill(t.pass_n, &[("n", &p.pass)])
                } else {
                    String::new()
                },
                remake: true,
            })
            .collect(),
        timeline: detail
            .timeline
            .iter()
            .map(|t| TimelineLine {
                at: i18n::clock_seconds(t.at, tz),
                label: screens::timeline_label(&t.kind),
                station: t
                    .station
                    .as_deref()
                    .map(i18n::station_title)
                    .unwrap_or_default(),
                product: name_of(t.product_id),
                actor: t.actor.clone().unwrap_or_default(),
                note: timeline_note(t),
            })
            .collect(),
        notice: query
            .done
            .as_deref()
            .and_then(done_notice)
            .map(str::to_owned),
        problem: query.problem.clone(),
        paths,
        paths_missing,
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// What a finished action says, by its code in the query (words never travel there, so a
/// link cannot put its own text on the page).
fn done_notice(code: &str) -> Option<&'static str> {
    let t = i18n::text();
    Some(match code {
        "cancelled" => t.notice_cancelled,
        "handed_over" => t.notice_handed_over,
        "rushed" => t.notice_rushed,
        "remade" => t.notice_remade,
        _ => return None,
    })
}

/// The detail worth a glance: a stage's time against its target, a reason.
fn timeline_note(t: &TimelineEntry) -> String {
    let d = &t.detail;
    if let (Some(ms), Some(target)) = (d["duration_ms"].as_i64(), d["target_seconds"].as_i64()) {
        let text = i18n::text();
        let flag = if ms / 1000 > target {
            text.over_target_flag
        } else {
            ""
        };
        let took = screens::duration(ms / 1000);
        let target = screens::duration(target);
        return fill(text.note_of, &[("took", &took), ("target", &target)]) + flag;
    }
    d["reason"].as_str().map(str::to_owned).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    reason: Option<String>,
}

async fn order_action(
    req: &HttpRequest,
    viewer: &StaffViewer,
    state: &AppState,
    path_tail: String,
    reason: Option<&str>,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let pizzeria_id = pizzeria_param(req)?;
    let order_id = uuid_param(req, "order_id")?;
    require(viewer, pizzeria_id, Permission::OrdersManage)?;
    let mut body = json!({ "actor": viewer.principal.display_name });
    if let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        body["reason"] = json!(reason);
    }
    let path = format!("/api/v1/pizzerias/{pizzeria_id}/orders/{order_id}{path_tail}");
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
    let (key, text) = match answer {
        Ok(_) => ("done", done.to_owned()),
        Err(UpstreamError::Refused {
            status, message, ..
        }) if status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY => (
            "problem",
            fill(i18n::text().not_done, &[("message", &message)]),
        ),
        Err(e) => return Err(e.into()),
    };
    Ok(see_other(&format!(
        "/p/{pizzeria_id}/orders/{order_id}?{}",
        serde_urlencoded::to_string([(key, text.as_str())]).unwrap_or_default()
    )))
}

/// `POST /p/{p}/orders/{id}/cancel`
pub async fn cancel(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    order_action(
        &req,
        &viewer,
        &state,
        "/cancel".into(),
        form.reason.as_deref(),
        "cancelled",
    )
    .await
}

/// `POST /p/{p}/orders/{id}/hand-over`
pub async fn hand_over(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(_): Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    order_action(
        &req,
        &viewer,
        &state,
        "/hand-over".into(),
        None,
        "handed_over",
    )
    .await
}

/// `POST /p/{p}/orders/{id}/rush`: to the top of every station.
pub async fn rush(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(_): Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    order_action(&req, &viewer, &state, "/rush".into(), None, "rushed").await
}

/// `POST /p/{p}/orders/{id}/products/{pid}/remake`
pub async fn remake(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(form): Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    let product_id = uuid_param(&req, "product_id")?;
    order_action(
        &req,
        &viewer,
        &state,
        format!("/products/{product_id}/remake"),
        form.reason.as_deref(),
        "remade",
    )
    .await
}

#[derive(Debug, Deserialize)]
struct StationRow {
    station: String,
    taps: i64,
    average_seconds: f64,
    p90_seconds: f64,
    average_target_seconds: f64,
    over_target: i64,
}

#[derive(Debug, Deserialize)]
struct StationReport {
    date: String,
    stations: Vec<StationRow>,
}

struct StationLine {
    title: String,
    taps: i64,
    average: String,
    p90: String,
    /// The p90 is below the average: a few very long stages pulled the average up.
    skewed: bool,
    target: String,
    over_target: i64,
}

#[derive(Template)]
#[template(path = "performance.html")]
struct PerformancePage {
    t: &'static Text,
    nav: Nav,
    date: String,
    time_zone: String,
    /// Some station's p90 is below its average: the page explains why that happens.
    any_skewed: bool,
    stations: Vec<StationLine>,
    station_chart: StationChart,
    hour_chart: HourChart,
    orders_today: usize,
    late_today: usize,
    peak: u32,
}

/// `GET /p/{p}/performance`: per station average and p90 against target; orders per hour.
pub async fn performance_page(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    let pizzeria_id = pizzeria_param(&req)?;
    require(&viewer, pizzeria_id, Permission::ReportsRead)?;
    let report: StationReport = state
        .upstream
        .get(
            Service::Tracker,
            &format!("/api/v1/pizzerias/{pizzeria_id}/reports/stations"),
            &viewer.token,
        )
        .await?;
    let list = todays_orders(&state, pizzeria_id, &viewer.token, None, None).await?;
    let mut per_hour = [0u32; 24];
    for o in &list.orders {
        per_hour[list.local_hour(o.accepted_at)] += 1;
    }
    let orders = &list.orders;
    let now = Utc::now();
    let titles: Vec<String> = report
        .stations
        .iter()
        .map(|s| i18n::station_title(&s.station))
        .collect();
    let figures: Vec<StationFigures<'_>> = report
        .stations
        .iter()
        .zip(&titles)
        .map(|(s, title)| StationFigures {
            label: title,
            average_seconds: s.average_seconds,
            p90_seconds: s.p90_seconds,
            target_seconds: s.average_target_seconds,
        })
        .collect();
    let page = PerformancePage {
        t: i18n::text(),
        nav: Nav::new(&viewer, pizzeria_id, &csrf, "performance"),
        date: report.date.clone(),
        time_zone: list.time_zone.clone(),
        any_skewed: report
            .stations
            .iter()
            .any(|s| s.p90_seconds < s.average_seconds),
        station_chart: StationChart::new(&figures),
        hour_chart: HourChart::new(&per_hour),
        orders_today: orders.len(),
        late_today: orders.iter().filter(|o| o.is_late(now)).count(),
        peak: per_hour.iter().copied().max().unwrap_or(0),
        stations: report
            .stations
            .iter()
            .map(|s| StationLine {
                title: i18n::station_title(&s.station),
                taps: s.taps,
                average: screens::duration(s.average_seconds.round() as i64),
                p90: screens::duration(s.p90_seconds.round() as i64),
                skewed: s.p90_seconds < s.average_seconds,
                target: screens::duration(s.average_target_seconds.round() as i64),
                over_target: s.over_target,
            })
            .collect(),
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// "Scheduled · fires 18:40": a held pre-order, in the pizzeria's time zone.
fn scheduled(t: &Text, at: DateTime<Utc>, tz: Tz) -> String {
    fill(t.scheduled_fires, &[("at", &i18n::clock(at, tz))])
}
#[cfg(test)]
mod tests {
    use super::*;

    fn performance(p90_seconds: f64, average_seconds: f64) -> String {
        let line = StationLine {
            title: "Oven".into(),
            taps: 10,
            average: screens::duration(average_seconds as i64),
            p90: screens::duration(p90_seconds as i64),
            skewed: p90_seconds < average_seconds,
            target: "5:00".into(),
            over_target: 1,
        };
        let page = PerformancePage {
            t: i18n::Lang::En.text(),
            nav: Nav {
                pizzeria_id: Uuid::nil(),
                who: "Olga".into(),
                csrf: "csrf".into(),
                section: "performance",
                languages: vec![("en", "English")],
                operations: false,
            },
            date: "2026-11-30".into(),
            time_zone: "Europe/Moscow".into(),
            any_skewed: line.skewed,
            stations: vec![line],
            station_chart: StationChart::new(&[]),
            hour_chart: HourChart::new(&[0; 24]),
            orders_today: 10,
            late_today: 1,
            peak: 4,
        };
        page.render().unwrap()
    }

    #[test]
    fn a_p90_below_the_average_is_explained_and_the_day_is_local() {
        let page = performance(120.0, 300.0);
        assert!(page.contains("id=\"p90-note\""), "{page}");
        assert!(page.contains("a few stages took very long"));
        assert!(page.contains("Europe/Moscow"));
        assert!(!page.contains("UTC"));
        assert!(!performance(400.0, 300.0).contains("p90-note"));
    }

    fn order_page(order: &serde_json::Value) -> String {
        let o: Order = serde_json::from_value(order.clone()).unwrap();
        OrderPage {
            t: i18n::Lang::En.text(),
            nav: Nav {
                pizzeria_id: Uuid::nil(),
                who: "Olga".into(),
                csrf: "csrf".into(),
                section: "orders",
                languages: vec![("en", "English")],
                operations: false,
            },
            pizzeria_id: Uuid::nil(),
            order_id: o.id,
            number: o.number,
            customer: o.customer_name.clone(),
            status: o.status.clone(),
            status_label: screens::status_label(&o.status),
            source: o.source.clone(),
            accepted: String::new(),
            due: String::new(),
            age: String::new(),
            target: String::new(),
            late: false,
            fires: o
                .fires_at
                .map(|at| scheduled(i18n::Lang::En.text(), at, i18n::time_zone("UTC"))),
            cancel_reason: o.cancel_reason.clone(),
            late_cancel: LateCancel::of(&o, i18n::time_zone("Europe/Moscow")),
            can_manage: true,
            can_cancel: false,
            can_hand_over: false,
            can_remake: false,
            products: Vec::new(),
            timeline: Vec::new(),
            notice: None,
            problem: None,
            paths: None,
            paths_missing: Vec::new(),
        }
        .render()
        .unwrap()
    }

    #[test]
    fn a_cancel_from_the_till_after_the_hand_over_is_shown_with_when_who_and_why() {
        let mut order = serde_json::json!({
            "id": Uuid::nil(), "number": 42, "customer_name": "Vera", "show_number_only": false,
            "source": "restaurant", "accepted_at": "2026-11-30T10:00:00Z", "status": "handed_over",
            "target_seconds": 600, "due_at": "2026-11-30T10:10:00Z", "late": false, "items": [],
            "packed_at": "2026-11-30T10:08:00Z", "handed_over_at": "2026-11-30T10:09:00Z",
            "cancelled_at": null, "cancel_reason": null,
        });
        assert!(!order_page(&order).contains("late-cancel"));
        order["cancel_after_hand_over_at"] = "2026-11-30T10:08:30Z".into();
        order["cancel_after_hand_over_recorded_at"] = "2026-11-30T10:11:00Z".into();
        order["cancel_after_hand_over_source"] = "cashier".into();
        order["cancel_after_hand_over_actor"] = "Till <2>".into();
        order["cancel_after_hand_over_reason"] = "waited too long".into();
        let page = order_page(&order);
        assert!(page.contains("id=\"late-cancel\""), "{page}");
        // In the pizzeria's time zone: 10:08 UTC is 13:08 in Moscow.
        assert!(page.contains("Cancelled by the till after hand-over, at 13:08 by"));
        assert!(
            page.contains("Till &#60;2&#62; (cashier)"),
            "escaped: {page}"
        );
        assert!(page.contains("waited too long"));
    }

    #[test]
    fn hours_count_from_the_pizzerias_midnight() {
        let start: DateTime<Utc> = "2026-11-29T21:00:00Z".parse().unwrap();
        let list = OrderList {
            orders: Vec::new(),
            time_zone: "Europe/Moscow".into(),
            day_start: Some(start),
        };
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(list.local_hour(at("2026-11-29T21:05:00Z")), 0);
        assert_eq!(list.local_hour(at("2026-11-30T09:30:00Z")), 12);
        assert_eq!(list.local_hour(at("2026-11-30T20:59:00Z")), 23);
    }
}
