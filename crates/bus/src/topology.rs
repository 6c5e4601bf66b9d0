//! Every exchange, queue and binding of the kitchen bus, declared in one place.
//!
//! Routing keys are `<service>.<aggregate>.<event>`. Each consumer has:
//! - `<exchange>.<consumer>`: its durable quorum queue, bound to the routing keys it needs;
//! - `<exchange>.<consumer>.retry.<n>`: one queue per retry delay, whose messages expire back
//!   into the main queue (RabbitMQ 3.10 has no delayed-message plugin, so TTL queues it is);
//! - `<exchange>.<consumer>.dead`: the dead-letter queue, which keeps a message and the reason.
//!
//! Queue names derive from the exchange name (and each test has a vhost of its own).

use service_kit::config::BusSettings;

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

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

/// Every consumer queue. Publishers declare these too (see [`declare_consumer_queues`]), so an
/// event published before its consumer ever started waits in the queue instead of being
/// dropped as unroutable.
pub const ALL: &[QueueSpec] = &[TRACKER_INTAKE, LEGACY_SYNC];

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

pub fn queue_name(exchange: &str, spec: QueueSpec) -> String {
    format!("{exchange}.{}", spec.consumer)
}

pub fn retry_queue_name(exchange: &str, spec: QueueSpec, level: usize) -> String {
    format!("{}.retry.{level}", queue_name(exchange, spec))
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

/// The main queue of `spec` with its bindings. Quorum queues: replicated when the cluster
/// grows, and safe across a broker restart.
pub async fn declare_main_queue(
    channel: &Channel,
    bus: &BusSettings,
    spec: QueueSpec,
) -> Result<(), lapin::Error> {
    let exchange = bus.exchange.as_str();
    let queue = queue_name(exchange, spec);
    channel
        .queue_declare(queue.as_str().into(), durable(), queue_args(&[]))
        .await?;
    for binding in spec.bindings {
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
    Ok(())
}

/// The exchange and the main queue of every consumer of what this process publishes (its
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
            declare_main_queue(channel, bus, *spec).await?;
        }
    }
    Ok(())
}

/// Everything one consumer needs: exchange, main queue, one retry queue per delay, and the
/// dead-letter queue. Retry queues dead-letter back into the main queue through the default
/// exchange when their TTL expires; `at-least-once` dead-lettering makes that hop safe across
/// a broker crash (it needs `reject-publish` overflow, which these queues never hit).
pub async fn declare_consumer(
    channel: &Channel,
    bus: &BusSettings,
    spec: QueueSpec,
    retry_delays_ms: &[u64],
) -> Result<(), lapin::Error> {
    let exchange = bus.exchange.as_str();
    declare_exchange(channel, exchange).await?;
    declare_main_queue(channel, bus, spec).await?;
    let main = queue_name(exchange, spec);
    for (level, delay) in retry_delays_ms.iter().enumerate() {
        let delay = i64::try_from(*delay).unwrap_or(i64::MAX);
        channel
            .queue_declare(
                retry_queue_name(exchange, spec, level).as_str().into(),
                durable(),
                queue_args(&[
                    ("x-message-ttl", AMQPValue::LongLongInt(delay)),
                    ("x-dead-letter-exchange", text("")),
                    ("x-dead-letter-routing-key", text(&main)),
                    ("x-dead-letter-strategy", text("at-least-once")),
                    ("x-overflow", text("reject-publish")),
                ]),
            )
            .await?;
    }
    declare_dead_letter_queue(channel, bus, spec).await
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
