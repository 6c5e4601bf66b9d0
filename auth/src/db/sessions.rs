use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A live session and its user, as introspection finds it.
#[derive(Debug, sqlx::FromRow)]
pub struct LiveSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub login: String,
    pub display_name: String,
    pub expires_at: DateTime<Utc>,
    pub language: Option<String>,
}

pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token_hash: &'a [u8],
    pub expires_at: DateTime<Utc>,
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
}

#[tracing::instrument(skip(conn, session), fields(session_id = %session.id))]
pub async fn insert_session(
    conn: &mut PgConnection,
    session: &NewSession<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into sessions (id, user_id, token_hash, expires_at, ip, user_agent) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session.id)
    .bind(session.user_id)
    .bind(session.token_hash)
    .bind(session.expires_at)
    .bind(session.ip)
    .bind(session.user_agent)
    .execute(conn)
    .await?;
    Ok(())
}

/// Finds the live session of a token and marks it used, in one statement. Not live: unknown,
/// revoked, past its absolute end, idle for longer than `idle`, or its user deactivated.
#[tracing::instrument(skip(conn, token_hash))]
pub async fn touch_live_session(
    conn: &mut PgConnection,
    token_hash: &[u8],
    idle: Duration,
) -> Result<Option<LiveSession>, sqlx::Error> {
    sqlx::query_as(
        "update sessions s set last_seen_at = now() from users u \
         where s.token_hash = $1 and u.id = s.user_id and u.active \
           and s.revoked_at is null and s.expires_at > now() \
           and s.last_seen_at > now() - make_interval(secs => $2) \
         returning s.id, s.user_id, u.login, u.display_name, s.expires_at, u.language",
    )
    .bind(token_hash)
    .bind(idle.as_secs_f64())
    .fetch_optional(conn)
    .await
}

/// The user's sessions that have not ended, newest first.
#[tracing::instrument(skip(conn))]
pub async fn list_live_sessions(
    conn: &mut PgConnection,
    user_id: Uuid,
    idle: Duration,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "select id, user_id, created_at, last_seen_at, expires_at, ip, user_agent from sessions \
         where user_id = $1 and revoked_at is null and expires_at > now() \
           and last_seen_at > now() - make_interval(secs => $2) \
         order by created_at desc, id",
    )
    .bind(user_id)
    .bind(idle.as_secs_f64())
    .fetch_all(conn)
    .await
}

#[tracing::instrument(skip(conn))]
pub async fn find_session_owner(
    conn: &mut PgConnection,
    session_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as("select user_id from sessions where id = $1")
        .bind(session_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(id,)| id))
}

/// Revokes the session if it was not already; `true` if this call revoked it.
#[tracing::instrument(skip(conn))]
pub async fn revoke_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update sessions set revoked_at = now(), revoked_reason = $2 \
         where id = $1 and revoked_at is null",
    )
    .bind(session_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every unrevoked session of the user; returns their ids.
#[tracing::instrument(skip(conn))]
pub async fn revoke_user_sessions(
    conn: &mut PgConnection,
    user_id: Uuid,
    reason: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "update sessions set revoked_at = now(), revoked_reason = $2 \
         where user_id = $1 and revoked_at is null returning id",
    )
    .bind(user_id)
    .bind(reason)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
