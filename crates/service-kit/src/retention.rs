//! Scheduled pruning of what a service keeps only for a while (expired pairing requests, ended
//! sessions, closed throttle windows), so its tables do not grow without end. The pattern is the
//! bus's (`bus::retention`, for the outbox and inbox): a delete in chunks, so a prune after a
//! busy day never holds one huge transaction, and several instances pruning at once only share
//! the work; every few minutes, on a timer of its own.

use std::{future::Future, time::Duration};

use sqlx::PgPool;

use crate::shutdown::Shutdown;

/// Rows deleted per statement.
pub const CHUNK: i64 = 10_000;

/// How often a service prunes.
pub const EVERY: Duration = Duration::from_secs(10 * 60);

/// Runs `statement`, a delete of at most `$2` rows that are at least `$1` seconds past what
/// makes them deletable, until it deletes less than a chunk. Returns how many rows went.
pub async fn delete_in_chunks(
    pool: &PgPool,
    statement: &'static str,
    keep: Duration,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(statement)
            .bind(keep.as_secs_f64())
            .bind(CHUNK)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        if deleted < CHUNK.unsigned_abs() {
            return Ok(total);
        }
    }
}

/// Runs `prune` at once and then every `every` until shutdown. A failure (the database away)
/// is logged and tried again next time: nothing is lost by pruning later.
pub async fn run_every<F, Fut>(
    every: Duration,
    shutdown: Shutdown,
    what: &'static str,
    mut prune: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<u64>>,
{
    loop {
        match prune().await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(what, deleted, "pruned"),
            Err(e) => tracing::warn!(
                what,
                error = format!("{e:#}"),
                "pruning failed; trying again later"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait() => return,
        }
    }
}
