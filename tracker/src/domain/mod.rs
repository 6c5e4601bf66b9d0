//! The kitchen's vocabulary as types: values that cannot be built invalid, and the pure rules of
//! how an order and its products move. Nothing here touches the database or the network.

mod names;
mod order;
mod route;
mod status;

pub use names::{
    Actor, CustomerName, PizzeriaName, Principal, ProductName, Quantity, Reason, StationCode,
    StationName,
};
pub use order::{NewItem, NewOrder};
pub use route::{Category, Route, Stage, default_routes, default_stations};
pub use status::{
    Conflict, OrderStatus, TapOutcome, Transition, UndoCheck, check_undo, decide_tap,
};

/// A value that breaks a rule: `field` is the path the caller sent it under
/// (`items[0].quantity`), `rule` says what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct ValidationError {
    pub field: String,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The same rule, under the path of the value that contains the field.
    pub fn under(self, prefix: &str) -> Self {
        ValidationError {
            field: format!("{prefix}.{}", self.field),
            ..self
        }
    }
}
