//! Taps: the completed stages, what undo takes back, and the station report.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::Actor;

const TAP_COLUMNS: &str = "id, product_id, order_id, pizzeria_id, station, stage, pass,
    started_at, completed_at, duration_ms, target_seconds, actor, actor_user_id, principal,
    undone_at, client_tap_id";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TapRow {
    pub id: i64,
    pub product_id: Uuid,
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub station: String,
    pub stage: i32,
    pub pass: i32,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub target_seconds: i32,
    pub actor: Option<String>,
    pub actor_user_id: Option<Uuid>,
    pub principal: Option<String>,
    pub undone_at: Option<DateTime<Utc>>,
    /// The id the tablet gave the tap, for one it may send again (queued while offline).
    pub client_tap_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct NewTap<'a> {
    pub product_id: Uuid,
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub station: &'a str,
    pub stage: i32,
    pub pass: i32,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub target_seconds: i32,
    pub actor: Option<&'a Actor>,
    pub client_tap_id: Option<Uuid>,
}

/// Records the tap and moves the product on to `next_stage` (waiting at `next_station` since
/// the tap, or done), in one statement. `None` when its `client_tap_id` is already another
/// tap's (one sent at the same moment for another product: the check under the order's lock
/// cannot see a tap of another order that has not committed yet); the caller then fails, and
/// its transaction, the move included, rolls back.
#[tracing::instrument(skip(conn, tap), fields(product_id = %tap.product_id))]
pub async fn insert_tap_moving_product(
    conn: &mut PgConnection,
    tap: &NewTap<'_>,
    next_stage: i32,
    next_station: Option<&str>,
) -> anyhow::Result<Option<TapRow>> {
    let duration_ms = (tap.completed_at - tap.started_at)
        .num_milliseconds()
        .max(0);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "with moved as (
             update products set stage = $15, station = $16, entered_at = $8,
                 done_at = case when $16::text is null then $8 end
             where id = $1
         )
         insert into taps (product_id, order_id, pizzeria_id, station, stage, pass, started_at,
             completed_at, duration_ms, target_seconds, actor, actor_user_id, principal,
             client_tap_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         on conflict (pizzeria_id, client_tap_id) where client_tap_id is not null do nothing
         returning {TAP_COLUMNS}"
    )))
    .bind(tap.product_id)
    .bind(tap.order_id)
    .bind(tap.pizzeria_id)
    .bind(tap.station)
    .bind(tap.stage)
    .bind(tap.pass)
    .bind(tap.started_at)
    .bind(tap.completed_at)
    .bind(duration_ms)
    .bind(tap.target_seconds)
    .bind(tap.actor.map(Actor::as_str))
    .bind(tap.actor.and_then(Actor::user_id))
    .bind(tap.actor.and_then(Actor::principal))
    .bind(tap.client_tap_id)
    .bind(next_stage)
    .bind(next_station)
    .fetch_optional(conn)
    .await
    .context("cannot record the tap")
}

/// The tap the tablet sent with `client_tap_id`, whatever became of it since.
#[tracing::instrument(skip(conn))]
pub async fn find_by_client_id(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    client_tap_id: Uuid,
) -> anyhow::Result<Option<TapRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {TAP_COLUMNS} from taps where pizzeria_id = $1 and client_tap_id = $2"
    )))
    .bind(pizzeria_id)
    .bind(client_tap_id)
    .fetch_optional(conn)
    .await
    .context("cannot read the tap by the tablet's id")
}

/// The tap that completed `stage` of the product's pass `pass`, unless it was undone.
#[tracing::instrument(skip(conn))]
pub async fn live_tap(
    conn: &mut PgConnection,
    product_id: Uuid,
    pass: i32,
    stage: i32,
) -> anyhow::Result<Option<TapRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {TAP_COLUMNS} from taps
         where product_id = $1 and pass = $2 and stage = $3 and undone_at is null"
    )))
    .bind(product_id)
    .bind(pass)
    .bind(stage)
    .fetch_optional(conn)
    .await
    .context("cannot read the recorded tap")
}

/// A tap by its id, in the pizzeria and at the station it was made at.
#[tracing::instrument(skip(conn))]
pub async fn find_tap(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    station: &str,
    id: i64,
) -> anyhow::Result<Option<TapRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {TAP_COLUMNS} from taps where id = $1 and pizzeria_id = $2 and station = $3"
    )))
    .bind(id)
    .bind(pizzeria_id)
    .bind(station)
    .fetch_optional(conn)
    .await
    .context("cannot read the tap")
}

#[tracing::instrument(skip(conn))]
pub async fn mark_undone(
    conn: &mut PgConnection,
    id: i64,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("update taps set undone_at = $2 where id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await
        .context("cannot mark the tap undone")?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StationReportRow {
    pub station: String,
    pub taps: i64,
    pub average_ms: f64,
    pub p90_ms: f64,
    pub average_target_seconds: f64,
    pub over_target: i64,
}

/// Per station: taps completed in `[from, to)` (undone taps excluded), with their average and
/// 90th-percentile stage duration.
#[tracing::instrument(skip(db))]
pub async fn station_report(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<StationReportRow>> {
    sqlx::query_as(
        "select station,
                count(*) as taps,
                avg(duration_ms)::float8 as average_ms,
                percentile_cont(0.9) within group (order by duration_ms) as p90_ms,
                avg(target_seconds)::float8 as average_target_seconds,
                count(*) filter (where duration_ms > target_seconds * 1000) as over_target
         from taps
         where pizzeria_id = $1 and completed_at >= $2 and completed_at < $3
           and undone_at is null
         group by station
         -- In the order a product meets the stations, as every station list.
         order by (select max(r.position) from routes r
                   where r.pizzeria_id = $1 and r.station_code = taps.station) nulls last,
                  station",
    )
    .bind(pizzeria_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
    .context("cannot build the station report")
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActorReportRow {
    pub actor: String,
    pub stages: i64,
    pub average_ms: f64,
    pub p90_ms: f64,
    pub within_target: i64,
}

/// Per actor (the name recorded on the tap: a pizzamaker, a staff member or a tablet): stages
/// completed in `[from, to)` (undone taps excluded), their average and 90th-percentile
/// duration, and how many were within their target. Most stages first.
#[tracing::instrument(skip(db))]
pub async fn actor_report(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<ActorReportRow>> {
    sqlx::query_as(
        "select actor,
                count(*) as stages,
                avg(duration_ms)::float8 as average_ms,
                percentile_cont(0.9) within group (order by duration_ms) as p90_ms,
                count(*) filter (where duration_ms <= target_seconds * 1000) as within_target
         from taps
         where pizzeria_id = $1 and completed_at >= $2 and completed_at < $3
           and undone_at is null and actor is not null
         group by actor
         order by stages desc, actor",
    )
    .bind(pizzeria_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
    .context("cannot build the actor report")
}
