//! The station tablets: the queue they poll, tap, and undo of a tap by its id. Each station's own tablet may, and
//! staff with `kitchen.work` in the pizzeria (`Caller::require_station`).

use access::Caller;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use service_kit::{hot::HotConnections, http::Deferred};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use crate::{
    db::{
        pizzerias,
        station_view::{self, RecallableTap},
    },
    kitchen::{self, Kitchen, KitchenError},
    versions::VersionKey,
};

use super::{
    ApiError, OptionalJson, StationScope, current_version, if_none_match, not_modified, uuid_param,
    weak_etag,
    who::{ActorBody, KitchenStaff, Named, acting},
};

/// The body of a tap: who did it, and the tablet's own id for a tap it may send again.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapBody {
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    actor: Option<String>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    actor_id: Option<Uuid>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    client_tap_id: Option<Uuid>,
}

#[derive(Debug, Serialize)]
struct QueueEntry {
    product_id: Uuid,
    order_id: Uuid,
    order_number: i32,
    product_name: String,
    /// `pizza`, `side`...: what a tablet announces ("New pizza: ...").
    category: String,
    size: Option<String>,
    /// Free text for the cook.
    modifiers: Vec<String>,
    /// Allergen codes as the order source declared them.
    allergens: Vec<String>,
    entered_at: DateTime<Utc>,
    seconds_waiting: i64,
    /// When the stage's clock starts: `entered_at`, or later for a product that is due with
    /// its order's slowest one.
    clock_from: DateTime<Utc>,
    target_seconds: i32,
    /// Above 1 for a remade product.
    pass: i32,
    late: bool,
    /// A remake or a rushed order: listed first.
    urgent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    remake_reason: Option<String>,
    /// This station is the product's last (packing): the order's products done or waiting
    /// here, of all of them ("#4204: 5 of 7 ready").
    #[serde(skip_serializing_if = "Option::is_none")]
    order_ready: Option<OrderReady>,
}

#[derive(Debug, Serialize)]
struct OrderReady {
    ready: i64,
    of: i64,
}

/// A tap undo can still take back, and until when.
#[derive(Debug, Serialize)]
struct UndoableTap {
    #[serde(flatten)]
    tap: RecallableTap,
    /// Past this, undo is refused.
    undo_until: DateTime<Utc>,
}

/// A packed order a finishing station's tablet may hand over.
#[derive(Debug, Serialize)]
struct ReadyOrder {
    order_id: Uuid,
    order_number: i32,
    customer_name: String,
    packed_at: Option<DateTime<Utc>>,
}

/// How far back a queue answer lists alerts; the tablet decides how long to show each.
const ALERT_LOOKBACK: chrono::Duration = chrono::Duration::minutes(10);

/// `GET .../stations/{station}/queue`. Tablets poll this every few seconds; a poll whose
/// `If-None-Match` is current is answered from the in-memory version map without touching the
/// database (`crate::versions`), or with one primary-key lookup while the map cannot answer.
pub async fn station_queue(
    caller: Caller,
    req: HttpRequest,
    scope: StationScope,
    hot: web::Data<HotConnections>,
    kitchen: web::Data<Kitchen>,
) -> Result<HttpResponse, ApiError> {
    caller.require_station(scope.pizzeria_id, scope.station.as_str())?;
    // The version is read before the queue: if a change lands in between, the body is newer
    // than its tag and the next poll fetches again, which is harmless. The other order could
    // pin a tablet on a stale body behind a current tag.
    let version = current_version(
        &kitchen.versions,
        VersionKey::station(scope.pizzeria_id, scope.station.as_str()),
        hot.run(async |conn| {
            pizzerias::station_queue_version(conn, scope.pizzeria_id, scope.station.as_str()).await
        }),
    )
    .await?
    .ok_or(KitchenError::NotFound("station"))?;
    let etag = weak_etag("q", version);
    if if_none_match(&req, &etag) {
        return Ok(not_modified(&etag));
    }
    let (pizzeria_id, station) = (scope.pizzeria_id, scope.station.as_str());
    let generated_at = Utc::now();
    let window = chrono::Duration::from_std(kitchen.undo_window).unwrap_or_default();
    // One read serves both lists: what undo can take back is what recall can, in a shorter
    // window.
    let recall_window = chrono::Duration::from_std(kitchen::RECALL_WINDOW).unwrap_or_default();
    let view = hot
        .run(async |conn| {
            station_view::station_view(
                conn,
                pizzeria_id,
                station,
                generated_at - recall_window,
                generated_at - ALERT_LOOKBACK,
            )
            .await
        })
        .await?;
    let recallable: Vec<UndoableTap> = view
        .recallable
        .0
        .into_iter()
        .map(|tap| UndoableTap {
            undo_until: tap.completed_at + window,
            tap,
        })
        .collect();
    let undoable: Vec<&UndoableTap> = recallable
        .iter()
        .filter(|t| t.undo_until > generated_at)
        .collect();
    let (alerts, all_day) = (view.alerts.0, view.all_day.0);
    let ready = view
        .ready
        .0
        .into_iter()
        .map(|o| ReadyOrder {
            order_id: o.id,
            order_number: o.number,
            customer_name: o.customer_name,
            packed_at: o.packed_at,
        })
        .collect::<Vec<_>>();
    let rows = view.products.0;
    let total = rows.first().map_or(0, |r| r.total);
    let entries: Vec<QueueEntry> = rows
        .into_iter()
        .map(|r| QueueEntry {
            seconds_waiting: (generated_at - r.entered_at).num_seconds().max(0),
            product_id: r.product_id,
            order_id: r.order_id,
            order_number: r.number,
            product_name: r.name,
            category: r.category,
            size: r.size,
            modifiers: r.modifiers,
            allergens: r.allergens,
            entered_at: r.entered_at,
            clock_from: r.clock_from,
            target_seconds: r.target_seconds,
            pass: r.pass,
            late: r.late,
            urgent: r.urgent,
            remake_reason: r.remake_reason,
            order_ready: r.last_stage.then_some(OrderReady {
                ready: r.order_here,
                of: r.order_products,
            }),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(serde_json::json!({
            "pizzeria_id": pizzeria_id,
            "station": station,
            "version": version,
            "generated_at": generated_at,
            "total": total,
            "all_day": all_day,
            "products": entries,
            "undoable": undoable,
            "recallable": recallable,
            "alerts": alerts,
            "ready": ready,
        })))
}

/// `POST .../stations/{station}/products/{product_id}/tap` with optional `{"actor" or
/// "actor_id", "client_tap_id"}`. Without an actor the tap is the caller's (the tablet's or the
/// staff member's); a tablet may name a kitchen staff member checked in at it
/// (`who::acting`). A `client_tap_id` makes the tap safe to send again.
pub async fn tap(
    caller: Caller,
    req: HttpRequest,
    scope: StationScope,
    hot: web::Data<HotConnections>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<TapBody>>,
) -> Result<HttpResponse, ApiError> {
    caller.require_station(scope.pizzeria_id, scope.station.as_str())?;
    let OptionalJson(body) = body.get()?;
    let product_id = uuid_param(&req, "product_id")?;
    let named = Named {
        actor: body.actor.as_deref(),
        actor_id: body.actor_id,
    };
    let actor = acting(&caller, &req, scope.pizzeria_id, &directory, named).await?;
    let request = kitchen::TapRequest {
        pizzeria_id: scope.pizzeria_id,
        station: &scope.station,
        product_id,
        actor: Some(&actor),
        client_tap_id: body.client_tap_id,
    };
    let record = hot
        .run(async |conn| {
            let mut tx = conn.begin().await.context("cannot start the tap")?;
            let record = kitchen::tap(&mut tx, &kitchen, request).await?;
            tx.commit().await.context("cannot commit the tap")?;
            Ok::<_, ApiError>(record)
        })
        .await?;
    let tap = &record.tap;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "tap_id": tap.id,
        "product_id": tap.product_id,
        "product_name": record.product_name,
        "size": record.size,
        "order_number": record.order_number,
        "order_id": tap.order_id,
        "station": tap.station,
        "stage": tap.stage,
        "pass": tap.pass,
        "started_at": tap.started_at,
        "completed_at": tap.completed_at,
        "duration_ms": tap.duration_ms,
        "target_seconds": tap.target_seconds,
        "actor": tap.actor,
        "actor_user_id": tap.actor_user_id,
        "principal": tap.principal,
        "client_tap_id": tap.client_tap_id,
        "undone": tap.undone_at.is_some(),
        "next_station": record.next_station,
        "order_status": record.order_status.as_str(),
        "repeated": record.repeated,
    })))
}

/// `POST .../stations/{station}/taps/{tap_id}/undo` with optional `{"actor"}` (else the
/// caller): takes back exactly that tap; a repeat answers `"repeated": true`.
pub async fn undo(
    caller: Caller,
    req: HttpRequest,
    scope: StationScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<ActorBody>>,
) -> Result<HttpResponse, ApiError> {
    let how = TakeBack::Undo;
    take_back(caller, req, scope, pool, kitchen, directory, body, how).await
}

/// `POST .../stations/{station}/taps/{tap_id}/recall`: as undo, within 15 minutes.
pub async fn recall(
    caller: Caller,
    req: HttpRequest,
    scope: StationScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<ActorBody>>,
) -> Result<HttpResponse, ApiError> {
    let how = TakeBack::Recall;
    take_back(caller, req, scope, pool, kitchen, directory, body, how).await
}

#[derive(Debug, Clone, Copy)]
enum TakeBack {
    Undo,
    Recall,
}

#[allow(clippy::too_many_arguments)] // an actix handler's extractors, passed on
async fn take_back(
    caller: Caller,
    req: HttpRequest,
    scope: StationScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    directory: web::Data<KitchenStaff>,
    body: Deferred<OptionalJson<ActorBody>>,
    how: TakeBack,
) -> Result<HttpResponse, ApiError> {
    caller.require_station(scope.pizzeria_id, scope.station.as_str())?;
    let OptionalJson(body) = body.get()?;
    let tap_id: i64 = service_kit::http::path_param(&req, "tap_id", "must be a tap id")?;
    let actor = acting(&caller, &req, scope.pizzeria_id, &directory, body.named()).await?;
    let mut tx = pool.begin().await.context("cannot start the undo")?;
    let (p, station) = (scope.pizzeria_id, &scope.station);
    let undone = match how {
        TakeBack::Undo => kitchen::undo(&mut tx, &kitchen, p, station, tap_id, Some(&actor)).await,
        TakeBack::Recall => {
            kitchen::recall(&mut tx, &kitchen, p, station, tap_id, Some(&actor)).await
        }
    }?;
    tx.commit().await.context("cannot commit the undo")?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "tap_id": undone.tap.id,
        "product_id": undone.tap.product_id,
        "product_name": undone.product_name,
        "size": undone.size,
        "order_id": undone.tap.order_id,
        "order_number": undone.order_number,
        "station": undone.tap.station,
        "entered_at": undone.tap.started_at,
        "undone_at": undone.undone_at,
        "order_status": undone.order_status.as_str(),
        "repeated": undone.repeated,
    })))
}
