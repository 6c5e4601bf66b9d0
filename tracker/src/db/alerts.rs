//! Station alerts: short notices a station shows beside its cards, such as "CANCELLED #4204"
//! at every station that had one of the order's products when it was cancelled.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub order_id: Uuid,
    pub number: i32,
    pub kind: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// One `cancelled` alert per station in `stations` (duplicates are ignored).
#[tracing::instrument(skip(conn, reason))]
#[allow(clippy::too_many_arguments)]
pub async fn record_cancelled(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    stations: &[String],
    order_id: Uuid,
    number: i32,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into station_alerts (pizzeria_id, station, order_id, number, kind, reason, at)
         select $1, s, $3, $4, 'cancelled', $5, $6 from (select distinct unnest($2::text[]) as s) x",
    )
    .bind(pizzeria_id)
    .bind(stations)
    .bind(order_id)
    .bind(number)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await
    .context("cannot record the station alerts")?;
    Ok(())
}

/// The station's alerts since `since`, newest first.
#[tracing::instrument(skip(db))]
pub async fn recent_alerts(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
    station: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<AlertRow>> {
    sqlx::query_as(
        "select order_id, number, kind, reason, at from station_alerts
         where pizzeria_id = $1 and station = $2 and at > $3
         order by at desc, id desc
         limit 20",
    )
    .bind(pizzeria_id)
    .bind(station)
    .bind(since)
    .fetch_all(db)
    .await
    .context("cannot read the station's alerts")
}
