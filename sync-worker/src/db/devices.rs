//! `devices`, and the per-device sequence that guards its name and station.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// What one device event says about the device. Each part is `None` when the event does not
/// carry it.
#[derive(Debug)]
pub struct DeviceRow {
    pub device_uuid: Uuid,
    pub unit_id: Uuid,
    pub device_type: i16,
    /// Name and station, from DeviceRegistered and DeviceRenamed.
    pub naming: Option<Naming>,
    /// From DeviceRegistered only.
    pub registration: Option<Registration>,
    /// From DeviceRevoked only.
    pub revocation: Option<Revocation>,
    pub at: DateTime<Utc>,
}

impl DeviceRow {
    /// A row that says only which device, where and when; the type is set by the caller.
    pub fn new(device_uuid: Uuid, unit_id: Uuid, at: DateTime<Utc>) -> Self {
        DeviceRow {
            device_uuid,
            unit_id,
            device_type: 0,
            naming: None,
            registration: None,
            revocation: None,
            at,
        }
    }
}

#[derive(Debug)]
pub struct Naming {
    pub name: String,
    pub station: Option<String>,
}

#[derive(Debug)]
pub struct Registration {
    pub approved_by: Uuid,
    pub approved_by_name: String,
    pub registered_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Revocation {
    pub revoked_at: DateTime<Utc>,
    pub revoked_by: Uuid,
}

/// Locks the device's sync state until the transaction ends, creating it if this is the first
/// event about the device, and returns the sequence its name and station came from (0: none).
#[tracing::instrument(skip(conn))]
pub async fn lock_device_state(
    conn: &mut PgConnection,
    device_uuid: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into sync_device_state as s (device_uuid, last_sequence) values ($1, 0)
         on conflict (device_uuid) do update set last_sequence = s.last_sequence
         returning last_sequence",
    )
    .bind(device_uuid)
    .fetch_one(conn)
    .await
}

#[tracing::instrument(skip(conn))]
pub async fn set_device_sequence(
    conn: &mut PgConnection,
    device_uuid: Uuid,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update sync_device_state set last_sequence = $2 where device_uuid = $1")
        .bind(device_uuid)
        .bind(sequence)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts or updates the device's row. Unit, type, name and station change only when
/// `newer_naming` (the event is newer than the one that set them); registration details only
/// ever come from one event; the first revocation stays; `changed_at` is the latest time seen.
#[tracing::instrument(skip(conn, row), fields(device_uuid = %row.device_uuid))]
pub async fn upsert_device(
    conn: &mut PgConnection,
    row: &DeviceRow,
    newer_naming: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into devices as d (device_uuid, unit_id, device_type, name, station, approved_by,
                                   approved_by_name, registered_at, is_active, revoked_at,
                                   revoked_by, changed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (device_uuid) do update set
             unit_id = case when $13 then excluded.unit_id else d.unit_id end,
             device_type = case when $13 then excluded.device_type else d.device_type end,
             name = case when $13 then excluded.name else d.name end,
             station = case when $13 then excluded.station else d.station end,
             approved_by = coalesce(excluded.approved_by, d.approved_by),
             approved_by_name = coalesce(excluded.approved_by_name, d.approved_by_name),
             registered_at = coalesce(excluded.registered_at, d.registered_at),
             is_active = d.is_active and excluded.is_active,
             revoked_at = coalesce(d.revoked_at, excluded.revoked_at),
             revoked_by = coalesce(d.revoked_by, excluded.revoked_by),
             changed_at = greatest(d.changed_at, excluded.changed_at)",
    )
    .bind(row.device_uuid)
    .bind(row.unit_id)
    .bind(row.device_type)
    .bind(row.naming.as_ref().map(|n| n.name.as_str()))
    .bind(row.naming.as_ref().and_then(|n| n.station.as_deref()))
    .bind(row.registration.as_ref().map(|r| r.approved_by))
    .bind(
        row.registration
            .as_ref()
            .map(|r| r.approved_by_name.as_str()),
    )
    .bind(row.registration.as_ref().map(|r| r.registered_at))
    .bind(row.revocation.is_none())
    .bind(row.revocation.as_ref().map(|r| r.revoked_at))
    .bind(row.revocation.as_ref().map(|r| r.revoked_by))
    .bind(row.at)
    .bind(newer_naming)
    .execute(conn)
    .await?;
    Ok(())
}
