//! The contracts of the kitchen bus.
//!
//! Every event that crosses a service boundary is defined here once: a typed struct, and a JSON
//! Schema file in `schemas/` that other languages (the cashier, the website) can read. The test
//! at the bottom of [`schema`] fails when the two drift apart, so the schema files are never stale.
//!
//! Evolution rule: adding an optional field is fine; anything that would break an existing
//! consumer is a new event type.

mod envelope;
mod events;
pub mod schema;

pub use envelope::{DecodeError, Envelope, Event, Hop, SPEC_VERSION, routing_key};
pub use events::*;
