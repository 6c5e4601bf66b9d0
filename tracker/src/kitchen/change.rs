//! The bookkeeping every change to an order shares: event sequence, timeline, version bumps.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use contracts::Event;
use sqlx::PgConnection;
use uuid::Uuid;

use anyhow::Context;

use crate::{
    db::{orders, pizzerias, timeline},
    domain::OrderStatus,
    versions::VersionKey,
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
        let kitchen = self.kitchen;
        let mut bumps = Bumps::default();
        self.finish_into(conn, status, &mut bumps).await?;
        bumps.apply(conn, kitchen).await
    }

    /// Saves the status and version, and leaves the bumps to the caller, who applies those of
    /// several changes at once.
    pub async fn finish_into(
        self,
        conn: &mut PgConnection,
        status: OrderStatus,
        bumps: &mut Bumps,
    ) -> anyhow::Result<()> {
        orders::save_order_state(conn, self.order_id, status, self.version, self.now).await?;
        let entry = bumps.by_pizzeria.entry(self.pizzeria_id).or_default();
        entry.0.extend(self.stations);
        entry.1 |= self.board;
        Ok(())
    }
}

/// Version bumps to apply at the end of a transaction. Every transaction bumps in the same
/// order (pizzerias by id; per pizzeria its stations sorted by code in one statement, then its
/// board), so two transactions never wait for each other's version rows in a cycle.
#[derive(Default)]
pub(crate) struct Bumps {
    by_pizzeria: BTreeMap<Uuid, (BTreeSet<String>, bool)>,
}

impl Bumps {
    /// Bumps the versions and tells this process's version map which ones are about to commit,
    /// so its own next poll of them reads the database rather than an older version from
    /// memory (`crate::versions`).
    pub async fn apply(self, conn: &mut PgConnection, kitchen: &Kitchen) -> anyhow::Result<()> {
        for (pizzeria_id, (stations, board)) in self.by_pizzeria {
            let stations: Vec<String> = stations.into_iter().collect();
            for (code, version) in
                pizzerias::bump_queue_versions(&mut *conn, pizzeria_id, &stations).await?
            {
                kitchen
                    .versions
                    .expect(VersionKey::Station { pizzeria_id, code }, version);
            }
            if board
                && let Some(version) =
                    pizzerias::bump_board_version(&mut *conn, pizzeria_id).await?
            {
                kitchen
                    .versions
                    .expect(VersionKey::Board(pizzeria_id), version);
            }
        }
        Ok(())
    }
}
