//! Pizzerias, their stations and routes, and the version counters that make polling cheap.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use contracts::ProductCategory;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{PizzeriaName, Route, StationCode, StationName};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PizzeriaRow {
    pub id: Uuid,
    pub name: String,
    pub board_version: i64,
    /// IANA name, `UTC` until set.
    pub time_zone: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StationRow {
    pub code: String,
    pub name: String,
    pub queue_version: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteStageRow {
    pub category: String,
    pub position: i32,
    pub station_code: String,
    pub target_seconds: i32,
}

#[tracing::instrument(skip(db))]
pub async fn find_pizzeria(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> anyhow::Result<Option<PizzeriaRow>> {
    sqlx::query_as("select id, name, board_version, time_zone from pizzerias where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
        .context("cannot read the pizzeria")
}

/// Creates the pizzeria or renames it; `true` when it was created.
#[tracing::instrument(skip(conn, name))]
pub async fn upsert_pizzeria(
    conn: &mut PgConnection,
    id: Uuid,
    name: &PizzeriaName,
) -> anyhow::Result<bool> {
    // `xmax = 0` holds only for a freshly inserted row, not for one the upsert updated.
    sqlx::query_scalar(
        "insert into pizzerias (id, name) values ($1, $2)
         on conflict (id) do update set name = excluded.name, updated_at = now()
         returning (xmax = 0)",
    )
    .bind(id)
    .bind(name.as_str())
    .fetch_one(conn)
    .await
    .context("cannot save the pizzeria")
}

/// Counts one more event of the pizzeria: its sequence, name and time zone as they are now.
#[tracing::instrument(skip(conn))]
pub async fn next_event_of_pizzeria(
    conn: &mut PgConnection,
    id: Uuid,
) -> anyhow::Result<(i64, String, String)> {
    sqlx::query_as(
        "update pizzerias set event_sequence = event_sequence + 1 where id = $1
         returning event_sequence, name, time_zone",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .context("cannot count the pizzeria's event")
}

/// Sets the pizzeria's time zone; `false` when PostgreSQL does not know the name.
#[tracing::instrument(skip(conn))]
pub async fn set_time_zone(
    conn: &mut PgConnection,
    id: Uuid,
    time_zone: &str,
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "update pizzerias set time_zone = $2, updated_at = now()
         where id = $1 and exists (select 1 from pg_timezone_names where name = $2)",
    )
    .bind(id)
    .bind(time_zone)
    .execute(conn)
    .await
    .context("cannot set the time zone")?
    .rows_affected();
    Ok(updated == 1)
}

/// `[start, end)` of the calendar day `date` in `time_zone` (today there when `None`), as
/// instants, with the date. PostgreSQL's zone data does the arithmetic, daylight saving too.
#[tracing::instrument(skip(db))]
pub async fn local_day(
    db: impl PgExecutor<'_>,
    time_zone: &str,
    date: Option<chrono::NaiveDate>,
) -> anyhow::Result<(chrono::NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
    sqlx::query_as(
        "with d as (select coalesce($2::date, (now() at time zone $1)::date) as day)
         select day, day::timestamp at time zone $1, (day + 1)::timestamp at time zone $1
         from d",
    )
    .bind(time_zone)
    .bind(date)
    .fetch_one(db)
    .await
    .context("cannot work out the pizzeria's day")
}

/// Locks the pizzeria's stations in code order, before anything else of the pizzeria. A tap
/// bumps its stations' queue versions (in code order) and then the board's, on the pizzeria
/// row; a reconfiguration that took the pizzeria row first and then waited for a station could
/// wait on a tap that waits on it.
#[tracing::instrument(skip(conn))]
pub async fn lock_stations(conn: &mut PgConnection, pizzeria_id: Uuid) -> anyhow::Result<()> {
    sqlx::query("select 1 from stations where pizzeria_id = $1 order by code for update")
        .bind(pizzeria_id)
        .execute(conn)
        .await
        .context("cannot lock the stations")?;
    Ok(())
}

#[tracing::instrument(skip(conn, name))]
pub async fn upsert_station(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    code: &StationCode,
    name: &StationName,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into stations (pizzeria_id, code, name) values ($1, $2, $3)
         on conflict (pizzeria_id, code) do update set name = excluded.name",
    )
    .bind(pizzeria_id)
    .bind(code.as_str())
    .bind(name.as_str())
    .execute(conn)
    .await
    .context("cannot save the station")?;
    Ok(())
}

#[tracing::instrument(skip(db))]
pub async fn list_stations(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
) -> anyhow::Result<Vec<StationRow>> {
    // In the order a product meets them: by the deepest position any route gives a station
    // (oven is third for a pizza though first for a side), so every list reads dough,
    // topping, oven, packing; stations on no route come last.
    sqlx::query_as(
        "select s.code, s.name, s.queue_version from stations s
         where s.pizzeria_id = $1
         order by (select max(r.position) from routes r
                   where r.pizzeria_id = s.pizzeria_id and r.station_code = s.code) nulls last,
                  s.code",
    )
    .bind(pizzeria_id)
    .fetch_all(db)
    .await
    .context("cannot list the stations")
}

/// Replaces the route of one category. The caller has checked that every station exists.
#[tracing::instrument(skip(conn, route))]
pub async fn replace_route(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    category: ProductCategory,
    route: &Route,
) -> anyhow::Result<()> {
    sqlx::query("delete from routes where pizzeria_id = $1 and category = $2")
        .bind(pizzeria_id)
        .bind(category.as_str())
        .execute(&mut *conn)
        .await
        .context("cannot clear the old route")?;
    let stations: Vec<&str> = route.stages().iter().map(|s| s.station.as_str()).collect();
    let targets: Vec<i32> = route
        .stages()
        .iter()
        .map(|s| i32::try_from(s.target_seconds).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(
        "insert into routes (pizzeria_id, category, position, station_code, target_seconds)
         select $1, $2, s.ordinality - 1, s.station, t.target
         from unnest($3::text[]) with ordinality as s (station, ordinality)
         join unnest($4::int[]) with ordinality as t (target, ordinality) using (ordinality)",
    )
    .bind(pizzeria_id)
    .bind(category.as_str())
    .bind(&stations)
    .bind(&targets)
    .execute(conn)
    .await
    .context("cannot save the route")?;
    Ok(())
}

/// Every route of the pizzeria by category, stages in order.
#[tracing::instrument(skip(db))]
pub async fn routes_of(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
) -> anyhow::Result<HashMap<String, Vec<RouteStageRow>>> {
    let rows: Vec<RouteStageRow> = sqlx::query_as(
        "select category, position, station_code, target_seconds from routes
         where pizzeria_id = $1 order by category, position",
    )
    .bind(pizzeria_id)
    .fetch_all(db)
    .await
    .context("cannot read the routes")?;
    let mut routes: HashMap<String, Vec<RouteStageRow>> = HashMap::new();
    for row in rows {
        routes.entry(row.category.clone()).or_default().push(row);
    }
    Ok(routes)
}

/// The queue version of one station, or `None` when the pizzeria has no such station. A poll
/// reads it when the in-memory map (`crate::versions`) cannot answer, so it must stay a
/// primary-key lookup.
#[tracing::instrument(skip(db))]
pub async fn station_queue_version(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
    code: &str,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar("select queue_version from stations where pizzeria_id = $1 and code = $2")
        .bind(pizzeria_id)
        .bind(code)
        .fetch_optional(db)
        .await
        .context("cannot read the station's queue version")
}

/// The board version, or `None` for an unknown pizzeria; a primary-key lookup like the above.
#[tracing::instrument(skip(db))]
pub async fn board_version(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar("select board_version from pizzerias where id = $1")
        .bind(pizzeria_id)
        .fetch_optional(db)
        .await
        .context("cannot read the board version")
}

/// Invalidates the cached queues of `codes` and returns their new versions. Sorted codes in one
/// statement take the row locks in one order, so two transactions touching the same stations
/// cannot deadlock.
#[tracing::instrument(skip(conn))]
pub async fn bump_queue_versions(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    codes: &[String],
) -> anyhow::Result<Vec<(String, i64)>> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "update stations set queue_version = queue_version + 1
         where pizzeria_id = $1 and code = any($2)
         returning code, queue_version",
    )
    .bind(pizzeria_id)
    .bind(codes)
    .fetch_all(conn)
    .await
    .context("cannot bump the queue versions")
}

/// Bumps the board version and returns the new one (`None` for an unknown pizzeria).
#[tracing::instrument(skip(conn))]
pub async fn bump_board_version(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "update pizzerias set board_version = board_version + 1 where id = $1
         returning board_version",
    )
    .bind(pizzeria_id)
    .fetch_optional(conn)
    .await
    .context("cannot bump the board version")
}

/// Whether some route of the pizzeria ends at `code`: a station where orders are finished
/// (packing), whose tablet stands at the counter.
#[tracing::instrument(skip(db))]
pub async fn is_final_station(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
    code: &str,
) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from routes r
                        where r.pizzeria_id = $1 and r.station_code = $2
                          and r.position = (select max(x.position) from routes x
                                            where x.pizzeria_id = r.pizzeria_id
                                              and x.category = r.category))",
    )
    .bind(pizzeria_id)
    .bind(code)
    .fetch_one(db)
    .await
    .context("cannot read whether the station finishes orders")
}
