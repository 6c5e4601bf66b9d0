//! The sweeper: fires held pre-orders whose time has come, and flags orders that ran past their
//! target time, once each. Its state is the orders table itself (`fires_at`, `late`), so a
//! restart loses nothing. One replica sweeps at a time, the one that leads the sweep
//! (`service_kit::leader`); `for update skip locked` keeps it safe should two briefly overlap
//! while the lead changes hands.

use std::time::Duration;

use anyhow::Context;
use contracts::{OrderFired, OrderRunningLate};
use service_kit::{leader::Leader, shutdown::Shutdown};
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
        change.emit(&event, NewEntry::default())?;
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

/// Fires up to `batch` held pre-orders whose `fires_at` has come, in one transaction: their
/// products go to their first stations and `OrderFired` is staged with the change. Returns how
/// many it fired.
#[tracing::instrument(skip(pool, kitchen))]
pub async fn fire_pre_orders(
    pool: &PgPool,
    kitchen: &Kitchen,
    batch: i64,
) -> anyhow::Result<usize> {
    let mut tx = pool
        .begin()
        .await
        .context("cannot start firing pre-orders")?;
    let now = chrono::Utc::now();
    let due = orders::lock_orders_to_fire(&mut tx, now, batch).await?;
    let mut bumps = Bumps::default();
    for order in &due {
        let status = order.status()?;
        let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
        orders::mark_fired(&mut tx, order.id).await?;
        // A cancelled pre-order is only released from its hold: nothing goes to a station.
        if status.ensure_open().is_err() {
            change.finish_into(&mut tx, status, &mut bumps).await?;
            continue;
        }
        let stations = crate::db::products::fire_products(&mut tx, order.id, change.now).await?;
        let event = OrderFired {
            order_id: order.id,
            pizzeria_id: order.pizzeria_id,
            fired_at: change.now,
            promised_at: order.promised_at.unwrap_or(change.now),
            stations: stations.clone(),
        };
        change.emit(&event, NewEntry::default())?;
        change.touch_board();
        for station in &stations {
            change.touch_station(station);
        }
        change.finish_into(&mut tx, status, &mut bumps).await?;
    }
    bumps.apply(&mut tx, kitchen).await?;
    tx.commit()
        .await
        .context("cannot commit the fired pre-orders")?;
    Ok(due.len())
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
    /// Sweeps while this replica leads the sweep (`service_kit::leader`), until shutdown.
    pub async fn run(self) {
        let leader = Leader::new(self.pool.clone(), "late-sweeper", self.shutdown.clone());
        let sweeper = &self;
        leader.run(|| sweeper.sweep()).await;
    }

    /// Sweeps every `interval`; ends only when the leader drops it.
    async fn sweep(&self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match fire_pre_orders(&self.pool, &self.kitchen, self.batch).await {
                Ok(0) => {}
                Ok(fired) => tracing::info!(fired, "fired pre-orders"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "firing pre-orders failed"),
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
