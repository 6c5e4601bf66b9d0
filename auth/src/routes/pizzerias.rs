//! Who works in a pizzeria. Auth keeps no pizzerias of its own making: it learns of them from the
//! tracker's announcements (`crate::pizzerias`), so there is no `PUT` here.

use access::{DeviceKind, Role};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use service_kit::http::{ClientError, Deferred, Query};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::users;

use super::{ApiError, StaffOrDevice, uuid_param};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffQuery {
    role: Option<String>,
}

#[derive(Serialize)]
struct StaffMember {
    id: Uuid,
    display_name: String,
    roles: Vec<String>,
}

/// Who may list a pizzeria's staff: anyone who works there, and its station tablets and
/// motivation boards, which see only the kitchen staff (the names to check in with).
fn may_list_staff(
    caller: &access::Caller,
    pizzeria_id: Uuid,
    role: Option<Role>,
) -> Result<(), ClientError> {
    match caller {
        access::Caller::Staff(staff) if staff.works_in(pizzeria_id) => Ok(()),
        access::Caller::Staff(_) => Err(ClientError::forbidden("you do not work in this pizzeria")),
        access::Caller::Device(device)
            if !KITCHEN_DEVICES
                .into_iter()
                .any(|kind| device.is_kind(pizzeria_id, kind)) =>
        {
            Err(ClientError::forbidden(
                "this device is not a station tablet or motivation board of this pizzeria",
            ))
        }
        access::Caller::Device(_) if role != Some(Role::KitchenStaff) => Err(
            ClientError::forbidden("a device may list the kitchen staff only (role=kitchen_staff)"),
        ),
        access::Caller::Device(_) => Ok(()),
    }
}

/// The devices that show who works in the kitchen.
const KITCHEN_DEVICES: [DeviceKind; 2] = [DeviceKind::KitchenStation, DeviceKind::MotivationBoard];

/// `GET /api/v1/pizzerias/{pizzeria_id}/staff?role=kitchen_staff`: the pizzeria's active staff
/// (ids and display names, for the kitchen screens), for anyone who works there; the kitchen
/// staff also for the pizzeria's station tablets and motivation boards.
pub async fn staff(
    req: HttpRequest,
    StaffOrDevice(caller): StaffOrDevice,
    pool: web::Data<PgPool>,
    query: Deferred<Query<StaffQuery>>,
) -> Result<HttpResponse, ApiError> {
    let pizzeria_id = uuid_param(&req, "pizzeria_id")?;
    let role = query.get().and_then(|Query(query)| {
        query
            .role
            .as_deref()
            .map(|r| {
                Role::parse(r).ok_or_else(|| {
                    let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                    ClientError::malformed("role", format!("must be one of {}", names.join(", ")))
                })
            })
            .transpose()
    });
    // The caller's rights before the query: a stranger hears 403, not a word about `role`.
    may_list_staff(&caller, pizzeria_id, role.as_ref().ok().copied().flatten())?;
    let role = role?;
    let mut conn = pool.acquire().await.context("no database connection")?;
    let staff = users::list_staff(&mut conn, pizzeria_id, role).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "pizzeria_id": pizzeria_id,
        "staff": staff
            .into_iter()
            .map(|(id, display_name, roles)| StaffMember { id, display_name, roles })
            .collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use access::{DevicePrincipal, StaffPrincipal};
    use actix_web::http::StatusCode;

    use super::*;

    fn device(pizzeria_id: Uuid, kind: DeviceKind) -> access::Caller {
        access::Caller::Device(Arc::new(DevicePrincipal {
            device_id: Uuid::new_v4(),
            pizzeria_id,
            kind,
            station: (kind == DeviceKind::KitchenStation).then(|| "oven".to_owned()),
            name: "Oven tablet".into(),
            language: None,
            board_mode: None,
        }))
    }

    #[test]
    fn kitchen_devices_of_the_pizzeria_list_its_kitchen_staff_only() {
        let (here, there) = (Uuid::new_v4(), Uuid::new_v4());
        let kitchen = Some(Role::KitchenStaff);
        for kind in KITCHEN_DEVICES {
            assert!(may_list_staff(&device(here, kind), here, kitchen).is_ok());
            let err = may_list_staff(&device(there, kind), here, kitchen).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN);
            assert!(may_list_staff(&device(here, kind), here, None).is_err());
            assert!(may_list_staff(&device(here, kind), here, Some(Role::ShiftManager)).is_err());
        }
        for kind in [DeviceKind::OrderBoard, DeviceKind::ShiftManagerScreen] {
            assert!(may_list_staff(&device(here, kind), here, kitchen).is_err());
        }
    }

    #[test]
    fn staff_list_the_pizzerias_they_work_in() {
        let (here, there) = (Uuid::new_v4(), Uuid::new_v4());
        let staff = access::Caller::Staff(Arc::new(StaffPrincipal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            login: "anna".into(),
            display_name: "Anna".into(),
            chain_admin: false,
            chain_permissions: vec![],
            grants: vec![access::Grant {
                pizzeria_id: here,
                role: Role::Cashier.as_str().into(),
                permissions: Role::Cashier.permissions().to_vec(),
            }],
            expires_at: chrono::Utc::now(),
            language: None,
        }));
        assert!(may_list_staff(&staff, here, None).is_ok());
        assert!(may_list_staff(&staff, there, Some(Role::KitchenStaff)).is_err());
    }
}
