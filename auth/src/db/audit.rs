use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// One audit entry: what happened, who did it, to whom, where and from which IP.
#[derive(Debug, Default)]
pub struct AuditEntry<'a> {
    pub action: &'a str,
    pub actor_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub pizzeria_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub ip: Option<&'a str>,
    pub details: Option<serde_json::Value>,
}

#[tracing::instrument(skip(conn, entry), fields(action = entry.action))]
pub async fn record(conn: &mut PgConnection, entry: AuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_log (action, actor_id, target_user_id, pizzeria_id, session_id, ip, details) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(entry.action)
    .bind(entry.actor_id)
    .bind(entry.target_user_id)
    .bind(entry.pizzeria_id)
    .bind(entry.session_id)
    .bind(entry.ip)
    .bind(sqlx::types::Json(
        entry.details.unwrap_or_else(|| serde_json::json!({})),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub pizzeria_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub ip: Option<String>,
    pub details: sqlx::types::Json<serde_json::Value>,
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    /// Entries where the user is the actor or the target.
    pub user_id: Option<Uuid>,
    pub action: Option<String>,
    /// Entries older than this id (paging backwards).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Newest first.
#[tracing::instrument(skip(conn))]
pub async fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "select id, at, action, actor_id, target_user_id, pizzeria_id, session_id, ip, details \
         from audit_log \
         where ($1::uuid is null or actor_id = $1 or target_user_id = $1) \
           and ($2::text is null or action = $2) \
           and ($3::bigint is null or id < $3) \
         order by id desc limit $4",
    )
    .bind(filter.user_id)
    .bind(filter.action.as_deref())
    .bind(filter.before_id)
    .bind(filter.limit)
    .fetch_all(conn)
    .await
}
