//! Black-box tests of the devices service over HTTP and the bus, against the real PostgreSQL and
//! RabbitMQ that `make test` starts (`DATABASE_URL`, `AMQP_URL`). Every test runs a real auth
//! app beside the devices app (staff sign in there), each with its own database, on one
//! exchange of the test's own, so they all run in parallel.

// A panic in a test is a failed test with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_matrix;
mod approval;
mod bad_input;
mod events;
mod flow;
mod helpers;
mod lifetime;
mod oauth_client;
mod phishing;
mod polling;
mod pruning;
mod revocation;
