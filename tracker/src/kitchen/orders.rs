//! What a manager does to a whole order: hand it over, have a product made again.

use contracts::{OrderHandedOver, OrderInWork, ProductRemakeRequested};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    db::{
        orders::{self, OrderRow},
        products,
        timeline::{self, NewEntry},
    },
    domain::{Actor, OrderStatus, Reason},
};

use super::{Kitchen, KitchenError, change::OrderChange, conflict};

async fn lock_order_of(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    order_id: Uuid,
) -> Result<OrderRow, KitchenError> {
    orders::lock_order(conn, order_id)
        .await?
        .filter(|o| o.pizzeria_id == pizzeria_id)
        .ok_or(KitchenError::NotFound("order"))
}

/// The packed order leaves the kitchen. Handing over twice is a retry and changes nothing.
#[tracing::instrument(skip(conn, kitchen, actor))]
pub async fn hand_over(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    order_id: Uuid,
    actor: Option<&Actor>,
) -> Result<OrderStatus, KitchenError> {
    let order = lock_order_of(&mut *conn, pizzeria_id, order_id).await?;
    let transition = order.status()?.hand_over()?;
    if !transition.changed() {
        return Ok(transition.to);
    }
    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
    let event = OrderHandedOver {
        order_id: order.id,
        pizzeria_id,
        at: change.now,
        actor: actor.map(|a| a.as_str().to_owned()),
    };
    let entry = NewEntry {
        actor,
        ..NewEntry::default()
    };
    change.emit(&event, entry)?;
    change.touch_board();
    // The finishing stations' tablets list the order as ready to hand over until now.
    for product in products::products_of_order(&mut *conn, order.id).await? {
        if let Some(last) = product.route_stations.last() {
            change.touch_station(last);
        }
    }
    change.finish(conn, transition.to).await?;
    Ok(transition.to)
}

/// Sends one product back to its first station for a new pass; a packed order is in work
/// again.
#[tracing::instrument(skip(conn, kitchen, reason, actor))]
pub async fn remake(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    order_id: Uuid,
    product_id: Uuid,
    reason: Option<&Reason>,
    actor: Option<&Actor>,
) -> Result<OrderStatus, KitchenError> {
    let order = lock_order_of(&mut *conn, pizzeria_id, order_id).await?;
    let product = products::find_product(&mut *conn, product_id)
        .await?
        .filter(|p| p.order_id == order.id)
        .ok_or(KitchenError::NotFound("product"))?;
    let transition = order.status()?.after_rework()?;
    // A held pre-order has not reached the kitchen: there is nothing to make again yet.
    if order.fires_at.is_some() {
        return Err(conflict(
            "order_scheduled",
            "the order is a pre-order that has not been fired to the kitchen yet",
        ));
    }
    let first_station = product
        .route_stations
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("product {} has an empty route", product.id))?;
    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
    let reason_text = reason.map(Reason::as_str);
    products::restart_product(&mut *conn, product.id, change.now, reason_text).await?;
    if let Some(current) = &product.station {
        change.touch_station(current);
    }
    change.touch_station(&first_station);
    let event = ProductRemakeRequested {
        order_id: order.id,
        pizzeria_id,
        product_id: product.id,
        first_station: first_station.clone(),
        requested_at: change.now,
        reason: reason_text.map(str::to_owned),
        actor: actor.map(|a| a.as_str().to_owned()),
    };
    let entry = NewEntry {
        station: Some(&first_station),
        product_id: Some(product.id),
        actor,
    };
    change.emit(&event, entry)?;
    if transition.enters_work() {
        let event = OrderInWork {
            order_id: order.id,
            pizzeria_id,
            at: change.now,
        };
        change.emit(&event, NewEntry::default())?;
    }
    if transition.changed() {
        change.touch_board();
    }
    change.finish(conn, transition.to).await?;
    Ok(transition.to)
}

/// A manager rushes the order: every product of it still at a station goes to the top of that
/// station, as a remake does. Rushing twice changes nothing. Urgency is how the kitchen's
/// screens sort, not a state anyone outside the tracker follows, so it is written to the
/// timeline but published as no event (a new event type would be a contract change).
#[tracing::instrument(skip(conn, kitchen, actor))]
pub async fn rush(
    conn: &mut PgConnection,
    kitchen: &Kitchen,
    pizzeria_id: Uuid,
    order_id: Uuid,
    actor: Option<&Actor>,
) -> Result<OrderStatus, KitchenError> {
    let order = lock_order_of(&mut *conn, pizzeria_id, order_id).await?;
    let status = order.status()?;
    status.ensure_open()?;
    let stations = products::mark_order_urgent(&mut *conn, order.id).await?;
    if stations.is_empty() {
        return Ok(status);
    }
    let mut change = OrderChange::new(kitchen, order.id, order.pizzeria_id, order.version);
    for station in &stations {
        change.touch_station(station);
    }
    let entry = NewEntry {
        actor,
        ..NewEntry::default()
    };
    let detail = serde_json::json!({ "order_id": order.id, "actor": actor.map(Actor::as_str) });
    timeline::record(conn, order.id, change.now, "OrderRushed", &entry, &detail).await?;
    change.finish(conn, status).await?;
    Ok(status)
}
