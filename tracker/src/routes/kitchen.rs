//! The station tablets: the queue they poll, tap and undo. Each station's own tablet may, and
//! staff with `kitchen.work` in the pizzeria (`Caller::require_station`).

use access::Caller;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    db::{pizzerias, products},
    kitchen::{self, Kitchen, KitchenError},
    versions::VersionKey,
};

use super::{
    ActorBody, ApiError, OptionalJson, StationScope, actor_of, current_version, if_none_match,
    not_modified, uuid_param, weak_etag,
};

#[derive(Debug, Serialize)]
struct QueueEntry {
    product_id: Uuid,
    order_id: Uuid,
    order_number: i32,
    product_name: String,
    size: Option<String>,
    modifiers: Vec<String>,
    entered_at: DateTime<Utc>,
    seconds_waiting: i64,
    target_seconds: i32,
    /// Above 1 for a remade product.
    pass: i32,
    late: bool,
}

/// `GET .../stations/{station}/queue`. Tablets poll this every few seconds; a poll whose
/// `If-None-Match` is current is answered from the in-memory version map without touching the
/// database (`crate::versions`), or with one primary-key lookup while the map cannot answer.
pub async fn station_queue(
    caller: Caller,
    req: HttpRequest,
    scope: StationScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
) -> Result<HttpResponse, ApiError> {
    caller.require_station(scope.pizzeria_id, scope.station.as_str())?;
    // The version is read before the queue: if a change lands in between, the body is newer
    // than its tag and the next poll fetches again, which is harmless. The other order could
    // pin a tablet on a stale body behind a current tag.
    let version = current_version(
        &kitchen.versions,
        VersionKey::station(scope.pizzeria_id, scope.station.as_str()),
        pizzerias::station_queue_version(&**pool, scope.pizzeria_id, scope.station.as_str()),
    )
    .await?
    .ok_or(KitchenError::NotFound("station"))?;
    let etag = weak_etag("q", version);
    if if_none_match(&req, &etag) {
        return Ok(not_modified(&etag));
    }
    let rows = products::station_queue(&**pool, scope.pizzeria_id, scope.station.as_str()).await?;
    let generated_at = Utc::now();
    let entries: Vec<QueueEntry> = rows
        .into_iter()
        .map(|r| QueueEntry {
            seconds_waiting: (generated_at - r.entered_at).num_seconds().max(0),
            product_id: r.product_id,
            order_id: r.order_id,
            order_number: r.number,
            product_name: r.name,
            size: r.size,
            modifiers: r.modifiers,
            entered_at: r.entered_at,
            target_seconds: r.target_seconds,
            pass: r.pass,
            late: r.late,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(serde_json::json!({
            "pizzeria_id": scope.pizzeria_id,
            "station": scope.station.as_str(),
            "version": version,
            "generated_at": generated_at,
            "products": entries,
        })))
}

/// `POST .../stations/{station}/products/{product_id}/tap` with optional `{"actor"}`; without
/// one, the tap is the caller's (the tablet's name or the staff member's).
pub async fn tap(
    caller: Caller,
    req: HttpRequest,
    scope: StationScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    OptionalJson(body): OptionalJson<ActorBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require_station(scope.pizzeria_id, scope.station.as_str())?;
    let product_id = uuid_param(&req, "product_id")?;
    let actor = actor_of(&caller, body.actor.as_deref())?;
    let mut tx = pool.begin().await.context("cannot start the tap")?;
    let record = kitchen::tap(
        &mut tx,
        &kitchen,
        scope.pizzeria_id,
        &scope.station,
        product_id,
        Some(&actor),
    )
    .await?;
    tx.commit().await.context("cannot commit the tap")?;
    let tap = &record.tap;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "product_id": tap.product_id,
        "order_id": tap.order_id,
        "station": tap.station,
        "stage": tap.stage,
        "pass": tap.pass,
        "started_at": tap.started_at,
        "completed_at": tap.completed_at,
        "duration_ms": tap.duration_ms,
        "target_seconds": tap.target_seconds,
        "actor": tap.actor,
        "next_station": record.next_station,
        "order_status": record.order_status.as_str(),
        "repeated": record.repeated,
    })))
}

/// `POST .../stations/{station}/undo` with optional `{"actor"}` (else the caller).
pub async fn undo(
    caller: Caller,
    scope: StationScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    OptionalJson(body): OptionalJson<ActorBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require_station(scope.pizzeria_id, scope.station.as_str())?;
    let actor = actor_of(&caller, body.actor.as_deref())?;
    let mut tx = pool.begin().await.context("cannot start the undo")?;
    let undone = kitchen::undo(
        &mut tx,
        &kitchen,
        scope.pizzeria_id,
        &scope.station,
        Some(&actor),
    )
    .await?;
    tx.commit().await.context("cannot commit the undo")?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "product_id": undone.tap.product_id,
        "order_id": undone.tap.order_id,
        "station": undone.tap.station,
        "entered_at": undone.tap.started_at,
        "undone_at": undone.undone_at,
        "order_status": undone.order_status.as_str(),
    })))
}
