//! Pruning ended sessions, so the sessions table holds what may still be used and not every
//! sign-in ever. A session is dead at its absolute end at the latest (revoked and idle ones
//! earlier), so one deleted `sessions.retention_ms` after `expires_at` can never be live: live
//! sessions are never touched. The audit log names sessions by id without a foreign key, and
//! keeps its rows.

use anyhow::Context;
use service_kit::retention::delete_in_chunks;
use sqlx::PgPool;

use crate::config::SessionSettings;

/// Deletes sessions long past their end; returns how many.
pub async fn prune_sessions(pool: &PgPool, sessions: &SessionSettings) -> anyhow::Result<u64> {
    delete_in_chunks(
        pool,
        "delete from sessions where id in (select id from sessions \
         where expires_at < now() - make_interval(secs => $1) order by expires_at limit $2)",
        sessions.retention(),
    )
    .await
    .context("pruning ended sessions")
}
