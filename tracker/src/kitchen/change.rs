//! The bookkeeping every change to an order shares: event sequence, timeline, version bumps.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use contracts::Event;
use sqlx::PgConnection;
use uuid::Uuid;

use anyhow::Context;

use crate::{
    db::{pizzerias, timeline},
    domain::{Actor, OrderStatus},
    versions::VersionKey,
};

use super::Kitchen;

/// A change in progress to one locked order. Events get the next sequence numbers of the
/// order; stations and the board are bumped once, at the end, so the hot version rows are
/// locked for as short a time as possible.
///
/// Events are kept here until [`OrderChange::finish`], which writes them, their timeline entries,
/// the order's state and the bumps in one call of `finish_order_change` (one round trip instead
/// of one per row: docs/BENCHMARKS.md). Every change ends with `finish` or `finish_into`.
pub(crate) struct OrderChange<'k> {
    kitchen: &'k Kitchen,
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub now: DateTime<Utc>,
    version: i64,
    stations: BTreeSet<String>,
    board: bool,
    events: Emitted,
}

/// The emitted events and their timeline entries, column by column, as the function takes them.
#[derive(Default)]
struct Emitted {
    event_ids: Vec<Uuid>,
    routing_keys: Vec<String>,
    payloads: Vec<String>,
    kinds: Vec<&'static str>,
    stations: Vec<Option<String>>,
    product_ids: Vec<Option<Uuid>>,
    actors: Vec<Option<String>>,
    actor_user_ids: Vec<Option<Uuid>>,
    principals: Vec<Option<String>>,
    details: Vec<String>,
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
            events: Emitted::default(),
        }
    }

    /// Gives `event` the order's next sequence number; it is staged, with its timeline entry,
    /// when the change finishes.
    pub fn emit<E: Event>(
        &mut self,
        event: &E,
        entry: timeline::NewEntry<'_>,
    ) -> anyhow::Result<()> {
        self.version += 1;
        let staged = self
            .kitchen
            .outbox
            .envelope(self.version, event)
            .with_context(|| format!("staging {}", E::TYPE))?;
        let detail = serde_json::to_string(event).context("serialising the timeline detail")?;
        let events = &mut self.events;
        events.event_ids.push(staged.event_id);
        events.routing_keys.push(staged.routing_key);
        events.payloads.push(staged.payload);
        events.kinds.push(E::TYPE);
        events.stations.push(entry.station.map(str::to_owned));
        events.product_ids.push(entry.product_id);
        events
            .actors
            .push(entry.actor.map(|a| a.as_str().to_owned()));
        events
            .actor_user_ids
            .push(entry.actor.and_then(Actor::user_id));
        events
            .principals
            .push(entry.actor.and_then(Actor::principal));
        events.details.push(detail);
        Ok(())
    }

    /// The queue of `station` changed.
    pub fn touch_station(&mut self, station: &str) {
        self.stations.insert(station.to_owned());
    }

    /// The TV board changed.
    pub fn touch_board(&mut self) {
        self.board = true;
    }

    /// Saves the events, the status and version, and bumps the queues and the board that
    /// changed, in one round trip.
    pub async fn finish(self, conn: &mut PgConnection, status: OrderStatus) -> anyhow::Result<()> {
        let kitchen = self.kitchen;
        let pizzeria_id = self.pizzeria_id;
        let stations: Vec<String> = self.stations.iter().cloned().collect();
        let board = self.board;
        for (code, version) in self.write(conn, status, &stations, board).await? {
            let key = match code {
                Some(code) => VersionKey::Station { pizzeria_id, code },
                None => VersionKey::Board(pizzeria_id),
            };
            kitchen.versions.expect(key, version);
        }
        Ok(())
    }

    /// Saves the events, the status and version, and leaves the bumps to the caller, who
    /// applies those of several changes at once.
    pub async fn finish_into(
        mut self,
        conn: &mut PgConnection,
        status: OrderStatus,
        bumps: &mut Bumps,
    ) -> anyhow::Result<()> {
        let entry = bumps.by_pizzeria.entry(self.pizzeria_id).or_default();
        entry.0.extend(std::mem::take(&mut self.stations));
        entry.1 |= self.board;
        self.write(conn, status, &[], false).await?;
        Ok(())
    }

    /// One call of `finish_order_change`; returns the bumped versions (a `None` code is the
    /// board's).
    async fn write(
        self,
        conn: &mut PgConnection,
        status: OrderStatus,
        stations: &[String],
        board: bool,
    ) -> anyhow::Result<Vec<(Option<String>, i64)>> {
        let e = self.events;
        sqlx::query_as(
            "select bumped_code, bumped_version from finish_order_change(
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(self.order_id)
        .bind(self.pizzeria_id)
        .bind(status.as_str())
        .bind(self.version)
        .bind(self.now)
        .bind(&e.event_ids)
        .bind(&e.routing_keys)
        .bind(&e.payloads)
        .bind(&e.kinds)
        .bind(&e.stations)
        .bind(&e.product_ids)
        .bind(&e.actors)
        .bind(&e.actor_user_ids)
        .bind(&e.principals)
        .bind(&e.details)
        .bind(stations)
        .bind(board)
        .fetch_all(conn)
        .await
        .context("cannot save the order's change")
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
