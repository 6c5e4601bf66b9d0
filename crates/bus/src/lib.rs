//! The RabbitMQ side of every service, written once.
//!
//! - [`topology`]: the exchange, every consumer's queue with its bindings, retry queues and
//!   dead-letter queue, declared in one place.
//! - [`outbox`]: events are staged in the service's own database in the same transaction as
//!   the state change, and a relay publishes them with publisher confirms.
//! - [`consumer`]: an inbox for exactly-once effects, per-order ordering, acks only after
//!   commit, retries with growing delays and a dead-letter queue that records why.
//! - [`dead_letters`]: list, replay and discard what ended in a dead-letter queue, from the
//!   command line or over HTTP, with an audit of who did it.
//! - [`hops`]: the path an event takes, recorded in its envelope at every step.
//! - [`publisher`]: a plain confirmed publisher for order sources, tools and tests.
//! - [`publishers`]: who may publish which routing keys, which every consumer checks.
//! - [`stream`]: the history of every event in a RabbitMQ stream, read again from any point in
//!   time by a new or repaired consumer.

mod confirm;
pub mod connection;
pub mod consumer;
pub mod dead_letters;
mod headers;
pub mod hops;
pub mod outbox;
pub mod publisher;
pub mod publishers;
pub mod retention;
pub mod service;
pub mod stream;
pub mod topology;

pub use consumer::{BatchError, Consumer, ConsumerSettings, Handler, HandlerError, Incoming};
pub use outbox::{Outbox, Relay};
pub use publisher::Publisher;
pub use service::BusTasks;
pub use topology::QueueSpec;
