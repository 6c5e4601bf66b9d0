//! The path of an event through the services, from the hops its envelope gathered: shown for
//! each event of an order (to chain admins and on call, from the consumers' inboxes through the
//! tracker's and the sync worker's event-path API) and for a dead letter (from its body).

use access::Permission;
use chrono::{DateTime, Utc};
use contracts::Hop;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    errors::PageError,
    session::StaffViewer,
    upstream::{Service, UpstreamError},
};

use super::AppState;

/// One step on the page.
pub struct HopLine {
    pub step: &'static str,
    pub service: String,
    pub instance: String,
    pub pid: u32,
    pub received: String,
    pub handled: String,
    /// From received to handled at this hop.
    pub spent: String,
    /// From the previous hop's end to this one's start: time on the wire or in a queue.
    pub waited: String,
}

/// One event's way.
pub struct EventPathView {
    pub event: String,
    pub event_id: String,
    pub hops: Vec<HopLine>,
}

fn step_label(step: &str) -> &'static str {
    let t = &crate::i18n::text().ops;
    match step {
        "published" => t.step_published,
        "handled" => t.step_handled,
        "retried" => t.step_retried,
        "dead_lettered" => t.step_dead_lettered,
        "replayed" => t.step_replayed,
        _ => t.step_other,
    }
}

fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let ms = (to - from).num_milliseconds();
    if ms.abs() < 10_000 {
        format!("{ms} ms")
    } else {
        super::ops_metrics::age(ms as f64 / 1000.0)
    }
}

/// The lines of a hop list, each with its time spent and the wait before it.
pub fn hop_lines(hops: &[Hop]) -> Vec<HopLine> {
    let mut previous: Option<DateTime<Utc>> = None;
    hops.iter()
        .map(|h| {
            let line = HopLine {
                step: step_label(&h.step),
                service: h.service.clone(),
                instance: h.instance.clone(),
                pid: h.pid,
                received: h.received_at.format("%H:%M:%S%.3f").to_string(),
                handled: h.handled_at.format("%H:%M:%S%.3f").to_string(),
                spent: millis(h.received_at, h.handled_at),
                waited: previous.map_or_else(String::new, |p| millis(p, h.received_at)),
            };
            previous = Some(h.handled_at);
            line
        })
        .collect()
}

/// The hops in a dead letter's body; none for a body that is no envelope.
pub fn hops_in_body(body: &str) -> Vec<Hop> {
    #[derive(Deserialize)]
    struct WithHops {
        #[serde(default)]
        hops: Vec<Hop>,
    }
    serde_json::from_str::<WithHops>(body)
        .map(|w| w.hops)
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct EventPaths {
    events: Vec<EventPath>,
}

#[derive(Debug, Deserialize)]
struct EventPath {
    event_id: Uuid,
    event_type: Option<String>,
    hops: Option<Vec<Hop>>,
}

/// Every event of `order_id` the tracker's intake and the sync worker handled, each with its
/// path, in the order they began; `None` unless the viewer may read operations. A consumer
/// whose service cannot be asked is left out and named in the second value.
pub async fn order_paths(
    state: &AppState,
    viewer: &StaffViewer,
    order_id: Uuid,
) -> Result<Option<(Vec<EventPathView>, Vec<&'static str>)>, PageError> {
    if !viewer.principal.can_chain_wide(Permission::OperationsRead) {
        return Ok(None);
    }
    let path = format!("/api/v1/event-paths?subject={order_id}");
    let mut events: Vec<EventPath> = Vec::new();
    let mut missing = Vec::new();
    for service in [Service::Tracker, Service::SyncWorker] {
        let found: Result<EventPaths, UpstreamError> =
            state.upstream.get(service, &path, &viewer.token).await;
        match found {
            Ok(found) => events.extend(found.events),
            Err(e) => match PageError::from(e) {
                signed_out @ PageError::SignedOut { .. } => return Err(signed_out),
                _ => missing.push(service.title()),
            },
        }
    }
    let start = |e: &EventPath| {
        e.hops
            .as_ref()
            .and_then(|h| h.first())
            .map(|h| h.received_at)
    };
    events.sort_by_key(|e| (start(e), e.event_id));
    let views = events
        .into_iter()
        .map(|e| EventPathView {
            event: e.event_type.unwrap_or_default(),
            event_id: e.event_id.to_string(),
            hops: hop_lines(&e.hops.unwrap_or_default()),
        })
        .collect();
    Ok(Some((views, missing)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(step: &str, received: &str, handled: &str) -> Hop {
        Hop {
            service: "tracker".into(),
            step: step.into(),
            instance: "box".into(),
            pid: 7,
            received_at: received.parse().unwrap(),
            handled_at: handled.parse().unwrap(),
        }
    }

    #[test]
    fn each_hop_shows_its_time_and_the_wait_before_it() {
        let lines = hop_lines(&[
            hop(
                "published",
                "2026-11-30T09:00:00Z",
                "2026-11-30T09:00:00.012Z",
            ),
            hop(
                "handled",
                "2026-11-30T09:00:00.020Z",
                "2026-11-30T09:00:00.025Z",
            ),
            hop(
                "replayed",
                "2026-11-30T09:10:00Z",
                "2026-11-30T09:10:00.001Z",
            ),
        ]);
        assert_eq!(lines[0].step, "Published by the relay");
        assert_eq!(
            (lines[0].spent.as_str(), lines[0].waited.as_str()),
            ("12 ms", "")
        );
        assert_eq!(
            (lines[1].spent.as_str(), lines[1].waited.as_str()),
            ("5 ms", "8 ms")
        );
        assert_eq!(lines[2].waited, "10 min 0 s");
        assert_eq!(lines[1].received, "09:00:00.020");
    }

    #[test]
    fn a_body_that_is_no_envelope_has_no_hops() {
        assert!(hops_in_body("{ not json").is_empty());
        assert!(hops_in_body(r#"{"id": "x"}"#).is_empty());
        let body = serde_json::json!({ "hops": [hop("published", "2026-11-30T09:00:00Z", "2026-11-30T09:00:01Z")] });
        assert_eq!(hops_in_body(&body.to_string()).len(), 1);
    }
}
