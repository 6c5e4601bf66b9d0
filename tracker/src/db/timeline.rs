//! The order's timeline: every stage and status change, written with the change itself.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::Actor;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct TimelineRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub station: Option<String>,
    pub product_id: Option<Uuid>,
    pub actor: Option<String>,
    /// The staff member behind the action, when known.
    pub actor_user_id: Option<Uuid>,
    /// The authenticated caller that made it: `user:<id>` or `device:<id>`.
    pub principal: Option<String>,
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default)]
pub struct NewEntry<'a> {
    pub station: Option<&'a str>,
    pub product_id: Option<Uuid>,
    pub actor: Option<&'a Actor>,
}

#[tracing::instrument(skip(conn, entry, detail))]
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    at: DateTime<Utc>,
    kind: &str,
    entry: &NewEntry<'_>,
    detail: &serde_json::Value,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into timeline (order_id, at, kind, station, product_id, actor, actor_user_id,
             principal, detail)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(order_id)
    .bind(at)
    .bind(kind)
    .bind(entry.station)
    .bind(entry.product_id)
    .bind(entry.actor.map(Actor::as_str))
    .bind(entry.actor.and_then(Actor::user_id))
    .bind(entry.actor.and_then(Actor::principal))
    .bind(detail)
    .execute(conn)
    .await
    .context("cannot write the timeline")?;
    Ok(())
}

#[tracing::instrument(skip(db))]
pub async fn timeline_of(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> anyhow::Result<Vec<TimelineRow>> {
    sqlx::query_as(
        "select at, kind, station, product_id, actor, actor_user_id, principal, detail
         from timeline
         where order_id = $1 order by id",
    )
    .bind(order_id)
    .fetch_all(db)
    .await
    .context("cannot read the timeline")
}
