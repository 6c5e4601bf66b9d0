//! Staff accounts: create, read, grant and revoke roles, deactivate.
//!
//! Who may: a chain admin anything; someone with `staff.manage` in a pizzeria may create users
//! with roles there, grant and revoke that pizzeria's roles (never `chain_admin`), and
//! deactivate users whose every role is in pizzerias they manage.

use access::{Permission, Role};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use serde::Deserialize;
use service_kit::http::{ClientError, Deferred, Json, Query};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    accounts::{self, Accounts, NewUser},
    db::users,
    domain::{DisplayName, Login, Password, RoleGrant, ValidationError},
};

use super::{ApiError, Caller, uuid_param};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: String,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    pizzeria_id: Option<Uuid>,
}

impl RoleBody {
    fn parse(&self) -> Result<RoleGrant, ValidationError> {
        RoleGrant::parse(&self.role, self.pizzeria_id)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    login: String,
    display_name: String,
    password: String,
    #[serde(default)]
    roles: Vec<RoleBody>,
}

/// The grants of a body with the field path each came from (`roles[1].pizzeria_id`).
fn parse_roles(roles: &[RoleBody]) -> Result<Vec<(String, RoleGrant)>, ValidationError> {
    roles
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("roles[{i}]");
            r.parse()
                .map(|g| (format!("{at}.pizzeria_id"), g))
                .map_err(|e| e.under(&at))
        })
        .collect()
}

/// 403 unless the caller may grant or revoke `grant`.
fn may_manage(caller: &Caller, grant: RoleGrant) -> Result<(), ApiError> {
    match grant.pizzeria_id {
        _ if caller.principal.chain_admin => Ok(()),
        Some(pizzeria_id) if grant.role != Role::ChainAdmin => {
            caller.require(pizzeria_id, Permission::StaffManage)
        }
        _ => caller.require_chain_admin(),
    }
}

/// 403 unless the caller manages staff somewhere: checked before the body is read, since which
/// pizzeria a role change is about is in the body (`may_manage` checks that one afterwards).
fn manages_staff_anywhere(caller: &Caller) -> Result<(), ApiError> {
    if caller.principal.can_somewhere(Permission::StaffManage) {
        Ok(())
    } else {
        Err(ClientError::forbidden("you need the staff.manage permission in a pizzeria").into())
    }
}

/// `POST /api/v1/users`: 201 with the user.
pub async fn create(
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
    body: Deferred<Json<UserBody>>,
) -> Result<HttpResponse, ApiError> {
    manages_staff_anywhere(&caller)?;
    let Json(body) = body.get()?;
    let user = NewUser {
        login: Login::parse(&body.login)?,
        display_name: DisplayName::parse(&body.display_name)?,
        password: Password::parse(&body.password)?,
        roles: Vec::new(),
    };
    let grants = parse_roles(&body.roles)?;
    if grants.is_empty() {
        caller
            .require_chain_admin()
            .map_err(|_| ClientError::forbidden("give the user a role in a pizzeria you manage"))?;
    }
    for (_, grant) in &grants {
        may_manage(&caller, *grant)?;
    }
    let mut tx = pool.begin().await.context("cannot start creating a user")?;
    accounts::check_pizzerias(&mut tx, &grants).await?;
    let user = NewUser {
        roles: grants.into_iter().map(|(_, g)| g).collect(),
        ..user
    };
    let view =
        accounts::create_user(&mut tx, &accounts, user, Some(caller.id()), &caller.origin).await?;
    tx.commit().await.context("cannot commit the new user")?;
    Ok(HttpResponse::Created().json(view))
}

/// Whether the caller manages the user: a chain admin, or `staff.manage` in a pizzeria where
/// the user holds a role.
async fn manages(caller: &Caller, roles: &[contracts::StaffRoleGrant]) -> bool {
    caller.principal.chain_admin
        || roles.iter().any(|r| {
            r.pizzeria_id
                .is_some_and(|p| caller.principal.can(p, Permission::StaffManage))
        })
}

/// `GET /api/v1/users/{user_id}`: oneself, or a user one manages.
pub async fn get(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, ApiError> {
    let user_id = uuid_param(&req, "user_id")?;
    let mut conn = pool.acquire().await.context("no database connection")?;
    let view = accounts::user_view(&mut conn, user_id).await?;
    if user_id != caller.id() && !manages(&caller, &view.roles).await {
        // Not a 403: users outside one's pizzerias are not even there.
        return Err(ClientError::not_found("user").into());
    }
    Ok(HttpResponse::Ok().json(view))
}

async fn change_role(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
    body: Result<RoleBody, ClientError>,
    grant: bool,
) -> Result<HttpResponse, ApiError> {
    manages_staff_anywhere(&caller)?;
    let user_id = uuid_param(&req, "user_id")?;
    let role = body?.parse()?;
    may_manage(&caller, role)?;
    let mut tx = pool.begin().await.context("cannot start the role change")?;
    let view = accounts::change_role(
        &mut tx,
        &accounts,
        user_id,
        role,
        grant,
        caller.id(),
        &caller.origin,
    )
    .await?;
    tx.commit().await.context("cannot commit the role change")?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /api/v1/users/{user_id}/roles` `{"role", "pizzeria_id"}` grants a role (`GRANT`);
/// `POST /api/v1/users/{user_id}/roles/revoke` with the same body revokes it, the older
/// spelling of [`revoke_role`], kept (deprecated) for clients written against it.
pub async fn role_by_body<const GRANT: bool>(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
    body: Deferred<Json<RoleBody>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.get().map(|Json(body)| body);
    change_role(req, caller, pool, accounts, body, GRANT).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeQuery {
    pizzeria_id: Option<Uuid>,
}

/// `DELETE /api/v1/users/{user_id}/roles/{role}?pizzeria_id=`: revokes a role. A revocation is
/// a DELETE, as for sessions and devices.
pub async fn revoke_role(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
    query: Deferred<Query<RevokeQuery>>,
) -> Result<HttpResponse, ApiError> {
    let role = req.match_info().get("role").unwrap_or_default().to_owned();
    let body = query.get().map(|Query(q)| RoleBody {
        role,
        pizzeria_id: q.pizzeria_id,
    });
    change_role(req, caller, pool, accounts, body, false).await
}

/// `POST /api/v1/users/{user_id}/deactivate`.
pub async fn deactivate(
    req: HttpRequest,
    caller: Caller,
    pool: web::Data<PgPool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let user_id = uuid_param(&req, "user_id")?;
    if user_id == caller.id() {
        return Err(ClientError::conflict(
            "cannot_deactivate_self",
            "you cannot deactivate your own account",
        )
        .into());
    }
    let mut tx = pool
        .begin()
        .await
        .context("cannot start the deactivation")?;
    let roles = users::list_roles(&mut tx, user_id).await?;
    let allowed = caller.principal.chain_admin
        || (!roles.is_empty()
            && roles.iter().all(|g| {
                g.pizzeria_id
                    .is_some_and(|p| caller.principal.can(p, Permission::StaffManage))
            }));
    if !allowed {
        return Err(ClientError::forbidden(
            "only a chain admin, or whoever manages every pizzeria the user works in, may deactivate them",
        )
        .into());
    }
    let view =
        accounts::deactivate(&mut tx, &accounts, user_id, caller.id(), &caller.origin).await?;
    tx.commit()
        .await
        .context("cannot commit the deactivation")?;
    Ok(HttpResponse::Ok().json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_errors_name_their_place_in_the_list() {
        let roles = vec![
            RoleBody {
                role: "kitchen_staff".into(),
                pizzeria_id: Some(Uuid::new_v4()),
            },
            RoleBody {
                role: "baker".into(),
                pizzeria_id: Some(Uuid::new_v4()),
            },
        ];
        assert_eq!(parse_roles(&roles).unwrap_err().field, "roles[1].role");
        let ok = parse_roles(&roles[..1]).expect("valid");
        assert_eq!(ok[0].0, "roles[0].pizzeria_id");
    }
}
