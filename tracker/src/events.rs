//! The bus side of intake: `OrderPlaced` and `OrderCancelled` from the order sources, applied in
//! the consumer's transaction (which also holds the inbox row, so each event counts once).

use anyhow::anyhow;
use bus::consumer::{Handler, HandlerError, Incoming};
use contracts::{Event, OrderCancelled, OrderPlaced};
use sqlx::PgConnection;

use crate::{
    domain::{Actor, NewOrder, Reason},
    kitchen::{self, Kitchen, KitchenError, SourceCancel, SourceCancelOutcome},
};

pub struct IntakeHandler {
    kitchen: Kitchen,
}

impl IntakeHandler {
    pub fn new(kitchen: Kitchen) -> Self {
        IntakeHandler { kitchen }
    }

    async fn order_placed(
        &self,
        conn: &mut PgConnection,
        event: &Incoming,
    ) -> Result<(), HandlerError> {
        let placed: OrderPlaced = event
            .envelope
            .decode()
            .map_err(|e| HandlerError::Permanent(anyhow!(e).context("reading OrderPlaced")))?;
        let order = NewOrder::try_from(placed)
            .map_err(|e| HandlerError::Permanent(anyhow!(e).context("the order breaks a rule")))?;
        let created = kitchen::accept_order(conn, &self.kitchen, &order)
            .await
            .map_err(|e| handler_error(e, "accepting the order"))?;
        tracing::info!(order_id = %order.id, created, "order from the bus");
        Ok(())
    }

    async fn order_cancelled(
        &self,
        conn: &mut PgConnection,
        event: &Incoming,
    ) -> Result<(), HandlerError> {
        let cancelled: OrderCancelled = event
            .envelope
            .decode()
            .map_err(|e| HandlerError::Permanent(anyhow!(e).context("reading OrderCancelled")))?;
        // The source system is the actor when the event names nobody.
        let source = event.routing_key.split('.').next().unwrap_or("source");
        let actor = Actor::parse(cancelled.actor.as_deref().unwrap_or(source))
            .map_err(|e| HandlerError::Permanent(anyhow!(e).context("the actor breaks a rule")))?;
        let reason = cancelled
            .reason
            .as_deref()
            .map(Reason::parse)
            .transpose()
            .map_err(|e| HandlerError::Permanent(anyhow!(e).context("the reason breaks a rule")))?;
        let cancel = SourceCancel {
            pizzeria_id: cancelled.pizzeria_id,
            order_id: cancelled.order_id,
            source,
            cancelled_at: cancelled.cancelled_at,
            reason: reason.as_ref(),
            actor: Some(&actor),
        };
        let outcome = kitchen::cancel_from_source(conn, &self.kitchen, &cancel)
            .await
            .map_err(|e| match e {
                // The cancellation overtook its order (another lane, a retry, an outage at the
                // till): it waits for the order, for as long as an outage may last.
                KitchenError::NotFound("order") => {
                    HandlerError::Waiting(anyhow!("the order to cancel is not here (yet)"))
                }
                other => handler_error(other, "cancelling the order"),
            })?;
        if outcome == SourceCancelOutcome::AfterHandOver {
            tracing::warn!(
                order_id = %cancelled.order_id,
                source,
                "a cancel arrived after the hand-over; recorded on the order for a refund"
            );
        }
        Ok(())
    }
}

fn handler_error(e: KitchenError, doing: &'static str) -> HandlerError {
    match e {
        KitchenError::Unexpected(e) => HandlerError::Transient(e.context(doing)),
        other => HandlerError::Permanent(anyhow!(other).context(doing)),
    }
}

impl Handler for IntakeHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Incoming) -> Result<(), HandlerError> {
        match event.envelope.event_type.as_str() {
            OrderPlaced::TYPE => self.order_placed(conn, event).await,
            OrderCancelled::TYPE => self.order_cancelled(conn, event).await,
            other => {
                // A wider binding must not wedge the queue: what we do not handle, we skip.
                tracing::warn!(
                    event_type = other,
                    "ignoring an event the tracker does not take"
                );
                Ok(())
            }
        }
    }
}
