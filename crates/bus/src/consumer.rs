//! The consumer every service uses.
//!
//! Guarantees, and how:
//! - **Exactly-once effects.** The event id goes into the `inbox` table in the same transaction
//!   as the handler's writes; a redelivered or duplicated event finds its id there and is only
//!   acknowledged.
//! - **Ack after commit.** A message is acknowledged only after its transaction committed (or
//!   after it was safely handed to a retry or dead-letter queue with a publisher confirm).
//!   Anything unacknowledged when a connection dies is redelivered.
//! - **Per-order order.** Deliveries are spread over partitions by the envelope's subject (the
//!   order id); each partition handles its messages one batch at a time, in delivery order.
//!   A retried message can still arrive after newer ones, so handlers compare the envelope's
//!   `sequence` before overwriting state.
//! - **Failures never block the queue.** A failing message is re-published to a retry queue
//!   whose TTL brings it back later (delays grow), and after `max_attempts` to the dead-letter
//!   queue with the reason in its headers. Then the original is acknowledged, so the messages
//!   behind it flow on.
//! - **Throughput.** A batch is applied in one transaction with one inbox insert for all of it.
//!   If a handler in the batch fails, the batch is rolled back, the failing message is sent on
//!   to be retried, and the rest are applied again without it.

use std::{
    collections::HashSet,
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
    Channel, Confirmation,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions,
    },
    types::FieldTable,
};
use prometheus::IntCounterVec;
use serde::Deserialize;
use service_kit::{config::BusSettings, shutdown::Shutdown, telemetry::TraceContext};
use sqlx::{PgConnection, PgPool};
use tokio::{sync::mpsc, task::JoinSet};
use tracing::Instrument;
use uuid::Uuid;

use crate::{connection, headers, topology, topology::QueueSpec};

static MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    service_kit::metrics::counter_vec(
        "consumer_messages_total",
        "Messages a consumer settled, by queue and outcome.",
        &["queue", "outcome"],
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
    /// Worth trying again later: the order it refers to has not arrived yet, a lock timed out.
    #[error("{0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed as it is: the data breaks a rule. Goes to the dead-letter queue at
    /// once, to be fixed and replayed.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl HandlerError {
    fn cause(&self) -> &anyhow::Error {
        match self {
            HandlerError::Transient(e) | HandlerError::Permanent(e) => e,
        }
    }
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
    /// position of the event that failed; the consumer then retries that one and re-applies the
    /// rest without it. The default applies them one by one.
    fn handle_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a Incoming],
    ) -> impl Future<Output = Result<(), (usize, HandlerError)>> + Send + 'a {
        async move {
            for (index, event) in events.iter().enumerate() {
                self.handle(&mut *conn, event)
                    .await
                    .map_err(|error| (index, error))?;
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
    /// Independent lanes; one order always uses the same lane.
    pub partitions: usize,
    /// The delay before each retry; the last one repeats.
    pub retry_delays_ms: Vec<u64>,
    /// Tries before a message is dead-lettered.
    pub max_attempts: u32,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            prefetch: 1000,
            batch_size: 200,
            partitions: 4,
            retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
            max_attempts: 6,
        }
    }
}

/// A delivery waiting for its outcome. Settling consumes it, so each delivery is acknowledged
/// exactly once.
struct Pending {
    delivery: Delivery,
    incoming: Result<Incoming, String>,
    /// Failures so far, from our own header.
    failures: u32,
}

impl Pending {
    fn new(delivery: Delivery) -> Self {
        let props_headers = delivery.properties.headers().as_ref();
        let failures = headers::get_u32(props_headers, headers::ATTEMPT).unwrap_or(0);
        let routing_key = headers::get_str(props_headers, headers::ORIGINAL_ROUTING_KEY)
            .unwrap_or_else(|| delivery.routing_key.as_str().to_owned());
        let incoming = serde_json::from_slice::<Envelope>(&delivery.data)
            .map(|envelope| Incoming {
                envelope,
                routing_key,
                redelivered: delivery.redelivered,
                attempt: failures + 1,
            })
            .map_err(|e| format!("the message is not a CloudEvents JSON envelope: {e}"));
        Pending {
            delivery,
            incoming,
            failures,
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

    async fn ack(self) -> anyhow::Result<()> {
        self.delivery
            .ack(BasicAckOptions::default())
            .await
            .context("acknowledging a delivery")?;
        Ok(())
    }
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
        Consumer {
            shared: Arc::new(Shared {
                pool,
                queue: topology::queue_name(&bus.exchange, spec),
                handler,
                spec,
                exchange: bus.exchange.clone(),
                settings,
            }),
            bus,
            ready,
            shutdown,
        }
    }

    /// Runs until shutdown, reconnecting whenever the broker or the database goes away.
    pub async fn run(self) {
        let role = format!("{}-consumer", self.shared.spec.consumer);
        connection::keep_running(&role, &self.ready, &self.shutdown, || self.session()).await;
    }

    async fn session(&self) -> anyhow::Result<()> {
        let shared = &self.shared;
        let role = format!("{}-consumer", shared.spec.consumer);
        let connection = connection::connect(&self.bus, &role)
            .await
            .context("connecting to the broker")?;
        // One channel to publish retries and dead letters (with confirms), one to consume.
        let publish = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
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
        // Prefetch is per channel and is lost with it, so it is set on every (re)connect.
        consume
            .basic_qos(shared.settings.prefetch, BasicQosOptions::default())
            .await
            .context("setting prefetch")?;
        let queue = &shared.queue;
        let mut deliveries = consume
            .basic_consume(
                queue.as_str().into(),
                role.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("starting to consume")?;
        self.ready.store(true, Ordering::Relaxed);
        tracing::info!(queue = %queue, "consumer connected");

        let lanes = shared.settings.partitions.max(1);
        let mut senders = Vec::with_capacity(lanes);
        let mut workers = JoinSet::new();
        for _ in 0..lanes {
            let (sender, receiver) = mpsc::channel(shared.settings.batch_size.max(1) * 2);
            senders.push(sender);
            workers.spawn(lane(shared.clone(), publish.clone(), receiver));
        }

        let result = loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery {
                    Some(Ok(delivery)) => {
                        let pending = Pending::new(delivery);
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
                _ = self.shutdown.wait() => break Ok(()),
            }
        };
        // Let the lanes finish what they hold (on shutdown), or stop them (on failure); the
        // broker redelivers anything left unacknowledged.
        drop(senders);
        if result.is_ok() {
            while let Some(done) = workers.join_next().await {
                if let Ok(Err(e)) = done {
                    tracing::warn!(error = format!("{e:#}"), "lane failed while draining");
                }
            }
            let _ = connection.close(200, "shutdown".into()).await;
        } else {
            workers.abort_all();
        }
        result
    }
}

/// One lane: takes what has arrived (up to a batch) and applies it.
async fn lane<H: Handler>(
    shared: Arc<Shared<H>>,
    publish: Channel,
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
        shared.process(&publish, batch).await?;
    }
    Ok(())
}

impl<H: Handler> Shared<H> {
    fn count(&self, outcome: &str, n: usize) {
        MESSAGES
            .with_label_values(&[self.queue.as_str(), outcome])
            .inc_by(n as u64);
    }

    async fn process(&self, publish: &Channel, batch: Vec<Pending>) -> anyhow::Result<()> {
        let mut good = Vec::with_capacity(batch.len());
        for pending in batch {
            match &pending.incoming {
                Ok(_) => good.push(pending),
                Err(reason) => {
                    let error = HandlerError::Permanent(anyhow!(reason.clone()));
                    self.fail(publish, pending, error).await?;
                }
            }
        }
        // Each round applies what is left in one transaction. When a handler fails, that one
        // message goes to its retry or dead-letter queue and the rest are applied again
        // without it: a failure costs one re-run of its batch, not one transaction per message.
        let mut todo = good;
        while !todo.is_empty() {
            match self.apply_batch(&todo).await? {
                None => {
                    self.count("applied", todo.len());
                    // Acks have no reply; sending them together saves a wake-up per message.
                    for acked in
                        futures_util::future::join_all(todo.into_iter().map(Pending::ack)).await
                    {
                        acked?;
                    }
                    break;
                }
                Some((index, error)) => {
                    let after = todo.split_off(index + 1);
                    if let Some(failed) = todo.pop() {
                        self.fail(publish, failed, error).await?;
                    }
                    todo.extend(after);
                }
            }
        }
        Ok(())
    }

    /// Applies the batch in one transaction with one inbox insert for all of it. Returns the
    /// position and error of the first message whose handler failed (the transaction is then
    /// rolled back), or `None` once committed; `Err` when the database itself failed.
    async fn apply_batch(
        &self,
        batch: &[Pending],
    ) -> anyhow::Result<Option<(usize, HandlerError)>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("starting a consumer transaction")?;
        let ids: Vec<Uuid> = batch
            .iter()
            .filter_map(|p| p.incoming.as_ref().ok())
            .map(|i| i.envelope.id)
            .collect();
        let fresh: HashSet<Uuid> = sqlx::query_scalar(
            "insert into inbox (consumer, event_id) select $1, unnest($2::uuid[]) \
             on conflict do nothing returning event_id",
        )
        .bind(self.spec.consumer)
        .bind(&ids)
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
            result.err().map(|(position, error)| {
                span.in_scope(|| {
                    tracing::warn!(
                        error = format!("{:#}", error.cause()),
                        "batch handler failed"
                    )
                });
                (todo.get(position).map_or(0, |(index, _)| *index), error)
            })
        } else {
            let mut failed = None;
            for (index, incoming) in &todo {
                if let Err(error) = self.handle(&mut tx, incoming).await {
                    failed = Some((*index, error));
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

    /// Sends a failed message on to a retry queue or to the dead-letter queue, then acks it.
    async fn fail(
        &self,
        publish: &Channel,
        pending: Pending,
        error: HandlerError,
    ) -> anyhow::Result<()> {
        // When the database is down every message fails; retrying them would only burn their
        // attempts. Stop instead and let the broker redeliver once we reconnect.
        if sqlx::query("select 1").execute(&self.pool).await.is_err() {
            anyhow::bail!("the database is unavailable: {:#}", error.cause());
        }
        let failures = pending.failures + 1;
        let delays = &self.settings.retry_delays_ms;
        let dead = matches!(error, HandlerError::Permanent(_))
            || failures >= self.settings.max_attempts
            || delays.is_empty();
        let props_headers = pending.delivery.properties.headers().as_ref();
        let mut headers = headers::without_broker_history(props_headers);
        let routing_key = headers::get_str(props_headers, headers::ORIGINAL_ROUTING_KEY)
            .unwrap_or_else(|| pending.delivery.routing_key.as_str().to_owned());
        headers::set_str(&mut headers, headers::ORIGINAL_ROUTING_KEY, &routing_key);
        headers::set_u32(&mut headers, headers::ATTEMPT, failures);
        let target = if dead {
            let cause = error.cause();
            headers::set_str(&mut headers, headers::ERROR, &cause.to_string());
            let chain: Vec<String> = cause.chain().map(|c| c.to_string()).collect();
            headers::set_str(&mut headers, headers::ERROR_CHAIN, &chain.join(" <- "));
            headers::set_u32(&mut headers, headers::ATTEMPTS, failures);
            headers::set_str(
                &mut headers,
                headers::FAILED_AT,
                &chrono::Utc::now().to_rfc3339(),
            );
            headers::set_str(&mut headers, headers::CONSUMER, self.spec.consumer);
            topology::dead_letter_queue_name(&self.exchange, self.spec)
        } else {
            let level = (failures as usize - 1).min(delays.len() - 1);
            topology::retry_queue_name(&self.exchange, self.spec, level)
        };
        let properties = pending.delivery.properties.clone().with_headers(headers);
        let confirm = publish
            .basic_publish(
                "".into(),
                target.as_str().into(),
                BasicPublishOptions::default(),
                &pending.delivery.data,
                properties,
            )
            .await
            .context("moving a failed message")?
            .await
            .context("waiting for the broker to take a failed message")?;
        if !matches!(confirm, Confirmation::Ack(_)) {
            anyhow::bail!("the broker refused a failed message for {target}");
        }
        if dead {
            tracing::error!(queue = %target, attempts = failures, error = format!("{:#}", error.cause()), "message dead-lettered");
            self.count("dead_lettered", 1);
        } else {
            self.count("retried", 1);
        }
        pending.ack().await
    }
}
