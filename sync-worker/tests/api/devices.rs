use chrono::{DateTime, TimeDelta, Utc};
use contracts::{DeviceRegistered, DeviceRenamed, DeviceRevoked};
use uuid::Uuid;

use crate::helpers::{Message, TestApp, spawn_app};

/// A `devices` row without its key and device.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct DeviceRow {
    unit_id: Uuid,
    device_type: i16,
    name: Option<String>,
    station: Option<String>,
    approved_by: Option<Uuid>,
    approved_by_name: Option<String>,
    registered_at: Option<DateTime<Utc>>,
    is_active: bool,
    revoked_at: Option<DateTime<Utc>>,
    revoked_by: Option<Uuid>,
    changed_at: DateTime<Utc>,
}

async fn device(app: &TestApp, device_uuid: Uuid) -> Option<DeviceRow> {
    sqlx::query_as(
        "select unit_id, device_type, name, station, approved_by, approved_by_name,
                registered_at, is_active, revoked_at, revoked_by, changed_at
         from devices where device_uuid = $1",
    )
    .bind(device_uuid)
    .fetch_optional(&app.db.pool)
    .await
    .expect("read devices")
}

/// A station tablet: registered at the dough station, renamed and moved to the oven, revoked.
struct TestDevice {
    device_id: Uuid,
    pizzeria_id: Uuid,
    manager: Uuid,
    start: DateTime<Utc>,
}

impl TestDevice {
    fn new(pizzeria_id: Uuid, manager: Uuid) -> Self {
        TestDevice {
            device_id: Uuid::new_v4(),
            pizzeria_id,
            manager,
            start: DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time"),
        }
    }

    fn at(&self, sequence: i64) -> DateTime<Utc> {
        self.start + TimeDelta::seconds(sequence)
    }

    fn registered(&self) -> Message {
        Message::from_service(
            "devices",
            1,
            &DeviceRegistered {
                device_id: self.device_id,
                pizzeria_id: self.pizzeria_id,
                kind: "kitchen_station".into(),
                name: "Dough tablet".into(),
                station: Some("dough".into()),
                approved_by: self.manager,
                approved_by_name: "Olga K.".into(),
                requested_at: self.at(-60),
                approved_at: self.at(-30),
                at: self.at(1),
            },
        )
    }

    fn life(&self) -> Vec<Message> {
        vec![
            self.registered(),
            Message::from_service(
                "devices",
                2,
                &DeviceRenamed {
                    device_id: self.device_id,
                    pizzeria_id: self.pizzeria_id,
                    kind: "kitchen_station".into(),
                    name: "Oven tablet".into(),
                    station: Some("oven".into()),
                    at: self.at(2),
                    actor_id: self.manager,
                },
            ),
            Message::from_service(
                "devices",
                3,
                &DeviceRevoked {
                    device_id: self.device_id,
                    pizzeria_id: self.pizzeria_id,
                    kind: "kitchen_station".into(),
                    at: self.at(3),
                    actor_id: self.manager,
                },
            ),
        ]
    }

    fn expected(&self) -> DeviceRow {
        DeviceRow {
            unit_id: self.pizzeria_id,
            device_type: 1,
            name: Some("Oven tablet".into()),
            station: Some("oven".into()),
            approved_by: Some(self.manager),
            approved_by_name: Some("Olga K.".into()),
            registered_at: Some(self.at(1)),
            is_active: false,
            revoked_at: Some(self.at(3)),
            revoked_by: Some(self.manager),
            changed_at: self.at(3),
        }
    }
}

#[tokio::test]
async fn a_device_is_mirrored_from_registration_to_revocation() {
    let app = spawn_app().await;
    let tablet = TestDevice::new(Uuid::new_v4(), Uuid::new_v4());

    app.publish(&tablet.registered()).await;
    let registered = testkit::eventually("the device registered", crate::helpers::PATIENCE, || {
        device(&app, tablet.device_id)
    })
    .await;
    assert_eq!(registered.name.as_deref(), Some("Dough tablet"));
    assert_eq!(registered.station.as_deref(), Some("dough"));
    assert!(registered.is_active);
    assert_eq!(registered.revoked_at, None);

    app.publish_all(&tablet.life()[1..]).await;
    let revoked = testkit::eventually("the device revoked", crate::helpers::PATIENCE, || async {
        device(&app, tablet.device_id)
            .await
            .filter(|d| !d.is_active)
    })
    .await;
    assert_eq!(revoked, tablet.expected());
}

#[tokio::test]
async fn duplicated_and_shuffled_device_events_leave_the_same_end_state() {
    let app = spawn_app().await;
    let (pizzeria, manager) = (Uuid::new_v4(), Uuid::new_v4());
    let in_order = TestDevice::new(pizzeria, manager);
    let shuffled = TestDevice::new(pizzeria, manager);

    // Newest first, the revocation comes before anything else is known of the device, the
    // rename before the registration whose name it replaces.
    app.publish_straight_and_shuffled(&in_order.life(), &shuffled.life())
        .await;
    assert_eq!(
        device(&app, in_order.device_id).await,
        Some(in_order.expected())
    );
    assert_eq!(
        device(&app, shuffled.device_id).await,
        Some(shuffled.expected())
    );
}
