//! Pairing requests (`device_authorizations`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthorizationRow {
    pub id: Uuid,
    pub user_code: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub interval_seconds: i32,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub ip: String,
    pub user_agent: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub decided_by_name: Option<String>,
    pub pizzeria_id: Option<Uuid>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub station: Option<String>,
    pub language: Option<String>,
    /// `now()` as the database sees it, so expiry and polling use one clock.
    pub now: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_code, client_id, scope, status, requested_at, expires_at, \
    interval_seconds, last_polled_at, ip, user_agent, decided_at, decided_by, decided_by_name, \
    pizzeria_id, kind, name, station, language, now() as now";

pub struct NewAuthorization<'a> {
    pub id: Uuid,
    pub device_code_hash: &'a [u8],
    pub user_code: &'a str,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
    pub lifetime_secs: f64,
    pub interval_seconds: i32,
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
}

/// Inserts a request; `Ok(false)` when its user code is taken by a live request (draw again).
/// A stale request holding the code is marked expired first.
#[tracing::instrument(skip(conn, new), fields(id = %new.id))]
pub async fn insert_authorization(
    conn: &mut PgConnection,
    new: &NewAuthorization<'_>,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "update device_authorizations set status = 'expired' \
         where user_code = $1 and status in ('pending', 'approved') and expires_at <= now()",
    )
    .bind(new.user_code)
    .execute(&mut *conn)
    .await?;
    let inserted = sqlx::query(
        "insert into device_authorizations \
           (id, device_code_hash, user_code, client_id, scope, expires_at, interval_seconds, ip, user_agent) \
         values ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7, $8, $9) \
         on conflict do nothing",
    )
    .bind(new.id)
    .bind(new.device_code_hash)
    .bind(new.user_code)
    .bind(new.client_id)
    .bind(new.scope)
    .bind(new.lifetime_secs)
    .bind(new.interval_seconds)
    .bind(new.ip)
    .bind(new.user_agent)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The request behind a device code, locked for the poll.
#[tracing::instrument(skip(conn, device_code_hash))]
pub async fn lock_by_device_code(
    conn: &mut PgConnection,
    device_code_hash: &[u8],
) -> Result<Option<AuthorizationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from device_authorizations where device_code_hash = $1 for update"
    )))
    .bind(device_code_hash)
    .fetch_optional(conn)
    .await
}

/// The live (unexpired, pending or approved) request with this user code, locked.
#[tracing::instrument(skip(conn))]
pub async fn lock_live_by_user_code(
    conn: &mut PgConnection,
    user_code: &str,
) -> Result<Option<AuthorizationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from device_authorizations \
         where user_code = $1 and status in ('pending', 'approved') and expires_at > now() \
         for update"
    )))
    .bind(user_code)
    .fetch_optional(conn)
    .await
}

/// Records a poll; with `slow_down` the interval grows by 5 s first.
#[tracing::instrument(skip(conn))]
pub async fn record_poll(
    conn: &mut PgConnection,
    id: Uuid,
    slow_down: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update device_authorizations set last_polled_at = now(), \
           interval_seconds = interval_seconds + case when $2 then 5 else 0 end \
         where id = $1",
    )
    .bind(id)
    .bind(slow_down)
    .execute(conn)
    .await?;
    Ok(())
}

pub struct Approval<'a> {
    pub id: Uuid,
    pub by: Uuid,
    pub by_name: &'a str,
    pub pizzeria_id: Uuid,
    pub kind: &'a str,
    pub name: &'a str,
    pub station: Option<&'a str>,
    pub language: Option<&'a str>,
}

#[tracing::instrument(skip(conn, approval), fields(id = %approval.id))]
pub async fn approve(conn: &mut PgConnection, approval: &Approval<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update device_authorizations set status = 'approved', decided_at = now(), \
           decided_by = $2, decided_by_name = $3, pizzeria_id = $4, kind = $5, name = $6, station = $7, \
           language = $8 \
         where id = $1",
    )
    .bind(approval.id)
    .bind(approval.by)
    .bind(approval.by_name)
    .bind(approval.pizzeria_id)
    .bind(approval.kind)
    .bind(approval.name)
    .bind(approval.station)
    .bind(approval.language)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(skip(conn, by_name))]
pub async fn deny(
    conn: &mut PgConnection,
    id: Uuid,
    by: Uuid,
    by_name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update device_authorizations set status = 'denied', decided_at = now(), \
           decided_by = $2, decided_by_name = $3 where id = $1",
    )
    .bind(id)
    .bind(by)
    .bind(by_name)
    .execute(conn)
    .await?;
    Ok(())
}

/// The device picked up its token: the code cannot be exchanged again.
#[tracing::instrument(skip(conn))]
pub async fn mark_redeemed(
    conn: &mut PgConnection,
    id: Uuid,
    device_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update device_authorizations set status = 'redeemed', device_id = $2, \
           last_polled_at = now() where id = $1",
    )
    .bind(id)
    .bind(device_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Re-reads a request (for the answer after a decision).
pub async fn find_authorization(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<AuthorizationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from device_authorizations where id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}
