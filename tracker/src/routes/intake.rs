//! Intake over HTTP: the same `OrderPlaced` JSON the order sources publish on the bus.

use actix_web::{HttpResponse, web};
use anyhow::Context;
use contracts::OrderPlaced;
use service_kit::http::Json;
use sqlx::PgPool;

use crate::{
    domain::NewOrder,
    kitchen::{self, Kitchen},
};

use super::{ApiError, manager::order_detail};

/// `POST /api/v1/orders`: 201 with the new order, 200 with the stored one when it was known.
// Authentication goes here: the cashier's device token will have to match `pizzeria_id`.
pub async fn post_order(
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    Json(placed): Json<OrderPlaced>,
) -> Result<HttpResponse, ApiError> {
    let order = NewOrder::try_from(placed)?;
    let mut tx = pool.begin().await.context("cannot start the intake")?;
    let created = kitchen::accept_order(&mut tx, &kitchen, &order).await?;
    let detail = order_detail(&mut tx, order.pizzeria_id, order.id).await?;
    tx.commit().await.context("cannot commit the intake")?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((
            actix_web::http::header::LOCATION,
            format!(
                "/api/v1/pizzerias/{}/orders/{}",
                order.pizzeria_id, order.id
            ),
        ))
        .json(detail))
}
