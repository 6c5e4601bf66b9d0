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
        (
            OrderCancelledAfterHandOver::TYPE,
            of::<OrderCancelledAfterHandOver>(),
        ),
        (OrderRunningLate::TYPE, of::<OrderRunningLate>()),
        (PizzeriaRegistered::TYPE, of::<PizzeriaRegistered>()),
        (PizzeriaChanged::TYPE, of::<PizzeriaChanged>()),
        (OrderFired::TYPE, of::<OrderFired>()),
        (UserCreated::TYPE, of::<UserCreated>()),
        (UserRolesChanged::TYPE, of::<UserRolesChanged>()),
        (UserDeactivated::TYPE, of::<UserDeactivated>()),
        (SessionRevoked::TYPE, of::<SessionRevoked>()),
        (DeviceRegistered::TYPE, of::<DeviceRegistered>()),
        (DeviceRenamed::TYPE, of::<DeviceRenamed>()),
        (DeviceRevoked::TYPE, of::<DeviceRevoked>()),
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

    /// docs/asyncapi.yaml documents every event type with its schema file, so a new event
    /// cannot ship undocumented.
    #[test]
    fn asyncapi_documents_every_event() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/asyncapi.yaml");
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        for (name, _) in all() {
            let schema_ref = format!("crates/contracts/schemas/{name}.json");
            assert!(
                doc.contains(&schema_ref),
                "asyncapi.yaml lacks {schema_ref}"
            );
            if name != "Envelope" {
                let message_ref = format!("#/components/messages/{name}'");
                assert!(
                    doc.contains(&message_ref),
                    "asyncapi.yaml has no channel for {name}"
                );
            }
        }
    }

    /// The cashier example in docs/asyncapi.yaml, exactly as another language would send it.
    #[test]
    fn the_documented_cashier_message_decodes() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/asyncapi.yaml");
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let start = doc.find("```json").expect("a json example") + "```json".len();
        let end = start + doc[start..].find("```").expect("the end of the example");
        let wire = &doc[start..end];
        let envelope: Envelope = serde_json::from_str(wire).unwrap_or_else(|e| panic!("{e}"));
        let order: OrderPlaced = envelope.decode().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(order.number, 42);
        assert_eq!(order.items[0].quantity, 2);
        assert_eq!(order.items[0].allergens, ["nuts", "milk"]);
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
