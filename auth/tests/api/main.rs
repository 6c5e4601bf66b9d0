//! Black-box tests of the auth service over HTTP and the bus, against the real PostgreSQL and
//! RabbitMQ that `make test` starts (`DATABASE_URL`, `AMQP_URL`). Each test has its own
//! database and exchange, so they all run in parallel.

// A panic in a test is a failed test with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_cache;
mod audit;
mod bad_input;
mod dead_letters;
mod events;
mod helpers;
mod internal;
mod pizzerias;
mod roles;
mod sessions;
mod staff_list;
mod throttle;
