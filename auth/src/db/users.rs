use access::Role;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::RoleGrant;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub login: String,
    pub display_name: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// What a login attempt needs.
#[derive(Debug, sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub password_hash: String,
    pub active: bool,
}

/// Inserts a user; `Ok(false)` when the login is taken.
#[tracing::instrument(skip(conn, password_hash))]
pub async fn insert_user(
    conn: &mut PgConnection,
    id: Uuid,
    login: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into users (id, login, display_name, password_hash) values ($1, $2, $3, $4) \
         on conflict do nothing",
    )
    .bind(id)
    .bind(login)
    .bind(display_name)
    .bind(password_hash)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip(conn, password_hash))]
pub async fn set_password(
    conn: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set password_hash = $2 where id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(skip(conn))]
pub async fn find_credentials(
    conn: &mut PgConnection,
    login: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as("select id, password_hash, active from users where lower(login) = $1")
        .bind(login)
        .fetch_optional(conn)
        .await
}

#[tracing::instrument(skip(conn))]
pub async fn find_user(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("select id, login, display_name, active, created_at from users where id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Sets (or with `None` clears) the language the user chose for the screens.
#[tracing::instrument(skip(conn))]
pub async fn set_language(
    conn: &mut PgConnection,
    id: Uuid,
    language: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set language = $2 where id = $1")
        .bind(id)
        .bind(language)
        .execute(conn)
        .await?;
    Ok(())
}

/// (id, active) of each of `ids` that exists.
#[tracing::instrument(skip(conn, ids))]
pub async fn users_active(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, bool)>, sqlx::Error> {
    sqlx::query_as("select id, active from users where id = any($1) order by id")
        .bind(ids)
        .fetch_all(conn)
        .await
}

#[tracing::instrument(skip(conn))]
pub async fn find_user_by_login(
    conn: &mut PgConnection,
    login: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "select id, login, display_name, active, created_at from users where lower(login) = $1",
    )
    .bind(login)
    .fetch_optional(conn)
    .await
}

/// Takes the next event sequence of the user, locking the user's row until the transaction
/// ends: changes to one user (and their events) are applied one at a time, in order.
#[tracing::instrument(skip(conn))]
pub async fn next_event_sequence(conn: &mut PgConnection, id: Uuid) -> Result<i64, sqlx::Error> {
    let (sequence,): (i64,) = sqlx::query_as(
        "update users set event_sequence = event_sequence + 1 where id = $1 returning event_sequence",
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok(sequence)
}

/// Locks the user's row until the transaction ends; `false` if there is no such user.
#[tracing::instrument(skip(conn))]
pub async fn lock_user(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as("select id from users where id = $1 for update")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// Marks the user inactive; `false` when they already were.
#[tracing::instrument(skip(conn))]
pub async fn deactivate_user(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update users set active = false, deactivated_at = now() where id = $1 and active",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The user's roles, chain-wide first, then by pizzeria and role.
#[tracing::instrument(skip(conn))]
pub async fn list_roles(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<RoleGrant>, sqlx::Error> {
    let rows: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "select role, pizzeria_id from user_roles where user_id = $1 \
         order by pizzeria_id nulls first, role",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        // A role this build does not know (written by a newer one) grants nothing here.
        .filter_map(|(role, pizzeria_id)| {
            Role::parse(&role).map(|role| RoleGrant { role, pizzeria_id })
        })
        .collect())
}

/// Grants `grant`; `false` when the user already held it.
#[tracing::instrument(skip(conn))]
pub async fn insert_role(
    conn: &mut PgConnection,
    user_id: Uuid,
    grant: RoleGrant,
    granted_by: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into user_roles (user_id, role, pizzeria_id, granted_by) values ($1, $2, $3, $4) \
         on conflict do nothing",
    )
    .bind(user_id)
    .bind(grant.role.as_str())
    .bind(grant.pizzeria_id)
    .bind(granted_by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes `grant`; `false` when the user did not hold it.
#[tracing::instrument(skip(conn))]
pub async fn delete_role(
    conn: &mut PgConnection,
    user_id: Uuid,
    grant: RoleGrant,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "delete from user_roles where user_id = $1 and role = $2 \
         and pizzeria_id is not distinct from $3",
    )
    .bind(user_id)
    .bind(grant.role.as_str())
    .bind(grant.pizzeria_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Active users holding `role` (or any role, with `None`) in the pizzeria, by display name.
#[tracing::instrument(skip(conn))]
pub async fn list_staff(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    role: Option<Role>,
) -> Result<Vec<(Uuid, String, Vec<String>)>, sqlx::Error> {
    sqlx::query_as(
        "select u.id, u.display_name, array_agg(r.role order by r.role) \
         from users u join user_roles r on r.user_id = u.id \
         where r.pizzeria_id = $1 and u.active and ($2::text is null or r.role = $2) \
         group by u.id, u.display_name order by u.display_name, u.id",
    )
    .bind(pizzeria_id)
    .bind(role.map(Role::as_str))
    .fetch_all(conn)
    .await
}
