//! Pruning what the bus keeps only for a while, so its tables do not grow without end:
//! published outbox rows (the outbox is a queue, not an archive) and inbox ids (kept only as
//! long as a duplicate of the event can still arrive).
//!
//! Deletes go in chunks in index order, so a prune after a busy day never holds one huge
//! transaction. One replica prunes at a time: the outbox under the relay's lock, the inbox
//! under a leader of its own (`service_kit::leader`).

use std::time::Duration;

use sqlx::PgPool;

/// Rows deleted per statement.
const CHUNK: i64 = 10_000;

/// How often the relay and the consumer's pruning leader prune.
pub const EVERY: Duration = Duration::from_secs(10 * 60);

/// Deletes outbox rows published longer than `keep` ago. Returns how many.
pub async fn prune_outbox(pool: &PgPool, keep: Duration) -> Result<u64, sqlx::Error> {
    // Old rows sit at the low end of the primary key; the scan by id finds them at once.
    prune(
        pool,
        "delete from outbox where id in (select id from outbox \
         where published_at < now() - make_interval(secs => $1) order by id limit $2)",
        None,
        keep,
    )
    .await
}

/// Deletes the inbox ids `consumer` recorded longer than `keep` ago. Returns how many.
pub async fn prune_inbox(
    pool: &PgPool,
    consumer: &str,
    keep: Duration,
) -> Result<u64, sqlx::Error> {
    prune(
        pool,
        "delete from inbox where (consumer, event_id) in (select consumer, event_id from inbox \
         where processed_at < now() - make_interval(secs => $1) and consumer = $3 limit $2)",
        Some(consumer),
        keep,
    )
    .await
}

async fn prune(
    pool: &PgPool,
    statement: &'static str,
    consumer: Option<&str>,
    keep: Duration,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut query = sqlx::query(statement).bind(keep.as_secs_f64()).bind(CHUNK);
        if let Some(consumer) = consumer {
            query = query.bind(consumer);
        }
        let deleted = query.execute(pool).await?.rows_affected();
        total += deleted;
        if deleted < CHUNK as u64 {
            return Ok(total);
        }
    }
}
