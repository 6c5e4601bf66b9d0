use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

pub const SPEC_VERSION: &str = "1.0";

/// An event type of the kitchen bus.
pub trait Event: Serialize + DeserializeOwned + JsonSchema + Send + Sync {
    /// The CloudEvents `type`, e.g. `OrderPacked`.
    const TYPE: &'static str;
    /// `<aggregate>.<event>`; the publishing service puts its own name in front to form the
    /// routing key, so `order.placed` from the cashier travels as `cashier.order.placed`.
    const KEY: &'static str;

    /// The aggregate the event belongs to (the order); it becomes the CloudEvents `subject`,
    /// which is also what consumers order by.
    fn subject(&self) -> Uuid;
}

/// A CloudEvents 1.0 envelope in structured JSON mode, with three extensions:
/// `traceparent` (W3C trace context), `sequence`, a per-subject counter that lets a consumer
/// put one order's events in order and drop stale ones, and `hops`, the way the event has come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope<D = serde_json::Value> {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// The publishing service, as a URI reference such as `/kitchen/tracker`.
    pub source: String,
    /// The event type, such as `OrderPlaced`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The order id.
    pub subject: String,
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Increases by one with every event the publisher emits for this subject, starting at 1.
    pub sequence: i64,
    /// Where the event has been so far, oldest first: each relay that published it and each
    /// consumer that retried, dead-lettered, replayed or handled it adds one. Absent from
    /// older messages and from what order sources send; nobody may rely on it being there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<Hop>,
    pub data: D,
}

/// One step of an event's way through the services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Hop {
    /// The service or consumer that took the step: `tracker`, `tracker-intake`, `legacy-sync`.
    pub service: String,
    /// What it did: `published` (a relay sent it from the outbox), `handled`, `retried`,
    /// `dead_lettered`, `replayed`.
    pub step: String,
    /// The host (the pod, in Kubernetes) the process ran on.
    pub instance: String,
    /// The process id there.
    pub pid: u32,
    /// When the step began: the event was staged in the outbox, delivered to the consumer, or
    /// (for a replay) dead-lettered.
    pub received_at: DateTime<Utc>,
    /// When the step was done.
    pub handled_at: DateTime<Utc>,
}

#[derive(Debug)]
pub enum DecodeError {
    WrongType {
        expected: &'static str,
        found: String,
    },
    Data(serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::WrongType { expected, found } => {
                write!(f, "expected an event of type {expected}, found {found}")
            }
            DecodeError::Data(e) => write!(f, "the event data does not match its type: {e}"),
        }
    }
}

impl Envelope<serde_json::Value> {
    /// Wraps `event` for publishing by `service` (e.g. `tracker`).
    pub fn wrap<E: Event>(
        service: &str,
        event: &E,
        sequence: i64,
        traceparent: Option<String>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Envelope {
            specversion: SPEC_VERSION.to_owned(),
            id: Uuid::now_v7(),
            source: format!("/kitchen/{service}"),
            event_type: E::TYPE.to_owned(),
            subject: event.subject().to_string(),
            time: Utc::now(),
            datacontenttype: "application/json".to_owned(),
            traceparent,
            sequence,
            hops: Vec::new(),
            data: serde_json::to_value(event)?,
        })
    }

    /// The typed data, after checking that the envelope carries that type.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::TYPE {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                found: self.event_type.clone(),
            });
        }
        E::deserialize(&self.data).map_err(DecodeError::Data)
    }
}

/// The routing key `<service>.<aggregate>.<event>` for `E` published by `service`.
pub fn routing_key<E: Event>(service: &str) -> String {
    format!("{service}.{}", E::KEY)
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::WrongType { .. } => None,
            DecodeError::Data(e) => Some(e),
        }
    }
}
