//! The approver's side: a staff member with `devices.approve` types the user code the device
//! shows, sees who asked, and approves (choosing what the device is) or denies. Every entry of
//! a code counts against the session's and the client IP's budget (RFC 8628 §5.1).

use access::{ClientInfo, Permission, Staff, StaffPrincipal};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use service_kit::http::{ClientError, Deferred, Json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    config::{ApprovalSettings, NetworkSettings},
    db::{authorizations::AuthorizationRow, throttle},
    domain::{Binding, DeviceName, Language, UserCode},
    pairing::{self, AuthorizationView, Choice, DecisionError},
};

use super::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    user_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    user_code: String,
    pizzeria_id: Uuid,
    kind: String,
    name: String,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    station: Option<String>,
    /// The language of the device's screen; left out: the browser's.
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    language: Option<String>,
}

/// 403 unless the caller may approve devices in some pizzeria: before approval a request
/// belongs to no pizzeria yet.
fn require_approver(staff: &StaffPrincipal) -> Result<(), ApiError> {
    if staff.can_somewhere(Permission::DevicesApprove) {
        Ok(())
    } else {
        Err(ClientError::forbidden(format!(
            "you need the {} permission in a pizzeria",
            Permission::DevicesApprove
        ))
        .into())
    }
}

/// Counts one code entry for the session and for the client IP; 429 with `Retry-After` when
/// either is over its budget for the window. Committed on its own, so refused and failed
/// entries count too.
async fn spend_entry(
    pool: &PgPool,
    settings: &ApprovalSettings,
    staff: &StaffPrincipal,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    let mut conn = pool.acquire().await.context("no database connection")?;
    let window = settings.window().as_secs_f64();
    let session_key = format!("session:{}", staff.session_id);
    let ip_key = format!("ip:{}", client.ip);
    let (by_session, session_until) =
        throttle::count_lookup(&mut conn, &session_key, window).await?;
    let (by_ip, ip_until) = throttle::count_lookup(&mut conn, &ip_key, window).await?;
    let until = [
        (by_session > settings.session_max_lookups).then_some(session_until),
        (by_ip > settings.ip_max_lookups).then_some(ip_until),
    ]
    .into_iter()
    .flatten()
    .max();
    match until {
        None => Ok(()),
        Some(until) => {
            tracing::warn!(
                user_id = %staff.user_id, ip = %client.ip, by_session, by_ip,
                "device code entries throttled"
            );
            Err(ApiError::TooManyAttempts {
                retry_after: (until - Utc::now()).to_std().unwrap_or_default(),
            })
        }
    }
}

fn client(req: &HttpRequest, network: &NetworkSettings) -> ClientInfo {
    ClientInfo::of(req, &network.trusted_proxies)
}

/// What the approver sees of a request: the request, and whether it came from the approver's own
/// network.
#[derive(Serialize)]
struct LookupView {
    #[serde(flatten)]
    request: AuthorizationView,
    /// The approver's address as this service sees it (forwarded by the web).
    approver_ip: String,
    /// Whether the device asked from the approver's network (same /24 or /64). When it did not,
    /// the approver may be reading a code someone else sent them (RFC 8628 §5.4).
    same_network: bool,
}

/// A request that was decided belongs to the pizzeria it was approved for, and a denied one to
/// the person who denied it: anyone else is told there is no such request, so approvers of one
/// pizzeria cannot read (or probe) another's. Pending requests belong to no pizzeria yet.
fn visible_to(row: &AuthorizationRow, staff: &StaffPrincipal) -> bool {
    if row.status == "pending" || staff.chain_admin {
        return true;
    }
    match row.pizzeria_id {
        Some(pizzeria_id) => staff.can(pizzeria_id, Permission::DevicesApprove),
        None => row.decided_by == Some(staff.user_id),
    }
}

/// The live request behind `code`, locked, if the caller may see it.
async fn find_visible(
    tx: &mut sqlx::PgConnection,
    code: &UserCode,
    staff: &StaffPrincipal,
) -> Result<AuthorizationRow, ApiError> {
    let row = pairing::find_live(tx, code).await?;
    if visible_to(&row, staff) {
        Ok(row)
    } else {
        Err(DecisionError::NotFound.into())
    }
}

/// `POST /api/v1/device-authorizations/lookup`: what the code belongs to, before deciding.
pub async fn lookup(
    req: HttpRequest,
    staff: Staff,
    pool: web::Data<PgPool>,
    settings: web::Data<ApprovalSettings>,
    network: web::Data<NetworkSettings>,
    body: Deferred<Json<CodeBody>>,
) -> Result<HttpResponse, ApiError> {
    require_approver(&staff)?;
    let Json(body) = body.get()?;
    let code = UserCode::parse(&body.user_code)?;
    let approver = client(&req, &network);
    spend_entry(&pool, &settings, &staff, &approver).await?;
    let mut tx = pool.begin().await.context("cannot start the lookup")?;
    let row = find_visible(&mut tx, &code, &staff).await?;
    tx.commit().await.context("cannot end the lookup")?;
    let same_network = service_kit::client::same_network(&row.ip, &approver.ip);
    Ok(HttpResponse::Ok().json(LookupView {
        request: AuthorizationView::from(row),
        approver_ip: approver.ip,
        same_network,
    }))
}

/// `POST /api/v1/device-authorizations/approve`: the device becomes what the approver chose,
/// in the pizzeria they chose (where they need `devices.approve`).
pub async fn approve(
    req: HttpRequest,
    staff: Staff,
    pool: web::Data<PgPool>,
    settings: web::Data<ApprovalSettings>,
    network: web::Data<NetworkSettings>,
    body: Deferred<Json<ApproveBody>>,
) -> Result<HttpResponse, ApiError> {
    // An approver somewhere before the body is read; in the pizzeria it names right after.
    require_approver(&staff)?;
    let Json(body) = body.get()?;
    staff.require(body.pizzeria_id, Permission::DevicesApprove)?;
    let code = UserCode::parse(&body.user_code)?;
    let choice = Choice {
        pizzeria_id: body.pizzeria_id,
        binding: Binding::parse(&body.kind, body.station.as_deref())?,
        name: DeviceName::parse(&body.name)?,
        language: body.language.as_deref().map(Language::parse).transpose()?,
    };
    spend_entry(&pool, &settings, &staff, &client(&req, &network)).await?;
    let mut tx = pool.begin().await.context("cannot start the approval")?;
    let view = pairing::approve(&mut tx, &code, &choice, &staff).await?;
    tx.commit().await.context("cannot commit the approval")?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /api/v1/device-authorizations/deny`: final; the device is told `access_denied`.
pub async fn deny(
    req: HttpRequest,
    staff: Staff,
    pool: web::Data<PgPool>,
    settings: web::Data<ApprovalSettings>,
    network: web::Data<NetworkSettings>,
    body: Deferred<Json<CodeBody>>,
) -> Result<HttpResponse, ApiError> {
    require_approver(&staff)?;
    let Json(body) = body.get()?;
    let code = UserCode::parse(&body.user_code)?;
    spend_entry(&pool, &settings, &staff, &client(&req, &network)).await?;
    let mut tx = pool.begin().await.context("cannot start the denial")?;
    find_visible(&mut tx, &code, &staff).await?;
    let view = pairing::deny(&mut tx, &code, &staff).await?;
    tx.commit().await.context("cannot commit the denial")?;
    Ok(HttpResponse::Ok().json(view))
}
