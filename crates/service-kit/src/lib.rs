//! What every kitchen service shares, written once: layered configuration, JSON telemetry with a
//! trace id, the HTTP skeleton (health, metrics, error bodies, extractors that name the broken
//! field), graceful shutdown, leaders for the jobs that run once per cluster, and the builder
//! every service starts from (`app`).

pub mod app;
pub mod client;
pub mod config;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod rate;
pub mod retention;
pub mod secrets;
pub mod shutdown;
mod strict;
pub mod telemetry;
