//! Pruning what the devices service keeps only for a while: pairing requests long expired that
//! no device came from, and code-entry and pairing budgets whose window has closed. What is still
//! needed stays: a live request (its code can still be entered or exchanged), the request a
//! device came from (`devices.authorization_id` points at it, and it records who approved the
//! device), and a budget whose window is open (the throttles read it).

use std::time::Duration;

use anyhow::Context;
use service_kit::retention::delete_in_chunks;
use sqlx::PgPool;

use crate::config::Settings;

/// Deletes what has ended; returns how many rows went.
pub async fn prune(pool: &PgPool, settings: &Settings) -> anyhow::Result<u64> {
    let requests = delete_in_chunks(
        pool,
        "delete from device_authorizations where id in (select a.id from device_authorizations a \
         where a.expires_at < now() - make_interval(secs => $1) \
           and not exists (select 1 from devices d where d.authorization_id = a.id) \
         order by a.expires_at limit $2)",
        settings.retention.pairing_requests(),
    )
    .await
    .context("pruning expired pairing requests")?;
    // A budget counts for nothing once its window has closed (the next entry starts a new
    // one), so it goes then; the longest window of the two budgets that share the table.
    let window: Duration = settings.approval.window().max(settings.pairing.window());
    let budgets = delete_in_chunks(
        pool,
        "delete from code_lookups where key in (select key from code_lookups \
         where window_started_at < now() - make_interval(secs => $1) limit $2)",
        window,
    )
    .await
    .context("pruning closed code-entry windows")?;
    Ok(requests + budgets)
}
