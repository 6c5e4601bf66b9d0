//! Managing a pizzeria's devices (`devices.manage` there): list, rename or move, revoke.

use access::{Permission, Staff, StaffVerifier};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use service_kit::http::{Deferred, Json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    db::devices::{self, DeviceRow},
    domain::{BoardMode, DeviceName, Language, StationCode},
    pairing::{self, DeviceChange, Pairing},
};

use super::{ApiError, uuid_param};

/// The pizzeria of the path, after checking the caller may manage its devices.
fn managed_pizzeria(req: &HttpRequest, staff: &Staff) -> Result<Uuid, ApiError> {
    let pizzeria_id = uuid_param(req, "pizzeria_id")?;
    staff.require(pizzeria_id, Permission::DevicesManage)?;
    Ok(pizzeria_id)
}

/// The pizzeria of the path, after checking the caller may see and revoke its devices:
/// `devices.manage`, or `devices.approve`. Whoever may let a device in may also throw a lost
/// or stolen one out at once, without waiting for an office manager.
fn guarded_pizzeria(req: &HttpRequest, staff: &Staff) -> Result<Uuid, ApiError> {
    let pizzeria_id = uuid_param(req, "pizzeria_id")?;
    if !staff.can(pizzeria_id, Permission::DevicesApprove) {
        staff.require(pizzeria_id, Permission::DevicesManage)?;
    }
    Ok(pizzeria_id)
}

#[derive(Serialize)]
struct DeviceList {
    devices: Vec<ListedDevice>,
}

#[derive(Serialize)]
struct ListedDevice {
    #[serde(flatten)]
    device: DeviceRow,
    /// Whether the staff member who approved the device is still active; `null` when auth
    /// could not be asked. A device approved by someone since deactivated deserves a look.
    approver_active: Option<bool>,
}

/// `GET /api/v1/pizzerias/{pizzeria_id}/devices`: newest first, revoked ones included, each
/// flagged when its approver has been deactivated since.
pub async fn list(
    req: HttpRequest,
    staff: Staff,
    pool: web::Data<PgPool>,
    verifier: web::Data<StaffVerifier>,
) -> Result<HttpResponse, ApiError> {
    let pizzeria_id = guarded_pizzeria(&req, &staff)?;
    let mut conn = pool.acquire().await.context("no database connection")?;
    let devices = devices::list_devices(&mut conn, pizzeria_id).await?;
    drop(conn);
    let mut approvers: Vec<Uuid> = devices.iter().map(|d| d.approved_by).collect();
    approvers.sort_unstable();
    approvers.dedup();
    // Asked fresh on every listing rather than followed from events, so a missed event
    // cannot hide a deactivation; the list still answers when auth does not.
    let active = match verifier.users_active(&approvers).await {
        Ok(active) => Some(active),
        Err(e) => {
            tracing::warn!(error = %e, "cannot ask auth whether approvers are active");
            None
        }
    };
    Ok(HttpResponse::Ok().json(DeviceList {
        devices: devices
            .into_iter()
            .map(|device| ListedDevice {
                approver_active: active
                    .as_ref()
                    .map(|a| a.get(&device.approved_by).copied().unwrap_or(false)),
                device,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    station: Option<String>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    language: Option<String>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    board_mode: Option<String>,
}

/// `PATCH /api/v1/pizzerias/{pizzeria_id}/devices/{device_id}`: a new name, station,
/// language and/or (for a TV board) board mode.
pub async fn change(
    req: HttpRequest,
    staff: Staff,
    pool: web::Data<PgPool>,
    pairing: web::Data<Pairing>,
    body: Deferred<Json<ChangeBody>>,
) -> Result<HttpResponse, ApiError> {
    // Rights before the body: whoever may see the pizzeria's devices (`devices.approve` or
    // `devices.manage`) may go on to have it read. How a screen looks (language, board mode)
    // may be set by whoever may let the device in (a shift manager, as at approval);
    // renaming and moving need `devices.manage`.
    let pizzeria_id = guarded_pizzeria(&req, &staff)?;
    let Json(body) = body.get()?;
    if body.name.is_some() || body.station.is_some() {
        managed_pizzeria(&req, &staff)?;
    }
    let device_id = uuid_param(&req, "device_id")?;
    let change = DeviceChange {
        name: body.name.as_deref().map(DeviceName::parse).transpose()?,
        station: body
            .station
            .as_deref()
            .map(StationCode::parse)
            .transpose()?,
        language: body.language.as_deref().map(Language::parse).transpose()?,
        board_mode: body
            .board_mode
            .as_deref()
            .map(BoardMode::parse)
            .transpose()?,
    };
    let mut tx = pool.begin().await.context("cannot start the change")?;
    let device = pairing::change_device(
        &mut tx,
        &pairing,
        pizzeria_id,
        device_id,
        change,
        staff.user_id,
    )
    .await?;
    tx.commit().await.context("cannot commit the change")?;
    Ok(HttpResponse::Ok().json(device))
}

/// `DELETE /api/v1/pizzerias/{pizzeria_id}/devices/{device_id}`: revoke.
pub async fn revoke(
    req: HttpRequest,
    staff: Staff,
    pool: web::Data<PgPool>,
    pairing: web::Data<Pairing>,
) -> Result<HttpResponse, ApiError> {
    let pizzeria_id = guarded_pizzeria(&req, &staff)?;
    let device_id = uuid_param(&req, "device_id")?;
    let mut tx = pool.begin().await.context("cannot start the revocation")?;
    pairing::revoke_device(&mut tx, &pairing, pizzeria_id, device_id, staff.user_id).await?;
    tx.commit().await.context("cannot commit the revocation")?;
    Ok(HttpResponse::NoContent().finish())
}
