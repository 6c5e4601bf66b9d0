//! The manager's screens: orders of a day, one order with its timeline (`orders.read` in the
//! pizzeria), cancel, hand over, remake (`orders.manage`), and the station and actor reports
//! (`reports.read`; the actor report also for the pizzeria's motivation board). Each handler
//! checks the caller before it reads anything.

use access::{Caller, DeviceKind, Permission};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use service_kit::http::{ClientError, Deferred, Query};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    db::{
        orders::{self, OrderFilter, OrderRow, OrderSearch},
        products::{self, ProductRow},
        taps,
        timeline::{self, TimelineRow},
    },
    domain::OrderStatus,
    kitchen::{self, Kitchen, KitchenError},
};

use super::{
    ApiError, OptionalJson, PizzeriaScope, parse_reason, require_reports, uuid_param,
    who::{ActorBody, KitchenStaff, ReasonBody, acting},
};

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
    /// Allergen codes as the order source declared them.
    pub allergens: Vec<String>,
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
            allergens: p.allergens,
            stage: p.stage,
            pass: p.pass,
            station: p.station,
            entered_at: p.entered_at,
            done_at: p.done_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OrderDetail {
    pub order: OrderRow,
    pub products: Vec<ProductView>,
    pub timeline: Vec<TimelineRow>,
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
        order,
        products: products.into_iter().map(Into::into).collect(),
        timeline,
    })
}

/// `GET .../orders/{order_id}`
pub async fn get_order(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, ApiError> {
    caller.require(scope.pizzeria_id, Permission::OrdersRead)?;
    let order_id = uuid_param(&req, "order_id")?;
    let mut conn = pool.acquire().await.context("cannot get a connection")?;
    let detail = order_detail(&mut conn, scope.pizzeria_id, order_id).await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    // Only YYYY-MM-DD with a four-digit year: chrono alone also takes `+10000-01-01`.
    #[serde(default, deserialize_with = "service_kit::http::calendar_date")]
    date: Option<NaiveDate>,
    limit: Option<i64>,
    /// An order number, or part of the customer's name.
    q: Option<String>,
}

/// The pizzeria's local day `date` (today there when `None`): its time zone, the date and
/// `[start, end)`; 404 for an unknown pizzeria.
async fn pizzeria_day(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    date: Option<NaiveDate>,
) -> Result<(String, NaiveDate, DateTime<Utc>, DateTime<Utc>), ApiError> {
    let pizzeria = crate::db::pizzerias::find_pizzeria(&mut *conn, pizzeria_id)
        .await?
        .ok_or(KitchenError::NotFound("pizzeria"))?;
    let (date, from, to) =
        crate::db::pizzerias::local_day(&mut *conn, &pizzeria.time_zone, date).await?;
    Ok((pizzeria.time_zone, date, from, to))
}

/// `GET .../orders?status=&date=YYYY-MM-DD&limit=`: the day's orders, newest first.
pub async fn list_orders(
    caller: Caller,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    query: Deferred<Query<ListQuery>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(scope.pizzeria_id, Permission::OrdersRead)?;
    let Query(query) = query.get()?;
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
    let search = match query.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(q) if q.chars().count() <= 64 && !q.chars().any(char::is_control) => {
            Some(match q.parse::<i32>() {
                Ok(number) => OrderSearch::Number(number),
                Err(_) => OrderSearch::Name(q.to_owned()),
            })
        }
        Some(_) => {
            return Err(ClientError::invalid(
                "q",
                "must be an order number or up to 64 characters of a name",
            )
            .into());
        }
    };
    let mut conn = pool.acquire().await.context("cannot get a connection")?;
    let (time_zone, date, from, to) =
        pizzeria_day(&mut conn, scope.pizzeria_id, query.date).await?;
    let filter = OrderFilter {
        status,
        from,
        to,
        limit,
        search,
    };
    let orders = orders::list_orders(&mut *conn, scope.pizzeria_id, &filter).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "date": date,
        "time_zone": time_zone,
        "day_start": from,
        "day_end": to,
        "orders": orders,
    })))
}

/// Runs `change` on the order in one transaction and answers with the order as it is after it.
async fn change_order(
    pool: &PgPool,
    pizzeria_id: Uuid,
    order_id: Uuid,
    change: impl AsyncFnOnce(&mut PgConnection) -> Result<(), KitchenError>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = pool.begin().await.context("cannot start the change")?;
    change(&mut tx).await?;
    let detail = order_detail(&mut tx, pizzeria_id, order_id).await?;
    tx.commit().await.context("cannot commit the change")?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `POST .../orders/{order_id}/cancel` with optional `{"reason", "actor"}` (the actor defaults
/// to the caller, as for every change below).
pub async fn cancel(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<ReasonBody>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(scope.pizzeria_id, Permission::OrdersManage)?;
    let OptionalJson(body) = body.get()?;
    let order_id = uuid_param(&req, "order_id")?;
    let actor = acting(&caller, &req, scope.pizzeria_id, &directory, body.named()).await?;
    let reason = parse_reason(body.reason.as_deref())?;
    let p = scope.pizzeria_id;
    change_order(&pool, p, order_id, async |conn| {
        kitchen::cancel_order(conn, &kitchen, p, order_id, reason.as_ref(), Some(&actor)).await
    })
    .await
}

/// Handing over happens at the counter: staff with `orders.manage`, the tablet of a station
/// where orders are finished (packing), or the shift manager's screen of the pizzeria.
async fn may_hand_over(caller: &Caller, pool: &PgPool, pizzeria_id: Uuid) -> Result<(), ApiError> {
    match caller {
        Caller::Staff(_) => Ok(caller.require(pizzeria_id, Permission::OrdersManage)?),
        Caller::Device(d) if d.is_kind(pizzeria_id, DeviceKind::ShiftManagerScreen) => Ok(()),
        Caller::Device(d) if d.is_kind(pizzeria_id, DeviceKind::KitchenStation) => {
            let station = d.station.as_deref().unwrap_or_default();
            if crate::db::pizzerias::is_final_station(pool, pizzeria_id, station).await? {
                Ok(())
            } else {
                Err(ClientError::forbidden(
                    "orders are handed over at the station where they are finished (packing)",
                )
                .into())
            }
        }
        Caller::Device(_) => Err(ClientError::forbidden(
            "this device cannot hand orders over; a counter tablet or a manager can",
        )
        .into()),
    }
}

/// `POST .../orders/{order_id}/hand-over` with optional `{"actor"}` (`may_hand_over`).
pub async fn hand_over(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<ActorBody>>,
) -> Result<HttpResponse, ApiError> {
    may_hand_over(&caller, &pool, scope.pizzeria_id).await?;
    let OptionalJson(body) = body.get()?;
    let order_id = uuid_param(&req, "order_id")?;
    let actor = acting(&caller, &req, scope.pizzeria_id, &directory, body.named()).await?;
    let p = scope.pizzeria_id;
    change_order(&pool, p, order_id, async |conn| {
        kitchen::hand_over(conn, &kitchen, p, order_id, Some(&actor))
            .await
            .map(drop)
    })
    .await
}

/// `POST .../orders/{order_id}/rush` with optional `{"actor"}`: the order's products go to the
/// top of every station.
pub async fn rush(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<ActorBody>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(scope.pizzeria_id, Permission::OrdersManage)?;
    let OptionalJson(body) = body.get()?;
    let order_id = uuid_param(&req, "order_id")?;
    let actor = acting(&caller, &req, scope.pizzeria_id, &directory, body.named()).await?;
    let p = scope.pizzeria_id;
    change_order(&pool, p, order_id, async |conn| {
        kitchen::rush(conn, &kitchen, p, order_id, Some(&actor))
            .await
            .map(drop)
    })
    .await
}

/// `POST .../orders/{order_id}/products/{product_id}/remake` with optional `{"reason", "actor"}`.
pub async fn remake(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<ReasonBody>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(scope.pizzeria_id, Permission::OrdersManage)?;
    let OptionalJson(body) = body.get()?;
    let order_id = uuid_param(&req, "order_id")?;
    let product_id = uuid_param(&req, "product_id")?;
    let actor = acting(&caller, &req, scope.pizzeria_id, &directory, body.named()).await?;
    let reason = parse_reason(body.reason.as_deref())?;
    let p = scope.pizzeria_id;
    change_order(&pool, p, order_id, async |conn| {
        let (reason, actor) = (reason.as_ref(), Some(&actor));
        kitchen::remake(conn, &kitchen, p, order_id, product_id, reason, actor)
            .await
            .map(drop)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    #[serde(default, deserialize_with = "service_kit::http::calendar_date")]
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
    caller: Caller,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    query: Deferred<Query<ReportQuery>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(scope.pizzeria_id, Permission::ReportsRead)?;
    let Query(query) = query.get()?;
    day_report(
        &pool,
        scope.pizzeria_id,
        query,
        "stations",
        async |conn, from, to| {
            let rows = taps::station_report(conn, scope.pizzeria_id, from, to).await?;
            Ok(rows
                .into_iter()
                .map(|r| StationReport {
                    station: r.station,
                    taps: r.taps,
                    average_seconds: r.average_ms / 1000.0,
                    p90_seconds: r.p90_ms / 1000.0,
                    average_target_seconds: r.average_target_seconds,
                    over_target: r.over_target,
                })
                .collect::<Vec<_>>())
        },
    )
    .await
}

#[derive(Debug, Serialize)]
struct ActorReport {
    actor: String,
    stages: i64,
    average_seconds: f64,
    p90_seconds: f64,
    within_target: i64,
    /// `within_target / stages`, from 0 to 1.
    within_target_share: f64,
}

/// `GET .../reports/actors?date=YYYY-MM-DD`: per actor (the name on the taps), the day's stages
/// with average and 90th-percentile stage time and the share within target, most stages first;
/// what the kitchen's motivation board shows. The day is a UTC day.
pub async fn actor_report(
    caller: Caller,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    query: Deferred<Query<ReportQuery>>,
) -> Result<HttpResponse, ApiError> {
    require_reports(&caller, scope.pizzeria_id)?;
    let Query(query) = query.get()?;
    day_report(
        &pool,
        scope.pizzeria_id,
        query,
        "actors",
        async |conn, from, to| {
            let rows = taps::actor_report(conn, scope.pizzeria_id, from, to).await?;
            Ok(rows
                .into_iter()
                .map(|r| ActorReport {
                    within_target_share: r.within_target as f64 / r.stages.max(1) as f64,
                    actor: r.actor,
                    stages: r.stages,
                    average_seconds: r.average_ms / 1000.0,
                    p90_seconds: r.p90_ms / 1000.0,
                    within_target: r.within_target,
                })
                .collect::<Vec<_>>())
        },
    )
    .await
}

/// A report of one local day of the pizzeria: 404 for an unknown pizzeria, else `{"date", "time_zone", <key>:
/// rows}` with the rows `read` gives for `[from, to)`.
async fn day_report<T: Serialize>(
    pool: &PgPool,
    pizzeria_id: Uuid,
    query: ReportQuery,
    key: &str,
    read: impl AsyncFnOnce(&mut PgConnection, DateTime<Utc>, DateTime<Utc>) -> anyhow::Result<T>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool.acquire().await.context("cannot get a connection")?;
    let (time_zone, date, from, to) = pizzeria_day(&mut conn, pizzeria_id, query.date).await?;
    let rows = read(&mut conn, from, to).await?;
    let mut body = serde_json::json!({ "date": date, "time_zone": time_zone });
    body[key] = serde_json::to_value(rows).context("serialising the report")?;
    Ok(HttpResponse::Ok().json(body))
}
