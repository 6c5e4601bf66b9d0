//! What the kitchen does to orders: every state change as one function that takes the caller's
//! transaction, locks the order, asks the domain what the change means, and writes the new
//! state, its timeline entries, its outbox events and the version bumps together.
//!
//! HTTP handlers and the bus handler both call these, so an order placed over the bus and one
//! posted by a cashier's tablet go through the same code.

mod change;
mod intake;
mod late;
mod orders;
mod pizzerias;
mod stations;

use std::time::Duration;

use bus::outbox::Outbox;

use crate::{
    domain::{Conflict, ValidationError},
    versions::Versions,
};

pub use intake::{
    SourceCancel, SourceCancelOutcome, accept_order, cancel_from_source, cancel_order,
};
pub use late::{LateSweeper, fire_pre_orders, flag_late_orders};
pub use orders::{hand_over, remake, rush};
pub use pizzerias::{PizzeriaConfig, RouteConfig, StationConfig, configure_pizzeria, set_route};
pub use stations::{RECALL_WINDOW, TapRecord, TapRequest, Undone, recall, tap, undo};

/// The service name on everything the tracker publishes.
pub const SERVICE: &str = "tracker";

/// What the operations need besides the transaction.
#[derive(Clone)]
pub struct Kitchen {
    pub outbox: Outbox,
    pub undo_window: Duration,
    /// The queue and board versions in memory; every bump tells it what is about to commit.
    pub versions: Versions,
}

impl Kitchen {
    pub fn new(undo_window: Duration) -> Self {
        Kitchen {
            outbox: Outbox::new(SERVICE),
            undo_window,
            versions: Versions::new(),
        }
    }
}

/// Why an operation did not happen. The HTTP layer turns these into 404/409/422 and the bus
/// handler into a retry or a dead letter; `Unexpected` is ours and is logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum KitchenError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub(crate) fn conflict(code: &'static str, message: &'static str) -> KitchenError {
    KitchenError::Conflict(Conflict { code, message })
}
