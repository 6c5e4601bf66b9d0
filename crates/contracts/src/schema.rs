//! JSON Schemas of the event types, as checked into `schemas/`.

use schemars::{JsonSchema, generate::SchemaSettings};

use crate::*;

/// Every event type with its schema file name; the docs (`docs/asyncapi.yaml`) point at these.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (OrderPlaced::TYPE, of::<OrderPlaced>()),
        (OrderCancelled::TYPE, of::<OrderCancelled>()),
        (OrderAcceptedByTracker::TYPE, of::<OrderAcceptedByTracker>()),
        (OrderInWork::TYPE, of::<OrderInWork>()),
        (ProductStageCompleted::TYPE, of::<ProductStageCompleted>()),
        (ProductStageUndone::TYPE, of::<ProductStageUndone>()),
        (ProductRemakeRequested::TYPE, of::<ProductRemakeRequested>()),
        (OrderPacked::TYPE, of::<OrderPacked>()),
        (OrderHandedOver::TYPE, of::<OrderHandedOver>()),
        (OrderRunningLate::TYPE, of::<OrderRunningLate>()),
        ("Envelope", of::<Envelope>()),
    ]
}

/// The JSON Schema (draft 2020-12) of `T`.
pub fn of<T: JsonSchema>() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn schema_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
    }

    /// The checked-in schema files are what the structs produce. After changing a struct, run
    /// `UPDATE_SCHEMAS=1 cargo test -p contracts` and review the diff like any other change.
    #[test]
    fn schema_files_match_the_structs() {
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (name, schema) in all() {
            let path = schema_dir().join(format!("{name}.json"));
            let mut expected = serde_json::to_string_pretty(&schema).unwrap_or_default();
            expected.push('\n');
            if update {
                std::fs::write(&path, &expected).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk != expected {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "schema files out of date: {stale:?}; run UPDATE_SCHEMAS=1 cargo test -p contracts"
        );
    }

    /// Every schema file belongs to a type, so a removed type cannot leave its schema behind.
    #[test]
    fn no_orphan_schema_files() {
        let known: Vec<String> = all()
            .into_iter()
            .map(|(n, _)| format!("{n}.json"))
            .collect();
        for entry in std::fs::read_dir(schema_dir()).unwrap_or_else(|e| panic!("{e}")) {
            let name = entry
                .unwrap_or_else(|e| panic!("{e}"))
                .file_name()
                .to_string_lossy()
                .into_owned();
            assert!(known.contains(&name), "{name} has no event type");
        }
    }

    /// The example in docs/asyncapi.yaml, as a cashier in another language would send it.
    #[test]
    fn a_cashier_message_decodes() {
        let wire = r#"{
            "specversion": "1.0",
            "id": "0190f1d2-7c1e-7a3b-9f00-2b1c3d4e5f60",
            "source": "/kitchen/cashier",
            "type": "OrderPlaced",
            "subject": "5d0e8f8e-3c5b-4a52-9a53-9f0b8d3f2a11",
            "time": "2026-11-21T12:00:00Z",
            "datacontenttype": "application/json",
            "sequence": 1,
            "data": {
                "order_id": "5d0e8f8e-3c5b-4a52-9a53-9f0b8d3f2a11",
                "pizzeria_id": "8a6c1b7e-0f9d-4c3e-b2a1-7e6d5c4b3a29",
                "number": 42,
                "customer_name": "Anna",
                "source": "restaurant",
                "placed_at": "2026-11-21T12:00:00Z",
                "items": [
                    {"product_id": "11111111-2222-4333-8444-555555555555", "name": "Pepperoni",
                     "category": "pizza", "size": "30 cm", "quantity": 2, "modifiers": ["no onion"]}
                ]
            }
        }"#;
        let envelope: Envelope = serde_json::from_str(wire).unwrap_or_else(|e| panic!("{e}"));
        let order: OrderPlaced = envelope.decode().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(order.number, 42);
        assert_eq!(order.items[0].quantity, 2);
        assert!(!order.show_number_only);
        assert!(envelope.decode::<OrderPacked>().is_err());
    }

    #[test]
    fn wrapping_sets_the_cloudevents_attributes() {
        let at = chrono::Utc::now();
        let event = OrderPacked {
            order_id: uuid::Uuid::new_v4(),
            pizzeria_id: uuid::Uuid::new_v4(),
            at,
        };
        let envelope = Envelope::wrap("tracker", &event, 7, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(envelope.specversion, "1.0");
        assert_eq!(envelope.event_type, "OrderPacked");
        assert_eq!(envelope.subject, event.order_id.to_string());
        assert_eq!(envelope.source, "/kitchen/tracker");
        assert_eq!(envelope.sequence, 7);
        assert_eq!(
            routing_key::<OrderPacked>("tracker"),
            "tracker.order.packed"
        );
        assert_eq!(
            envelope
                .decode::<OrderPacked>()
                .unwrap_or_else(|e| panic!("{e}")),
            event
        );
    }
}
