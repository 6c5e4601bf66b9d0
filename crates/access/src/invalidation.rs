//! Keeps a verifier's cache honest: every process listens for the events of the service that
//! owns the tokens through an exclusive, auto-delete queue of its own, and evicts what they make
//! stale. A [`StaffVerifier`] binds `auth.#` and evicts the user's cached sessions on every role
//! change, deactivation or revoked session; a [`DeviceVerifier`] binds `devices.#` and evicts the
//! device on a rename or a revocation. `(staff, devices)` does both over one connection.
//!
//! The cache is used only under a *lease*: each time the subscription proves its connection
//! (a round trip to the broker every [`PROBE_EVERY`]), it may use the cache for [`LEASE`] more.
//! A dropped connection ends the lease at once; a silent one (a half-open socket, a stuck task)
//! lets it lapse within [`LEASE`]. Without a lease every request introspects, so a broken bus
//! can delay an eviction by at most [`LEASE`] (750 ms), inside the 1 s revocation bound.

use std::time::{Duration, Instant};

use anyhow::Context;
use bus::{connection, topology};
use contracts::{
    DeviceRegistered, DeviceRenamed, DeviceRevoked, Envelope, Event, SessionRevoked, UserCreated,
    UserDeactivated, UserRolesChanged,
};
use futures_util::StreamExt;
use lapin::{
    Channel,
    options::{BasicConsumeOptions, QueueDeclareOptions},
    types::FieldTable,
};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use uuid::Uuid;

use crate::{device::DeviceVerifier, verifier::StaffVerifier};

/// How long one proof of connection lets the cache be used.
pub const LEASE: Duration = Duration::from_millis(750);
/// How often the subscription proves its connection.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// A probe slower than this counts as a lost connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

mod sealed {
    pub trait Sealed {}
}

/// A verifier whose cache a [`CacheInvalidation`] keeps honest: [`StaffVerifier`],
/// [`DeviceVerifier`], or a pair of them sharing one subscription. Sealed: the lease rules
/// live in this crate.
pub trait Invalidates: sealed::Sealed + Clone + Send + Sync + 'static {
    /// The routing keys (patterns) whose events can make a cached answer stale.
    #[doc(hidden)]
    fn bindings(&self) -> Vec<&'static str>;
    /// Evicts what the message (`body`, routed with `routing_key`) makes stale.
    #[doc(hidden)]
    fn apply(&self, routing_key: &str, body: &[u8]);
    #[doc(hidden)]
    fn renew_lease(&self, until: Instant);
    #[doc(hidden)]
    fn end_lease(&self);
}

/// What one service's events mean for a cache: the events are routed `<service>.…` and their
/// subject names what to evict.
struct Subjects<'a> {
    service: &'static str,
    /// Events that cannot make an answer stale (a creation).
    harmless: &'static str,
    /// Events known to narrow access; any other one evicts its subject too.
    known: &'a [&'static str],
}

impl Subjects<'_> {
    fn apply(
        &self,
        routing_key: &str,
        body: &[u8],
        evict: impl FnOnce(Uuid),
        evict_all: impl FnOnce(),
    ) {
        let in_scope = routing_key
            .strip_prefix(self.service)
            .is_some_and(|rest| rest.starts_with('.'));
        if !in_scope {
            return;
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
            tracing::warn!(
                service = self.service,
                "an unreadable event; dropping the whole cache"
            );
            evict_all();
            return;
        };
        if envelope.event_type == self.harmless {
            return;
        }
        match envelope.subject.parse::<Uuid>() {
            Ok(subject) => {
                if !self.known.contains(&envelope.event_type.as_str()) {
                    // A newer service may say more; about its subject, it can only narrow.
                    tracing::debug!(event_type = %envelope.event_type, "unknown event; evicting its subject");
                }
                evict(subject);
            }
            Err(_) => evict_all(),
        }
    }
}

impl sealed::Sealed for StaffVerifier {}

impl Invalidates for StaffVerifier {
    fn bindings(&self) -> Vec<&'static str> {
        vec!["auth.#"]
    }

    fn apply(&self, routing_key: &str, body: &[u8]) {
        Subjects {
            service: "auth",
            harmless: UserCreated::TYPE,
            known: &[
                UserRolesChanged::TYPE,
                UserDeactivated::TYPE,
                SessionRevoked::TYPE,
            ],
        }
        .apply(
            routing_key,
            body,
            |user_id| self.invalidate_user(user_id),
            || self.invalidate_all(),
        );
    }

    fn renew_lease(&self, until: Instant) {
        self.cache_lease().renew_lease(until);
    }

    fn end_lease(&self) {
        self.cache_lease().end_lease();
    }
}

impl sealed::Sealed for DeviceVerifier {}

impl Invalidates for DeviceVerifier {
    fn bindings(&self) -> Vec<&'static str> {
        vec!["devices.#"]
    }

    fn apply(&self, routing_key: &str, body: &[u8]) {
        // A new device has a new token that nobody can have asked about before.
        Subjects {
            service: "devices",
            harmless: DeviceRegistered::TYPE,
            known: &[DeviceRenamed::TYPE, DeviceRevoked::TYPE],
        }
        .apply(
            routing_key,
            body,
            |device_id| self.invalidate_device(device_id),
            || self.invalidate_all(),
        );
    }

    fn renew_lease(&self, until: Instant) {
        self.cache_lease().renew_lease(until);
    }

    fn end_lease(&self) {
        self.cache_lease().end_lease();
    }
}

impl<A: Invalidates, B: Invalidates> sealed::Sealed for (A, B) {}

/// Both caches under one subscription (one connection per process).
impl<A: Invalidates, B: Invalidates> Invalidates for (A, B) {
    fn bindings(&self) -> Vec<&'static str> {
        let mut bindings = self.0.bindings();
        bindings.extend(self.1.bindings());
        bindings
    }

    fn apply(&self, routing_key: &str, body: &[u8]) {
        self.0.apply(routing_key, body);
        self.1.apply(routing_key, body);
    }

    fn renew_lease(&self, until: Instant) {
        self.0.renew_lease(until);
        self.1.renew_lease(until);
    }

    fn end_lease(&self) {
        self.0.end_lease();
        self.1.end_lease();
    }
}

/// The background task behind a verifier's cache. Spawn [`CacheInvalidation::run`] once per
/// process (for both verifiers, pass the pair); without it the verifier simply never caches.
pub struct CacheInvalidation<V: Invalidates = StaffVerifier> {
    verifier: V,
    bus: BusSettings,
    role: String,
    shutdown: Shutdown,
}

impl<V: Invalidates> CacheInvalidation<V> {
    /// `service` names the connection (`tracker-access-cache`) in the broker's tools.
    pub fn new(verifier: V, bus: BusSettings, service: &str, shutdown: Shutdown) -> Self {
        CacheInvalidation {
            verifier,
            bus,
            role: format!("{service}-access-cache"),
            shutdown,
        }
    }

    /// Runs until shutdown, reconnecting with backoff; the cache is bypassed while it is down.
    pub async fn run(self) {
        let mut backoff = connection::Backoff::default();
        while !self.shutdown.is_triggered() {
            let result = self.session(&mut backoff).await;
            self.verifier.end_lease();
            match result {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        error = format!("{e:#}"),
                        ?delay,
                        "access cache lost its bus subscription; introspecting every request until it is back"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = self.shutdown.wait() => break,
                    }
                }
            }
        }
        self.verifier.end_lease();
    }

    async fn session(&self, backoff: &mut connection::Backoff) -> anyhow::Result<()> {
        let (connection, channel) = connection::open_channel(&self.bus, &self.role).await?;
        // One queue per process, gone with its connection. Missed events do not matter,
        // because a new lease starts with an empty cache.
        let bindings = self.verifier.bindings();
        let queue = topology::declare_private_queue(&channel, &self.bus.exchange, &bindings)
            .await
            .context("declaring the invalidation queue")?;
        let mut deliveries = channel
            .basic_consume(
                queue.as_str().into(),
                self.role.as_str().into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("starting to consume")?;
        // Bound and consuming: every event from now on reaches us, so caching may start.
        self.verifier.renew_lease(Instant::now() + LEASE);
        backoff.reset();
        tracing::info!(queue = %queue, ?bindings, "access cache subscribed");

        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery {
                    Some(Ok(delivery)) => self.verifier.apply(delivery.routing_key.as_str(), &delivery.data),
                    Some(Err(e)) => return Err(anyhow::Error::new(e).context("receiving invalidation events")),
                    None => anyhow::bail!("the broker ended the subscription"),
                },
                _ = probe.tick() => {
                    let started = Instant::now();
                    prove_connection(&channel, &queue).await?;
                    // The lease counts from before the round trip, so it never claims more
                    // than was proven.
                    self.verifier.renew_lease(started + LEASE);
                }
                _ = self.shutdown.wait() => {
                    self.verifier.end_lease();
                    let _ = connection.close(200, "shutdown".into()).await;
                    return Ok(());
                }
            }
        }
    }
}

/// One round trip on the channel: a passive declare of our own queue.
async fn prove_connection(channel: &Channel, queue: &str) -> anyhow::Result<()> {
    tokio::time::timeout(
        PROBE_TIMEOUT,
        channel.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .context("the broker did not answer the probe in time")?
    .context("probing the subscription")?;
    Ok(())
}
