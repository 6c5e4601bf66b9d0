//! Every exchange, queue and binding of the kitchen bus, declared in one place.
//!
//! Routing keys are `<service>.<aggregate>.<event>`. Each durable consumer has:
//! - `<exchange>.<consumer>.hash`: a consistent-hash exchange, bound to the topic exchange with
//!   the routing keys the consumer needs, hashing on the [`SUBJECT`](crate::headers::SUBJECT)
//!   header (the order id);
//! - `<exchange>.<consumer>.p<i>`, i < `bus.partitions`: its partitions, durable quorum queues
//!   with `x-single-active-consumer`, each bound to the hash exchange with weight 1. Every
//!   replica consumes every partition and the broker lets one consumer per partition take
//!   deliveries, so an order's events reach one consumer at a time, in order; when that
//!   replica dies, another one's waiting consumer becomes the active one;
//! - `<exchange>.<consumer>.delay.<n>`: one queue per retry delay, whose messages expire back
//!   into the hash exchange, and so into the partition they came from (RabbitMQ 3.10 has no
//!   delayed-message plugin, so TTL queues it is);
//! - `<exchange>.<consumer>.dead`: the dead-letter queue, which keeps a message and the reason.
//!
//! `<exchange>.<consumer>` (and its `.retry.<n>` queues) are the single queue of the
//! unpartitioned topology: the consumer unbinds it and drains it ([`unbind_unpartitioned_queue`]).
//!
//! Queue names derive from the exchange name (and each test has a vhost of its own).

use service_kit::config::BusSettings;

use lapin::{
    BasicProperties, Channel, ExchangeKind,
    options::{ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

use crate::headers;

/// A consumer of the bus and what it listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// Names the queue and the consumer's rows in its inbox table.
    pub consumer: &'static str,
    pub bindings: &'static [&'static str],
}

/// The tracker takes orders and cancellations from every order source.
pub const TRACKER_INTAKE: QueueSpec = QueueSpec {
    consumer: "tracker-intake",
    bindings: &[
        "cashier.order.placed",
        "cashier.order.cancelled",
        "site.order.placed",
        "site.order.cancelled",
        "contact-centre.order.placed",
        "contact-centre.order.cancelled",
    ],
};

/// The sync worker mirrors everything the tracker announces into the legacy tables.
pub const LEGACY_SYNC: QueueSpec = QueueSpec {
    consumer: "legacy-sync",
    bindings: &["tracker.#", "auth.user.*", "devices.device.*"],
};

/// Auth keeps its list of pizzerias (where roles can be granted) from the tracker, which owns
/// them.
pub const AUTH_PIZZERIAS: QueueSpec = QueueSpec {
    consumer: "auth-pizzerias",
    bindings: &["tracker.pizzeria.*"],
};

/// Every consumer queue. Publishers declare these too (see [`declare_consumer_queues`]), so an
/// event published before its consumer ever started waits in the queue instead of being
/// dropped as unroutable.
pub const ALL: &[QueueSpec] = &[TRACKER_INTAKE, LEGACY_SYNC, AUTH_PIZZERIAS];

/// Whether some durable consumer's queue is bound to take `routing_key`. An event nobody keeps
/// (`auth.session.revoked` goes only to the caches' private queues) may come back unroutable
/// when no cache is listening; one that a durable consumer binds must never.
pub fn has_durable_consumer(routing_key: &str) -> bool {
    ALL.iter().any(|spec| {
        spec.bindings
            .iter()
            .any(|binding| crate::confirm::topic_matches(binding, routing_key))
    })
}

/// The consumer's name on the bus: the prefix of its queues, and the one queue it had before
/// its queue was partitioned (see [`unbind_unpartitioned_queue`]).
pub fn queue_name(exchange: &str, spec: QueueSpec) -> String {
    format!("{exchange}.{}", spec.consumer)
}

/// The consistent-hash exchange that spreads the consumer's events over its partitions.
pub fn hash_exchange_name(exchange: &str, spec: QueueSpec) -> String {
    format!("{}.hash", queue_name(exchange, spec))
}

pub fn partition_queue_name(exchange: &str, spec: QueueSpec, partition: u16) -> String {
    format!("{}.p{partition}", queue_name(exchange, spec))
}

/// Every partition of the consumer's queue.
pub fn partition_queue_names(bus: &BusSettings, spec: QueueSpec) -> Vec<String> {
    (0..bus.partitions.max(1))
        .map(|partition| partition_queue_name(&bus.exchange, spec, partition))
        .collect()
}

/// The retry queue of one delay; it expires back into the hash exchange.
pub fn retry_queue_name(exchange: &str, spec: QueueSpec, level: usize) -> String {
    format!("{}.delay.{level}", queue_name(exchange, spec))
}

/// Every queue where an event for the consumer can wait: its partitions and its retry queues.
pub fn queues_holding_events(
    bus: &BusSettings,
    spec: QueueSpec,
    retry_levels: usize,
) -> Vec<String> {
    let mut queues = partition_queue_names(bus, spec);
    queues.extend((0..retry_levels).map(|level| retry_queue_name(&bus.exchange, spec, level)));
    queues
}

/// `properties` with the [`SUBJECT`](headers::SUBJECT) header set to the envelope's subject:
/// every publisher of an event a durable consumer takes sets it, or the consistent-hash
/// exchange could not keep the order's events in one partition.
pub fn with_subject(properties: BasicProperties, subject: &str) -> BasicProperties {
    let mut table = properties.headers().clone().unwrap_or_default();
    headers::set_str(&mut table, headers::SUBJECT, subject);
    properties.with_headers(table)
}

pub fn dead_letter_queue_name(exchange: &str, spec: QueueSpec) -> String {
    format!("{}.dead", queue_name(exchange, spec))
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in pairs {
        table.insert(ShortString::from(*key), value.clone());
    }
    table
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// The arguments every queue of ours gets: quorum type. None expires, not even in tests (each
/// test has a vhost of its own, deleted with everything in it): an expired retry queue takes its
/// waiting messages with it, and a message sent to a dead-letter queue that expired is gone.
fn queue_args(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut pairs = vec![("x-queue-type", text("quorum"))];
    pairs.extend(extra.iter().cloned());
    args(&pairs)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// The durable topic exchange.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// The consumer's hash exchange, bound to the topic exchange with `spec`'s routing keys, and
/// its partitions. Quorum queues: replicated across the cluster's nodes, and safe across a
/// broker restart. A single active consumer per partition: the order of an order's events
/// holds however many replicas consume.
pub async fn declare_partitions(
    channel: &Channel,
    bus: &BusSettings,
    spec: QueueSpec,
) -> Result<(), lapin::Error> {
    let exchange = bus.exchange.as_str();
    let hash = hash_exchange_name(exchange, spec);
    channel
        .exchange_declare(
            hash.as_str().into(),
            ExchangeKind::Custom("x-consistent-hash".into()),
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            args(&[("hash-header", text(headers::SUBJECT))]),
        )
        .await?;
    for binding in spec.bindings {
        channel
            .exchange_bind(
                hash.as_str().into(),
                exchange.into(),
                (*binding).into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    for queue in partition_queue_names(bus, spec) {
        channel
            .queue_declare(
                queue.as_str().into(),
                durable(),
                queue_args(&[("x-single-active-consumer", AMQPValue::Boolean(true))]),
            )
            .await?;
        // The binding key of a consistent-hash exchange is the queue's weight: all equal.
        channel
            .queue_bind(
                queue.as_str().into(),
                hash.as_str().into(),
                "1".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// The exchange and the partitions of every consumer of what this process publishes (its
/// user's sources, `publishers::sources_of`): what a publisher declares before it publishes, so
/// that nothing it sends is unroutable. Only those: each service's RabbitMQ user may configure
/// no queue that it does not feed or consume.
pub async fn declare_consumer_queues(
    channel: &Channel,
    bus: &BusSettings,
) -> Result<(), lapin::Error> {
    declare_exchange(channel, &bus.exchange).await?;
    let user = crate::publishers::own_user(bus);
    let sources: Vec<&str> = crate::publishers::sources_of(bus, &user).collect();
    for spec in ALL {
        let fed = spec.bindings.iter().any(|binding| {
            let first = binding.split('.').next().unwrap_or_default();
            first == "#" || first == "*" || sources.contains(&first)
        });
        if fed {
            declare_partitions(channel, bus, *spec).await?;
        }
    }
    Ok(())
}

/// Everything one consumer needs: exchange, partitions, one retry queue per delay, and the
/// dead-letter queue. Retry queues dead-letter into the hash exchange when their TTL expires,
/// which sends a message back to its own partition (its subject header is kept);
/// `at-least-once` dead-lettering makes that hop safe across a broker crash (it needs
/// `reject-publish` overflow, which these queues never hit).
pub async fn declare_consumer(
    channel: &Channel,
    bus: &BusSettings,
    spec: QueueSpec,
    retry_delays_ms: &[u64],
) -> Result<(), lapin::Error> {
    let exchange = bus.exchange.as_str();
    declare_exchange(channel, exchange).await?;
    declare_partitions(channel, bus, spec).await?;
    let hash = hash_exchange_name(exchange, spec);
    for (level, delay) in retry_delays_ms.iter().enumerate() {
        let delay = i64::try_from(*delay).unwrap_or(i64::MAX);
        channel
            .queue_declare(
                retry_queue_name(exchange, spec, level).as_str().into(),
                durable(),
                queue_args(&[
                    ("x-message-ttl", AMQPValue::LongLongInt(delay)),
                    ("x-dead-letter-exchange", text(&hash)),
                    ("x-dead-letter-strategy", text("at-least-once")),
                    ("x-overflow", text("reject-publish")),
                ]),
            )
            .await?;
    }
    declare_dead_letter_queue(channel, bus, spec).await
}

/// The queue of the unpartitioned topology, if it still exists: unbound here from the topic
/// exchange, so that nothing new reaches it, and returned, so that the consumer reads what is
/// left in it (and what its old retry queues, which expire into it, send back) besides its
/// partitions, until an operator deletes it (docs/DEPLOYING.md). The check runs on a channel
/// of its own, since asking for a missing queue closes the channel it is asked on.
pub async fn unbind_unpartitioned_queue(
    connection: &lapin::Connection,
    bus: &BusSettings,
    spec: QueueSpec,
) -> Result<Option<String>, lapin::Error> {
    let exchange = bus.exchange.as_str();
    let queue = queue_name(exchange, spec);
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    if channel
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await
        .is_err()
    {
        return Ok(None);
    }
    for binding in spec.bindings {
        channel
            .queue_unbind(
                queue.as_str().into(),
                exchange.into(),
                (*binding).into(),
                FieldTable::default(),
            )
            .await?;
    }
    let _ = channel.close(200, "unbound".into()).await;
    Ok(Some(queue))
}

/// The dead-letter queue of `spec`. The dead-letter tools declare it too, so listing works on a
/// broker where the consumer has never run.
pub async fn declare_dead_letter_queue(
    channel: &Channel,
    bus: &BusSettings,
    spec: QueueSpec,
) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            dead_letter_queue_name(&bus.exchange, spec).as_str().into(),
            durable(),
            queue_args(&[]),
        )
        .await?;
    Ok(())
}

/// A server-named, exclusive, auto-delete queue bound to `bindings`: one per process, gone with
/// its connection. For followers that only need to hear about changes while they are connected
/// (cache invalidation, live screen updates), never for work that must not be lost.
pub async fn declare_private_queue(
    channel: &Channel,
    exchange: &str,
    bindings: &[&str],
) -> Result<String, lapin::Error> {
    declare_exchange(channel, exchange).await?;
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
        .await?;
    let queue = queue.name().to_string();
    for binding in bindings {
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                (*binding).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(queue)
}

/// The stream every event also lands in (see [`crate::stream`]): bound to every routing key,
/// kept as `retention` says. Declared by one service only, the sync worker; the others reach
/// it only through the exchange. The retention counts when the stream is first declared: the
/// broker refuses a declare with other limits (`PRECONDITION_FAILED`), so a change is made
/// with a policy (ARCHITECTURE.md, "Replay from history").
pub async fn declare_event_stream(
    channel: &Channel,
    bus: &BusSettings,
    retention: &crate::stream::Retention,
) -> anyhow::Result<()> {
    let exchange = bus.exchange.as_str();
    declare_exchange(channel, exchange).await?;
    let stream = crate::stream::stream_name(exchange);
    channel
        .queue_declare(
            stream.as_str().into(),
            durable(),
            args(&retention.arguments()?),
        )
        .await?;
    channel
        .queue_bind(
            stream.as_str().into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}
