//! The bookkeeping every change to an order shares: event sequence, timeline, version bumps.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use contracts::Event;
use sqlx::PgConnection;
use uuid::Uuid;

use anyhow::Context;

use crate::{
    db::{orders, pizzerias, timeline},
    domain::OrderStatus,
};

use super::Kitchen;

/// A change in progress to one locked order. Events get the next sequence numbers of the
/// order; stations and the board are bumped once, at the end, so the hot version rows are
/// locked for as short a time as possible.
pub(crate) struct OrderChange<'k> {
    kitchen: &'k Kitchen,
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub now: DateTime<Utc>,
    version: i64,
    stations: BTreeSet<String>,
    board: bool,
}

impl<'k> OrderChange<'k> {
    /// `version` is the order's current version: the sequence of its last event.
    pub fn new(kitchen: &'k Kitchen, order_id: Uuid, pizzeria_id: Uuid, version: i64) -> Self {
        OrderChange {
            kitchen,
            order_id,
            pizzeria_id,
            now: Utc::now(),
            version,
            stations: BTreeSet::new(),
            board: false,
        }
    }

    /// Stages `event` with the order's next sequence number and writes it to the timeline.
    pub async fn emit<E: Event>(
        &mut self,
        conn: &mut PgConnection,
        event: &E,
        entry: timeline::NewEntry<'_>,
    ) -> anyhow::Result<()> {
        self.version += 1;
        self.kitchen
            .outbox
            .stage(&mut *conn, self.version, event)
            .await
            .with_context(|| format!("staging {}", E::TYPE))?;
        let detail = serde_json::to_value(event).context("serialising the timeline detail")?;
        timeline::record(conn, self.order_id, self.now, E::TYPE, &entry, &detail).await
    }

    /// The queue of `station` changed.
    pub fn touch_station(&mut self, station: &str) {
        self.stations.insert(station.to_owned());
    }

    /// The TV board changed.
    pub fn touch_board(&mut self) {
        self.board = true;
    }

    /// Saves the status and version and bumps the queues and the board that changed.
    pub async fn finish(self, conn: &mut PgConnection, status: OrderStatus) -> anyhow::Result<()> {
        orders::save_order_state(&mut *conn, self.order_id, status, self.version, self.now).await?;
        let stations: Vec<String> = self.stations.into_iter().collect();
        pizzerias::bump_queue_versions(&mut *conn, self.pizzeria_id, &stations).await?;
        if self.board {
            pizzerias::bump_board_version(conn, self.pizzeria_id).await?;
        }
        Ok(())
    }
}
