//! Brute-force defence: lockouts per (login, client IP) and a failure budget per client IP.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::config::LoginSettings;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Until when the IP may not try at all, if it spent its failure budget in the current window.
#[tracing::instrument(skip(conn, settings))]
pub async fn ip_blocked_until(
    conn: &mut PgConnection,
    ip: &str,
    settings: &LoginSettings,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let row: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "select window_started_at + make_interval(secs => $2) from ip_failures \
         where ip = $1 and failures >= $3 \
           and window_started_at > now() - make_interval(secs => $2)",
    )
    .bind(ip)
    .bind(secs(Duration::from_millis(settings.ip_window_ms)))
    .bind(settings.ip_max_failures)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(until,)| until))
}

/// Counts a failure against the IP's budget, starting a new window when the last one is over.
#[tracing::instrument(skip(conn, settings))]
pub async fn count_ip_failure(
    conn: &mut PgConnection,
    ip: &str,
    settings: &LoginSettings,
) -> Result<i32, sqlx::Error> {
    let (failures,): (i32,) = sqlx::query_as(
        "insert into ip_failures (ip, window_started_at, failures) values ($1, now(), 1) \
         on conflict (ip) do update set \
           failures = case when ip_failures.window_started_at > now() - make_interval(secs => $2) \
                           then ip_failures.failures + 1 else 1 end, \
           window_started_at = case when ip_failures.window_started_at > now() - make_interval(secs => $2) \
                           then ip_failures.window_started_at else now() end \
         returning failures",
    )
    .bind(ip)
    .bind(secs(Duration::from_millis(settings.ip_window_ms)))
    .fetch_one(conn)
    .await?;
    Ok(failures)
}

/// Until when this login is locked for this IP, if it is.
#[tracing::instrument(skip(conn))]
pub async fn locked_until(
    conn: &mut PgConnection,
    login: &str,
    ip: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let row: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "select locked_until from login_failures \
         where login = $1 and ip = $2 and locked_until > now()",
    )
    .bind(login)
    .bind(ip)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(until,)| until))
}

/// A failed attempt for (login, ip). Returns the lockout it started, if it reached the limit.
#[tracing::instrument(skip(conn, settings))]
pub async fn count_login_failure(
    conn: &mut PgConnection,
    login: &str,
    ip: &str,
    settings: &LoginSettings,
) -> Result<Option<Duration>, sqlx::Error> {
    // A long quiet spell forgets earlier lockouts, so the growth does not last forever.
    let (failures, lockouts): (i32, i32) = sqlx::query_as(
        "insert into login_failures (login, ip, failures, last_failure_at) values ($1, $2, 1, now()) \
         on conflict (login, ip) do update set \
           failures = case when login_failures.last_failure_at < now() - make_interval(secs => $3) \
                           then 1 else login_failures.failures + 1 end, \
           lockouts = case when login_failures.last_failure_at < now() - make_interval(secs => $3) \
                           then 0 else login_failures.lockouts end, \
           last_failure_at = now() \
         returning failures, lockouts",
    )
    .bind(login)
    .bind(ip)
    .bind(secs(Duration::from_millis(settings.failure_memory_ms)))
    .fetch_one(&mut *conn)
    .await?;
    if failures < settings.max_failures {
        return Ok(None);
    }
    let lockout = settings.lockout(lockouts);
    sqlx::query(
        "update login_failures set failures = 0, lockouts = lockouts + 1, \
         locked_until = now() + make_interval(secs => $3) where login = $1 and ip = $2",
    )
    .bind(login)
    .bind(ip)
    .bind(secs(lockout))
    .execute(conn)
    .await?;
    Ok(Some(lockout))
}

/// A successful login clears the pair's failures and lockout history.
#[tracing::instrument(skip(conn))]
pub async fn clear_login_failures(
    conn: &mut PgConnection,
    login: &str,
    ip: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from login_failures where login = $1 and ip = $2")
        .bind(login)
        .bind(ip)
        .execute(conn)
        .await?;
    Ok(())
}
