//! What a station's tablet does: tap a product when its stage is done, undo the last tap.

use chrono::{DateTime, Utc};
use contracts::{OrderInWork, OrderPacked, ProductStageCompleted, ProductStageUndone};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    db::{
        orders::{self, OrderRow},
        pizzerias,
        products::{self, ProductRow},
        taps::{self, NewTap, TapRow},
        timeline::NewEntry,
    },
    domain::{
        Actor, OrderStatus, StationCode, TapOutcome, Transition, UndoCheck, check_undo, decide_tap,
    },
};

use super::{Kitchen, KitchenError, change::OrderChange, conflict};

/// A completed stage as the tablet sees it after a tap.
#[derive(Debug, Clone)]
pub struct TapRecord {
    pub tap: TapRow,
    /// Where the product went; `None` when it is done.
    pub next_station: Option<String>,
    pub order_status: OrderStatus,
    /// The tap had been recorded before: this one was a repeat and changed nothing.
    pub repeated: bool,
}

/// Checks the station exists, then locks the product's order. The product is read again under
/// the lock: it may have moved while we waited.
async fn lock_product(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    station: &StationCode,
    product_id: Uuid,
) -> Result<(OrderRow, ProductRow), KitchenError> {
    pizzerias::station_queue_version(&mut *conn, pizzeria_id, station.as_str())
        .await?
        .ok_or(KitchenError::NotFound("station"))?;
    let product = products::find_product(&mut *conn, product_id)
        .await?
        .filter(|p| p.pizzeria_id == pizzeria_id)
        .ok_or(KitchenError::NotFound("product"))?;
    let order = orders::lock_order(&mut *conn, product.order_id)
        .await?
        .ok_or(KitchenError::NotFound("order"))?;
    let product = products::find_product(&mut *conn, product_id)
        .await?
        .ok_or(KitchenError::NotFound("product"))?;
    Ok((order, product))
}

/// Emits the order-level events a status transition causes.
async fn emit_transition(
    conn: &mut PgConnection,
    change: &mut OrderChange<'_>,
    transition: Transition,
) -> anyhow::Result<()> {
    if transition.enters_work() {
        let event = OrderInWork {
            order_id: change.order_id,
            pizzeria_id: change.pizzeria_id,
            at: change.now,
        };
        change.emit(&mut *conn, &event, NewEntry::default()).await?;
    }
    if transition.packs() {
        let event = OrderPacked {
            order_id: change.order_id,
            pizzeria_id: change.pizzeria_id,
            at: change.now,
        };
        change.emit(&mut *conn, &event, NewEntry::default()).await?;
    }
    if transition.changed() {
        change.touch_board();
    }
    Ok(())
}

/// Completes the product's stage at `station` and sends it on. A repeated tap returns the tap
/// recorded the first time and changes nothing, so a double tap never skips a stage.
#[tracing::instrument(skip(conn, kitchen, actor))]
pub async fn tap(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    station: &StationCode,
    product_id: Uuid,
    actor: Option<&Actor>,
) -> Result<TapRecord, KitchenError> {
    let (order, product) = lock_product(&mut *conn, pizzeria_id, station, product_id).await?;
    let status = order.status()?;
    status.ensure_open()?;
    let not_at_station = || conflict("not_at_station", "the product is not at this station");
    match decide_tap(
        &product.route_stations,
        product.stage_index(),
        station.as_str(),
    ) {
        TapOutcome::NotAtStation => Err(not_at_station()),
        TapOutcome::AlreadyDone { stage } => {
            let stage = i32::try_from(stage).unwrap_or(i32::MAX);
            let tap = taps::live_tap(&mut *conn, product.id, product.pass, stage)
                .await?
                .ok_or_else(not_at_station)?;
            let next_station = product.route_stations.get(stage as usize + 1).cloned();
            Ok(TapRecord {
                tap,
                next_station,
                order_status: status,
                repeated: true,
            })
        }
        TapOutcome::Complete { stage, next } => {
            let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
            let actor = actor.map(Actor::as_str);
            let tap = taps::insert_tap(
                &mut *conn,
                &NewTap {
                    product_id: product.id,
                    order_id: order.id,
                    pizzeria_id,
                    station: station.as_str(),
                    stage: i32::try_from(stage).unwrap_or(i32::MAX),
                    pass: product.pass,
                    started_at: product.entered_at,
                    completed_at: change.now,
                    target_seconds: product.target_of(stage),
                    actor,
                },
            )
            .await?;
            let next_station = next.and_then(|n| product.route_stations.get(n)).cloned();
            let next_stage = i32::try_from(stage + 1).unwrap_or(i32::MAX);
            products::move_product(
                &mut *conn,
                product.id,
                next_stage,
                next_station.as_deref(),
                change.now,
            )
            .await?;
            change.touch_station(station.as_str());
            if let Some(next) = &next_station {
                change.touch_station(next);
            }
            let all_done = products::count_unfinished(&mut *conn, order.id).await? == 0;
            let transition = status.after_tap(all_done)?;
            let event = ProductStageCompleted {
                order_id: order.id,
                pizzeria_id,
                product_id: product.id,
                product_name: product.name.clone(),
                station: station.as_str().to_owned(),
                started_at: tap.started_at,
                completed_at: tap.completed_at,
                duration_ms: u64::try_from(tap.duration_ms).unwrap_or(0),
                target_seconds: u32::try_from(tap.target_seconds).unwrap_or(0),
                actor: actor.map(str::to_owned),
                next_station: next_station.clone(),
            };
            let entry = NewEntry {
                station: Some(station.as_str()),
                product_id: Some(product.id),
                actor,
            };
            change.emit(&mut *conn, &event, entry).await?;
            emit_transition(&mut *conn, &mut change, transition).await?;
            change.finish(conn, transition.to).await?;
            Ok(TapRecord {
                tap,
                next_station,
                order_status: transition.to,
                repeated: false,
            })
        }
    }
}

/// What undo did.
#[derive(Debug, Clone)]
pub struct Undone {
    pub tap: TapRow,
    pub order_status: OrderStatus,
    pub undone_at: DateTime<Utc>,
}

/// Takes back the last tap at the station, if it is recent and the product still waits where
/// the tap sent it. The product returns with its original arrival time, so its timer and its
/// place in the queue are as before the tap.
#[tracing::instrument(skip(conn, kitchen, actor))]
pub async fn undo(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    station: &StationCode,
    actor: Option<&Actor>,
) -> Result<Undone, KitchenError> {
    pizzerias::station_queue_version(&mut *conn, pizzeria_id, station.as_str())
        .await?
        .ok_or(KitchenError::NotFound("station"))?;
    let nothing_to_undo = || conflict("nothing_to_undo", "there is no tap to undo at this station");
    // The order lock comes after finding the tap, so another tap at this station may commit in
    // between; looking again under the lock makes sure we undo the newest one. A few rounds
    // settle it even on a busy station.
    let mut locked = None;
    for _ in 0..3 {
        let Some(candidate) =
            taps::last_tap_at_station(&mut *conn, pizzeria_id, station.as_str()).await?
        else {
            return Err(nothing_to_undo());
        };
        let order = orders::lock_order(&mut *conn, candidate.order_id)
            .await?
            .ok_or(KitchenError::NotFound("order"))?;
        let latest = taps::last_tap_at_station(&mut *conn, pizzeria_id, station.as_str())
            .await?
            .ok_or_else(nothing_to_undo)?;
        if latest.id == candidate.id {
            locked = Some((order, latest));
            break;
        }
    }
    let (order, tap) = locked.ok_or_else(|| {
        conflict(
            "station_busy",
            "taps at this station keep changing; try the undo again",
        )
    })?;
    let status = order.status()?;
    let transition = status.after_rework()?;
    let product = products::find_product(&mut *conn, tap.product_id)
        .await?
        .ok_or(KitchenError::NotFound("product"))?;
    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
    let age = (change.now - tap.completed_at).to_std().unwrap_or_default();
    check_undo(UndoCheck {
        tap_stage: usize::try_from(tap.stage).unwrap_or(usize::MAX),
        tap_pass: tap.pass,
        product_stage: product.stage_index(),
        product_pass: product.pass,
        age,
        window: kitchen.undo_window,
    })?;
    taps::mark_undone(&mut *conn, tap.id, change.now).await?;
    products::move_product(
        &mut *conn,
        product.id,
        tap.stage,
        Some(&tap.station),
        tap.started_at,
    )
    .await?;
    change.touch_station(&tap.station);
    if let Some(current) = &product.station {
        change.touch_station(current);
    }
    let actor = actor.map(Actor::as_str);
    let event = ProductStageUndone {
        order_id: order.id,
        pizzeria_id,
        product_id: product.id,
        station: tap.station.clone(),
        undone_at: change.now,
        actor: actor.map(str::to_owned),
    };
    let entry = NewEntry {
        station: Some(&tap.station),
        product_id: Some(product.id),
        actor,
    };
    change.emit(&mut *conn, &event, entry).await?;
    emit_transition(&mut *conn, &mut change, transition).await?;
    let undone_at = change.now;
    change.finish(conn, transition.to).await?;
    Ok(Undone {
        tap,
        order_status: transition.to,
        undone_at,
    })
}
