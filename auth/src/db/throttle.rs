//! Brute-force defence: lockouts per (login, client IP) and a failure budget per client IP.
//!
//! An attempt is *reserved* before its password is verified: it counts as a failure from the
//! moment it starts, in one transaction that locks the rows it counts on, and a success gives
//! it back. Counting after the (slow) verification instead would let every attempt started
//! before the first one finished pass the check, so 200 parallel guesses would all run against
//! a five-attempt limit.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::config::LoginSettings;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Why an attempt may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The IP spent its failure budget for the current window.
    IpThrottled { until: DateTime<Utc> },
    /// This login is locked for this IP.
    LoginLocked { until: DateTime<Utc> },
}

/// An attempt that may go ahead; it already counts as a failure.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    /// The IP's failures in the current window, this attempt included.
    pub ip_failures: i32,
    /// The lockout this attempt started, being the last one the pair had.
    pub lockout: Option<Duration>,
}

/// Counts an attempt against the IP's budget and the (login, IP) pair before it is verified.
/// Run it in a transaction and roll back on a refusal, so a refused attempt counts nowhere.
#[tracing::instrument(skip(tx, settings))]
pub async fn reserve_attempt(
    tx: &mut PgConnection,
    login: &str,
    ip: &str,
    settings: &LoginSettings,
) -> Result<Result<Reservation, Refusal>, sqlx::Error> {
    let ip_failures = match reserve_ip_attempt(tx, ip, settings).await? {
        Ok(failures) => failures,
        Err(until) => return Ok(Err(Refusal::IpThrottled { until })),
    };
    match reserve_login_attempt(tx, login, ip, settings).await? {
        Ok(lockout) => Ok(Ok(Reservation {
            ip_failures,
            lockout,
        })),
        Err(until) => Ok(Err(Refusal::LoginLocked { until })),
    }
}

/// One more attempt in the IP's window, unless the window's budget is spent (then until when).
async fn reserve_ip_attempt(
    tx: &mut PgConnection,
    ip: &str,
    settings: &LoginSettings,
) -> Result<Result<i32, DateTime<Utc>>, sqlx::Error> {
    let window = secs(Duration::from_millis(settings.ip_window_ms));
    // The upsert locks the row; its `where` refuses the update once the window's budget is
    // spent, and then nothing is returned.
    let counted: Option<(i32,)> = sqlx::query_as(
        "insert into ip_failures (ip, window_started_at, failures) values ($1, now(), 1) \
         on conflict (ip) do update set \
           failures = case when ip_failures.window_started_at > now() - make_interval(secs => $2) \
                           then ip_failures.failures + 1 else 1 end, \
           window_started_at = case when ip_failures.window_started_at > now() - make_interval(secs => $2) \
                           then ip_failures.window_started_at else now() end \
         where ip_failures.window_started_at <= now() - make_interval(secs => $2) \
            or ip_failures.failures < $3 \
         returning failures",
    )
    .bind(ip)
    .bind(window)
    .bind(settings.ip_max_failures)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((failures,)) = counted {
        return Ok(Ok(failures));
    }
    let (until,): (DateTime<Utc>,) = sqlx::query_as(
        "select window_started_at + make_interval(secs => $2) from ip_failures where ip = $1",
    )
    .bind(ip)
    .bind(window)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Err(until))
}

#[derive(sqlx::FromRow)]
struct PairRow {
    failures: i32,
    lockouts: i32,
    locked_until: Option<DateTime<Utc>>,
    last_failure_at: DateTime<Utc>,
}

/// One more attempt for (login, ip), unless the pair is locked (then until when). The attempt
/// that reaches `max_failures` locks the pair at once, before it is verified, so no further
/// attempt starts while it runs; if it turns out right, the success clears the lockout.
async fn reserve_login_attempt(
    tx: &mut PgConnection,
    login: &str,
    ip: &str,
    settings: &LoginSettings,
) -> Result<Result<Option<Duration>, DateTime<Utc>>, sqlx::Error> {
    sqlx::query(
        "insert into login_failures (login, ip, failures, last_failure_at) \
         values ($1, $2, 0, now()) on conflict (login, ip) do nothing",
    )
    .bind(login)
    .bind(ip)
    .execute(&mut *tx)
    .await?;
    let pair: PairRow = sqlx::query_as(
        "select failures, lockouts, locked_until, last_failure_at from login_failures \
         where login = $1 and ip = $2 for update",
    )
    .bind(login)
    .bind(ip)
    .fetch_one(&mut *tx)
    .await?;
    let now = Utc::now();
    if let Some(until) = pair.locked_until.filter(|until| *until > now) {
        return Ok(Err(until));
    }
    // A long quiet spell forgets earlier failures and lockouts, so the growth does not last
    // forever.
    let memory = chrono::Duration::milliseconds(
        i64::try_from(settings.failure_memory_ms).unwrap_or(i64::MAX),
    );
    let forgotten = pair.last_failure_at < now - memory;
    let (failures, lockouts) = if forgotten {
        (1, 0)
    } else {
        (pair.failures + 1, pair.lockouts)
    };
    let lockout = (failures >= settings.max_failures).then(|| settings.lockout(lockouts));
    sqlx::query(
        "update login_failures set \
           failures = $3, lockouts = $4, last_failure_at = now(), \
           locked_until = case when $5::float8 is null then null \
                               else now() + make_interval(secs => $5) end \
         where login = $1 and ip = $2",
    )
    .bind(login)
    .bind(ip)
    .bind(if lockout.is_some() { 0 } else { failures })
    .bind(if lockout.is_some() {
        lockouts + 1
    } else {
        lockouts
    })
    .bind(lockout.map(secs))
    .execute(&mut *tx)
    .await?;
    Ok(Ok(lockout))
}

/// A successful login: the pair's failures and lockout history go, and the attempt is given
/// back to the IP's budget (only failures spend it).
#[tracing::instrument(skip(conn))]
pub async fn clear_after_success(
    conn: &mut PgConnection,
    login: &str,
    ip: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from login_failures where login = $1 and ip = $2")
        .bind(login)
        .bind(ip)
        .execute(&mut *conn)
        .await?;
    sqlx::query("update ip_failures set failures = greatest(failures - 1, 0) where ip = $1")
        .bind(ip)
        .execute(conn)
        .await?;
    Ok(())
}
