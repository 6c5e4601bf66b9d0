//! Pizzerias roles can be granted in, and who works there.

use access::Role;
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use service_kit::http::{ClientError, Json, Query};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{accounts, db::users};

use super::{ApiError, Caller, uuid_param};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PizzeriaBody {
    name: String,
}

/// `PUT /api/v1/pizzerias/{pizzeria_id}` (chain admin): registers the pizzeria, so roles can be
/// granted in it. 201 when new, 200 when renamed.
pub async fn register(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    Json(body): Json<PizzeriaBody>,
) -> Result<HttpResponse, ApiError> {
    let pizzeria_id = uuid_param(&req, "pizzeria_id")?;
    caller.require_chain_admin()?;
    let mut tx = pool
        .begin()
        .await
        .context("cannot start the registration")?;
    let created = accounts::register_pizzeria(
        &mut tx,
        pizzeria_id,
        &body.name,
        Some(caller.id()),
        &caller.origin,
    )
    .await?;
    tx.commit()
        .await
        .context("cannot commit the registration")?;
    let body = serde_json::json!({ "id": pizzeria_id, "name": body.name.trim() });
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

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

/// `GET /api/v1/pizzerias/{pizzeria_id}/staff?role=kitchen_staff`: the pizzeria's active staff
/// (ids and display names, for the kitchen screens), for anyone who works there.
pub async fn staff(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    Query(query): Query<StaffQuery>,
) -> Result<HttpResponse, ApiError> {
    let pizzeria_id = uuid_param(&req, "pizzeria_id")?;
    let role = query
        .role
        .as_deref()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                ClientError::malformed("role", format!("must be one of {}", names.join(", ")))
            })
        })
        .transpose()?;
    if !caller.principal.works_in(pizzeria_id) {
        return Err(ClientError::forbidden("you do not work in this pizzeria").into());
    }
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
