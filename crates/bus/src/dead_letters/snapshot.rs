//! The dead letters as read a moment ago, shared by the requests of a burst.
//!
//! RabbitMQ has no way to peek into a queue or to seek in it: listing dead letters means
//! fetching every message (`basic.get`, one round trip each, up to [`super::LIMIT`]) and letting
//! them return when the channel closes. The operations pages ask for them several times per
//! view (the list, a letter's page, the bus overview's oldest failure) and again on every
//! reload, so the API keeps the last read of each queue for [`FRESH`] and lets concurrent
//! requests wait for one read instead of each starting its own. A replay or discard through
//! this process forgets it at once; one through another replica shows after [`FRESH`]. Acting
//! never uses a snapshot: it reads the queue itself and takes only what is still there.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, Instant},
};

use secrecy::ExposeSecret;
use service_kit::config::BusSettings;

use super::DeadLetter;
use crate::topology::{self, QueueSpec};

/// How long a read serves further requests.
pub const FRESH: Duration = Duration::from_secs(2);

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Arc<Vec<DeadLetter>>)>>>;

/// One slot per broker and dead-letter queue: a process serves one, tests many.
static SLOTS: LazyLock<Mutex<HashMap<(String, String), Slot>>> = LazyLock::new(Mutex::default);

fn slot(bus: &BusSettings, spec: QueueSpec) -> Slot {
    let key = (
        bus.url.expose_secret().to_owned(),
        topology::dead_letter_queue_name(&bus.exchange, spec),
    );
    let mut slots = SLOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slots.entry(key).or_default().clone()
}

/// The dead letters of `spec`, read at most `fresh` ago; read now if not. Requests arriving
/// while a read is under way wait for it and share it.
pub async fn letters(
    bus: &BusSettings,
    spec: QueueSpec,
    fresh: Duration,
) -> anyhow::Result<Arc<Vec<DeadLetter>>> {
    let slot = slot(bus, spec);
    let mut held = slot.lock().await;
    if let Some((read_at, letters)) = held.as_ref()
        && read_at.elapsed() < fresh
    {
        return Ok(letters.clone());
    }
    let letters = Arc::new(super::list(bus, spec).await?);
    *held = Some((Instant::now(), letters.clone()));
    Ok(letters)
}

/// Forgets the last read of `spec`'s dead letters: they were just acted on.
pub async fn forget(bus: &BusSettings, spec: QueueSpec) {
    *slot(bus, spec).lock().await = None;
}
