//! Station alerts: short notices a station shows beside its cards, such as "CANCELLED #4204"
//! at every station that had one of the order's products when it was cancelled.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

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
