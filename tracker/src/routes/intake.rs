//! Intake over HTTP: the same `OrderPlaced` JSON the order sources publish on the bus. Over the
//! bus the message is trusted as the source's; over HTTP the source shows its key.

use std::{sync::Arc, time::Duration};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    dev::Payload,
    http::{StatusCode, header},
    web,
};
use anyhow::Context;
use contracts::OrderPlaced;
use service_kit::http::{ClientError, Json};
use sqlx::PgPool;

use crate::{
    domain::NewOrder,
    kitchen::{self, Kitchen, KitchenError},
    sources::{SourceKey, SourceKeys},
};

use super::{ApiError, manager::order_detail};

/// The order source calling, by the key in `Authorization: Bearer <key>`: the key from the
/// `[order_sources]` settings, or a 401; a key over its rate limit is a 429 with `Retry-After`
/// before its body is read.
#[derive(Debug, Clone)]
pub struct OrderSourceKey(pub Arc<SourceKey>);

/// Why an intake key was turned away before its request was read.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefused {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the intake key of {order_source} is over its rate limit")]
    RateLimited {
        order_source: String,
        retry_after: Duration,
    },
}

impl ResponseError for KeyRefused {
    fn status_code(&self) -> StatusCode {
        match self {
            KeyRefused::Client(e) => e.status,
            KeyRefused::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            KeyRefused::Client(e) => e.error_response(),
            KeyRefused::RateLimited { retry_after, .. } => {
                let mut response = ClientError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "intake_rate_limited",
                    "this order source key sent more orders than its rate limit (intake_rate) \
                     allows; wait and try again",
                )
                .error_response();
                // Whole seconds, rounded up, and never 0 (which would invite an instant retry).
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(seconds.max(1)),
                );
                response
            }
        }
    }
}

impl FromRequest for OrderSourceKey {
    type Error = KeyRefused;
    type Future = std::future::Ready<Result<Self, KeyRefused>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(sources) = req.app_data::<web::Data<SourceKeys>>() else {
            tracing::error!("the OrderSourceKey extractor needs a web::Data<SourceKeys>");
            return std::future::ready(Err(ClientError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on our side; it has been logged",
            )
            .into()));
        };
        let key = match access::request_token(req) {
            None => Err(ClientError::unauthorized(
                "send Authorization: Bearer <order source key>",
            )),
            Some(key) => sources
                .source_of(&key)
                .ok_or_else(|| ClientError::unauthorized("the order source key is not known")),
        };
        let checked = key.map_err(KeyRefused::from).and_then(|key| {
            key.take()
                .map_err(|retry_after| KeyRefused::RateLimited {
                    order_source: key.source.clone(),
                    retry_after,
                })
                .map(|()| OrderSourceKey(key))
        });
        std::future::ready(checked)
    }
}

/// `POST /api/v1/orders`: 201 with the new order, 200 with the stored one when it was known.
#[tracing::instrument(skip_all, fields(source = %caller.0.source))]
pub async fn post_order(
    caller: OrderSourceKey,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    Json(placed): Json<OrderPlaced>,
) -> Result<HttpResponse, ApiError> {
    if !caller.0.serves(placed.pizzeria_id) {
        return Err(ClientError {
            field: Some("pizzeria_id".into()),
            rule: Some(format!(
                "must be a pizzeria this order source key serves \
                 (order_source_pizzerias.{})",
                caller.0.source
            )),
            ..ClientError::forbidden(format!(
                "this order source key does not serve pizzeria {}: a key places orders only in \
                 the pizzerias configured for its source (order_source_pizzerias.{})",
                placed.pizzeria_id, caller.0.source
            ))
        }
        .into());
    }
    let order = NewOrder::try_from(placed)?;
    let mut tx = pool.begin().await.context("cannot start the intake")?;
    let created = kitchen::accept_order(&mut tx, &kitchen, &order).await?;
    let detail = match order_detail(&mut tx, order.pizzeria_id, order.id).await {
        // Known, but not in this pizzeria: the id is taken, which is a clash (409), not a
        // missing order (404).
        Err(ApiError::Kitchen(KitchenError::NotFound(_))) if !created => {
            return Err(ClientError {
                field: Some("order_id".into()),
                ..ClientError::conflict(
                    "order_id_taken",
                    "another pizzeria already has an order with this order_id",
                )
            }
            .into());
        }
        detail => detail?,
    };
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
