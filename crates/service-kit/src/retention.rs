//! Scheduled pruning of what a service keeps only for a while (expired pairing requests, ended
//! sessions, closed throttle windows), so its tables do not grow without end. The pattern is the
//! bus's (`bus::retention`, for the outbox and inbox): a delete in chunks, so a prune after a
//! busy day never holds one huge transaction; every few minutes, on a timer of its own, in the
//! replica that leads the job (`leader`).

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

/// Runs `prune` at once and then every `every` until shutdown, in one replica of the service
/// at a time: under a [`Leader`](crate::leader::Leader) named `what`, so replicas do not all
/// delete the same rows every time. A failure (the database away) is logged and tried again
/// next time: nothing is lost by pruning later.
pub async fn run_every<F, Fut>(
    pool: PgPool,
    every: Duration,
    shutdown: Shutdown,
    what: &'static str,
    mut prune: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<u64>>,
{
    // One prune and the wait after it; the leader starts the job again when it returns.
    crate::leader::Leader::new(pool, what, shutdown)
        .run(|| {
            let pruned = prune();
            async move {
                match pruned.await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(what, deleted, "pruned"),
                    Err(e) => tracing::warn!(
                        what,
                        error = format!("{e:#}"),
                        "pruning failed; trying again later"
                    ),
                }
                tokio::time::sleep(every).await;
            }
        })
        .await;
}
