//! The TV board in the dining room: who is being cooked for, and whose order is ready. Read by
//! the pizzeria's order-board devices and by staff with `orders.read` there.

use access::Caller;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use service_kit::hot::HotConnections;
use uuid::Uuid;

use crate::{
    db::{orders, pizzerias},
    domain::OrderStatus,
    kitchen::{Kitchen, KitchenError},
    versions::VersionKey,
};

use super::{ApiError, PizzeriaScope, current_version, if_none_match, not_modified, weak_etag};

#[derive(Debug, Serialize)]
struct BoardEntry {
    order_id: Uuid,
    number: i32,
    /// Absent when the customer asked to be shown by number only.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    late: bool,
    /// When the order was packed, for a board that lets ready orders leave after a while;
    /// absent while it is being prepared.
    #[serde(skip_serializing_if = "Option::is_none")]
    packed_at: Option<DateTime<Utc>>,
}

/// `GET .../board`: `preparing` (accepted or in work) and `ready` (packed), oldest first.
/// ETag-able like the station queues, and an unchanged poll is answered from memory the same
/// way.
pub async fn board(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    hot: web::Data<HotConnections>,
    kitchen: web::Data<Kitchen>,
) -> Result<HttpResponse, ApiError> {
    caller.require_board(scope.pizzeria_id)?;
    let version = current_version(
        &kitchen.versions,
        VersionKey::Board(scope.pizzeria_id),
        hot.run(async |conn| pizzerias::board_version(conn, scope.pizzeria_id).await),
    )
    .await?
    .ok_or(KitchenError::NotFound("pizzeria"))?;
    let etag = weak_etag("b", version);
    if if_none_match(&req, &etag) {
        return Ok(not_modified(&etag));
    }
    let mut preparing = Vec::new();
    let mut ready = Vec::new();
    let rows = hot
        .run(async |conn| orders::board_orders(conn, scope.pizzeria_id).await)
        .await?;
    for row in rows {
        let ready_list = match OrderStatus::parse(&row.status) {
            Some(OrderStatus::Packed) => true,
            Some(OrderStatus::Accepted | OrderStatus::InWork) => false,
            _ => continue,
        };
        let entry = BoardEntry {
            order_id: row.id,
            number: row.number,
            name: (!row.show_number_only).then_some(row.customer_name),
            late: row.late,
            // Set while packed only: a remake takes an order back into work and clears it.
            packed_at: row.packed_at,
        };
        if ready_list {
            ready.push(entry);
        } else {
            preparing.push(entry);
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(serde_json::json!({
            "pizzeria_id": scope.pizzeria_id,
            "version": version,
            "generated_at": Utc::now(),
            "preparing": preparing,
            "ready": ready,
        })))
}
