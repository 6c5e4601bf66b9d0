//! Device login on the TV or tablet (RFC 8628): the page shows the user code, the verification
//! URL and a QR code of `verification_uri_complete`; its script polls `/device/poll` at the
//! `interval` the devices service asked for (longer after a `slow_down`), and opens the
//! device's screen once a manager has approved it. An expired or denied code makes way for a
//! fresh one.
//!
//! The device code stays server-side in an HttpOnly cookie; so does the device token after.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use askama::Template;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    config::Settings,
    errors::{PageError, html},
    qr,
    session::{self, Csrf, DEVICE_COOKIE, DeviceViewer, Form, PAIRING_COOKIE, clear_cookie},
    upstream::{Body, Service, UpstreamError},
};

use super::{AppState, client_headers, cookies, see_other, staff::screen_of, with_csrf};

/// A device token lives until it is revoked; the cookie as long as browsers allow (400 days).
const DEVICE_COOKIE_SECONDS: i64 = 400 * 24 * 3600;
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The pending login, kept in [`PAIRING_COOKIE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pairing {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    /// Unix seconds.
    expires_at: i64,
    interval: u64,
}

impl Pairing {
    fn read(req: &HttpRequest) -> Option<Pairing> {
        let raw = session::cookie(req, PAIRING_COOKIE)?;
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn cookie(&self, req: &HttpRequest) -> String {
        let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let age = (self.expires_at - Utc::now().timestamp()).max(0);
        cookies(req).set(PAIRING_COOKIE, &value, Some(age))
    }

    /// Live for a few more seconds at least, so the page does not show a dying code.
    fn is_live(&self) -> bool {
        self.expires_at - Utc::now().timestamp() > 5
    }
}

/// RFC 8628 §3.2.
#[derive(Debug, Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: i64,
    interval: Option<u64>,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    t: &'static crate::i18n::Text,
    csrf: String,
    user_code: String,
    verification_uri: String,
    qr_svg: String,
    expires_at: i64,
    interval: u64,
}

/// `uri` with its scheme and host replaced by `origin` (`http://10.0.0.5:8080`), path and
/// query kept. The devices service knows one address for the activation page, often
/// `127.0.0.1` in a kitchen's own setup, which a tablet cannot open; the address the device
/// itself used to reach us is one the staff's computer on the same network can open too.
fn at_origin(uri: &str, origin: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, after)| {
        after.find('/').map_or("", |i| &after[i..])
    });
    format!("{}{rest}", origin.trim_end_matches('/'))
}

/// The origin the browser used: the configured public origin, else the request's own.
fn origin_of(req: &HttpRequest, settings: &Settings) -> String {
    if !settings.screens.public_origin.is_empty() {
        return settings.screens.public_origin.clone();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// `GET /device`
pub async fn device_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    if session::cookie(&req, DEVICE_COOKIE).is_some()
        && let Ok(device) = <DeviceViewer as actix_web::FromRequest>::extract(&req).await
    {
        return Ok(see_other(screen_of(device.device.kind)));
    }
    let pairing = match Pairing::read(&req).filter(Pairing::is_live) {
        Some(pairing) => pairing,
        None => {
            let codes: DeviceAuthorization = state
                .upstream
                .call_with(
                    Service::Devices,
                    Method::POST,
                    "/oauth/device_authorization",
                    None,
                    Body::Form(&[("client_id", settings.screens.client_id.as_str())]),
                    &client_headers(&req),
                )
                .await?;
            Pairing {
                verification_uri_complete: codes
                    .verification_uri_complete
                    .unwrap_or_else(|| codes.verification_uri.clone()),
                device_code: codes.device_code,
                user_code: codes.user_code,
                verification_uri: codes.verification_uri,
                expires_at: Utc::now().timestamp() + codes.expires_in,
                interval: codes.interval.unwrap_or(5).max(1),
            }
        }
    };
    let origin = origin_of(&req, &settings);
    let page = DevicePage {
        t: crate::i18n::text(),
        csrf: csrf.token.clone(),
        qr_svg: qr::svg(&at_origin(&pairing.verification_uri_complete, &origin))?,
        user_code: pairing.user_code.clone(),
        verification_uri: at_origin(&pairing.verification_uri, &origin),
        expires_at: pairing.expires_at,
        interval: pairing.interval,
    };
    let mut response = with_csrf(html(&page)?, &csrf);
    if let Ok(value) = header::HeaderValue::from_str(&pairing.cookie(&req)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct IssuedDevice {
    access_token: String,
    kind: String,
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

/// `POST /device/poll` (the page script, with the CSRF header): one poll of the token endpoint.
/// Answers `{"status": "pending" | "slow_down" | "approved" | "denied" | "expired",
/// "interval", "location"}`.
pub async fn poll(
    req: HttpRequest,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    let Some(mut pairing) = Pairing::read(&req) else {
        return Ok(HttpResponse::Ok().json(json!({ "status": "expired" })));
    };
    let answer: Result<IssuedDevice, _> = state
        .upstream
        .call_with(
            Service::Devices,
            Method::POST,
            "/oauth/token",
            None,
            Body::Form(&[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", pairing.device_code.as_str()),
                ("client_id", settings.screens.client_id.as_str()),
            ]),
            &client_headers(&req),
        )
        .await;
    let cookies = cookies(&req);
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    let body = match answer {
        Ok(issued) => {
            let location = access::DeviceKind::parse(&issued.kind).map_or("/", screen_of);
            response.append_header((
                header::SET_COOKIE,
                cookies.set(
                    DEVICE_COOKIE,
                    &issued.access_token,
                    Some(DEVICE_COOKIE_SECONDS),
                ),
            ));
            response.append_header((header::SET_COOKIE, clear_cookie(PAIRING_COOKIE)));
            json!({ "status": "approved", "location": location })
        }
        Err(UpstreamError::Refused { code, .. }) => match code.as_str() {
            "authorization_pending" => json!({ "status": "pending", "interval": pairing.interval }),
            "slow_down" => {
                // RFC 8628 §3.5: every later poll waits 5 s longer.
                pairing.interval += 5;
                response.append_header((header::SET_COOKIE, pairing.cookie(&req)));
                json!({ "status": "slow_down", "interval": pairing.interval })
            }
            "access_denied" => {
                response.append_header((header::SET_COOKIE, clear_cookie(PAIRING_COOKIE)));
                json!({ "status": "denied" })
            }
            _ => {
                // expired_token, invalid_grant: start over with a fresh code.
                response.append_header((header::SET_COOKIE, clear_cookie(PAIRING_COOKIE)));
                json!({ "status": "expired" })
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot poll for the device token");
            return Ok(HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unreachable", "interval": pairing.interval })));
        }
    };
    Ok(response.json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_activation_link_uses_the_address_the_device_used() {
        assert_eq!(
            at_origin(
                "http://127.0.0.1:8080/activate?user_code=BCDF-GHJK",
                "http://10.0.0.5:8080"
            ),
            "http://10.0.0.5:8080/activate?user_code=BCDF-GHJK"
        );
        assert_eq!(
            at_origin("http://127.0.0.1:8080", "https://kitchen.example/"),
            "https://kitchen.example"
        );
    }
}
