//! `membership`, and the per-user state that keeps it right whatever order events arrive in.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::column;

/// One `membership` row: a role in a unit (no unit for a chain admin).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Membership {
    pub unit_id: Option<Uuid>,
    pub role: i16,
}

/// Locks the user's sync state until the transaction ends, creating it if this is the first
/// event about the user, and returns the sequence its membership rows came from (0: none yet).
#[tracing::instrument(skip(conn))]
pub async fn lock_user_state(
    conn: &mut PgConnection,
    user_uuid: Uuid,
    at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    // The no-op update takes the row lock and returns the row as it is.
    sqlx::query_scalar(
        "insert into sync_user_state as s (user_uuid, last_sequence, is_active, created_at,
                                           changed_at)
         values ($1, 0, true, $2, $2)
         on conflict (user_uuid) do update set last_sequence = s.last_sequence
         returning last_sequence",
    )
    .bind(user_uuid)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// Folds one event into the user's state: `rows_sequence` if it set the rows (0 if not),
/// `active` false if it deactivated the user, and its time.
#[tracing::instrument(skip(conn))]
pub async fn update_user_state(
    conn: &mut PgConnection,
    user_uuid: Uuid,
    rows_sequence: i64,
    active: bool,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update sync_user_state
         set last_sequence = greatest(last_sequence, $2),
             is_active = is_active and $3,
             created_at = least(created_at, $4),
             changed_at = greatest(changed_at, $4)
         where user_uuid = $1",
    )
    .bind(user_uuid)
    .bind(rows_sequence)
    .bind(active)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the user's membership rows with `roles`, which must be free of duplicates. The
/// flag and times come from the user's sync state.
#[tracing::instrument(skip(conn, roles))]
pub async fn replace_membership(
    conn: &mut PgConnection,
    user_uuid: Uuid,
    login: &str,
    display_name: &str,
    roles: &[Membership],
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from membership where user_uuid = $1")
        .bind(user_uuid)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "insert into membership (user_uuid, login, display_name, unit_id, role, is_active,
                                 created_at, changed_at)
         select $1, $2, $3, r.unit_id, r.role, s.is_active, s.created_at, s.changed_at
         from unnest($4::uuid[], $5::int2[]) as r(unit_id, role)
         join sync_user_state s on s.user_uuid = $1",
    )
    .bind(user_uuid)
    .bind(login)
    .bind(display_name)
    .bind(column(roles, |r| r.unit_id))
    .bind(column(roles, |r| r.role))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the user's sync state (flag and times) into the membership rows the user has.
#[tracing::instrument(skip(conn))]
pub async fn refresh_membership(
    conn: &mut PgConnection,
    user_uuid: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update membership m
         set is_active = s.is_active, created_at = s.created_at, changed_at = s.changed_at
         from sync_user_state s
         where s.user_uuid = m.user_uuid and m.user_uuid = $1",
    )
    .bind(user_uuid)
    .execute(conn)
    .await?;
    Ok(())
}
