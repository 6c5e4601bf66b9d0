//! What a station's tablet does: tap a product when its stage is done, undo a tap by its id.

use std::time::Duration;

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
        Actor, OrderStatus, StationCode, TapOutcome, Transition, UndoCheck, ValidationError,
        check_undo, decide_tap,
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
    /// What the tablet's confirmation names: the product and its order's number.
    pub product_name: String,
    pub size: Option<String>,
    pub order_number: i32,
}

fn client_id_taken() -> KitchenError {
    ValidationError::new(
        "client_tap_id",
        "was already used for a tap of another product or station; make a new one",
    )
    .into()
}

impl TapRecord {
    /// The answer to a repeat: the tap made the first time, and where it sent the product.
    fn repeat(tap: TapRow, product: ProductRow, order: &OrderRow, status: OrderStatus) -> Self {
        let next_station = usize::try_from(tap.stage + 1)
            .ok()
            .and_then(|n| product.route_stations.get(n))
            .cloned();
        TapRecord {
            tap,
            next_station,
            order_status: status,
            repeated: true,
            product_name: product.name,
            size: product.size,
            order_number: order.number,
        }
    }
}

/// Checks the station exists, then locks the product's order and reads the product under the
/// lock: it may have moved while we waited. Also returns how many other products of the order
/// are unfinished.
///
/// The common case is one round trip (`lock_order_of_product`). When that finds nothing, the
/// steps are taken one by one to say what is missing.
async fn lock_product(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    station: &StationCode,
    product_id: Uuid,
) -> Result<(OrderRow, ProductRow, i64), KitchenError> {
    if let Some(locked) =
        orders::lock_order_of_product(&mut *conn, pizzeria_id, station.as_str(), product_id).await?
    {
        return Ok((locked.order, locked.product.0, locked.unfinished_others));
    }
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
    let (product, unfinished_others) =
        products::product_under_lock(&mut *conn, order.id, product_id)
            .await?
            .ok_or(KitchenError::NotFound("product"))?;
    Ok((order, product, unfinished_others))
}

/// Emits the order-level events a status transition causes.
fn emit_transition(change: &mut OrderChange<'_>, transition: Transition) -> anyhow::Result<()> {
    if transition.enters_work() {
        let event = OrderInWork {
            order_id: change.order_id,
            pizzeria_id: change.pizzeria_id,
            at: change.now,
        };
        change.emit(&event, NewEntry::default())?;
    }
    if transition.packs() {
        let event = OrderPacked {
            order_id: change.order_id,
            pizzeria_id: change.pizzeria_id,
            at: change.now,
        };
        change.emit(&event, NewEntry::default())?;
    }
    if transition.changed() {
        change.touch_board();
    }
    Ok(())
}

/// A tap as the tablet sent it.
#[derive(Debug, Clone, Copy)]
pub struct TapRequest<'a> {
    pub pizzeria_id: Uuid,
    pub station: &'a StationCode,
    pub product_id: Uuid,
    pub actor: Option<&'a Actor>,
    /// The id the tablet made for this tap, when it may send it more than once (a tap queued
    /// while offline): a tap with a known id is answered as the first time and changes nothing.
    pub client_tap_id: Option<Uuid>,
}

/// Completes the product's stage at `station` and sends it on. A repeated tap returns the tap
/// recorded the first time and changes nothing, so a double tap never skips a stage.
///
/// A tap with a client id is applied at most once: a repeat of that id answers with the
/// original tap, even if the order has been cancelled or the tap undone since. A tap with a
/// client id that finds the stage already done by *another* tap did not happen, and says so
/// (409 `already_done`): a tablet that queued it offline must tell the cook, not pretend.
#[tracing::instrument(skip(conn, kitchen, request), fields(product_id = %request.product_id))]
pub async fn tap(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    request: TapRequest<'_>,
) -> Result<TapRecord, KitchenError> {
    let TapRequest {
        pizzeria_id,
        station,
        product_id,
        actor,
        client_tap_id,
    } = request;
    let (order, product, unfinished_others) =
        lock_product(&mut *conn, pizzeria_id, station, product_id).await?;
    let status = order.status()?;
    // Under the order's lock, so of two sends of one tap the second sees the first's row.
    if let Some(client_tap_id) = client_tap_id
        && let Some(tap) = taps::find_by_client_id(&mut *conn, pizzeria_id, client_tap_id).await?
    {
        if tap.product_id != product.id || tap.station != station.as_str() {
            return Err(client_id_taken());
        }
        return Ok(TapRecord::repeat(tap, product, &order, status));
    }
    status.ensure_open()?;
    let not_at_station = || conflict("not_at_station", "the product is not at this station");
    // A held pre-order's products are at no station yet.
    if order.fires_at.is_some() {
        return Err(not_at_station());
    }
    match decide_tap(
        &product.route_stations,
        product.stage_index(),
        station.as_str(),
    ) {
        TapOutcome::NotAtStation => Err(not_at_station()),
        TapOutcome::AlreadyDone { .. } if client_tap_id.is_some() => Err(conflict(
            "already_done",
            "another tap already completed this product's stage at this station",
        )),
        TapOutcome::AlreadyDone { stage } => {
            let stage = i32::try_from(stage).unwrap_or(i32::MAX);
            let tap = taps::live_tap(&mut *conn, product.id, product.pass, stage)
                .await?
                .ok_or_else(not_at_station)?;
            Ok(TapRecord::repeat(tap, product, &order, status))
        }
        TapOutcome::Complete { stage, next } => {
            let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
            let next_station = next.and_then(|n| product.route_stations.get(n)).cloned();
            let next_stage = i32::try_from(stage + 1).unwrap_or(i32::MAX);
            // The tap and the product's move in one statement.
            let tap = taps::insert_tap_moving_product(
                &mut *conn,
                &NewTap {
                    product_id: product.id,
                    order_id: order.id,
                    pizzeria_id,
                    station: station.as_str(),
                    stage: i32::try_from(stage).unwrap_or(i32::MAX),
                    pass: product.pass,
                    started_at: product.clock_started(change.now),
                    completed_at: change.now,
                    target_seconds: product.target_of(stage),
                    actor,
                    client_tap_id,
                },
                next_stage,
                next_station.as_deref(),
            )
            .await?
            .ok_or_else(client_id_taken)?;
            change.touch_station(station.as_str());
            if let Some(next) = &next_station {
                change.touch_station(next);
            }
            // The previous station may still offer undo or recall for the tap that sent the
            // product here (it arrived then); now neither can work, so that tablet must look
            // again.
            if let Some(previous) = stage
                .checked_sub(1)
                .and_then(|s| product.route_stations.get(s))
                && (change.now - product.entered_at)
                    .to_std()
                    .unwrap_or_default()
                    < kitchen.undo_window.max(RECALL_WINDOW)
            {
                change.touch_station(previous);
            }
            // The product is done when it has no next station; the others were counted under
            // the order's lock.
            let all_done = unfinished_others == 0 && next_station.is_none();
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
                actor: actor.map(|a| a.as_str().to_owned()),
                next_station: next_station.clone(),
            };
            let entry = NewEntry {
                station: Some(station.as_str()),
                product_id: Some(product.id),
                actor,
            };
            change.emit(&event, entry)?;
            emit_transition(&mut change, transition)?;
            change.finish(conn, transition.to).await?;
            Ok(TapRecord {
                tap,
                next_station,
                order_status: transition.to,
                repeated: false,
                product_name: product.name,
                size: product.size,
                order_number: order.number,
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
    /// The tap had been undone before: this undo was a repeat and changed nothing.
    pub repeated: bool,
    pub product_name: String,
    pub size: Option<String>,
    pub order_number: i32,
}

/// Takes back the tap `tap_id` made at the station, if it is recent and the product still
/// waits where the tap sent it. The product returns with its original arrival time, so its
/// timer and its place in the queue are as before the tap. Undoing an undone tap is a retry:
/// it answers as the first time and changes nothing, so a repeated or doubled undo can never
/// take back another product.
pub async fn undo(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    station: &StationCode,
    tap_id: i64,
    actor: Option<&Actor>,
) -> Result<Undone, KitchenError> {
    let window = kitchen.undo_window;
    take_back(conn, kitchen, pizzeria_id, station, tap_id, actor, window).await
}

/// Brings back a product this station completed up to [`RECALL_WINDOW`] ago, if it has not
/// moved past the next station yet: an undo with a longer window, for the product a cook
/// finds was sent on too early. Same rules, same event (`ProductStageUndone`).
pub async fn recall(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    station: &StationCode,
    tap_id: i64,
    actor: Option<&Actor>,
) -> Result<Undone, KitchenError> {
    take_back(
        conn,
        kitchen,
        pizzeria_id,
        station,
        tap_id,
        actor,
        RECALL_WINDOW,
    )
    .await
}

/// How long after a tap the station may still recall the product.
pub const RECALL_WINDOW: Duration = Duration::from_secs(15 * 60);

#[tracing::instrument(skip(conn, kitchen, actor))]
async fn take_back(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    station: &StationCode,
    tap_id: i64,
    actor: Option<&Actor>,
    window: Duration,
) -> Result<Undone, KitchenError> {
    pizzerias::station_queue_version(&mut *conn, pizzeria_id, station.as_str())
        .await?
        .ok_or(KitchenError::NotFound("station"))?;
    let tap = taps::find_tap(&mut *conn, pizzeria_id, station.as_str(), tap_id)
        .await?
        .ok_or(KitchenError::NotFound("tap"))?;
    let order = orders::lock_order(&mut *conn, tap.order_id)
        .await?
        .ok_or(KitchenError::NotFound("order"))?;
    // Read again under the order's lock: a concurrent undo of the same tap may have committed.
    let tap = taps::find_tap(&mut *conn, pizzeria_id, station.as_str(), tap_id)
        .await?
        .ok_or(KitchenError::NotFound("tap"))?;
    let product = products::find_product(&mut *conn, tap.product_id)
        .await?
        .ok_or(KitchenError::NotFound("product"))?;
    let status = order.status()?;
    if let Some(undone_at) = tap.undone_at {
        return Ok(Undone {
            tap,
            order_status: status,
            undone_at,
            repeated: true,
            product_name: product.name,
            size: product.size,
            order_number: order.number,
        });
    }
    let transition = status.after_rework()?;
    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
    let age = (change.now - tap.completed_at).to_std().unwrap_or_default();
    check_undo(UndoCheck {
        tap_stage: usize::try_from(tap.stage).unwrap_or(usize::MAX),
        tap_pass: tap.pass,
        product_stage: product.stage_index(),
        product_pass: product.pass,
        age,
        window,
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
    let event = ProductStageUndone {
        order_id: order.id,
        pizzeria_id,
        product_id: product.id,
        station: tap.station.clone(),
        undone_at: change.now,
        actor: actor.map(|a| a.as_str().to_owned()),
    };
    let entry = NewEntry {
        station: Some(&tap.station),
        product_id: Some(product.id),
        actor,
    };
    change.emit(&event, entry)?;
    emit_transition(&mut change, transition)?;
    let undone_at = change.now;
    change.finish(conn, transition.to).await?;
    Ok(Undone {
        tap,
        order_status: transition.to,
        undone_at,
        repeated: false,
        product_name: product.name,
        size: product.size,
        order_number: order.number,
    })
}
