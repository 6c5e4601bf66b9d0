//! What the load generator reads from the legacy database: the sync worker's inbox and the
//! history rows it wrote for this run's taps.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::time::{Instant, sleep};
use uuid::Uuid;

use crate::stats::Summary;

pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connecting to the legacy database")
}

/// This run's pizzerias: their ids are consecutive, so a range names them all.
pub struct PizzeriaRange {
    pub first: Uuid,
    pub last: Uuid,
}

/// How long after a tap its `order_history` row was committed.
pub struct TapLag {
    /// Successful, non-repeated taps: each should become one history row.
    pub expected: u64,
    /// Whether every expected row arrived before the settle time ran out.
    pub settled: bool,
    /// In microseconds.
    pub summary: Summary,
}

/// Stage-completed rows of this run: taps in the run's pizzerias within its time window. A
/// macro, so the queries that use it stay `&'static str` as sqlx wants.
macro_rules! run_rows {
    () => {
        " from order_history h
          join orders o on o.id = h.order_id
          join inbox i on i.event_id = h.event_id
          where h.stage = 'completed'
            and h.happened_at between $1 and $2
            and o.unit_id between $3 and $4"
    };
}

/// Waits (up to `settle`) until the worker has mirrored `expected` taps of the run, then
/// measures each row's lag: `inbox.processed_at` (the worker's transaction) minus
/// `order_history.happened_at` (the tap).
pub async fn wait_for_tap_rows(
    pool: &PgPool,
    range: &PizzeriaRange,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    expected: u64,
    settle: Duration,
) -> anyhow::Result<TapLag> {
    let give_up = Instant::now() + settle;
    let count_sql = concat!("select count(*)", run_rows!());
    let mut settled = false;
    loop {
        let mirrored: i64 = sqlx::query_scalar(count_sql)
            .bind(from)
            .bind(to)
            .bind(range.first)
            .bind(range.last)
            .fetch_one(pool)
            .await
            .context("counting the run's history rows")?;
        if u64::try_from(mirrored).unwrap_or(0) >= expected {
            settled = true;
            break;
        }
        if Instant::now() >= give_up {
            break;
        }
        sleep(Duration::from_millis(500)).await;
    }
    let lag_sql = concat!(
        "select greatest(0, (extract(epoch from (i.processed_at - h.happened_at)) * 1000000)::bigint)",
        run_rows!()
    );
    let lags: Vec<i64> = sqlx::query_scalar(lag_sql)
        .bind(from)
        .bind(to)
        .bind(range.first)
        .bind(range.last)
        .fetch_all(pool)
        .await
        .context("reading the run's tap lags")?;
    Ok(TapLag {
        expected,
        settled,
        summary: Summary::of_unsorted(
            lags.into_iter()
                .map(|l| u64::try_from(l).unwrap_or(0))
                .collect(),
        ),
    })
}

pub async fn inbox_rows(pool: &PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar("select count(*) from inbox")
        .fetch_one(pool)
        .await
        .context("counting the inbox")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Rows ever inserted into the inbox, by PostgreSQL's statistics: cheap enough to poll while
/// the worker drains (a `count(*)` of a million rows is not), but up to a second behind.
pub async fn inbox_inserts(pool: &PgPool) -> anyhow::Result<u64> {
    let n: Option<i64> = sqlx::query_scalar(
        "select n_tup_ins from pg_stat_user_tables where relname = 'inbox' limit 1",
    )
    .fetch_optional(pool)
    .await
    .context("reading the inbox statistics")?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

/// The time between the first and the last of the newest `n` inbox rows, by the worker's own
/// `processed_at`: the drain time as the database saw it.
pub async fn newest_span(pool: &PgPool, n: u64) -> anyhow::Result<Option<Duration>> {
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let span: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from (max(processed_at) - min(processed_at)))::float8
         from (select processed_at from inbox order by processed_at desc limit $1) newest",
    )
    .bind(limit)
    .fetch_one(pool)
    .await
    .context("reading the drain's time span")?;
    Ok(span.and_then(|s| Duration::try_from_secs_f64(s).ok()))
}
