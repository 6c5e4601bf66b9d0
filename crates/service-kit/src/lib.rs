//! What every kitchen service shares, written once: layered configuration, JSON telemetry with a
//! trace id, the HTTP skeleton (health, metrics, error bodies, extractors that name the broken
//! field), graceful shutdown, leaders for the jobs that run once per cluster, connections for
//! the hottest requests kept outside the pool (`hot`), the builder every service starts from
//! (`app`), and the validation error and rules the services' domains share (`validation`).

pub mod app;
pub mod client;
pub mod config;
pub mod hot;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod rate;
pub mod retention;
pub mod secrets;
pub mod shutdown;
mod strict;
pub mod telemetry;
pub mod validation;

/// The allocator of every binary that links this crate: all five services (and their tests).
/// Under load glibc's `malloc` and `free` were the tracker's largest user-space items (about 8%
/// of its samples in scenario b, docs/BENCHMARKS.md): a request builds and drops many small
/// strings, JSON values and futures across two threads, which mimalloc's per-thread free lists
/// serve without glibc's arena locking.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
