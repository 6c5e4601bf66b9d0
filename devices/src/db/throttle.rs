//! The budget for entering user codes (RFC 8628 §5.1), per staff session and per client IP.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Counts one entry against `key` in a fixed window; returns the count in the current window
/// and when that window ends.
#[tracing::instrument(skip(conn))]
pub async fn count_lookup(
    conn: &mut PgConnection,
    key: &str,
    window_secs: f64,
) -> Result<(i32, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as(
        "insert into code_lookups (key, window_started_at, lookups) values ($1, now(), 1) \
         on conflict (key) do update set \
           lookups = case when code_lookups.window_started_at > now() - make_interval(secs => $2) \
                          then code_lookups.lookups + 1 else 1 end, \
           window_started_at = case when code_lookups.window_started_at > now() - make_interval(secs => $2) \
                          then code_lookups.window_started_at else now() end \
         returning lookups, window_started_at + make_interval(secs => $2)",
    )
    .bind(key)
    .bind(window_secs)
    .fetch_one(conn)
    .await
}
