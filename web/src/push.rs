//! Live updates: this instance follows the tracker's events through an exclusive, auto-delete,
//! server-named queue of its own bound to `tracker.#`, and tells the screens of the pizzeria
//! (over server-sent events) that something changed, and for which stations. The screens then
//! fetch their fragment again, so the events carry no data a screen could get wrong.
//!
//! Several web instances each have their own queue and each push to their own screens; the
//! broker copies every event to every instance (see ARCHITECTURE.md, "The web UI").

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use bus::{connection, topology};
use contracts::Envelope;
use futures_util::StreamExt;
use lapin::{options::BasicConsumeOptions, types::FieldTable};
use serde::Serialize;
use serde_json::Value;
use service_kit::{config::BusSettings, shutdown::Shutdown};
use tokio::sync::broadcast;
use uuid::Uuid;

/// "Something changed for pizzeria `p`": at `stations` (their queues), or at any station when
/// `stations` is `None`; `board` when the TV board may have changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    #[serde(rename = "p")]
    pub pizzeria_id: Uuid,
    #[serde(rename = "s")]
    pub stations: Option<Vec<String>>,
    #[serde(rename = "b")]
    pub board: bool,
}

impl Change {
    /// What an event of the tracker means for the screens; `None` for an event that names no
    /// pizzeria.
    pub fn of_event(envelope: &Envelope) -> Option<Change> {
        let data = &envelope.data;
        let pizzeria_id = data["pizzeria_id"].as_str()?.parse().ok()?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let stations = match envelope.event_type.as_str() {
            "OrderAcceptedByTracker" => data["products"].as_array().map(|products| {
                let mut first: Vec<String> = products
                    .iter()
                    .filter_map(|p| text(&p["route"][0]))
                    .collect();
                first.sort();
                first.dedup();
                first
            }),
            "OrderInWork" | "OrderPacked" | "OrderHandedOver" => Some(Vec::new()),
            // A tap, undo, remake, cancel, late: a station the event does not name may have
            // changed (a tap ends the undo offer at the station before the tapping one; the
            // event does not name that one), so every station of the pizzeria looks again (a
            // cheap 304 for most: the tracker bumps only the queues that changed).
            _ => None,
        };
        Some(Change {
            pizzeria_id,
            stations,
            board: true,
        })
    }

    /// Whether a screen of `pizzeria_id` showing `station` (or no station) should look again.
    pub fn concerns(&self, pizzeria_id: Uuid, station: Option<&str>) -> bool {
        self.pizzeria_id == pizzeria_id
            && match (station, &self.stations) {
                (None, _) | (_, None) => true,
                (Some(s), Some(list)) => list.iter().any(|l| l == s),
            }
    }
}

/// The fan-out from the bus subscription to the open event streams of this instance.
#[derive(Clone)]
pub struct Push {
    sender: broadcast::Sender<Arc<Change>>,
    /// Up while the bus subscription is: the `live_updates` check of `/health/ready`.
    connected: Arc<AtomicBool>,
}

impl Push {
    /// `connected` is raised while the subscription is up (a `Readiness` flag).
    pub fn new(connected: Arc<AtomicBool>) -> Self {
        let (sender, _) = broadcast::channel(1024);
        Push { sender, connected }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }

    pub fn publish(&self, change: Change) {
        // No receivers is fine: no screen is open.
        let _ = self.sender.send(Arc::new(change));
    }

    /// Follows the tracker's events until shutdown, reconnecting with backoff. While it is
    /// down the screens keep polling, which is why they poll at all.
    pub async fn run(self, bus: BusSettings, shutdown: Shutdown) {
        let mut backoff = connection::Backoff::default();
        while !shutdown.is_triggered() {
            let result = self.session(&bus, &shutdown, &mut backoff).await;
            self.connected.store(false, Ordering::Relaxed);
            match result {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        error = format!("{e:#}"),
                        ?delay,
                        "live updates lost the bus; screens fall back to polling"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = shutdown.wait() => break,
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        bus: &BusSettings,
        shutdown: &Shutdown,
        backoff: &mut connection::Backoff,
    ) -> anyhow::Result<()> {
        let connection = connection::connect(bus, "web-live-updates")
            .await
            .context("connecting to the broker")?;
        let channel = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        // One queue per instance, gone with its connection: missed events only mean the
        // screens catch up on their next poll.
        let queue = topology::declare_private_queue(&channel, &bus.exchange, &["tracker.#"])
            .await
            .context("declaring the live-updates queue")?;
        let mut deliveries = channel
            .basic_consume(
                queue.as_str().into(),
                "web-live-updates".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("starting to consume")?;
        self.connected.store(true, Ordering::Relaxed);
        backoff.reset();
        tracing::info!(queue = %queue, "live updates subscribed to tracker.#");
        loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery {
                    Some(Ok(delivery)) => {
                        match serde_json::from_slice::<Envelope>(&delivery.data) {
                            Ok(envelope) => {
                                if let Some(change) = Change::of_event(&envelope) {
                                    self.publish(change);
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "an unreadable tracker event"),
                        }
                    }
                    Some(Err(e)) => return Err(anyhow::Error::new(e).context("receiving tracker events")),
                    None => anyhow::bail!("the broker ended the subscription"),
                },
                _ = shutdown.wait() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), connection.close(200, "shutdown".into())).await;
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(event_type: &str, data: Value) -> Envelope {
        Envelope {
            specversion: "1.0".into(),
            id: Uuid::new_v4(),
            source: "/kitchen/tracker".into(),
            event_type: event_type.into(),
            subject: Uuid::new_v4().to_string(),
            time: chrono::Utc::now(),
            datacontenttype: "application/json".into(),
            traceparent: None,
            sequence: 1,
            data,
        }
    }

    #[test]
    fn a_tap_concerns_every_station_of_its_pizzeria() {
        let p = Uuid::new_v4();
        let change = Change::of_event(&envelope(
            "ProductStageCompleted",
            json!({"pizzeria_id": p, "station": "topping", "next_station": "oven"}),
        ))
        .expect("a change");
        // The dough station may still offer undo for the tap that sent the product to topping.
        assert!(change.concerns(p, Some("dough")));
        assert!(change.concerns(p, Some("topping")));
        assert!(change.concerns(p, None));
        assert!(!change.concerns(Uuid::new_v4(), None));
    }

    #[test]
    fn an_undo_concerns_every_station() {
        let p = Uuid::new_v4();
        let change = Change::of_event(&envelope(
            "ProductStageUndone",
            json!({"pizzeria_id": p, "station": "dough"}),
        ))
        .expect("a change");
        assert!(change.concerns(p, Some("oven")));
    }

    #[test]
    fn a_new_order_concerns_its_first_stations() {
        let p = Uuid::new_v4();
        let change = Change::of_event(&envelope(
            "OrderAcceptedByTracker",
            json!({"pizzeria_id": p, "products": [{"route": ["dough", "oven"]}, {"route": ["packing"]}]}),
        ))
        .expect("a change");
        assert_eq!(
            change.stations,
            Some(vec!["dough".into(), "packing".into()])
        );
    }
}
