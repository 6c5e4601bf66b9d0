//! Live updates: this instance follows the tracker's events through an exclusive, auto-delete,
//! server-named queue of its own bound to `tracker.#`, and tells the screens of the pizzeria
//! (over server-sent events) that something changed, and for which stations. The screens then
//! fetch their fragment again, so the events carry no data a screen could get wrong.
//!
//! Several web instances each have their own queue and each push to their own screens; the
//! broker copies every event to every instance (see ARCHITECTURE.md, "The web UI").
//!
//! The same queue follows what ends a viewer's access (a session revoked, a user deactivated or
//! their roles changed, a device revoked or moved), so an open stream of that viewer ends at
//! once instead of living on from its one check at connect; and the number of open streams per
//! session or device is capped.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use bus::{connection, topology};
use contracts::{
    DeviceRenamed, DeviceRevoked, Envelope, Event, SessionRevoked, UserDeactivated,
    UserRolesChanged, routing_key,
};
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

/// Who holds an open stream: a staff session or a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Viewer {
    Staff { user_id: Uuid, session_id: Uuid },
    Device { device_id: Uuid },
}

/// Something that ends (or may narrow) a viewer's access; their open streams end, and the
/// browser's reconnect is checked afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// One staff session ended (logout, revoked by its owner or an admin).
    Session(Uuid),
    /// Every session of the user: deactivated, or their roles changed.
    User(Uuid),
    /// A device was revoked, or renamed or moved to another station.
    Device(Uuid),
}

impl Revocation {
    /// What an auth or devices event ends; `None` for events that end nothing.
    pub fn of_event(envelope: &Envelope) -> Option<Revocation> {
        let subject = || envelope.subject.parse::<Uuid>().ok();
        match envelope.event_type.as_str() {
            SessionRevoked::TYPE => envelope.data["session_id"]
                .as_str()?
                .parse()
                .ok()
                .map(Revocation::Session),
            UserDeactivated::TYPE | UserRolesChanged::TYPE => subject().map(Revocation::User),
            DeviceRevoked::TYPE | DeviceRenamed::TYPE => subject().map(Revocation::Device),
            _ => None,
        }
    }

    pub fn ends(&self, viewer: &Viewer) -> bool {
        match (self, viewer) {
            (Revocation::Session(id), Viewer::Staff { session_id, .. }) => id == session_id,
            (Revocation::User(id), Viewer::Staff { user_id, .. }) => id == user_id,
            (Revocation::Device(id), Viewer::Device { device_id }) => id == device_id,
            _ => false,
        }
    }
}

/// What the subscription tells the open streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Change(Change),
    Revoked(Revocation),
}

/// The routing keys the subscription binds: the tracker's events for the screens, and what
/// ends a viewer's access.
fn bindings() -> Vec<String> {
    vec![
        "tracker.#".to_owned(),
        routing_key::<SessionRevoked>("auth"),
        routing_key::<UserDeactivated>("auth"),
        routing_key::<UserRolesChanged>("auth"),
        routing_key::<DeviceRevoked>("devices"),
        routing_key::<DeviceRenamed>("devices"),
    ]
}

/// The fan-out from the bus subscription to the open event streams of this instance.
#[derive(Clone)]
pub struct Push {
    sender: broadcast::Sender<Arc<Notice>>,
    /// Up while the bus subscription is: the `live_updates` check of `/health/ready`.
    connected: Arc<AtomicBool>,
    /// Open streams per session or device, and how many each may have.
    streams: Arc<Mutex<HashMap<Viewer, usize>>>,
    max_streams: usize,
}

/// One open stream, counted against its viewer's cap until it is dropped (the browser went
/// away, the stream ended).
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<Viewer, usize>>>,
    viewer: Viewer,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let Ok(mut streams) = self.streams.lock() else {
            return;
        };
        if let Some(open) = streams.get_mut(&self.viewer) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.viewer);
            }
        }
    }
}

impl Push {
    /// `connected` is raised while the subscription is up (a `Readiness` flag); each session
    /// or device may have `max_streams` open at once.
    pub fn new(connected: Arc<AtomicBool>, max_streams: usize) -> Self {
        let (sender, _) = broadcast::channel(1024);
        Push {
            sender,
            connected,
            streams: Arc::default(),
            max_streams,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.sender.subscribe()
    }

    pub fn publish(&self, notice: Notice) {
        // No receivers is fine: no screen is open.
        let _ = self.sender.send(Arc::new(notice));
    }

    /// Whether revocations reach the streams now; while not, each stream checks its viewer
    /// itself.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// A slot for one more stream of `viewer`, or `None` when they have `max_streams` open.
    pub fn open_stream(&self, viewer: Viewer) -> Option<StreamSlot> {
        let mut streams = self.streams.lock().ok()?;
        let open = streams.entry(viewer).or_default();
        if *open >= self.max_streams {
            return None;
        }
        *open += 1;
        Some(StreamSlot {
            streams: Arc::clone(&self.streams),
            viewer,
        })
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
        let (connection, channel) = connection::open_channel(bus, "web-live-updates").await?;
        // One queue per instance, gone with its connection: missed events only mean the
        // screens catch up on their next poll.
        let bindings = bindings();
        let bindings: Vec<&str> = bindings.iter().map(String::as_str).collect();
        let queue = topology::declare_private_queue(&channel, &bus.exchange, &bindings)
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
        tracing::info!(queue = %queue, ?bindings, "live updates subscribed");
        loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery {
                    Some(Ok(delivery)) => {
                        match serde_json::from_slice::<Envelope>(&delivery.data) {
                            Ok(envelope) if delivery.routing_key.as_str().starts_with("tracker.") => {
                                if let Some(change) = Change::of_event(&envelope) {
                                    self.publish(Notice::Change(change));
                                }
                            }
                            Ok(envelope) => {
                                if let Some(revocation) = Revocation::of_event(&envelope) {
                                    self.publish(Notice::Revoked(revocation));
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "an unreadable event"),
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
            hops: Vec::new(),
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
    fn revocations_end_the_streams_of_their_session_user_or_device() {
        let (user_id, session_id, device_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let staff = Viewer::Staff {
            user_id,
            session_id,
        };
        let device = Viewer::Device { device_id };
        let mut revoked = envelope(
            "SessionRevoked",
            json!({"user_id": user_id, "session_id": session_id, "reason": "logout"}),
        );
        revoked.subject = user_id.to_string();
        let revocation = Revocation::of_event(&revoked).expect("a revocation");
        assert!(revocation.ends(&staff));
        // Another session of the same user goes on.
        let other = Viewer::Staff {
            user_id,
            session_id: Uuid::new_v4(),
        };
        assert!(!revocation.ends(&other));
        let mut deactivated = envelope("UserDeactivated", json!({"user_id": user_id}));
        deactivated.subject = user_id.to_string();
        let revocation = Revocation::of_event(&deactivated).expect("a revocation");
        assert!(revocation.ends(&staff) && revocation.ends(&other));
        assert!(!revocation.ends(&device));
        let mut gone = envelope("DeviceRevoked", json!({"device_id": device_id}));
        gone.subject = device_id.to_string();
        let revocation = Revocation::of_event(&gone).expect("a revocation");
        assert!(revocation.ends(&device) && !revocation.ends(&staff));
        let mut created = envelope("UserCreated", json!({}));
        created.subject = user_id.to_string();
        assert_eq!(Revocation::of_event(&created), None);
    }

    #[test]
    fn a_viewer_has_at_most_max_streams_and_a_closed_one_frees_its_slot() {
        let push = Push::new(Arc::default(), 2);
        let viewer = Viewer::Device {
            device_id: Uuid::new_v4(),
        };
        let first = push.open_stream(viewer).expect("a slot");
        let _second = push.open_stream(viewer).expect("a slot");
        assert!(push.open_stream(viewer).is_none());
        let other = Viewer::Device {
            device_id: Uuid::new_v4(),
        };
        assert!(push.open_stream(other).is_some(), "a cap per viewer");
        drop(first);
        assert!(push.open_stream(viewer).is_some());
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
