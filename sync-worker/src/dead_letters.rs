//! The `dead-letters` commands for the sync worker's queue: what the worker could not mirror,
//! and putting it back. The implementation is the bus crate's, shared with the tracker.

use bus::topology::LEGACY_SYNC;
use service_kit::config::BusSettings;
use uuid::Uuid;

/// Writes one line per dead letter of the sync worker's queue; returns how many there are.
pub async fn list(bus: &BusSettings, out: &mut impl std::io::Write) -> anyhow::Result<usize> {
    bus::dead_letters::print(bus, LEGACY_SYNC, out).await
}

/// Sends dead letters (all, or the one with `only` as its event id) back to the worker.
pub async fn replay(bus: &BusSettings, only: Option<Uuid>) -> anyhow::Result<usize> {
    bus::dead_letters::replay(bus, LEGACY_SYNC, only).await
}
