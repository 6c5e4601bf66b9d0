//! The `dead-letters` commands: what the worker could not mirror, and putting it back.

use std::io::Write;

use anyhow::Context;
use bus::{dead_letters::DeadLetter, topology::LEGACY_SYNC};
use service_kit::config::BusSettings;
use uuid::Uuid;

/// Writes one line per dead letter of the sync worker's queue; returns how many there are.
pub async fn list(bus: &BusSettings, out: &mut impl Write) -> anyhow::Result<usize> {
    let letters = bus::dead_letters::list(bus, LEGACY_SYNC)
        .await
        .context("listing the dead letters")?;
    for letter in &letters {
        writeln!(out, "{}", describe(letter)).context("writing the list")?;
    }
    Ok(letters.len())
}

/// Sends dead letters (all, or the one with `only` as its event id) back to the worker.
pub async fn replay(bus: &BusSettings, only: Option<Uuid>) -> anyhow::Result<usize> {
    bus::dead_letters::replay(bus, LEGACY_SYNC, only)
        .await
        .context("replaying the dead letters")
}

fn describe(letter: &DeadLetter) -> String {
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    format!(
        "{id}\t{kind}\t{key}\tattempts={attempts}\tfailed_at={at}\terror={error}",
        id = or_dash(&letter.event_id),
        kind = or_dash(&letter.event_type),
        key = or_dash(&letter.routing_key),
        attempts = letter
            .attempts
            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        at = or_dash(&letter.failed_at),
        error = or_dash(&letter.error),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_fits_on_one_line() {
        let letter = DeadLetter {
            event_id: Some("0190f1d2-7c1e-7a3b-9f00-2b1c3d4e5f60".to_owned()),
            event_type: Some("OrderPacked".to_owned()),
            routing_key: Some("tracker.order.packed".to_owned()),
            error: Some("order x is not mirrored yet".to_owned()),
            error_chain: None,
            attempts: Some(3),
            failed_at: None,
            body: "{}".to_owned(),
        };
        assert_eq!(
            describe(&letter),
            "0190f1d2-7c1e-7a3b-9f00-2b1c3d4e5f60\tOrderPacked\ttracker.order.packed\t\
             attempts=3\tfailed_at=-\terror=order x is not mirrored yet"
        );
    }
}
