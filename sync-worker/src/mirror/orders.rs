//! The tracker's order events, a batch at a time.
//!
//! A batch writes each table once: first one locked lookup of every order the batch's other
//! events name (an order neither mirrored nor accepted in the batch fails its first event
//! before anything is written), then the new orders with their lines, units and sync state,
//! one status update that keeps only the newest status per order and only where it is newer
//! than the mirrored one, one late flag update, one lookup of the products' lines, and one
//! history insert. An order accepted anywhere in the batch counts as present: the batch
//! commits as a whole, so applying its events in one go leaves what applying them one by one
//! would.

use std::collections::{HashMap, HashSet, hash_map::Entry};

use chrono::{DateTime, Utc};
use contracts::{
    Envelope, Event, OrderAcceptedByTracker, OrderCancelled, OrderCancelledAfterHandOver,
    OrderHandedOver, OrderInWork, OrderPacked, OrderRunningLate, ProductRemakeRequested,
    ProductStageCompleted, ProductStageUndone,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Failure, MirrorError, decode, narrow};
use crate::db::{
    self, LegacyOrder, NewHistoryRow, NewOrder, NewOrderItem, NewProductUnit, StatusChange,
};
use crate::legacy::{
    self, COMMENT_WIDTH, LegacyStage, LegacyStatus, NAME_WIDTH, PRODUCT_NAME_WIDTH, SHORT_WIDTH,
    STATION_WIDTH, fit,
};

/// An order event, decoded and checked.
pub(super) enum OrderEvent {
    Accept(Box<Accept>),
    Change(Uuid, Change),
}

/// A new order with its lines and units, ready to insert.
pub(super) struct Accept {
    order: NewOrder,
    /// The lines, without the order's legacy id, which the insert assigns.
    items: Vec<NewOrderItem>,
    /// Each tracked unit and its line number.
    units: Vec<(Uuid, i16)>,
}

/// What one event changes about a mirrored order: its status, a step of one product, or the
/// late flag.
#[derive(Debug)]
pub(super) struct Change {
    status: Option<LegacyStatus>,
    stage: Option<LegacyStage>,
    station: Option<String>,
    product_id: Option<Uuid>,
    product_name: Option<String>,
    actor: Option<String>,
    comment: Option<String>,
    /// A flag, not a status: it is never cleared, so its order among events is moot. It adds
    /// no history row.
    late: bool,
    at: DateTime<Utc>,
}

impl Change {
    fn status(status: LegacyStatus, at: DateTime<Utc>) -> Self {
        Change {
            status: Some(status),
            ..Change::at(at)
        }
    }

    fn product(stage: LegacyStage, product_id: Uuid, station: &str, at: DateTime<Utc>) -> Self {
        Change {
            stage: Some(stage),
            station: Some(fit(station, STATION_WIDTH).to_owned()),
            product_id: Some(product_id),
            ..Change::at(at)
        }
    }

    fn at(at: DateTime<Utc>) -> Self {
        Change {
            status: None,
            stage: None,
            station: None,
            product_id: None,
            product_name: None,
            actor: None,
            comment: None,
            late: false,
            at,
        }
    }
}

fn name(value: Option<&str>) -> Option<String> {
    value.map(|v| fit(v, NAME_WIDTH).to_owned())
}

fn comment(value: Option<&str>) -> Option<String> {
    value.map(|v| fit(v, COMMENT_WIDTH).to_owned())
}

/// The legacy history's comment on a source's cancel that came after the hand-over.
pub(crate) const LATE_CANCEL_COMMENT: &str = "cancelled by the till after hand-over";

/// Decodes a tracker order event; `None` for any other type.
pub(super) fn plan(envelope: &Envelope) -> Result<Option<OrderEvent>, MirrorError> {
    let (order_id, change) = match envelope.event_type.as_str() {
        OrderAcceptedByTracker::TYPE => {
            let accept = accept(envelope, &decode(envelope)?)?;
            return Ok(Some(OrderEvent::Accept(Box::new(accept))));
        }
        OrderInWork::TYPE => {
            let e: OrderInWork = decode(envelope)?;
            (e.order_id, Change::status(LegacyStatus::InWork, e.at))
        }
        OrderPacked::TYPE => {
            let e: OrderPacked = decode(envelope)?;
            (e.order_id, Change::status(LegacyStatus::Packed, e.at))
        }
        OrderHandedOver::TYPE => {
            let e: OrderHandedOver = decode(envelope)?;
            let change = Change {
                actor: name(e.actor.as_deref()),
                ..Change::status(LegacyStatus::HandedOver, e.at)
            };
            (e.order_id, change)
        }
        OrderCancelled::TYPE => {
            let e: OrderCancelled = decode(envelope)?;
            let change = Change {
                actor: name(e.actor.as_deref()),
                comment: comment(e.reason.as_deref()),
                ..Change::status(LegacyStatus::Cancelled, e.cancelled_at)
            };
            (e.order_id, change)
        }
        // The order stays handed over (status 4): the monolith's status codes have no "handed
        // over, then cancelled", so this is a history row without a status, like the timeline
        // the tracker keeps, naming the source in `actor` and saying what happened in `comment`.
        OrderCancelledAfterHandOver::TYPE => {
            let e: OrderCancelledAfterHandOver = decode(envelope)?;
            let what = match e.reason.as_deref() {
                Some(reason) => format!("{LATE_CANCEL_COMMENT}: {reason}"),
                None => LATE_CANCEL_COMMENT.to_owned(),
            };
            let change = Change {
                actor: name(Some(e.actor.as_deref().unwrap_or(&e.source))),
                comment: comment(Some(&what)),
                // When the tracker recorded it: after the hand-over, as the sequence says. The
                // till's own time may come before the hand-over row it follows.
                ..Change::at(e.recorded_at)
            };
            (e.order_id, change)
        }
        ProductStageCompleted::TYPE => {
            let e: ProductStageCompleted = decode(envelope)?;
            let change = Change {
                product_name: Some(fit(&e.product_name, PRODUCT_NAME_WIDTH).to_owned()),
                actor: name(e.actor.as_deref()),
                ..Change::product(
                    LegacyStage::Completed,
                    e.product_id,
                    &e.station,
                    e.completed_at,
                )
            };
            (e.order_id, change)
        }
        ProductStageUndone::TYPE => {
            let e: ProductStageUndone = decode(envelope)?;
            let change = Change {
                actor: name(e.actor.as_deref()),
                ..Change::product(LegacyStage::Undone, e.product_id, &e.station, e.undone_at)
            };
            (e.order_id, change)
        }
        ProductRemakeRequested::TYPE => {
            let e: ProductRemakeRequested = decode(envelope)?;
            let change = Change {
                actor: name(e.actor.as_deref()),
                comment: comment(e.reason.as_deref()),
                ..Change::product(
                    LegacyStage::Remake,
                    e.product_id,
                    &e.first_station,
                    e.requested_at,
                )
            };
            (e.order_id, change)
        }
        OrderRunningLate::TYPE => {
            let e: OrderRunningLate = decode(envelope)?;
            let change = Change {
                late: true,
                ..Change::at(e.at)
            };
            (e.order_id, change)
        }
        _ => return Ok(None),
    };
    Ok(Some(OrderEvent::Change(order_id, change)))
}

fn accept(envelope: &Envelope, e: &OrderAcceptedByTracker) -> Result<Accept, MirrorError> {
    let order = NewOrder {
        order_uuid: e.order_id,
        unit_id: e.pizzeria_id,
        order_number: narrow(e.number, "number")?,
        client_name: fit(&e.customer_name, NAME_WIDTH).to_owned(),
        is_number_only: e.show_number_only,
        status: LegacyStatus::Accepted.code(),
        order_type: legacy::order_type_code(e.source),
        created_at: e.placed_at,
        changed_at: e.accepted_at,
        sequence: envelope.sequence,
    };
    let mut items = Vec::with_capacity(e.items.len());
    for (line_no, item) in e.items.iter().enumerate() {
        items.push(NewOrderItem {
            order_id: 0,
            line_no: narrow(line_no, "items")?,
            product_id: item.product_id,
            product_name: fit(&item.name, PRODUCT_NAME_WIDTH).to_owned(),
            category: item.category.as_str(),
            size: item.size.as_deref().map(|s| fit(s, SHORT_WIDTH).to_owned()),
            quantity: narrow(item.quantity, "items.quantity")?,
            modifiers: legacy::join_modifiers(&item.modifiers),
        });
    }
    let mut units = Vec::with_capacity(e.products.len());
    for product in &e.products {
        let line_no = usize::try_from(product.item_index)
            .ok()
            .filter(|index| *index < items.len())
            .and_then(|index| i16::try_from(index).ok())
            .ok_or_else(|| {
                MirrorError::Inconsistent(format!(
                    "product {} names item {}, which the order does not have",
                    product.id, product.item_index
                ))
            })?;
        units.push((product.id, line_no));
    }
    Ok(Accept {
        order,
        items,
        units,
    })
}

/// A batch's order events, in batch order, with their positions in the batch.
#[derive(Default)]
pub(super) struct Batch<'a> {
    accepts: Vec<(usize, &'a Envelope, Accept)>,
    changes: Vec<(usize, &'a Envelope, Uuid, Change)>,
}

impl<'a> Batch<'a> {
    pub(super) fn push(&mut self, index: usize, envelope: &'a Envelope, event: OrderEvent) {
        match event {
            OrderEvent::Accept(accept) => self.accepts.push((index, envelope, *accept)),
            OrderEvent::Change(order_uuid, change) => {
                self.changes.push((index, envelope, order_uuid, change))
            }
        }
    }

    pub(super) async fn apply(
        self,
        conn: &mut PgConnection,
        max_sequence_jump: i64,
    ) -> Result<(), Failure> {
        let Batch { accepts, changes } = self;
        let mut orders = lock_orders(conn, &accepts, &changes).await?;
        // Each row with the position of its event, so the timeline is inserted in batch order.
        let mut history = Vec::with_capacity(accepts.len() + changes.len());
        if !accepts.is_empty() {
            insert_orders(conn, accepts, &mut orders, &mut history).await?;
        }
        if !changes.is_empty() {
            apply_changes(conn, changes, &orders, &mut history, max_sequence_jump).await?;
        }
        if !history.is_empty() {
            history.sort_by_key(|(index, _)| *index);
            let rows: Vec<NewHistoryRow> = history.into_iter().map(|(_, row)| row).collect();
            db::insert_history(conn, &rows)
                .await
                .map_err(Failure::database("appending to the order history"))?;
        }
        Ok(())
    }
}

/// Locks the mirrored orders the batch's changes name. An order that is neither mirrored nor
/// accepted in this batch fails the first event that names it, before anything is written, so
/// that the consumer's re-run of the batch without that event is all it costs.
async fn lock_orders(
    conn: &mut PgConnection,
    accepts: &[(usize, &Envelope, Accept)],
    changes: &[(usize, &Envelope, Uuid, Change)],
) -> Result<HashMap<Uuid, LegacyOrder>, Failure> {
    if changes.is_empty() {
        return Ok(HashMap::new());
    }
    let mut order_uuids: Vec<Uuid> = changes.iter().map(|(_, _, uuid, _)| *uuid).collect();
    order_uuids.sort_unstable();
    order_uuids.dedup();
    let orders = db::lock_orders(conn, &order_uuids)
        .await
        .map_err(Failure::database("looking up the mirrored orders"))?;
    let accepted: HashSet<Uuid> = accepts
        .iter()
        .map(|(_, _, accept)| accept.order.order_uuid)
        .collect();
    // Every event that waits for its order, not only the first: the consumer sends them all
    // to wait together, instead of re-running the batch once per waiting event.
    let waiting: Vec<(usize, MirrorError)> = changes
        .iter()
        .filter(|(_, _, uuid, _)| !orders.contains_key(uuid) && !accepted.contains(uuid))
        .map(|(index, _, order_uuid, _)| (*index, MirrorError::OrderNotYetAccepted(*order_uuid)))
        .collect();
    if waiting.is_empty() {
        Ok(orders)
    } else {
        Err(Failure::Events(waiting))
    }
}

/// Inserts the orders not mirrored yet, with their lines, units and an accepted row in their
/// history. An order that is there already (the same accepted event under another id) is left
/// as it is, as are its lines.
/// The new orders join `orders`, with the accepted event's sequence as their status's.
async fn insert_orders(
    conn: &mut PgConnection,
    accepts: Vec<(usize, &Envelope, Accept)>,
    orders: &mut HashMap<Uuid, LegacyOrder>,
    history: &mut Vec<(usize, NewHistoryRow)>,
) -> Result<(), Failure> {
    let mut new_orders = Vec::with_capacity(accepts.len());
    let mut rest = Vec::with_capacity(accepts.len());
    for (index, envelope, accept) in accepts {
        new_orders.push(accept.order);
        rest.push((index, envelope, accept.items, accept.units));
    }
    let ids = db::insert_orders(conn, &new_orders)
        .await
        .map_err(Failure::database("inserting the orders"))?;
    let mut items = Vec::new();
    let mut units = Vec::new();
    let mut done = HashSet::with_capacity(ids.len());
    for ((index, envelope, order_items, order_units), order) in rest.into_iter().zip(&new_orders) {
        let Some(&order_id) = ids.get(&order.order_uuid) else {
            tracing::debug!(order_uuid = %order.order_uuid, "the order is mirrored already");
            continue;
        };
        // Twice in one batch under two event ids: the first one made it.
        if !done.insert(order_id) {
            continue;
        }
        orders.insert(
            order.order_uuid,
            LegacyOrder {
                id: order_id,
                status_sequence: order.sequence,
            },
        );
        items.extend(
            order_items
                .into_iter()
                .map(|item| NewOrderItem { order_id, ..item }),
        );
        units.extend(
            order_units
                .into_iter()
                .map(|(product_id, line_no)| NewProductUnit {
                    order_id,
                    line_no,
                    product_id,
                }),
        );
        let row = NewHistoryRow {
            status: Some(LegacyStatus::Accepted.code()),
            ..history_row(envelope, order_id, order.changed_at)
        };
        history.push((index, row));
    }
    if !items.is_empty() {
        db::insert_order_items(conn, &items, &units)
            .await
            .map_err(Failure::database("inserting the order items"))?;
    }
    Ok(())
}

/// Applies the status, product and late events to their orders, which `orders` must hold.
async fn apply_changes(
    conn: &mut PgConnection,
    changes: Vec<(usize, &Envelope, Uuid, Change)>,
    orders: &HashMap<Uuid, LegacyOrder>,
    history: &mut Vec<(usize, NewHistoryRow)>,
    max_sequence_jump: i64,
) -> Result<(), Failure> {
    let mut found = Vec::with_capacity(changes.len());
    for (index, envelope, order_uuid, change) in changes {
        let Some(order) = orders.get(&order_uuid) else {
            return Err(Failure::event(
                index,
                MirrorError::OrderNotYetAccepted(order_uuid),
            ));
        };
        super::check_jump(
            &format!("order {order_uuid}"),
            envelope.sequence,
            order.status_sequence,
            max_sequence_jump,
        )
        .map_err(|error| Failure::event(index, error))?;
        found.push((index, envelope, order_uuid, *order, change));
    }
    let changes = found;

    // Only the newest status per order, and only if newer than what the order has.
    let mut newest: HashMap<Uuid, StatusChange> = HashMap::new();
    for (_, envelope, order_uuid, order, change) in &changes {
        let Some(status) = change.status else {
            continue;
        };
        if !legacy::is_newer_status(order.status_sequence, envelope.sequence) {
            tracing::debug!(
                event_id = %envelope.id,
                applied_sequence = order.status_sequence,
                "stale status event: only its history row is written"
            );
            continue;
        }
        let candidate = StatusChange {
            order_uuid: *order_uuid,
            status: status.code(),
            sequence: envelope.sequence,
            changed_at: change.at,
        };
        match newest.entry(*order_uuid) {
            Entry::Occupied(mut current) => {
                if legacy::is_newer_status(current.get().sequence, candidate.sequence) {
                    current.insert(candidate);
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(candidate);
            }
        }
    }
    if !newest.is_empty() {
        let statuses: Vec<StatusChange> = newest.into_values().collect();
        db::set_order_statuses(conn, &statuses)
            .await
            .map_err(Failure::database("setting the order statuses"))?;
    }

    let late: Vec<i32> = changes
        .iter()
        .filter(|(_, _, _, _, change)| change.late)
        .map(|(_, _, _, order, _)| order.id)
        .collect();
    if !late.is_empty() {
        db::mark_orders_late(conn, &late)
            .await
            .map_err(Failure::database("marking the orders late"))?;
    }

    let products: HashSet<(i32, Uuid)> = changes
        .iter()
        .filter_map(|(_, _, _, order, change)| change.product_id.map(|p| (order.id, p)))
        .collect();
    let items = if products.is_empty() {
        HashMap::new()
    } else {
        let products: Vec<(i32, Uuid)> = products.into_iter().collect();
        db::find_order_items(conn, &products)
            .await
            .map_err(Failure::database("finding the products' order items"))?
    };

    for (index, envelope, _, order, change) in changes {
        if change.late {
            continue;
        }
        let order_id = order.id;
        let item = change
            .product_id
            .and_then(|product_id| items.get(&(order_id, product_id)));
        let row = NewHistoryRow {
            status: change.status.map(LegacyStatus::code),
            stage: change.stage.map(LegacyStage::as_str),
            station: change.station,
            order_item_id: item.map(|(id, _)| *id),
            product_name: change
                .product_name
                .or_else(|| item.map(|(_, name)| fit(name, PRODUCT_NAME_WIDTH).to_owned())),
            actor: change.actor,
            comment: change.comment,
            ..history_row(envelope, order_id, change.at)
        };
        history.push((index, row));
    }
    Ok(())
}

/// A history row of `envelope` with only the common columns set.
fn history_row(envelope: &Envelope, order_id: i32, at: DateTime<Utc>) -> NewHistoryRow {
    NewHistoryRow {
        order_id,
        status: None,
        stage: None,
        station: None,
        order_item_id: None,
        product_name: None,
        actor: None,
        comment: None,
        happened_at: at,
        event_id: envelope.id,
        event_sequence: envelope.sequence,
    }
}
