//! Orders coming in from the order sources, and cancellations.

use chrono::{DateTime, Utc};
use contracts::{
    OrderAcceptedByTracker, OrderCancelled, OrderCancelledAfterHandOver, TrackedProduct,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    db::{alerts, orders, pizzerias, products, timeline::NewEntry},
    domain::{Actor, NewOrder, OrderStatus, Reason, ValidationError},
};

use super::{Kitchen, KitchenError, change::OrderChange};

/// Stores the order and puts each product at the first station of its category's route.
/// Returns `false` when the order was known already: intake is idempotent on the order id, so
/// a redelivered event or a retried POST changes nothing.
#[tracing::instrument(skip_all, fields(order_id = %order.id, pizzeria_id = %order.pizzeria_id))]
pub async fn accept_order(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    order: &NewOrder,
) -> Result<bool, KitchenError> {
    let (known, pizzeria_known) =
        orders::order_and_pizzeria_exist(&mut *conn, order.id, order.pizzeria_id).await?;
    if known {
        return Ok(false);
    }
    if !pizzeria_known {
        return Err(KitchenError::NotFound("pizzeria"));
    }
    let routes = pizzerias::routes_of(&mut *conn, order.pizzeria_id).await?;
    let mut planned = Vec::with_capacity(order.items.len());
    let mut target_seconds: i64 = 0;
    for (i, item) in order.items.iter().enumerate() {
        let route = routes.get(item.category.as_str()).ok_or_else(|| {
            ValidationError::new(
                format!("items[{i}].category"),
                "has no route at this pizzeria",
            )
        })?;
        let stations: Vec<String> = route.iter().map(|s| s.station_code.clone()).collect();
        let targets: Vec<i32> = route.iter().map(|s| s.target_seconds).collect();
        target_seconds +=
            i64::from(item.quantity.get()) * targets.iter().map(|t| i64::from(*t)).sum::<i64>();
        planned.push((i, item, stations, targets));
    }
    let target_seconds = i32::try_from(target_seconds).unwrap_or(i32::MAX);
    // Every product is due when the order's slowest one is: a product with a shorter route
    // starts its clock that much later, so a drink at packing is not over its target while
    // the pizza is still at dough (it waits on the tablet with "starts in m:ss").
    let route_total = |targets: &[i32]| targets.iter().map(|t| i64::from(*t)).sum::<i64>();
    let slowest = planned
        .iter()
        .map(|(_, _, _, targets)| route_total(targets))
        .max()
        .unwrap_or(0);

    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, 0);
    // A pre-order is held until its slowest product must start to be ready at the promised
    // time; one whose time has come already starts now, as any order.
    let fires_at = order
        .promised_at
        .and_then(|promised| promised.checked_sub_signed(chrono::Duration::seconds(slowest)))
        .filter(|fires_at| *fires_at > change.now);
    if !orders::insert_order(&mut *conn, order, change.now, target_seconds).await? {
        // A concurrent duplicate won the race between our check and our insert.
        return Ok(false);
    }
    if let Some(promised_at) = order.promised_at {
        orders::record_promise(&mut *conn, order.id, promised_at, fires_at).await?;
    }
    let news: Vec<products::NewProducts> = planned
        .iter()
        .map(|(i, item, stations, targets)| products::NewProducts {
            item_index: i32::try_from(*i).unwrap_or(i32::MAX),
            item,
            route_stations: stations,
            route_targets: targets,
            clock_from: Some(slowest - route_total(targets))
                .filter(|wait| *wait > 0)
                .map(|wait| change.now + chrono::Duration::seconds(wait)),
            held: fires_at.is_some(),
        })
        .collect();
    let ids = products::insert_products(&mut *conn, order.id, order.pizzeria_id, change.now, &news)
        .await?;
    let mut tracked = Vec::new();
    for ((i, _, stations, _), ids) in planned.iter().zip(ids) {
        if let Some(first) = stations.first().filter(|_| fires_at.is_none()) {
            change.touch_station(first);
        }
        tracked.extend(ids.into_iter().map(|id| TrackedProduct {
            id,
            item_index: u32::try_from(*i).unwrap_or(u32::MAX),
            route: stations.clone(),
        }));
    }
    change.touch_board();
    let event = OrderAcceptedByTracker {
        order_id: order.id,
        pizzeria_id: order.pizzeria_id,
        number: order.number,
        customer_name: order.customer_name.as_str().to_owned(),
        show_number_only: order.show_number_only,
        source: order.source,
        placed_at: order.placed_at,
        accepted_at: change.now,
        target_seconds: u32::try_from(target_seconds).unwrap_or(0),
        items: order.items.iter().map(|i| i.to_contract()).collect(),
        products: tracked,
    };
    change.emit(&event, NewEntry::default())?;
    change.finish(conn, OrderStatus::Accepted).await?;
    Ok(true)
}

/// Cancels the order: every product leaves its station at once. Cancelling a cancelled order
/// changes nothing; a handed-over order cannot be cancelled.
#[tracing::instrument(skip(conn, kitchen, reason, actor))]
pub async fn cancel_order(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    order_id: Uuid,
    reason: Option<&Reason>,
    actor: Option<&Actor>,
) -> Result<(), KitchenError> {
    let order = orders::lock_order(&mut *conn, order_id)
        .await?
        .filter(|o| o.pizzeria_id == pizzeria_id)
        .ok_or(KitchenError::NotFound("order"))?;
    cancel_locked_order(conn, kitchen, order, reason, actor).await
}

/// A cancel from an order source (the till, the website), which the tracker must take whatever
/// happened meanwhile.
pub struct SourceCancel<'a> {
    pub pizzeria_id: Uuid,
    pub order_id: Uuid,
    /// The source, from the routing key it published on.
    pub source: &'a str,
    /// When the source says the customer cancelled.
    pub cancelled_at: DateTime<Utc>,
    pub reason: Option<&'a Reason>,
    pub actor: Option<&'a Actor>,
}

/// What a source's cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCancelOutcome {
    /// The order is cancelled (or was already).
    Cancelled,
    /// The order had been handed over: it stays so, and the cancel is recorded on it.
    AfterHandOver,
}

/// Takes a source's cancel. Like [`cancel_order`], except for an order already handed over: a
/// cancel the till sent during an outage can reach us after the kitchen handed the order over.
/// That is a race, not a broken message, so it is recorded on the order (the first one only)
/// and announced as `OrderCancelledAfterHandOver`, for a manager to refund.
#[tracing::instrument(skip_all, fields(order_id = %cancel.order_id, source = cancel.source))]
pub async fn cancel_from_source(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    cancel: &SourceCancel<'_>,
) -> Result<SourceCancelOutcome, KitchenError> {
    let order = orders::lock_order(&mut *conn, cancel.order_id)
        .await?
        .filter(|o| o.pizzeria_id == cancel.pizzeria_id)
        .ok_or(KitchenError::NotFound("order"))?;
    if order.status()? != OrderStatus::HandedOver {
        cancel_locked_order(conn, kitchen, order, cancel.reason, cancel.actor).await?;
        return Ok(SourceCancelOutcome::Cancelled);
    }
    if order.cancel_after_hand_over_recorded_at.is_some() {
        return Ok(SourceCancelOutcome::AfterHandOver);
    }
    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
    let reason = cancel.reason.map(Reason::as_str);
    let actor = cancel.actor.map(Actor::as_str);
    let late = orders::LateCancel {
        cancelled_at: cancel.cancelled_at,
        recorded_at: change.now,
        source: cancel.source,
        reason,
        actor,
    };
    orders::record_cancel_after_hand_over(&mut *conn, order.id, &late).await?;
    let event = OrderCancelledAfterHandOver {
        order_id: order.id,
        pizzeria_id: order.pizzeria_id,
        handed_over_at: order.handed_over_at.unwrap_or(change.now),
        cancelled_at: cancel.cancelled_at,
        recorded_at: change.now,
        source: cancel.source.to_owned(),
        reason: reason.map(str::to_owned),
        actor: actor.map(str::to_owned),
    };
    let entry = NewEntry {
        actor: cancel.actor,
        ..NewEntry::default()
    };
    change.emit(&event, entry)?;
    change.finish(conn, OrderStatus::HandedOver).await?;
    Ok(SourceCancelOutcome::AfterHandOver)
}

/// Cancels `order`, which the caller has locked.
async fn cancel_locked_order(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    order: orders::OrderRow,
    reason: Option<&Reason>,
    actor: Option<&Actor>,
) -> Result<(), KitchenError> {
    let transition = order.status()?.cancel()?;
    if !transition.changed() {
        return Ok(());
    }
    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
    let reason = reason.map(Reason::as_str);
    let stations = products::clear_stations_of_order(&mut *conn, order.id).await?;
    // The cooks must see that it was cancelled, not only that its cards went away.
    alerts::record_cancelled(
        &mut *conn,
        order.pizzeria_id,
        &stations,
        order.id,
        order.number,
        reason,
        change.now,
    )
    .await?;
    for station in &stations {
        change.touch_station(station);
    }
    change.touch_board();
    orders::record_cancel_reason(&mut *conn, order.id, reason).await?;
    let event = OrderCancelled {
        order_id: order.id,
        pizzeria_id: order.pizzeria_id,
        cancelled_at: change.now,
        reason: reason.map(str::to_owned),
        actor: actor.map(|a| a.as_str().to_owned()),
    };
    change.emit(
        &event,
        NewEntry {
            actor,
            ..NewEntry::default()
        },
    )?;
    change.finish(conn, transition.to).await?;
    Ok(())
}
