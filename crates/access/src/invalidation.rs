//! Keeps a [`StaffVerifier`]'s cache honest: every process listens for the auth service's
//! events through an exclusive, auto-delete queue of its own bound to `auth.#`, and evicts the
//! user's cached sessions on every role change, deactivation or revoked session.
//!
//! The cache is used only under a *lease*: each time the subscription proves its connection
//! (a round trip to the broker every [`PROBE_EVERY`]), it may use the cache for [`LEASE`] more.
//! A dropped connection ends the lease at once; a silent one (a half-open socket, a stuck task)
//! lets it lapse within [`LEASE`]. Without a lease every request introspects, so a broken bus
//! can delay an eviction by at most [`LEASE`] (750 ms), inside the 1 s revocation bound.

use std::time::{Duration, Instant};

use anyhow::Context;
use bus::{connection, topology};
use contracts::{Envelope, Event, SessionRevoked, UserCreated, UserDeactivated, UserRolesChanged};
use futures_util::StreamExt;
use lapin::{
    Channel,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use service_kit::{config::BusSettings, shutdown::Shutdown};
use uuid::Uuid;

use crate::verifier::StaffVerifier;

/// How long one proof of connection lets the cache be used.
pub const LEASE: Duration = Duration::from_millis(750);
/// How often the subscription proves its connection.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// A probe slower than this counts as a lost connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// The background task behind a [`StaffVerifier`]'s cache. Spawn [`CacheInvalidation::run`]
/// once per process; without it the verifier simply never caches.
pub struct CacheInvalidation {
    verifier: StaffVerifier,
    bus: BusSettings,
    role: String,
    shutdown: Shutdown,
}

impl CacheInvalidation {
    /// `service` names the connection (`tracker-access-cache`) in the broker's tools.
    pub fn new(
        verifier: StaffVerifier,
        bus: BusSettings,
        service: &str,
        shutdown: Shutdown,
    ) -> Self {
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
        let connection = connection::connect(&self.bus, &self.role)
            .await
            .context("connecting to the broker")?;
        let channel = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        topology::declare_exchange(&channel, &self.bus.exchange)
            .await
            .context("declaring the exchange")?;
        // Server-named, exclusive and auto-delete: one per process, gone with its connection.
        // Missed events do not matter, because a new lease starts with an empty cache.
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("declaring the invalidation queue")?;
        let queue = queue.name().to_string();
        channel
            .queue_bind(
                queue.as_str().into(),
                self.bus.exchange.as_str().into(),
                "auth.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("binding the invalidation queue")?;
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
        tracing::info!(queue = %queue, "access cache subscribed to auth events");

        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery {
                    Some(Ok(delivery)) => self.apply(&delivery.data),
                    Some(Err(e)) => return Err(anyhow::Error::new(e).context("receiving auth events")),
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

    /// Evicts what an auth event makes stale.
    fn apply(&self, body: &[u8]) {
        let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
            tracing::warn!("an unreadable message on auth.#; dropping the whole access cache");
            self.verifier.invalidate_all();
            return;
        };
        if envelope.event_type == UserCreated::TYPE {
            return;
        }
        match envelope.subject.parse::<Uuid>() {
            Ok(user_id) => {
                if ![
                    UserRolesChanged::TYPE,
                    UserDeactivated::TYPE,
                    SessionRevoked::TYPE,
                ]
                .contains(&envelope.event_type.as_str())
                {
                    // A newer auth service may say more; about a user, it can only narrow.
                    tracing::debug!(event_type = %envelope.event_type, "unknown auth event; evicting its user");
                }
                self.verifier.invalidate_user(user_id);
            }
            Err(_) => self.verifier.invalidate_all(),
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
