//! `POST /internal/v1/introspect`: the other services ask what a device token is bound to, and
//! forward the end client they saw, recorded as the device's last IP and user agent.

use access::{
    DeviceInfo, DeviceIntrospectionRequest, DeviceIntrospectionResponse, INTROSPECTION_KEY_HEADER,
    has_service_key,
};
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use anyhow::Context;
use service_kit::http::{ClientError, Deferred, Json};
use sqlx::PgPool;

use crate::{config::IntrospectionSettings, db::devices, pairing::Pairing};

use super::ApiError;

pub async fn introspect(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    settings: web::Data<IntrospectionSettings>,
    pairing: web::Data<Pairing>,
    body: Deferred<Json<DeviceIntrospectionRequest>>,
) -> Result<HttpResponse, ApiError> {
    if !has_service_key(&req, &settings.key) {
        return Err(ClientError::unauthorized(format!(
            "send the service key in {INTROSPECTION_KEY_HEADER}"
        ))
        .into());
    }
    let Json(body) = body.get()?;
    let device = if access::is_device_token(&body.token) {
        let client = body.client.as_ref();
        let ip = client.map(|c| truncate(&c.ip, 64));
        let user_agent = client.and_then(|c| c.user_agent.as_deref().map(|ua| truncate(ua, 200)));
        let mut conn = pool.acquire().await.context("no database connection")?;
        devices::touch_live_device(
            &mut conn,
            &access::token_digest(&body.token),
            ip.as_deref(),
            user_agent.as_deref(),
            pairing.tokens.idle_lifetime().as_secs_f64(),
        )
        .await?
    } else {
        None
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(DeviceIntrospectionResponse {
            active: device.is_some(),
            device: device.map(|d| DeviceInfo {
                device_id: d.id,
                pizzeria_id: d.pizzeria_id,
                station: d.station,
                // Only a TV board has a way of showing customers.
                board_mode: (d.kind == access::DeviceKind::OrderBoard.as_str())
                    .then_some(d.board_mode),
                kind: d.kind,
                name: d.name,
                language: d.language,
            }),
        }))
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}
