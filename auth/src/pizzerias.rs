//! Auth's list of pizzerias, kept from the tracker's announcements (`PizzeriaRegistered`,
//! `PizzeriaChanged`): the tracker owns pizzerias, their stations and routes; auth only needs to
//! know which ids exist, so a role grant naming anything else is refused (422 on `pizzeria_id`).

use bus::{Handler, HandlerError, Incoming};
use contracts::{Event, PizzeriaChanged, PizzeriaRegistered};
use sqlx::PgConnection;

use crate::db::pizzerias;

/// The consumer's [`Handler`] (queue `auth-pizzerias`).
#[derive(Debug, Default, Clone, Copy)]
pub struct PizzeriaList;

impl Handler for PizzeriaList {
    async fn handle(&self, conn: &mut PgConnection, event: &Incoming) -> Result<(), HandlerError> {
        let envelope = &event.envelope;
        let (id, name) = match envelope.event_type.as_str() {
            PizzeriaRegistered::TYPE => {
                let e: PizzeriaRegistered = envelope.decode().map_err(permanent)?;
                (e.pizzeria_id, e.name)
            }
            PizzeriaChanged::TYPE => {
                let e: PizzeriaChanged = envelope.decode().map_err(permanent)?;
                (e.pizzeria_id, e.name)
            }
            // Another event of the tracker's pizzerias that auth has no use for.
            _ => return Ok(()),
        };
        // A stale or repeated event (its sequence not newer) changes nothing, which is right.
        pizzerias::apply_announced_pizzeria(conn, id, &name, envelope.sequence)
            .await
            .map(drop)
            .map_err(|e| HandlerError::Transient(anyhow::Error::new(e)))
    }
}

fn permanent(e: contracts::DecodeError) -> HandlerError {
    HandlerError::Permanent(anyhow::Error::new(e).context("not a pizzeria event we can read"))
}
