//! Registered devices (`devices`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A device as managers see it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct DeviceRow {
    /// A resource's own id is `id` in every service (users, pizzerias, orders, devices).
    pub id: Uuid,
    /// The same id under its older name, kept (deprecated) for clients written against it.
    pub device_id: Uuid,
    pub pizzeria_id: Uuid,
    pub kind: String,
    pub name: String,
    pub station: Option<String>,
    pub approved_by: Uuid,
    pub approved_by_name: String,
    pub requested_at: DateTime<Utc>,
    pub approved_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_ip: Option<String>,
    pub last_user_agent: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<Uuid>,
    /// When the token ends unless used before; each use moves it on.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// The language of its screen; `None`: the browser's.
    pub language: Option<String>,
    /// How a TV board shows customers (`name`, `number`, `icon`); kept for every kind, used by
    /// boards only.
    pub board_mode: String,
}

const COLUMNS: &str = "id, id as device_id, pizzeria_id, kind, name, station, approved_by, approved_by_name, \
    requested_at, approved_at, created_at, last_seen_at, last_ip, last_user_agent, revoked_at, \
    revoked_by, token_expires_at, language, board_mode";

pub struct NewDevice<'a> {
    pub id: Uuid,
    pub pizzeria_id: Uuid,
    pub kind: &'a str,
    pub name: &'a str,
    pub station: Option<&'a str>,
    pub language: Option<&'a str>,
    pub token_hash: &'a [u8],
    pub authorization_id: Uuid,
    pub approved_by: Uuid,
    pub approved_by_name: &'a str,
    pub requested_at: DateTime<Utc>,
    pub approved_at: DateTime<Utc>,
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
    /// The idle lifetime of the token, from now.
    pub token_lifetime_secs: f64,
}

/// Inserts a device with its first event's sequence taken (1).
#[tracing::instrument(skip(conn, device), fields(device_id = %device.id))]
pub async fn insert_device(
    conn: &mut PgConnection,
    device: &NewDevice<'_>,
) -> Result<DeviceRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into devices (id, pizzeria_id, kind, name, station, token_hash, authorization_id, \
           approved_by, approved_by_name, requested_at, approved_at, last_seen_at, last_ip, \
           last_user_agent, event_sequence, token_expires_at, language) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), $12, $13, 1, \
                 now() + make_interval(secs => $14), $15) \
         returning {COLUMNS}"
    )))
    .bind(device.id)
    .bind(device.pizzeria_id)
    .bind(device.kind)
    .bind(device.name)
    .bind(device.station)
    .bind(device.token_hash)
    .bind(device.authorization_id)
    .bind(device.approved_by)
    .bind(device.approved_by_name)
    .bind(device.requested_at)
    .bind(device.approved_at)
    .bind(device.ip)
    .bind(device.user_agent)
    .bind(device.token_lifetime_secs)
    .bind(device.language)
    .fetch_one(conn)
    .await
}

/// A pizzeria's devices, newest first, revoked ones included.
#[tracing::instrument(skip(conn))]
pub async fn list_devices(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
) -> Result<Vec<DeviceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from devices where pizzeria_id = $1 order by created_at desc, id"
    )))
    .bind(pizzeria_id)
    .fetch_all(conn)
    .await
}

/// A device of `pizzeria_id`, locked for a change.
#[tracing::instrument(skip(conn))]
pub async fn lock_device(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    device_id: Uuid,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from devices where id = $1 and pizzeria_id = $2 for update"
    )))
    .bind(device_id)
    .bind(pizzeria_id)
    .fetch_optional(conn)
    .await
}

/// What a manager can change about a device.
#[derive(Debug, PartialEq, Eq)]
pub struct DeviceSetup<'a> {
    pub name: &'a str,
    pub station: Option<&'a str>,
    pub language: Option<&'a str>,
    pub board_mode: &'a str,
}

/// Sets name, station, language and board mode; returns the row and the sequence for its
/// event.
#[tracing::instrument(skip(conn, setup))]
pub async fn update_device(
    conn: &mut PgConnection,
    device_id: Uuid,
    setup: &DeviceSetup<'_>,
) -> Result<(DeviceRow, i64), sqlx::Error> {
    let (sequence,): (i64,) = sqlx::query_as(
        "update devices set name = $2, station = $3, language = $4, board_mode = $5, \
           event_sequence = event_sequence + 1 \
         where id = $1 returning event_sequence",
    )
    .bind(device_id)
    .bind(setup.name)
    .bind(setup.station)
    .bind(setup.language)
    .bind(setup.board_mode)
    .fetch_one(&mut *conn)
    .await?;
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from devices where id = $1"
    )))
    .bind(device_id)
    .fetch_one(conn)
    .await?;
    Ok((row, sequence))
}

/// Revokes a device; `None` if it already was. Returns the revocation time and the sequence.
#[tracing::instrument(skip(conn))]
pub async fn revoke_device(
    conn: &mut PgConnection,
    device_id: Uuid,
    by: Uuid,
) -> Result<Option<(DateTime<Utc>, i64)>, sqlx::Error> {
    sqlx::query_as(
        "update devices set revoked_at = now(), revoked_by = $2, event_sequence = event_sequence + 1 \
         where id = $1 and revoked_at is null returning revoked_at, event_sequence",
    )
    .bind(device_id)
    .bind(by)
    .fetch_optional(conn)
    .await
}

/// What introspection answers for a live token.
#[derive(Debug, sqlx::FromRow)]
pub struct LiveDevice {
    pub id: Uuid,
    pub pizzeria_id: Uuid,
    pub kind: String,
    pub station: Option<String>,
    pub name: String,
    pub language: Option<String>,
    pub board_mode: String,
}

/// Finds the unrevoked, unexpired device of a token, records where it was seen and gives its
/// token `lifetime_secs` more from now (the silent renewal), in one statement.
#[tracing::instrument(skip(conn, token_hash, user_agent))]
pub async fn touch_live_device(
    conn: &mut PgConnection,
    token_hash: &[u8],
    ip: Option<&str>,
    user_agent: Option<&str>,
    lifetime_secs: f64,
) -> Result<Option<LiveDevice>, sqlx::Error> {
    sqlx::query_as(
        "update devices set last_seen_at = now(), last_ip = coalesce($2, last_ip), \
           last_user_agent = coalesce($3, last_user_agent), \
           token_expires_at = now() + make_interval(secs => $4) \
         where token_hash = $1 and revoked_at is null \
           and (token_expires_at is null or token_expires_at > now()) \
         returning id, pizzeria_id, kind, station, name, language, board_mode",
    )
    .bind(token_hash)
    .bind(ip)
    .bind(user_agent)
    .bind(lifetime_secs)
    .fetch_optional(conn)
    .await
}
