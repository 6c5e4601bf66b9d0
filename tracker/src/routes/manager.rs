//! The manager's screens: orders of a day, one order with its timeline, cancel, hand over,
//! remake, and the station report.

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use service_kit::http::{ClientError, Query};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    db::{
        orders::{self, OrderFilter, OrderRow},
        products::{self, ProductRow},
        taps,
        timeline::{self, TimelineRow},
    },
    domain::OrderStatus,
    kitchen::{self, Kitchen, KitchenError},
};

use super::{
    ActorBody, ApiError, OptionalJson, PizzeriaScope, ReasonBody, parse_actor, parse_reason,
    uuid_param,
};

#[derive(Debug, Serialize)]
pub struct OrderView {
    pub id: Uuid,
    pub pizzeria_id: Uuid,
    pub number: i32,
    pub customer_name: String,
    pub show_number_only: bool,
    pub source: String,
    pub status: String,
    pub late: bool,
    pub placed_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub target_seconds: i32,
    pub packed_at: Option<DateTime<Utc>>,
    pub handed_over_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// The sequence of the last event published about the order.
    pub version: i64,
    pub items: Vec<contracts::OrderItem>,
}

impl From<OrderRow> for OrderView {
    fn from(o: OrderRow) -> Self {
        OrderView {
            id: o.id,
            pizzeria_id: o.pizzeria_id,
            number: o.number,
            customer_name: o.customer_name,
            show_number_only: o.show_number_only,
            source: o.source,
            status: o.status,
            late: o.late,
            placed_at: o.placed_at,
            accepted_at: o.accepted_at,
            due_at: o.due_at,
            target_seconds: o.target_seconds,
            packed_at: o.packed_at,
            handed_over_at: o.handed_over_at,
            cancelled_at: o.cancelled_at,
            cancel_reason: o.cancel_reason,
            version: o.version,
            items: o.items.0,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RouteStageView {
    pub station: String,
    pub target_seconds: i32,
}

#[derive(Debug, Serialize)]
pub struct ProductView {
    pub id: Uuid,
    pub item_index: i32,
    pub unit_index: i32,
    pub name: String,
    pub category: String,
    pub size: Option<String>,
    pub modifiers: Vec<String>,
    pub route: Vec<RouteStageView>,
    pub stage: i32,
    pub pass: i32,
    /// Where it waits; absent once done or cancelled.
    pub station: Option<String>,
    pub entered_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

impl From<ProductRow> for ProductView {
    fn from(p: ProductRow) -> Self {
        ProductView {
            route: p
                .route_stations
                .iter()
                .zip(&p.route_targets)
                .map(|(station, target)| RouteStageView {
                    station: station.clone(),
                    target_seconds: *target,
                })
                .collect(),
            id: p.id,
            item_index: p.item_index,
            unit_index: p.unit_index,
            name: p.name,
            category: p.category,
            size: p.size,
            modifiers: p.modifiers,
            stage: p.stage,
            pass: p.pass,
            station: p.station,
            entered_at: p.entered_at,
            done_at: p.done_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TimelineView {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub station: Option<String>,
    pub product_id: Option<Uuid>,
    pub actor: Option<String>,
    pub detail: Option<serde_json::Value>,
}

impl From<TimelineRow> for TimelineView {
    fn from(t: TimelineRow) -> Self {
        TimelineView {
            at: t.at,
            kind: t.kind,
            station: t.station,
            product_id: t.product_id,
            actor: t.actor,
            detail: t.detail,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OrderDetail {
    pub order: OrderView,
    pub products: Vec<ProductView>,
    pub timeline: Vec<TimelineView>,
}

/// The order with its products and timeline, or 404 when the pizzeria has no such order.
pub async fn order_detail(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    order_id: Uuid,
) -> Result<OrderDetail, ApiError> {
    let order = orders::find_order(&mut *conn, order_id)
        .await?
        .filter(|o| o.pizzeria_id == pizzeria_id)
        .ok_or(KitchenError::NotFound("order"))?;
    let products = products::products_of_order(&mut *conn, order_id).await?;
    let timeline = timeline::timeline_of(&mut *conn, order_id).await?;
    Ok(OrderDetail {
        order: order.into(),
        products: products.into_iter().map(Into::into).collect(),
        timeline: timeline.into_iter().map(Into::into).collect(),
    })
}

/// `GET .../orders/{order_id}`
pub async fn get_order(
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, ApiError> {
    let order_id = uuid_param(&req, "order_id")?;
    let mut conn = pool.acquire().await.context("cannot get a connection")?;
    let detail = order_detail(&mut conn, scope.pizzeria_id, order_id).await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    date: Option<NaiveDate>,
    limit: Option<i64>,
}

/// `[start, end)` of a calendar day in UTC; today when no date is given. Days are UTC because
/// the tracker does not know the pizzeria's time zone yet.
fn utc_day(date: Option<NaiveDate>) -> (NaiveDate, DateTime<Utc>, DateTime<Utc>) {
    let date = date.unwrap_or_else(|| Utc::now().date_naive());
    let start = date.and_time(chrono::NaiveTime::MIN).and_utc();
    (date, start, start + chrono::Duration::days(1))
}

/// `GET .../orders?status=&date=YYYY-MM-DD&limit=`: the day's orders, newest first.
pub async fn list_orders(
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    Query(query): Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|s| {
            OrderStatus::parse(s).ok_or_else(|| {
                ClientError::malformed(
                    "status",
                    "must be one of accepted, in_work, packed, handed_over, cancelled",
                )
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ClientError::invalid("limit", "must be between 1 and 500").into());
    }
    let (date, from, to) = utc_day(query.date);
    let mut conn = pool.acquire().await.context("cannot get a connection")?;
    crate::db::pizzerias::find_pizzeria(&mut *conn, scope.pizzeria_id)
        .await?
        .ok_or(KitchenError::NotFound("pizzeria"))?;
    let filter = OrderFilter {
        status,
        from,
        to,
        limit,
    };
    let rows = orders::list_orders(&mut *conn, scope.pizzeria_id, &filter).await?;
    let orders: Vec<OrderView> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "date": date, "orders": orders })))
}

/// `POST .../orders/{order_id}/cancel` with optional `{"reason", "actor"}`.
pub async fn cancel(
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let order_id = uuid_param(&req, "order_id")?;
    let actor = parse_actor(body.actor.as_deref())?;
    let reason = parse_reason(body.reason.as_deref())?;
    let mut tx = pool.begin().await.context("cannot start the cancel")?;
    kitchen::cancel_order(
        &mut tx,
        &kitchen,
        scope.pizzeria_id,
        order_id,
        reason.as_ref(),
        actor.as_ref(),
    )
    .await?;
    let detail = order_detail(&mut tx, scope.pizzeria_id, order_id).await?;
    tx.commit().await.context("cannot commit the cancel")?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `POST .../orders/{order_id}/hand-over` with optional `{"actor"}`.
pub async fn hand_over(
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    OptionalJson(body): OptionalJson<ActorBody>,
) -> Result<HttpResponse, ApiError> {
    let order_id = uuid_param(&req, "order_id")?;
    let actor = parse_actor(body.actor.as_deref())?;
    let mut tx = pool.begin().await.context("cannot start the hand-over")?;
    kitchen::hand_over(
        &mut tx,
        &kitchen,
        scope.pizzeria_id,
        order_id,
        actor.as_ref(),
    )
    .await?;
    let detail = order_detail(&mut tx, scope.pizzeria_id, order_id).await?;
    tx.commit().await.context("cannot commit the hand-over")?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `POST .../orders/{order_id}/products/{product_id}/remake` with optional `{"reason", "actor"}`.
pub async fn remake(
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let order_id = uuid_param(&req, "order_id")?;
    let product_id = uuid_param(&req, "product_id")?;
    let actor = parse_actor(body.actor.as_deref())?;
    let reason = parse_reason(body.reason.as_deref())?;
    let mut tx = pool.begin().await.context("cannot start the remake")?;
    kitchen::remake(
        &mut tx,
        &kitchen,
        scope.pizzeria_id,
        order_id,
        product_id,
        reason.as_ref(),
        actor.as_ref(),
    )
    .await?;
    let detail = order_detail(&mut tx, scope.pizzeria_id, order_id).await?;
    tx.commit().await.context("cannot commit the remake")?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    date: Option<NaiveDate>,
}

#[derive(Debug, Serialize)]
struct StationReport {
    station: String,
    taps: i64,
    average_seconds: f64,
    p90_seconds: f64,
    average_target_seconds: f64,
    over_target: i64,
}

/// `GET .../reports/stations?date=YYYY-MM-DD`: per station, the day's taps with average and
/// 90th-percentile stage time. The day is a UTC day.
pub async fn station_report(
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    Query(query): Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let (date, from, to) = utc_day(query.date);
    let mut conn = pool.acquire().await.context("cannot get a connection")?;
    crate::db::pizzerias::find_pizzeria(&mut *conn, scope.pizzeria_id)
        .await?
        .ok_or(KitchenError::NotFound("pizzeria"))?;
    let rows = taps::station_report(&mut *conn, scope.pizzeria_id, from, to).await?;
    let stations: Vec<StationReport> = rows
        .into_iter()
        .map(|r| StationReport {
            station: r.station,
            taps: r.taps,
            average_seconds: r.average_ms / 1000.0,
            p90_seconds: r.p90_ms / 1000.0,
            average_target_seconds: r.average_target_seconds,
            over_target: r.over_target,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "date": date,
        "time_zone": "UTC",
        "stations": stations,
    })))
}
