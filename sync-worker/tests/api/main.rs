//! Black-box tests of the sync worker against the real PostgreSQL and RabbitMQ (`make test`).

// Test code: a failed setup step should fail the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod catch_up;
mod dead_letters;
mod dead_letters_api;
mod devices;
mod health;
mod helpers;
mod hops;
mod membership;
mod mirror;
mod rebuild;
