//! The devices service's events into `devices`.
//!
//! Each event carries what it knows and the row is upserted from it, so the events may arrive
//! in any order, and a device registered before the mirror existed still gets a row when it is
//! renamed or revoked. Unit, type, name and station change only with an event newer than the
//! one that set them (`sync_device_state.last_sequence`); the registration details come only
//! from `DeviceRegistered`; a revocation is final.

use access::DeviceKind;
use anyhow::Context;
use contracts::{DeviceRegistered, DeviceRenamed, DeviceRevoked, Envelope, Event};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{MirrorError, check_jump, decode};
use crate::db::{self, DeviceRow, Naming, Registration, Revocation};
use crate::legacy::{self, NAME_WIDTH, STATION_WIDTH, fit};

/// A device event, decoded.
pub(super) struct DeviceEvent {
    sequence: i64,
    row: DeviceRow,
}

fn naming(name: &str, station: Option<&str>) -> Option<Naming> {
    Some(Naming {
        name: fit(name, NAME_WIDTH).to_owned(),
        station: station.map(|s| fit(s, STATION_WIDTH).to_owned()),
    })
}

/// Decodes a device event; `None` for any other type, and for a kind of device the monolith
/// has no code for.
pub(super) fn plan(envelope: &Envelope) -> Result<Option<DeviceEvent>, MirrorError> {
    let (kind, row) = match envelope.event_type.as_str() {
        DeviceRegistered::TYPE => {
            let e: DeviceRegistered = decode(envelope)?;
            let row = DeviceRow {
                naming: naming(&e.name, e.station.as_deref()),
                registration: Some(Registration {
                    approved_by: e.approved_by,
                    approved_by_name: fit(&e.approved_by_name, NAME_WIDTH).to_owned(),
                    registered_at: e.at,
                }),
                ..DeviceRow::new(e.device_id, e.pizzeria_id, e.at)
            };
            (e.kind, row)
        }
        DeviceRenamed::TYPE => {
            let e: DeviceRenamed = decode(envelope)?;
            let row = DeviceRow {
                naming: naming(&e.name, e.station.as_deref()),
                ..DeviceRow::new(e.device_id, e.pizzeria_id, e.at)
            };
            (e.kind, row)
        }
        DeviceRevoked::TYPE => {
            let e: DeviceRevoked = decode(envelope)?;
            let row = DeviceRow {
                revocation: Some(Revocation {
                    revoked_at: e.at,
                    revoked_by: e.actor_id,
                }),
                ..DeviceRow::new(e.device_id, e.pizzeria_id, e.at)
            };
            (e.kind, row)
        }
        _ => return Ok(None),
    };
    let Some(kind) = DeviceKind::parse(&kind) else {
        tracing::warn!(device_uuid = %row.device_uuid, %kind, "not mirrored: the monolith has no code for the device's kind");
        return Ok(None);
    };
    Ok(Some(DeviceEvent {
        sequence: envelope.sequence,
        row: DeviceRow {
            device_type: legacy::device_type_code(kind),
            ..row
        },
    }))
}

#[tracing::instrument(skip_all, fields(device_uuid = %event.row.device_uuid, sequence = event.sequence))]
pub(super) async fn apply(
    conn: &mut PgConnection,
    event: &DeviceEvent,
    max_sequence_jump: i64,
) -> Result<(), MirrorError> {
    let device_uuid: Uuid = event.row.device_uuid;
    let naming_sequence = db::lock_device_state(conn, device_uuid)
        .await
        .context("locking the device's sync state")?;
    let subject = format!("device {device_uuid}");
    check_jump(&subject, event.sequence, naming_sequence, max_sequence_jump)?;
    let newer_naming = event.row.naming.is_some() && event.sequence > naming_sequence;
    db::upsert_device(conn, &event.row, newer_naming)
        .await
        .context("writing the device's row")?;
    if newer_naming {
        db::set_device_sequence(conn, device_uuid, event.sequence)
            .await
            .context("recording the device's sequence")?;
    }
    Ok(())
}
