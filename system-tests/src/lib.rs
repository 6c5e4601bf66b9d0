//! Tests that run the tracker and the sync worker together against real PostgreSQL and
//! RabbitMQ; see `tests/system`. The crate has no code of its own.
