//! Every page and what the page script calls. One module per screen:
//!
//! | path | who | what |
//! |---|---|---|
//! | `/login`, `/logout`, `/` | anyone, staff | sign in and out; the start page |
//! | `/language` | staff | the language of their screens (kept by auth) |
//! | `/device`, `/device/poll` | a device | the login code (RFC 8628) until a manager approves it |
//! | `/activate`, `/p/{p}/devices/...` | staff | approve or deny a code; rename, move, revoke devices |
//! | `/station...` | station tablet | the cards, tap, undo, check in, hand over at packing |
//! | `/board...` | TV board | preparing and ready |
//! | `/p/{p}/orders...`, `/p/{p}/performance`, `/p/{p}/motivation` | staff | the shift manager |
//! | `/events` | device or staff | server-sent "something changed" messages |
//! | `/ops...` | chain admins, on call | the operations section: dead letters, the bus, the services' HTTP figures |

mod activate;
mod board;
mod device;
mod events;
mod manager;
mod motivation;
mod ops;
mod ops_bus;
mod ops_metrics;
mod ops_paths;
mod ops_services;
mod staff;
mod station;

use access::ClientInfo;
use actix_web::{
    HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
    middleware::Next,
    web,
};
use service_kit::{client::TrustedProxies, shutdown::Shutdown};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    config::Settings, errors::PageError, push::Push, session::Cookies, upstream::Upstream,
};

/// What every handler shares.
pub struct AppState {
    pub upstream: Upstream,
    pub push: Push,
    pub shutdown: Shutdown,
}

impl AppState {
    pub fn new(settings: &Settings, push: Push, shutdown: Shutdown) -> anyhow::Result<Self> {
        Ok(AppState {
            upstream: Upstream::new(&settings.upstream)?.with_management(&settings.operations),
            push,
            shutdown,
        })
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(staff::start))
        .route("/login", web::get().to(staff::login_page))
        .route("/login", web::post().to(staff::login))
        .route("/logout", web::post().to(staff::logout))
        .route("/open", web::get().to(staff::open))
        .route("/language", web::post().to(staff::set_language))
        .route("/device", web::get().to(device::device_page))
        .route("/device/poll", web::post().to(device::poll))
        .route("/activate", web::get().to(activate::activate_page))
        .route("/activate/approve", web::post().to(activate::approve))
        .route("/activate/deny", web::post().to(activate::deny))
        .route(
            "/p/{pizzeria_id}/devices/{device_id}/rename",
            web::post().to(activate::rename),
        )
        .route(
            "/p/{pizzeria_id}/devices/{device_id}/move",
            web::post().to(activate::move_station),
        )
        .route(
            "/p/{pizzeria_id}/devices/{device_id}/screen",
            web::post().to(activate::screen),
        )
        .route(
            "/p/{pizzeria_id}/devices/{device_id}/revoke",
            web::post().to(activate::revoke),
        )
        .route("/station", web::get().to(station::station_page))
        .route("/station/live", web::get().to(station::station_live))
        .route("/station/tap/{product_id}", web::post().to(station::tap))
        .route("/station/undo/{tap_id}", web::post().to(station::undo))
        .route("/station/recall/{tap_id}", web::post().to(station::recall))
        .route(
            "/station/hand-over/{order_id}",
            web::post().to(station::hand_over),
        )
        .route("/station/checkin", web::get().to(station::checkin_page))
        .route("/station/checkin", web::post().to(station::checkin))
        .route("/station/checkout", web::post().to(station::checkout))
        .route("/board", web::get().to(board::board_page))
        .route("/board/live", web::get().to(board::board_live))
        .route("/motivation", web::get().to(motivation::device_motivation))
        .route(
            "/p/{pizzeria_id}/orders",
            web::get().to(manager::orders_page),
        )
        .route(
            "/p/{pizzeria_id}/orders/live",
            web::get().to(manager::orders_live),
        )
        .route(
            "/p/{pizzeria_id}/orders/{order_id}",
            web::get().to(manager::order_page),
        )
        .route(
            "/p/{pizzeria_id}/orders/{order_id}/cancel",
            web::post().to(manager::cancel),
        )
        .route(
            "/p/{pizzeria_id}/orders/{order_id}/hand-over",
            web::post().to(manager::hand_over),
        )
        .route(
            "/p/{pizzeria_id}/orders/{order_id}/rush",
            web::post().to(manager::rush),
        )
        .route(
            "/p/{pizzeria_id}/orders/{order_id}/products/{product_id}/remake",
            web::post().to(manager::remake),
        )
        .route(
            "/p/{pizzeria_id}/performance",
            web::get().to(manager::performance_page),
        )
        .route(
            "/p/{pizzeria_id}/motivation",
            web::get().to(motivation::staff_motivation),
        )
        .route("/ops", web::get().to(ops::ops_start))
        .route("/ops/dead-letters", web::get().to(ops::dead_letters_page))
        .route("/ops/bus", web::get().to(ops_bus::bus_page))
        .route("/ops/services", web::get().to(ops_services::services_page))
        .route("/ops/dead-letters/{queue}/act", web::post().to(ops::act))
        .route(
            "/ops/dead-letters/{queue}/{key}",
            web::get().to(ops::dead_letter_page),
        )
        .route("/events", web::get().to(events::events))
        .route("/static/app.css", web::get().to(stylesheet))
        .route("/static/app.js", web::get().to(script))
        .route("/favicon.ico", web::get().to(favicon));
}

/// Whether the browser reached us over TLS: the configured public origin is `https://`, or a
/// trusted proxy (which terminated TLS) says so in `X-Forwarded-Proto`. The header from anyone
/// else is ignored; the web itself speaks plain HTTP.
fn served_over_tls(req: &HttpRequest, settings: &Settings) -> bool {
    if settings.screens.public_origin.starts_with("https://") {
        return true;
    }
    let from_proxy = req
        .peer_addr()
        .is_some_and(|peer| settings.network.trusted_proxies.trusts(peer.ip()));
    from_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Headers every answer carries: no framing, no inline script, no referrer leaks, and HSTS
/// when served over TLS.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let hsts = req
        .app_data::<web::Data<Settings>>()
        .filter(|settings| settings.network.hsts_max_age_seconds > 0)
        .filter(|settings| served_over_tls(req.request(), settings))
        .and_then(|settings| {
            HeaderValue::from_str(&format!(
                "max-age={}",
                settings.network.hsts_max_age_seconds
            ))
            .ok()
        });
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    if let Some(hsts) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

pub async fn unknown_page() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound("page".into()))
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(include_str!("../../static/app.css"))
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(include_str!("../../static/app.js"))
}

/// Browsers ask for `/favicon.ico` on every site; an SVG answers it (every browser we support
/// reads an SVG icon whatever the path says).
async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "max-age=86400"))
        .body(include_str!("../../static/favicon.svg"))
}

/// A fragment for the page script: 304 when the browser already has exactly this HTML.
pub fn live_fragment(req: &HttpRequest, html: String) -> HttpResponse {
    let digest = Sha256::digest(html.as_bytes());
    let etag = format!(
        "W/\"{}\"",
        digest[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if matches {
        response.finish()
    } else {
        response.content_type("text/html; charset=utf-8").body(html)
    }
}

/// The browser's own address and user agent, for the service behind us to see who really
/// asked: the devices service shows them to the approver and keys its code-entry budget on the
/// address; auth keys sign-in throttling and its audit log on it. The address is the client
/// behind the web's own trusted proxies (a TLS proxy in front of it), so behind one every
/// browser is still told apart; auth and devices believe it because the web is among their
/// `network.trusted_proxies`.
pub fn client_headers(req: &HttpRequest) -> Vec<(&'static str, String)> {
    let client = ClientInfo::of(req, &trusted_proxies(req));
    let mut headers = vec![("x-forwarded-for", client.ip)];
    if let Some(agent) = client.user_agent {
        headers.push(("user-agent", agent));
    }
    headers
}

/// The proxies in front of the web, from its settings (none when the app has no settings).
pub fn trusted_proxies(req: &HttpRequest) -> TrustedProxies {
    req.app_data::<web::Data<Settings>>()
        .map(|s| s.network.trusted_proxies.clone())
        .unwrap_or_default()
}

/// Where to go after signing in: `next` if it is a page of this site, else `/`. It is parsed as
/// a browser would parse it (WHATWG URL rules, relative to this site) and must keep our origin;
/// only its path, query and fragment are kept. A prefix check is not enough: browsers drop tabs
/// and newlines from URLs, so `/\t/evil.example` is `//evil.example`, another site.
pub fn safe_next(next: Option<&str>) -> String {
    let Ok(base) = url::Url::parse("https://this-site.invalid/") else {
        return "/".to_owned();
    };
    match next.map(|n| base.join(n)) {
        Some(Ok(target)) if target.origin() == base.origin() => {
            target[url::Position::BeforePath..].to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A redirect after a form (303, so the browser GETs the target).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Adds the CSRF cookie to a page when it is new.
pub fn with_csrf(mut response: HttpResponse, csrf: &crate::session::Csrf) -> HttpResponse {
    if let Some(cookie) = &csrf.set_cookie
        && let Ok(value) = HeaderValue::from_str(cookie)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether the page script sent this request (it wants JSON back, not a redirect).
pub fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The pizzeria of the path, or a friendly 404.
pub fn pizzeria_param(req: &HttpRequest) -> Result<Uuid, PageError> {
    uuid_param(req, "pizzeria_id")
}

pub fn uuid_param(req: &HttpRequest, name: &str) -> Result<Uuid, PageError> {
    req.match_info()
        .get(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| PageError::NotFound(name.into()))
}

/// The cookie settings, for handlers that set cookies.
pub fn cookies(req: &HttpRequest) -> Cookies {
    req.app_data::<web::Data<Cookies>>()
        .map_or(Cookies { secure: true }, |c| c.get_ref().clone())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/p/1/orders?status=packed")),
            "/p/1/orders?status=packed"
        );
        for evil in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " //evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_next(None), "/");
        // What stays is a path of this site, however it was written.
        assert_eq!(safe_next(Some("/a/../b?x=1#top")), "/b?x=1#top");
    }
}
