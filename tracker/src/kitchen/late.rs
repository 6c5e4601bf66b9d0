//! The late-order sweeper: flags orders that ran past their target time, once each.

use std::time::Duration;

use anyhow::Context;
use contracts::OrderRunningLate;
use service_kit::shutdown::Shutdown;
use sqlx::PgPool;

use crate::db::{orders, timeline::NewEntry};

use super::{
    Kitchen,
    change::{Bumps, OrderChange},
};

/// Flags up to `batch` overdue orders in one transaction and emits `OrderRunningLate` for
/// each; returns how many it flagged. Several tracker instances may sweep at once: each skips
/// the orders another has locked.
#[tracing::instrument(skip(pool, kitchen))]
pub async fn flag_late_orders(
    pool: &PgPool,
    kitchen: &Kitchen,
    batch: i64,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await.context("cannot start the sweep")?;
    let now = chrono::Utc::now();
    let overdue = orders::lock_overdue_orders(&mut tx, now, batch).await?;
    let mut bumps = Bumps::default();
    for order in &overdue {
        let status = order.status()?;
        let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
        orders::flag_late(&mut tx, order.id).await?;
        let event = OrderRunningLate {
            order_id: order.id,
            pizzeria_id: order.pizzeria_id,
            at: change.now,
            target_seconds: u32::try_from(order.target_seconds).unwrap_or(0),
        };
        change.emit(&mut tx, &event, NewEntry::default()).await?;
        // The board and the station queues show the late flag.
        change.touch_board();
        for station in crate::db::products::stations_of_order(&mut tx, order.id).await? {
            change.touch_station(&station);
        }
        change.finish_into(&mut tx, status, &mut bumps).await?;
    }
    bumps.apply(&mut tx, kitchen).await?;
    tx.commit().await.context("cannot commit the sweep")?;
    Ok(overdue.len())
}

/// Runs the sweep every `interval` until shutdown.
pub struct LateSweeper {
    pub pool: PgPool,
    pub kitchen: Kitchen,
    pub interval: Duration,
    pub batch: i64,
    pub shutdown: Shutdown,
}

impl LateSweeper {
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.wait() => break,
                _ = ticker.tick() => {}
            }
            match flag_late_orders(&self.pool, &self.kitchen, self.batch).await {
                Ok(0) => {}
                Ok(flagged) => tracing::info!(flagged, "flagged late orders"),
                // The database may be restarting; the next tick tries again.
                Err(e) => tracing::warn!(error = format!("{e:#}"), "late sweep failed"),
            }
        }
    }
}
