//! Signing in and out, and the start page that sends everyone to their screen.

use access::{DeviceKind, Permission, StaffPrincipal};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, http::header, web};
use askama::Template;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    errors::{PageError, html},
    i18n::{self, Lang, Text},
    session::{
        self, ACTOR_COOKIE, Csrf, DEVICE_COOKIE, Form, STAFF_COOKIE, StaffViewer, clear_cookie,
    },
    upstream::{Body, Service, UpstreamError},
};

use super::{AppState, client_headers, cookies, safe_next, see_other, with_csrf};

/// The manager pages' header: which pizzeria, who is signed in, the sign-out form's token.
pub struct Nav {
    pub pizzeria_id: Uuid,
    pub who: String,
    pub csrf: String,
    /// `orders`, `performance`, `motivation` or `devices`: the highlighted tab.
    pub section: &'static str,
    /// (code, name in itself) of every language, for the switch.
    pub languages: Vec<(&'static str, &'static str)>,
    /// Whether to link the operations section (chain admins, on call).
    pub operations: bool,
}

impl Nav {
    pub fn new(
        viewer: &StaffViewer,
        pizzeria_id: Uuid,
        csrf: &Csrf,
        section: &'static str,
    ) -> Self {
        Nav {
            pizzeria_id,
            who: viewer.principal.display_name.clone(),
            csrf: csrf.token.clone(),
            section,
            languages: Lang::ALL.iter().map(|l| (l.code(), l.autonym())).collect(),
            operations: viewer.principal.can_chain_wide(Permission::OperationsRead),
        }
    }
}

/// The pizzerias a staff member has a role in, first grant first.
pub fn pizzerias_of(principal: &StaffPrincipal) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = Vec::new();
    for grant in &principal.grants {
        if !ids.contains(&grant.pizzeria_id) {
            ids.push(grant.pizzeria_id);
        }
    }
    ids
}

/// Where a device's interface lives.
pub fn screen_of(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::KitchenStation => "/station",
        DeviceKind::OrderBoard => "/board",
        DeviceKind::MotivationBoard => "/motivation",
        DeviceKind::ShiftManagerScreen => "/login",
    }
}

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage {
    t: &'static Text,
    who: String,
    csrf: String,
    /// The pizzerias whose order pages this person may open.
    pizzerias: Vec<Uuid>,
    /// Works somewhere, but nothing on this website is for them (kitchen staff, cashiers).
    kitchen_only: bool,
    chain_admin: bool,
    /// Links the operations section (chain admins, on call).
    operations: bool,
}

impl StartPage {
    fn hello(&self) -> String {
        i18n::fill(self.t.hello, &[("name", &self.who)])
    }

    fn pizzeria_label(&self, id: &Uuid) -> String {
        i18n::fill(self.t.pizzeria_n, &[("id", id)])
    }
}

/// `GET /`: a paired device goes to its screen; staff to their pizzeria; anyone else signs in.
pub async fn start(req: HttpRequest, csrf: Csrf) -> Result<HttpResponse, PageError> {
    if session::cookie(&req, DEVICE_COOKIE).is_some() {
        let device = session::DeviceViewer::extract(&req).await;
        if let Ok(device) = device {
            return Ok(see_other(screen_of(device.device.kind)));
        }
    }
    if session::cookie(&req, STAFF_COOKIE).is_none() {
        return Ok(see_other("/login"));
    }
    let viewer = StaffViewer::extract(&req).await?;
    let everywhere = pizzerias_of(&viewer.principal);
    // Only the pizzerias whose orders they may read: sending kitchen staff to an order page
    // they may not see was a dead end.
    let pizzerias: Vec<Uuid> = everywhere
        .iter()
        .copied()
        .filter(|p| viewer.principal.can(*p, access::Permission::OrdersRead))
        .collect();
    if let [only] = pizzerias.as_slice()
        && !viewer.principal.chain_admin
    {
        return Ok(see_other(&format!("/p/{only}/orders")));
    }
    let page = StartPage {
        t: i18n::text(),
        who: viewer.principal.display_name.clone(),
        csrf: csrf.token.clone(),
        kitchen_only: pizzerias.is_empty() && !everywhere.is_empty(),
        pizzerias,
        chain_admin: viewer.principal.chain_admin,
        operations: viewer.principal.can_chain_wide(Permission::OperationsRead),
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

use actix_web::FromRequest;

#[derive(Debug, Deserialize)]
pub struct OpenQuery {
    pizzeria: Option<String>,
}

/// `GET /open?pizzeria=<id>`: a chain admin opens any pizzeria by id.
pub async fn open(query: web::Query<OpenQuery>) -> Result<HttpResponse, PageError> {
    let id: Uuid = query
        .pizzeria
        .as_deref()
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| PageError::NotFound("pizzeria".into()))?;
    Ok(see_other(&format!("/p/{id}/orders")))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: &'static Text,
    csrf: String,
    next: String,
    login: String,
    problem: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`
pub async fn login_page(
    csrf: Csrf,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let page = LoginPage {
        t: i18n::text(),
        csrf: csrf.token.clone(),
        next: safe_next(query.next.as_deref()),
        login: String::new(),
        problem: None,
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Issued {
    token: String,
}

/// `POST /login`: auth's session token goes into our HttpOnly cookie; a fresh CSRF token with it.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    csrf: Csrf,
    Form(form): Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let body = json!({ "login": form.login.trim(), "password": form.password });
    let answer: Result<Issued, _> = state
        .upstream
        .call_with(
            Service::Auth,
            Method::POST,
            "/api/v1/sessions",
            None,
            Body::Json(&body),
            &client_headers(&req),
        )
        .await;
    let problem = match answer {
        Ok(issued) => {
            let cookies = cookies(&req);
            let fresh = Csrf::fresh(&cookies)?;
            let mut response = see_other(&safe_next(form.next.as_deref()));
            for cookie in [
                cookies.set(STAFF_COOKIE, &issued.token, None),
                fresh.set_cookie.unwrap_or_default(),
            ] {
                if let Ok(value) = header::HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            return Ok(response);
        }
        Err(UpstreamError::Refused { status, .. }) if status == StatusCode::TOO_MANY_REQUESTS => {
            i18n::text().login_throttled
        }
        Err(UpstreamError::Refused { status, .. }) if status.is_client_error() => {
            i18n::text().login_wrong
        }
        Err(other) => return Err(other.into()),
    };
    let page = LoginPage {
        t: i18n::text(),
        csrf: csrf.token.clone(),
        next: safe_next(form.next.as_deref()),
        login: form.login,
        problem: Some(problem),
    };
    let mut response = html(&page)?;
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    Ok(with_csrf(response, &csrf))
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

/// `POST /logout`: ends the session at auth (if it still lives) and forgets the cookie.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    Form(_): Form<Empty>,
) -> Result<HttpResponse, PageError> {
    if let Some(token) = session::cookie(&req, STAFF_COOKIE) {
        let ended: Result<serde_json::Value, _> = state
            .upstream
            .call(
                Service::Auth,
                Method::DELETE,
                "/api/v1/sessions/current",
                Some(&token),
                Body::Empty,
            )
            .await;
        match ended {
            Ok(_) => {}
            Err(UpstreamError::Refused { status, .. }) if status == StatusCode::UNAUTHORIZED => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut response = see_other("/login");
    for name in [STAFF_COOKIE, ACTOR_COOKIE] {
        if let Ok(value) = header::HeaderValue::from_str(&clear_cookie(name)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct LanguageForm {
    language: String,
}

/// `POST /language`: the signed-in person's language, kept by auth for every computer they
/// use. Back to the page they were on (its `Referer`, if it is ours).
pub async fn set_language(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    verifier: web::Data<access::StaffVerifier>,
    Form(form): Form<LanguageForm>,
) -> Result<HttpResponse, PageError> {
    let language =
        Lang::parse(&form.language).ok_or_else(|| PageError::NotFound("language".into()))?;
    let _: serde_json::Value = state
        .upstream
        .call(
            Service::Auth,
            Method::PUT,
            "/api/v1/me/language",
            Some(&viewer.token),
            Body::Json(&json!({ "language": language.code() })),
        )
        .await?;
    // This instance's cached answer for the person still has the old language; other web
    // instances see the new one when their cached answer ends (`cache_ttl_ms`).
    verifier.invalidate_user(viewer.principal.user_id);
    let back = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u[url::Position::BeforePath..].to_owned());
    Ok(see_other(&safe_next(back.as_deref())))
}

/// 403 page unless the viewer may do `permission` in `pizzeria_id`.
pub fn require(
    viewer: &StaffViewer,
    pizzeria_id: Uuid,
    permission: Permission,
) -> Result<(), PageError> {
    if viewer.principal.can(pizzeria_id, permission) {
        Ok(())
    } else {
        Err(PageError::Forbidden(format!("needs {permission}")))
    }
}
