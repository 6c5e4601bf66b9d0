//! Black-box tests of the tracker over HTTP and the bus, against the real PostgreSQL and
//! RabbitMQ that `make test` starts (`DATABASE_URL`, `AMQP_URL`). Each test has its own
//! database and exchange, so they all run in parallel.

// A panic in a test is a failed test with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod bad_input;
mod board_and_reports;
mod bus_intake;
mod counter;
mod helpers;
mod intake;
mod offline;
mod orders;
mod pizzerias;
mod pre_orders;
mod queue;
mod stations;
