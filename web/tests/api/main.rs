//! The web's server-side pieces over HTTP: sign-in redirects, CSRF refusals, friendly error
//! pages, and a real sign-in against a real auth service (PostgreSQL and RabbitMQ from
//! `make test`).

// Test code: a failed setup step should fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod activate;
mod hardening;
mod helpers;
mod live;
mod pages;
