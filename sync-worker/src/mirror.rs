//! The handler that mirrors the tracker's events into the legacy tables.
//!
//! The bus consumer hands each event over with the transaction its inbox row is written in, so
//! an event is mirrored exactly once or not at all. The end state is the same whatever order
//! and however often the events arrive:
//! - an event for an order whose `OrderAcceptedByTracker` is not mirrored yet fails as
//!   transient and comes back after a retry delay, by which time the accepted event has landed;
//! - a status only moves forward in the order's event sequence, so a late, stale event adds
//!   its history row but never overwrites newer state;
//! - every history row names its event, so the same event never adds a second row.

use anyhow::Context;
use bus::consumer::{Handler, HandlerError, Incoming};
use chrono::{DateTime, Utc};
use contracts::{
    DecodeError, Envelope, Event, OrderAcceptedByTracker, OrderCancelled, OrderHandedOver,
    OrderInWork, OrderPacked, OrderRunningLate, ProductRemakeRequested, ProductStageCompleted,
    ProductStageUndone,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::{self, NewHistoryRow, NewOrder, NewOrderItem};
use crate::legacy::{
    self, COMMENT_WIDTH, LegacyStage, LegacyStatus, NAME_WIDTH, PRODUCT_NAME_WIDTH, SHORT_WIDTH,
    STATION_WIDTH, fit,
};

/// The sync worker's [`Handler`].
#[derive(Debug, Default, Clone, Copy)]
pub struct LegacyMirror;

impl Handler for LegacyMirror {
    async fn handle(&self, conn: &mut PgConnection, event: &Incoming) -> Result<(), HandlerError> {
        mirror(conn, &event.envelope)
            .await
            .map_err(HandlerError::from)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("the event cannot be decoded")]
    Undecodable(#[source] DecodeError),
    /// The event contradicts itself, e.g. a product pointing at an item that is not there.
    #[error("the event is inconsistent: {0}")]
    Inconsistent(String),
    #[error("order {0} is not mirrored yet: its OrderAcceptedByTracker has not arrived")]
    OrderNotYetAccepted(Uuid),
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

impl From<MirrorError> for HandlerError {
    fn from(error: MirrorError) -> Self {
        match error {
            MirrorError::Undecodable(_) | MirrorError::Inconsistent(_) => {
                HandlerError::Permanent(error.into())
            }
            MirrorError::OrderNotYetAccepted(_) => HandlerError::Transient(error.into()),
            MirrorError::Database(error) if is_bad_data(&error) => HandlerError::Permanent(error),
            MirrorError::Database(error) => HandlerError::Transient(error),
        }
    }
}

/// A database error that no retry can fix: the row breaks a type or a constraint (SQLSTATE
/// classes 22 and 23). Anything else (a lost connection, a deadlock) may pass on retry.
fn is_bad_data(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .filter_map(|e| e.as_database_error())
        .filter_map(|e| e.code())
        .any(|code| code.starts_with("22") || code.starts_with("23"))
}

/// Writes what `envelope` says into the legacy tables. Unknown event types are skipped: the
/// tracker may announce more than the monolith ever knew about.
#[tracing::instrument(
    skip(conn, envelope),
    fields(event_id = %envelope.id, event_type = %envelope.event_type, sequence = envelope.sequence)
)]
pub async fn mirror(conn: &mut PgConnection, envelope: &Envelope) -> Result<(), MirrorError> {
    match envelope.event_type.as_str() {
        OrderAcceptedByTracker::TYPE => accept_order(conn, envelope, &decode(envelope)?).await,
        OrderInWork::TYPE => {
            let e: OrderInWork = decode(envelope)?;
            let change = Change::status(LegacyStatus::InWork, e.at);
            apply(conn, envelope, e.order_id, change).await
        }
        OrderPacked::TYPE => {
            let e: OrderPacked = decode(envelope)?;
            let change = Change::status(LegacyStatus::Packed, e.at);
            apply(conn, envelope, e.order_id, change).await
        }
        OrderHandedOver::TYPE => {
            let e: OrderHandedOver = decode(envelope)?;
            let change = Change {
                actor: e.actor.as_deref(),
                ..Change::status(LegacyStatus::HandedOver, e.at)
            };
            apply(conn, envelope, e.order_id, change).await
        }
        OrderCancelled::TYPE => {
            let e: OrderCancelled = decode(envelope)?;
            let change = Change {
                actor: e.actor.as_deref(),
                comment: e.reason.as_deref(),
                ..Change::status(LegacyStatus::Cancelled, e.cancelled_at)
            };
            apply(conn, envelope, e.order_id, change).await
        }
        ProductStageCompleted::TYPE => {
            let e: ProductStageCompleted = decode(envelope)?;
            let change = Change {
                product_name: Some(&e.product_name),
                actor: e.actor.as_deref(),
                ..Change::product(
                    LegacyStage::Completed,
                    e.product_id,
                    &e.station,
                    e.completed_at,
                )
            };
            apply(conn, envelope, e.order_id, change).await
        }
        ProductStageUndone::TYPE => {
            let e: ProductStageUndone = decode(envelope)?;
            let change = Change {
                actor: e.actor.as_deref(),
                ..Change::product(LegacyStage::Undone, e.product_id, &e.station, e.undone_at)
            };
            apply(conn, envelope, e.order_id, change).await
        }
        ProductRemakeRequested::TYPE => {
            let e: ProductRemakeRequested = decode(envelope)?;
            let change = Change {
                actor: e.actor.as_deref(),
                comment: e.reason.as_deref(),
                ..Change::product(
                    LegacyStage::Remake,
                    e.product_id,
                    &e.first_station,
                    e.requested_at,
                )
            };
            apply(conn, envelope, e.order_id, change).await
        }
        OrderRunningLate::TYPE => {
            let e: OrderRunningLate = decode(envelope)?;
            // A flag, not a status: it is never cleared, so its order among events is moot.
            let order = require_order(conn, e.order_id).await?;
            db::mark_order_late(conn, order.id)
                .await
                .context("marking the order late")?;
            Ok(())
        }
        other => {
            tracing::debug!(
                event_type = other,
                "not mirrored: the legacy tables have no place for it"
            );
            Ok(())
        }
    }
}

fn decode<E: Event>(envelope: &Envelope) -> Result<E, MirrorError> {
    envelope.decode().map_err(MirrorError::Undecodable)
}

async fn accept_order(
    conn: &mut PgConnection,
    envelope: &Envelope,
    e: &OrderAcceptedByTracker,
) -> Result<(), MirrorError> {
    let order = NewOrder {
        order_uuid: e.order_id,
        unit_id: e.pizzeria_id,
        order_number: narrow(e.number, "number")?,
        client_name: fit(&e.customer_name, NAME_WIDTH),
        is_number_only: e.show_number_only,
        status: LegacyStatus::Accepted.code(),
        order_type: legacy::order_type_code(e.source),
        created_at: e.placed_at,
        changed_at: e.accepted_at,
    };
    let Some(order_id) = db::insert_order(conn, &order)
        .await
        .context("inserting the order")?
    else {
        tracing::debug!("the order is mirrored already");
        return Ok(());
    };

    let mut item_ids = Vec::with_capacity(e.items.len());
    for (line_no, item) in e.items.iter().enumerate() {
        let modifiers = legacy::join_modifiers(&item.modifiers);
        let item = NewOrderItem {
            line_no: narrow(line_no, "items")?,
            product_id: item.product_id,
            product_name: fit(&item.name, PRODUCT_NAME_WIDTH),
            category: item.category.as_str(),
            size: item.size.as_deref().map(|s| fit(s, SHORT_WIDTH)),
            quantity: narrow(item.quantity, "items.quantity")?,
            modifiers: &modifiers,
        };
        let id = db::insert_order_item(conn, order_id, &item)
            .await
            .context("inserting an order item")?;
        item_ids.push(id);
    }
    for product in &e.products {
        let item_id = usize::try_from(product.item_index)
            .ok()
            .and_then(|index| item_ids.get(index))
            .ok_or_else(|| {
                MirrorError::Inconsistent(format!(
                    "product {} names item {}, which the order does not have",
                    product.id, product.item_index
                ))
            })?;
        db::insert_product_unit(conn, product.id, *item_id)
            .await
            .context("mapping a product to its item")?;
    }
    db::insert_order_state(conn, e.order_id, envelope.sequence)
        .await
        .context("recording the order's sync state")?;
    let history = NewHistoryRow {
        status: Some(LegacyStatus::Accepted.code()),
        ..history_row(envelope, order_id, e.accepted_at)
    };
    db::insert_history(conn, &history)
        .await
        .context("recording the acceptance in the history")?;
    Ok(())
}

/// What one event changes about an order: a status, or a step of one product.
#[derive(Debug)]
struct Change<'a> {
    status: Option<LegacyStatus>,
    stage: Option<LegacyStage>,
    station: Option<&'a str>,
    product_id: Option<Uuid>,
    product_name: Option<&'a str>,
    actor: Option<&'a str>,
    comment: Option<&'a str>,
    at: DateTime<Utc>,
}

impl<'a> Change<'a> {
    fn status(status: LegacyStatus, at: DateTime<Utc>) -> Self {
        Change {
            status: Some(status),
            ..Change::at(at)
        }
    }

    fn product(stage: LegacyStage, product_id: Uuid, station: &'a str, at: DateTime<Utc>) -> Self {
        Change {
            stage: Some(stage),
            station: Some(station),
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
            at,
        }
    }
}

async fn apply(
    conn: &mut PgConnection,
    envelope: &Envelope,
    order_uuid: Uuid,
    change: Change<'_>,
) -> Result<(), MirrorError> {
    let order = require_order(conn, order_uuid).await?;
    if let Some(status) = change.status {
        if legacy::is_newer_status(order.status_sequence, envelope.sequence) {
            db::set_order_status(conn, &order, status.code(), envelope.sequence, change.at)
                .await
                .context("setting the order status")?;
        } else {
            tracing::debug!(
                applied_sequence = order.status_sequence,
                "stale status event: only its history row is written"
            );
        }
    }
    let item = match change.product_id {
        Some(product_id) => db::find_order_item(conn, order.id, product_id)
            .await
            .context("finding the product's order item")?,
        None => None,
    };
    let history = NewHistoryRow {
        status: change.status.map(LegacyStatus::code),
        stage: change.stage.map(LegacyStage::as_str),
        station: change.station.map(|s| fit(s, STATION_WIDTH)),
        order_item_id: item.as_ref().map(|(id, _)| *id),
        product_name: change
            .product_name
            .or(item.as_ref().map(|(_, name)| name.as_str()))
            .map(|name| fit(name, PRODUCT_NAME_WIDTH)),
        actor: change.actor.map(|a| fit(a, NAME_WIDTH)),
        comment: change.comment.map(|c| fit(c, COMMENT_WIDTH)),
        ..history_row(envelope, order.id, change.at)
    };
    db::insert_history(conn, &history)
        .await
        .context("appending to the order history")?;
    Ok(())
}

async fn require_order(
    conn: &mut PgConnection,
    order_uuid: Uuid,
) -> Result<db::LegacyOrder, MirrorError> {
    db::lock_order(conn, order_uuid)
        .await
        .context("looking up the mirrored order")?
        .ok_or(MirrorError::OrderNotYetAccepted(order_uuid))
}

/// A history row of `envelope` with only the common columns set.
fn history_row(envelope: &Envelope, order_id: i32, at: DateTime<Utc>) -> NewHistoryRow<'static> {
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

/// Converts a count from the event into the monolith's narrower integer column.
fn narrow<T, U>(value: T, field: &str) -> Result<U, MirrorError>
where
    T: Copy + std::fmt::Display,
    U: TryFrom<T>,
{
    U::try_from(value).map_err(|_| {
        MirrorError::Inconsistent(format!("{field} {value} does not fit the legacy column"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_not_yet_accepted_is_retried() {
        let error = HandlerError::from(MirrorError::OrderNotYetAccepted(Uuid::nil()));
        assert!(matches!(error, HandlerError::Transient(_)));
    }

    #[test]
    fn an_undecodable_event_is_dead_lettered_at_once() {
        let at = Utc::now();
        let event = OrderPacked {
            order_id: Uuid::new_v4(),
            pizzeria_id: Uuid::new_v4(),
            at,
        };
        let mut envelope = Envelope::wrap("tracker", &event, 1, None).expect("wraps");
        envelope.event_type = OrderInWork::TYPE.to_owned();
        envelope.data = serde_json::json!({ "order_id": "not a uuid" });
        let error = decode::<OrderInWork>(&envelope).expect_err("bad data");
        let error = HandlerError::from(error);
        assert!(matches!(error, HandlerError::Permanent(_)));
        assert!(error.to_string().contains("cannot be decoded"), "{error}");
    }

    #[test]
    fn a_lost_connection_is_retried() {
        let error = MirrorError::from(anyhow::Error::new(sqlx::Error::PoolTimedOut).context("x"));
        assert!(matches!(
            HandlerError::from(error),
            HandlerError::Transient(_)
        ));
    }

    #[test]
    fn a_number_too_large_for_the_legacy_column_is_inconsistent() {
        assert_eq!(narrow::<u32, i16>(3, "quantity").ok(), Some(3));
        assert!(matches!(
            narrow::<u32, i16>(40_000, "quantity"),
            Err(MirrorError::Inconsistent(_))
        ));
    }
}
