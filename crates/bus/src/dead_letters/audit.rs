//! Who replayed or discarded which dead letter, and why: one row per letter in the owning
//! service's own database (`dead_letter_actions`, created by each service's migrations).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Action, DeadLetter};

/// The person behind an action, as the service's access check saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Uuid,
    pub name: String,
}

/// One recorded replay or discard.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ActionRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub consumer: String,
    pub action: String,
    pub letter_key: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub routing_key: Option<String>,
    pub error: Option<String>,
    pub reason: Option<String>,
    pub actor_id: Uuid,
    pub actor_name: String,
}

/// Records that `actor` did `action` to `letters` of `consumer`, in one statement.
#[tracing::instrument(skip(conn, letters), fields(count = letters.len()))]
pub async fn record_actions(
    conn: &mut PgConnection,
    consumer: &str,
    action: Action,
    reason: Option<&str>,
    actor: &Actor,
    letters: &[DeadLetter],
) -> sqlx::Result<()> {
    let column = |f: fn(&DeadLetter) -> Option<String>| letters.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into dead_letter_actions
             (consumer, action, letter_key, event_id, event_type, routing_key, error, reason,
              actor_id, actor_name)
         select $1, $2, k, i, t, r, e, $3, $4, $5
         from unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) as l(k, i, t, r, e)",
    )
    .bind(consumer)
    .bind(action.as_str())
    .bind(reason)
    .bind(actor.id)
    .bind(&actor.name)
    .bind(letters.iter().map(|l| l.key.clone()).collect::<Vec<_>>())
    .bind(column(|l| l.event_id.clone()))
    .bind(column(|l| l.event_type.clone()))
    .bind(column(|l| l.routing_key.clone()))
    .bind(column(|l| l.error.clone()))
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest `limit` actions on `consumer`'s dead letters, newest first.
#[tracing::instrument(skip(pool))]
pub async fn recent_actions(
    pool: &PgPool,
    consumer: &str,
    limit: i64,
) -> sqlx::Result<Vec<ActionRecord>> {
    sqlx::query_as(
        "select id, at, consumer, action, letter_key, event_id, event_type, routing_key, error,
                reason, actor_id, actor_name
         from dead_letter_actions where consumer = $1 order by id desc limit $2",
    )
    .bind(consumer)
    .bind(limit)
    .fetch_all(pool)
    .await
}
