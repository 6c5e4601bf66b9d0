//! Intake over HTTP: the same `OrderPlaced` JSON the order sources publish on the bus. Over the
//! bus the message is trusted as the source's; over HTTP the source shows its key.

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use anyhow::Context;
use contracts::OrderPlaced;
use service_kit::http::{ClientError, Json};
use sqlx::PgPool;

use crate::{
    domain::NewOrder,
    kitchen::{self, Kitchen},
    sources::SourceKeys,
};

use super::{ApiError, manager::order_detail};

/// The order source calling, by the key in `Authorization: Bearer <key>`: its name from the
/// `[order_sources]` settings, or a 401.
#[derive(Debug, Clone)]
pub struct OrderSourceKey {
    pub source: String,
}

impl FromRequest for OrderSourceKey {
    type Error = ClientError;
    type Future = std::future::Ready<Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(sources) = req.app_data::<web::Data<SourceKeys>>() else {
            tracing::error!("the OrderSourceKey extractor needs a web::Data<SourceKeys>");
            return std::future::ready(Err(ClientError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on our side; it has been logged",
            )));
        };
        let source = match access::request_token(req) {
            None => Err(ClientError::unauthorized(
                "send Authorization: Bearer <order source key>",
            )),
            Some(key) => sources
                .source_of(&key)
                .map(|source| OrderSourceKey {
                    source: source.to_owned(),
                })
                .ok_or_else(|| ClientError::unauthorized("the order source key is not known")),
        };
        std::future::ready(source)
    }
}

/// `POST /api/v1/orders`: 201 with the new order, 200 with the stored one when it was known.
#[tracing::instrument(skip_all, fields(source = %caller.source))]
pub async fn post_order(
    caller: OrderSourceKey,
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
