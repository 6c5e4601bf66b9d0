//! The kitchen's vocabulary as types: values that cannot be built invalid, and the pure rules of
//! how an order and its products move. Nothing here touches the database or the network.

mod names;
mod order;
mod route;
mod status;

pub use names::{
    Actor, CustomerName, PizzeriaName, Principal, ProductName, Quantity, Reason, StationName,
};
pub use order::{NewItem, NewOrder};
pub use route::{Category, Route, Stage, default_routes, default_stations};
pub use status::{
    Conflict, OrderStatus, TapOutcome, Transition, UndoCheck, check_undo, decide_tap,
};

pub use service_kit::validation::{StationCode, ValidationError};
