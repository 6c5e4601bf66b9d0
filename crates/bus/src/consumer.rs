//! The consumer every service uses.
//!
//! Guarantees, and how:
//! - **Exactly-once effects.** The event id goes into the `inbox` table in the same transaction
//!   as the handler's writes; a redelivered or duplicated event finds its id there and is only
//!   acknowledged.
//! - **Ack after commit.** A message is acknowledged only after its transaction committed (or
//!   after it was safely handed to a retry or dead-letter queue with a publisher confirm).
//!   Anything unacknowledged when a connection dies is redelivered.
//! - **Per-order order.** The broker spreads a consumer's events over its partition queues by
//!   the envelope's subject (the order id), and lets one consumer at a time, across every
//!   replica, take a partition's deliveries (`topology`). Inside the process, deliveries are
//!   spread over lanes by the same subject; each lane handles its messages one batch at a time,
//!   in delivery order. A retried message can still arrive after newer ones, so handlers
//!   compare the envelope's `sequence` before overwriting state.
//! - **Failures never block the queue.** A failing message is re-published to a retry queue
//!   whose TTL brings it back later (delays grow), and after `max_attempts` to the dead-letter
//!   queue with the reason in its headers. Then the original is acknowledged, so the messages
//!   behind it flow on.
//! - **Throughput.** A batch is applied in one transaction with one inbox insert for all of it.
//!   If a handler in the batch fails, the batch is rolled back, the failing message is sent on
//!   to be retried, and the rest are applied again without it.

use std::{
    collections::{BTreeSet, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::{Context, anyhow};
use contracts::Envelope;
use futures_util::StreamExt;
use lapin::{
    Channel,
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec};
use serde::Deserialize;
use service_kit::{config::BusSettings, shutdown::Shutdown, telemetry::TraceContext};
use sqlx::{PgConnection, PgPool};
use tokio::{sync::mpsc, task::JoinSet};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    confirm::{self, Outcome},
    connection, headers, hops, publishers, retention, topology,
    topology::QueueSpec,
};

static MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    service_kit::metrics::counter_vec(
        "consumer_messages_total",
        "Messages a consumer settled, by queue and outcome.",
        &["queue", "outcome"],
    )
});

static EVENT_AGE: LazyLock<HistogramVec> = LazyLock::new(|| {
    service_kit::metrics::histogram_vec_with(
        "consumer_event_age_seconds",
        "Age of an event (now minus its time) when its effect committed: how far behind the \
         consumer is.",
        &["queue"],
        vec![
            0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0,
        ],
    )
});

static FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    service_kit::metrics::counter_vec(
        "consumer_failures_total",
        "Failed attempts by queue and kind: transient, waiting (for an earlier event), \
         permanent, batch (the transaction as a whole).",
        &["queue", "kind"],
    )
});

static DEAD_LETTERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    service_kit::metrics::gauge_vec(
        "dead_letter_messages",
        "Messages in a consumer's dead-letter queue, read from the broker every 15 s.",
        &["queue"],
    )
});

/// An event as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub envelope: Envelope,
    /// The routing key the event was published with (not the retry hop's).
    pub routing_key: String,
    pub redelivered: bool,
    /// 1 on the first try, 2 on the first retry, and so on.
    pub attempt: u32,
}

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later: a lock timed out, a peer was briefly unavailable. Retried
    /// `max_attempts` times with growing delays, then dead-lettered.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// An earlier event it depends on has not arrived yet (a tap for an order whose accept is
    /// held up by an outage upstream). Nothing is wrong with the message, so it keeps waiting,
    /// with growing delays, until it has waited `max_wait_ms` since its first failure, however
    /// many attempts that takes.
    #[error("{0:#}")]
    Waiting(anyhow::Error),
    /// Will never succeed as it is: the data breaks a rule. Goes to the dead-letter queue at
    /// once, to be fixed and replayed.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl HandlerError {
    fn kind(&self) -> &'static str {
        match self {
            HandlerError::Transient(_) => "transient",
            HandlerError::Waiting(_) => "waiting",
            HandlerError::Permanent(_) => "permanent",
        }
    }

    fn cause(&self) -> &anyhow::Error {
        match self {
            HandlerError::Transient(e) | HandlerError::Waiting(e) | HandlerError::Permanent(e) => e,
        }
    }
}

/// Why a batch could not be applied.
#[derive(Debug)]
pub enum BatchError {
    /// These events, by position in the batch, cannot be applied now; the others can be applied
    /// again without them. A handler names every event it knows to fail, so a batch full of
    /// early events is re-run once, not once per event.
    Events(Vec<(usize, HandlerError)>),
    /// The batch failed as a whole and no one event is to blame: a deadlock, a serialization
    /// failure, a dropped connection. The consumer runs it again, then one event at a time.
    Batch(anyhow::Error),
}

impl BatchError {
    /// One event's failure, unless its cause concerns the whole transaction.
    pub fn event(index: usize, error: HandlerError) -> Self {
        if matches!(error, HandlerError::Transient(_)) && concerns_the_transaction(error.cause()) {
            let HandlerError::Transient(cause) = error else {
                unreachable!("matched above")
            };
            return BatchError::Batch(cause);
        }
        BatchError::Events(vec![(index, error)])
    }
}

/// A database error that says nothing about the event being applied: a deadlock or
/// serialization failure (SQLSTATE class 40), or the connection itself (class 08, I/O, pool).
fn concerns_the_transaction(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(|e| match e {
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("40") || code.starts_with("08")),
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            _ => false,
        })
}

/// What a service does with one event, inside the consumer's transaction.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Incoming,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Whether [`Handler::handle_batch`] is worth calling: a handler that writes a whole batch
    /// with set-based SQL says so, and the consumer hands it batches instead of single events.
    const BATCHED: bool = false;

    /// Applies `events` in order inside the consumer's transaction. On failure it names the
    /// events that failed; the consumer then retries those and re-applies the rest without
    /// them. The default applies them one by one and stops at the first failure.
    fn handle_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a Incoming],
    ) -> impl Future<Output = Result<(), BatchError>> + Send + 'a {
        async move {
            for (index, event) in events.iter().enumerate() {
                self.handle(&mut *conn, event)
                    .await
                    .map_err(|error| BatchError::event(index, error))?;
            }
            Ok(())
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsumerSettings {
    /// Unacknowledged deliveries the broker may send ahead.
    pub prefetch: u16,
    /// The most messages applied in one transaction.
    pub batch_size: usize,
    /// Independent lanes inside the process; one order always uses the same lane. (The
    /// partitions of the queue across replicas are `BusSettings::partitions`.)
    pub partitions: usize,
    /// The delay before each retry; the last one repeats.
    pub retry_delays_ms: Vec<u64>,
    /// Tries before a transiently failing message is dead-lettered.
    pub max_attempts: u32,
    /// How long an event waiting for an earlier one ([`HandlerError::Waiting`]) keeps being
    /// retried, from its first failure: longer than a real outage upstream lasts.
    pub max_wait_ms: u64,
    /// How long an event id stays in the inbox. A duplicate can arrive as long as an event can
    /// be redelivered or wait for its order, so it is kept at least twice `max_wait_ms`.
    pub inbox_retention_ms: u64,
}

impl ConsumerSettings {
    fn inbox_retention(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.inbox_retention_ms
                .max(self.max_wait_ms.saturating_mul(2)),
        )
    }
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            prefetch: 1000,
            batch_size: 200,
            partitions: 4,
            retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
            max_attempts: 6,
            max_wait_ms: 6 * 60 * 60 * 1000,
            inbox_retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// A delivery waiting for its outcome. Settling consumes it, so each delivery is settled
/// exactly once.
struct Pending {
    delivery: Delivery,
    incoming: Result<Incoming, String>,
    /// Failures so far, from our own header.
    failures: u32,
    /// When it first failed (ms since the epoch), from our own header.
    first_failed_at: Option<i64>,
    /// When this consumer got it: where its hop begins.
    received_at: chrono::DateTime<chrono::Utc>,
}

impl Pending {
    /// Reads a delivery; one that is not an envelope, or whose publisher may not send it
    /// (`publishers::refusal`), is carried as the reason it will be dead-lettered with.
    fn new(delivery: Delivery, bus: &BusSettings, own_user: &str) -> Self {
        let props_headers = delivery.properties.headers().as_ref();
        let failures = headers::get_u32(props_headers, headers::ATTEMPT).unwrap_or(0);
        let first_failed_at = headers::get_i64(props_headers, headers::FIRST_FAILED_AT);
        let routing_key = headers::get_str(props_headers, headers::ORIGINAL_ROUTING_KEY)
            .unwrap_or_else(|| delivery.routing_key.as_str().to_owned());
        let incoming = serde_json::from_slice::<Envelope>(&delivery.data)
            .map(|envelope| Incoming {
                envelope,
                routing_key,
                redelivered: delivery.redelivered,
                attempt: failures + 1,
            })
            .map_err(|e| format!("the message is not a CloudEvents JSON envelope: {e}"))
            .and_then(|incoming| {
                let publisher = publishers::publisher(&delivery.properties, own_user);
                match publishers::refusal(
                    bus,
                    &incoming.routing_key,
                    &incoming.envelope.event_type,
                    publisher.as_deref(),
                ) {
                    Some(reason) => Err(reason),
                    None => Ok(incoming),
                }
            });
        Pending {
            delivery,
            incoming,
            failures,
            first_failed_at,
            received_at: chrono::Utc::now(),
        }
    }

    fn lane(&self, lanes: usize) -> usize {
        match &self.incoming {
            Ok(incoming) => {
                let mut hasher = DefaultHasher::new();
                incoming.envelope.subject.hash(&mut hasher);
                (hasher.finish() % lanes.max(1) as u64) as usize
            }
            Err(_) => 0,
        }
    }

    /// Hands the delivery to the [`acknowledge`] task: its effect is committed, or it is safely
    /// in a retry or dead-letter queue.
    fn settle(self, acks: &mpsc::UnboundedSender<u64>) -> anyhow::Result<()> {
        acks.send(self.delivery.delivery_tag)
            .map_err(|_| anyhow!("the acknowledging task stopped"))
    }
}

/// Acknowledges settled deliveries with one `multiple` ack per contiguous run of delivery tags.
///
/// Lanes settle out of delivery order, but an ack with `multiple` covers every tag up to it,
/// so a tag is acknowledged only once every tag below it is settled too. On a quorum queue one
/// ack frame is one Raft command, so acking a batch at once instead of message by message takes
/// most of the broker's work per message away. Tags on a channel start at 1 and grow by one per
/// delivery; the consume channel carries this one consumer only, so there are no gaps.
async fn acknowledge(
    channel: Channel,
    mut settled: mpsc::UnboundedReceiver<u64>,
) -> anyhow::Result<()> {
    let mut next = 1;
    let mut done = BTreeSet::new();
    while let Some(tag) = settled.recv().await {
        done.insert(tag);
        while let Ok(tag) = settled.try_recv() {
            done.insert(tag);
        }
        let mut upto = None;
        while done.remove(&next) {
            upto = Some(next);
            next += 1;
        }
        if let Some(tag) = upto {
            channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await
                .context("acknowledging deliveries")?;
        }
    }
    Ok(())
}

/// A consumer of one queue.
pub struct Consumer<H> {
    shared: Arc<Shared<H>>,
    bus: BusSettings,
    ready: Arc<AtomicBool>,
    shutdown: Shutdown,
}

struct Shared<H> {
    pool: PgPool,
    /// The main queue's name, which also labels the metrics.
    queue: String,
    handler: Arc<H>,
    spec: QueueSpec,
    exchange: String,
    settings: ConsumerSettings,
    /// The RabbitMQ user this consumer connects as: it re-publishes failed messages as itself.
    own_user: String,
}

/// What a lane needs besides the shared state: where to publish failed messages, and where
/// to report settled deliveries.
#[derive(Clone)]
struct Outlets {
    publish: Channel,
    acks: mpsc::UnboundedSender<u64>,
}

impl<H: Handler> Consumer<H> {
    pub fn new(
        pool: PgPool,
        bus: BusSettings,
        spec: QueueSpec,
        settings: ConsumerSettings,
        handler: Arc<H>,
        ready: Arc<AtomicBool>,
        shutdown: Shutdown,
    ) -> Self {
        let queue = topology::queue_name(&bus.exchange, spec);
        // Every series exists from the start at zero, so a rate or an alert over it is
        // defined before the first failure.
        for kind in ["transient", "waiting", "permanent", "batch"] {
            FAILURES.with_label_values(&[queue.as_str(), kind]);
        }
        for outcome in ["applied", "duplicate", "retried", "dead_lettered"] {
            MESSAGES.with_label_values(&[queue.as_str(), outcome]);
        }
        Consumer {
            shared: Arc::new(Shared {
                pool,
                queue,
                handler,
                spec,
                exchange: bus.exchange.clone(),
                settings,
                own_user: publishers::own_user(&bus),
            }),
            bus,
            ready,
            shutdown,
        }
    }

    /// Runs until shutdown, reconnecting whenever the broker or the database goes away.
    pub async fn run(self) {
        let role = format!("{}-consumer", self.shared.spec.consumer);
        let pruning = tokio::spawn(prune_inbox(self.shared.clone(), self.shutdown.clone()));
        connection::keep_running(&role, &self.ready, &self.shutdown, || self.session()).await;
        pruning.abort();
    }

    async fn session(&self) -> anyhow::Result<()> {
        let shared = &self.shared;
        let role = format!("{}-consumer", shared.spec.consumer);
        // Take no deliveries while the database is away: they could only fail, and every
        // reconnect would fetch a whole prefetch window again just to hand it back.
        if !connection::wait_for_database(&shared.pool, &role, &self.shutdown).await {
            return Ok(());
        }
        let connection = connection::connect(&self.bus, &role)
            .await
            .context("connecting to the broker")?;
        // One channel to publish retries and dead letters (with confirms), one to consume.
        let publish = connection::confirmed_channel(&connection).await?;
        topology::declare_consumer(
            &publish,
            &self.bus,
            shared.spec,
            &shared.settings.retry_delays_ms,
        )
        .await
        .context("declaring the consumer's queues")?;
        let consume = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        let leftover = topology::unbind_unpartitioned_queue(&connection, &self.bus, shared.spec)
            .await
            .context("checking for the unpartitioned queue")?;
        let mut queues = topology::partition_queue_names(&self.bus, shared.spec);
        queues.extend(leftover);
        // Prefetch is per consumer (RabbitMQ applies a non-global prefetch to each consumer
        // on the channel) and is lost with the channel, so it is set on every (re)connect,
        // shared out so that a replica active on every partition has `prefetch` in flight.
        let per_queue = shared
            .settings
            .prefetch
            .div_ceil(u16::try_from(queues.len()).unwrap_or(u16::MAX))
            .max(1);
        consume
            .basic_qos(per_queue, BasicQosOptions::default())
            .await
            .context("setting prefetch")?;
        // One channel for every partition: delivery tags stay one sequence, which the
        // acknowledging task relies on. A partition whose consumer the broker ends yields a
        // final `None`, which ends the session (select_all would just drop it).
        let mut streams = Vec::with_capacity(queues.len());
        for queue in &queues {
            let deliveries = consume
                .basic_consume(
                    queue.as_str().into(),
                    format!("{role}-{queue}").as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .with_context(|| format!("starting to consume {queue}"))?;
            streams.push(
                deliveries
                    .map(Some)
                    .chain(futures_util::stream::once(async { None }))
                    .boxed(),
            );
        }
        let mut deliveries = futures_util::stream::select_all(streams);
        let queue = &shared.queue;
        self.ready.store(true, Ordering::Relaxed);
        tracing::info!(queue = %queue, queues = queues.len(), "consumer connected");

        let housekeeping = tokio::spawn(housekeeping(shared.clone(), publish.clone()));
        let (acks, settled) = mpsc::unbounded_channel();
        let mut acker = tokio::spawn(acknowledge(consume.clone(), settled));
        let outlets = Outlets { publish, acks };
        let lanes = shared.settings.partitions.max(1);
        let mut senders = Vec::with_capacity(lanes);
        let mut workers = JoinSet::new();
        for _ in 0..lanes {
            let (sender, receiver) = mpsc::channel(shared.settings.batch_size.max(1) * 2);
            senders.push(sender);
            workers.spawn(lane(shared.clone(), outlets.clone(), receiver));
        }
        // The lanes hold the only senders the acknowledging task waits on from here.
        drop(outlets);

        let result = loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery.flatten() {
                    Some(Ok(delivery)) => {
                        let pending = Pending::new(delivery, &self.bus, &shared.own_user);
                        let lane = pending.lane(lanes);
                        if senders[lane].send(pending).await.is_err() {
                            break Err(anyhow!("a consumer lane stopped"));
                        }
                    }
                    Some(Err(e)) => break Err(anyhow::Error::new(e).context("receiving deliveries")),
                    None => break Err(anyhow!("the broker ended the consumer")),
                },
                Some(finished) = workers.join_next() => {
                    break match finished {
                        Ok(Err(e)) => Err(e),
                        Ok(Ok(())) => Err(anyhow!("a consumer lane stopped")),
                        Err(e) => Err(anyhow::Error::new(e).context("a consumer lane panicked")),
                    };
                }
                acked = &mut acker => {
                    break match acked {
                        Ok(Err(e)) => Err(e),
                        Ok(Ok(())) => Err(anyhow!("the acknowledging task stopped")),
                        Err(e) => Err(anyhow::Error::new(e).context("the acknowledging task panicked")),
                    };
                }
                _ = self.shutdown.wait() => break Ok(()),
            }
        };
        // Let the lanes finish what they hold and the acks go out (on shutdown), or stop them
        // (on failure); the broker redelivers anything left unacknowledged.
        drop(senders);
        if result.is_ok() {
            while let Some(done) = workers.join_next().await {
                if let Ok(Err(e)) = done {
                    tracing::warn!(error = format!("{e:#}"), "lane failed while draining");
                }
            }
            if let Ok(Err(e)) = acker.await {
                tracing::warn!(error = format!("{e:#}"), "acks failed while draining");
            }
            let _ = connection.close(200, "shutdown".into()).await;
        } else {
            workers.abort_all();
            acker.abort();
        }
        housekeeping.abort();
        result
    }
}

/// Prunes inbox ids older than the retention every [`retention::EVERY`], in the one replica
/// that leads the consumer's pruning (a lock named after the consumer), until shutdown.
async fn prune_inbox<H: Handler>(shared: Arc<Shared<H>>, shutdown: Shutdown) {
    let keep = shared.settings.inbox_retention();
    let consumer = shared.spec.consumer;
    let pool = shared.pool.clone();
    service_kit::retention::run_every(shared.pool.clone(), retention::EVERY, shutdown, consumer, {
        move || {
            let pool = pool.clone();
            async move { Ok(retention::prune_inbox(&pool, consumer, keep).await?) }
        }
    })
    .await;
}

/// While connected: reads the dead-letter queue's depth for the metrics every 15 s.
async fn housekeeping<H: Handler>(shared: Arc<Shared<H>>, channel: Channel) {
    let dead = topology::dead_letter_queue_name(&shared.exchange, shared.spec);
    let mut every = tokio::time::interval(std::time::Duration::from_secs(15));
    loop {
        every.tick().await;
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..lapin::options::QueueDeclareOptions::default()
        };
        if let Ok(queue) = channel
            .queue_declare(dead.as_str().into(), passive, FieldTable::default())
            .await
        {
            DEAD_LETTERS
                .with_label_values(&[shared.queue.as_str()])
                .set(i64::from(queue.message_count()));
        }
    }
}

/// One lane: takes what has arrived (up to a batch) and applies it.
async fn lane<H: Handler>(
    shared: Arc<Shared<H>>,
    outlets: Outlets,
    mut receiver: mpsc::Receiver<Pending>,
) -> anyhow::Result<()> {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < shared.settings.batch_size {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        shared.process(&outlets, batch).await?;
    }
    Ok(())
}

/// How often a batch that failed as a whole is run again before it is split into single events.
const WHOLE_BATCH_RETRIES: u32 = 3;

impl<H: Handler> Shared<H> {
    fn count(&self, outcome: &str, n: usize) {
        MESSAGES
            .with_label_values(&[self.queue.as_str(), outcome])
            .inc_by(n as u64);
    }

    async fn process(&self, outlets: &Outlets, batch: Vec<Pending>) -> anyhow::Result<()> {
        let mut good = Vec::with_capacity(batch.len());
        for pending in batch {
            match &pending.incoming {
                Ok(_) => good.push(pending),
                Err(reason) => {
                    let error = HandlerError::Permanent(anyhow!(reason.clone()));
                    self.fail(outlets, pending, error).await?;
                }
            }
        }
        // Each round applies what is left in one transaction. When handlers fail, those
        // messages go to their retry or dead-letter queues and the rest are applied again
        // without them: a failure costs one re-run of its batch, not one transaction per
        // message. A batch that fails as a whole is run again, then split into single events,
        // so that what fails is blamed on the event that causes it. Split batches are kept in
        // delivery order, so an order's events stay in order.
        let mut work = vec![good];
        while let Some(mut todo) = work.pop() {
            let mut whole_batch_failures = 0;
            while !todo.is_empty() {
                match self.apply_batch(&todo).await? {
                    None => {
                        self.count("applied", todo.len());
                        let now = chrono::Utc::now();
                        let age = EVENT_AGE.with_label_values(&[self.queue.as_str()]);
                        for pending in todo {
                            if let Ok(incoming) = &pending.incoming {
                                let lag = now - incoming.envelope.time;
                                age.observe(lag.num_milliseconds().max(0) as f64 / 1000.0);
                            }
                            pending.settle(&outlets.acks)?;
                        }
                        break;
                    }
                    Some(BatchError::Events(mut failed)) => {
                        failed.sort_by_key(|(index, _)| *index);
                        let mut failed = failed.into_iter().peekable();
                        let mut rest = Vec::with_capacity(todo.len());
                        for (index, pending) in todo.into_iter().enumerate() {
                            let mut error = None;
                            // A handler may name an event twice; the first reason counts.
                            while let Some((_, e)) = failed.next_if(|(i, _)| *i == index) {
                                error.get_or_insert(e);
                            }
                            match error {
                                Some(error) => self.fail(outlets, pending, error).await?,
                                None => rest.push(pending),
                            }
                        }
                        todo = rest;
                    }
                    Some(BatchError::Batch(error)) => {
                        self.ensure_database(&error).await?;
                        FAILURES
                            .with_label_values(&[self.queue.as_str(), "batch"])
                            .inc();
                        whole_batch_failures += 1;
                        tracing::warn!(
                            queue = %self.queue,
                            size = todo.len(),
                            error = format!("{error:#}"),
                            "a batch failed as a whole"
                        );
                        if whole_batch_failures <= WHOLE_BATCH_RETRIES {
                            let pause = 50 * 2u64.pow(whole_batch_failures);
                            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        } else if todo.len() == 1 {
                            if let Some(pending) = todo.pop() {
                                self.fail(outlets, pending, HandlerError::Transient(error))
                                    .await?;
                            }
                        } else {
                            work.extend(todo.drain(..).rev().map(|pending| vec![pending]));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the batch in one transaction with one inbox insert for all of it. Returns why
    /// it failed (the transaction is then rolled back), or `None` once committed; `Err` when
    /// the database itself failed.
    async fn apply_batch(&self, batch: &[Pending]) -> anyhow::Result<Option<BatchError>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("starting a consumer transaction")?;
        // Sorted, so that two workers inserting overlapping ids take their locks in the same
        // order and cannot deadlock.
        let mut rows: Vec<(Uuid, &Incoming, chrono::DateTime<chrono::Utc>)> = batch
            .iter()
            .filter_map(|p| Some((p.incoming.as_ref().ok()?, p.received_at)))
            .map(|(i, received_at)| (i.envelope.id, i, received_at))
            .collect();
        rows.sort_unstable_by_key(|(id, _, _)| *id);
        rows.dedup_by_key(|(id, _, _)| *id);
        let ids: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
        // With each id, the event's subject, type and path (its hops and this consumer's), kept
        // as long as the inbox row, for the operations pages.
        let paths: Vec<serde_json::Value> =
            rows.iter().map(|(_, i, at)| self.path_of(i, *at)).collect();
        let subjects: Vec<&str> = rows
            .iter()
            .map(|(_, i, _)| i.envelope.subject.as_str())
            .collect();
        let types: Vec<&str> = rows
            .iter()
            .map(|(_, i, _)| i.envelope.event_type.as_str())
            .collect();
        let fresh: HashSet<Uuid> = sqlx::query_scalar(
            "insert into inbox (consumer, event_id, hops, subject, event_type) \
             select $1, id, hops, subject, event_type \
             from unnest($2::uuid[], $3::jsonb[], $4::text[], $5::text[]) \
                  as t(id, hops, subject, event_type) \
             on conflict do nothing returning event_id",
        )
        .bind(self.spec.consumer)
        .bind(&ids)
        .bind(&paths)
        .bind(&subjects)
        .bind(&types)
        .fetch_all(&mut *tx)
        .await
        .context("recording the batch in the inbox")?
        .into_iter()
        .collect();
        let mut applied = HashSet::with_capacity(fresh.len());
        let mut todo: Vec<(usize, &Incoming)> = Vec::with_capacity(fresh.len());
        let mut duplicates = 0;
        for (index, pending) in batch.iter().enumerate() {
            let Ok(incoming) = &pending.incoming else {
                continue;
            };
            let id = incoming.envelope.id;
            // Seen before, or twice in this batch: the effect is already there.
            if !fresh.contains(&id) || !applied.insert(id) {
                duplicates += 1;
                continue;
            }
            todo.push((index, incoming));
        }
        let failed = if H::BATCHED {
            let events: Vec<&Incoming> = todo.iter().map(|(_, incoming)| *incoming).collect();
            let span = tracing::info_span!(
                "consume_batch",
                trace_id = %TraceContext::new_root().trace_id(),
                queue = %self.queue,
                size = events.len(),
            );
            let result = self
                .handler
                .handle_batch(&mut tx, &events)
                .instrument(span.clone())
                .await;
            result.err().map(|error| {
                span.in_scope(|| tracing::warn!(?error, "batch handler failed"));
                // Positions in `events` back to positions in `batch`.
                match error {
                    BatchError::Events(failed) => BatchError::Events(
                        failed
                            .into_iter()
                            .filter_map(|(position, e)| {
                                todo.get(position).map(|(index, _)| (*index, e))
                            })
                            .collect(),
                    ),
                    whole @ BatchError::Batch(_) => whole,
                }
            })
        } else {
            let mut failed = None;
            for (index, incoming) in &todo {
                if let Err(error) = self.handle(&mut tx, incoming).await {
                    failed = Some(BatchError::event(*index, error));
                    break;
                }
            }
            failed
        };
        if let Some(failure) = failed {
            tx.rollback().await.context("rolling back a failed batch")?;
            return Ok(Some(failure));
        }
        tx.commit().await.context("committing a consumer batch")?;
        self.count("duplicate", duplicates);
        Ok(None)
    }

    /// Runs the handler inside the event's trace, so whatever it logs or stages carries the
    /// trace id of the request that caused the event.
    async fn handle(
        &self,
        conn: &mut PgConnection,
        incoming: &Incoming,
    ) -> Result<(), HandlerError> {
        let ctx = incoming
            .envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse)
            .map(|parent| parent.child())
            .unwrap_or_else(TraceContext::new_root);
        let span = tracing::info_span!(
            "consume",
            trace_id = %ctx.trace_id(),
            consumer = self.spec.consumer,
            event_id = %incoming.envelope.id,
            event_type = %incoming.envelope.event_type,
            subject = %incoming.envelope.subject,
            attempt = incoming.attempt,
        );
        let result = ctx
            .scope(self.handler.handle(conn, incoming))
            .instrument(span.clone())
            .await;
        if let Err(error) = &result {
            span.in_scope(|| {
                tracing::warn!(error = format!("{:#}", error.cause()), "handler failed")
            });
        }
        result
    }

    /// When the database is down every message fails; retrying them would only burn their
    /// attempts. Stop instead: the session waits for the database before it consumes again,
    /// and the broker redelivers what was not acknowledged.
    async fn ensure_database(&self, error: &anyhow::Error) -> anyhow::Result<()> {
        if sqlx::query("select 1").execute(&self.pool).await.is_err() {
            anyhow::bail!("the database is unavailable: {error:#}");
        }
        Ok(())
    }

    /// The event's hops with this consumer's `handled` hop added, as the inbox keeps them.
    fn path_of(
        &self,
        incoming: &Incoming,
        received_at: chrono::DateTime<chrono::Utc>,
    ) -> serde_json::Value {
        let mut hops = incoming.envelope.hops.clone();
        hops.push(hops::hop(
            self.spec.consumer,
            hops::Step::Handled,
            received_at,
        ));
        serde_json::to_value(hops).unwrap_or_default()
    }

    /// Sends a failed message on to a retry queue or to the dead-letter queue, then settles it.
    async fn fail(
        &self,
        outlets: &Outlets,
        pending: Pending,
        error: HandlerError,
    ) -> anyhow::Result<()> {
        self.ensure_database(error.cause()).await?;
        FAILURES
            .with_label_values(&[self.queue.as_str(), error.kind()])
            .inc();
        let failures = pending.failures + 1;
        let now = chrono::Utc::now();
        let first_failed_at = pending
            .first_failed_at
            .unwrap_or_else(|| now.timestamp_millis());
        let waited_ms = u64::try_from(now.timestamp_millis() - first_failed_at).unwrap_or(0);
        let delays = &self.settings.retry_delays_ms;
        let dead = delays.is_empty()
            || match error {
                HandlerError::Permanent(_) => true,
                HandlerError::Transient(_) => failures >= self.settings.max_attempts,
                HandlerError::Waiting(_) => waited_ms >= self.settings.max_wait_ms,
            };
        let props_headers = pending.delivery.properties.headers().as_ref();
        let mut headers = headers::without_broker_history(props_headers);
        let routing_key = headers::get_str(props_headers, headers::ORIGINAL_ROUTING_KEY)
            .unwrap_or_else(|| pending.delivery.routing_key.as_str().to_owned());
        headers::set_str(&mut headers, headers::ORIGINAL_ROUTING_KEY, &routing_key);
        headers::set_u32(&mut headers, headers::ATTEMPT, failures);
        headers::set_i64(&mut headers, headers::FIRST_FAILED_AT, first_failed_at);
        // What brings a retry back to its order's partition; a message read from the
        // unpartitioned queue may not have it yet.
        if let Ok(incoming) = &pending.incoming {
            headers::set_str(&mut headers, headers::SUBJECT, &incoming.envelope.subject);
        }
        // The broker accepts only our own user in `user_id`; the original publisher travels on
        // in a header, believed because the message now comes from us (`publishers`).
        let published_by = publishers::publisher(&pending.delivery.properties, &self.own_user);
        match published_by {
            Some(user) => headers::set_str(&mut headers, headers::PUBLISHED_BY, &user),
            // Whatever the sender wrote there would be believed once the message is ours.
            None => headers = headers::without(&headers, headers::PUBLISHED_BY),
        }
        let target = if dead {
            let cause = error.cause();
            headers::set_str(&mut headers, headers::ERROR, &cause.to_string());
            let chain: Vec<String> = cause.chain().map(|c| c.to_string()).collect();
            headers::set_str(&mut headers, headers::ERROR_CHAIN, &chain.join(" <- "));
            headers::set_u32(&mut headers, headers::ATTEMPTS, failures);
            headers::set_str(&mut headers, headers::FAILED_AT, &now.to_rfc3339());
            headers::set_str(&mut headers, headers::CONSUMER, self.spec.consumer);
            topology::dead_letter_queue_name(&self.exchange, self.spec)
        } else {
            let level = (failures as usize - 1).min(delays.len() - 1);
            topology::retry_queue_name(&self.exchange, self.spec, level)
        };
        let properties = publishers::stamp(
            pending.delivery.properties.clone().with_headers(headers),
            &self.own_user,
        );
        let step = if dead {
            hops::Step::DeadLettered
        } else {
            hops::Step::Retried
        };
        let hop = hops::hop(self.spec.consumer, step, pending.received_at);
        let body = hops::add_hop(&pending.delivery.data, &hop);
        let confirmation = outlets
            .publish
            .basic_publish(
                "".into(),
                target.as_str().into(),
                confirm::mandatory(),
                &body,
                properties,
            )
            .await
            .context("moving a failed message")?
            .await
            .context("waiting for the broker to take a failed message")?;
        // Anything but a clean confirm leaves the original unacknowledged: the session ends,
        // declares its queues again on reconnect, and the broker redelivers the message.
        match confirm::outcome(&confirmation)? {
            Outcome::Stored => {}
            Outcome::Unroutable => {
                anyhow::bail!("{target} is missing: the failed message came back")
            }
            Outcome::Refused => anyhow::bail!("the broker refused a failed message for {target}"),
        }
        if dead {
            tracing::error!(queue = %target, attempts = failures, error = format!("{:#}", error.cause()), "message dead-lettered");
            self.count("dead_lettered", 1);
        } else {
            self.count("retried", 1);
        }
        pending.settle(&outlets.acks)
    }
}
