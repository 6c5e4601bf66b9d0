//! The TV board in the dining room: who is being cooked for, and whose order is ready. Read by
//! the pizzeria's order-board devices and by staff with `orders.read` there.

use access::Caller;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use chrono::Utc;
use serde::Serialize;
use sqlx::PgPool;

use crate::{
    db::{orders, pizzerias},
    domain::OrderStatus,
    kitchen::KitchenError,
};

use super::{ApiError, PizzeriaScope, if_none_match, not_modified, weak_etag};

#[derive(Debug, Serialize)]
struct BoardEntry {
    number: i32,
    /// Absent when the customer asked to be shown by number only.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    late: bool,
}

/// `GET .../board`: `preparing` (accepted or in work) and `ready` (packed), oldest first.
/// ETag-able like the station queues.
pub async fn board(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, ApiError> {
    caller.require_board(scope.pizzeria_id)?;
    let version = pizzerias::board_version(&**pool, scope.pizzeria_id)
        .await?
        .ok_or(KitchenError::NotFound("pizzeria"))?;
    let etag = weak_etag("b", version);
    if if_none_match(&req, &etag) {
        return Ok(not_modified(&etag));
    }
    let mut preparing = Vec::new();
    let mut ready = Vec::new();
    for row in orders::board_orders(&**pool, scope.pizzeria_id).await? {
        let entry = BoardEntry {
            number: row.number,
            name: (!row.show_number_only).then_some(row.customer_name),
            late: row.late,
        };
        match OrderStatus::parse(&row.status) {
            Some(OrderStatus::Packed) => ready.push(entry),
            Some(OrderStatus::Accepted | OrderStatus::InWork) => preparing.push(entry),
            _ => {}
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
