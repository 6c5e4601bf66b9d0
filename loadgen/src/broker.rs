//! Publishing to and consuming from RabbitMQ the way the tracker and the sync worker do, and
//! `loadgen probe-broker`: what this box's broker can do at most on a quorum queue, measured in
//! the same run as a scenario, so the scenario's rate reads as a share of it
//! (docs/BENCHMARKS.md, "The box's limits").

use std::{collections::VecDeque, time::Duration};

use anyhow::Context;
use chrono::Utc;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Confirmation, Consumer, PublisherConfirm,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use tokio::time::Instant;
use uuid::Uuid;

use crate::orders::{self, Outgoing};

/// The AMQP properties the tracker's relay gives an event: persistent, typed, with the
/// original routing key in a header (the consumer's retries reroute by it).
pub fn event_properties(event: &Outgoing) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from("x-original-routing-key"),
        AMQPValue::LongString(LongString::from(event.routing_key.as_str())),
    );
    let properties = BasicProperties::default()
        .with_message_id(event.envelope.id.to_string().into())
        .with_type(event.envelope.event_type.as_str().into())
        .with_content_type("application/cloudevents+json".into())
        .with_delivery_mode(2)
        .with_headers(headers);
    // What the consumers' hash exchanges partition by, as every publisher sets it.
    bus::topology::with_subject(properties, &event.envelope.subject)
}

/// Publisher confirms awaited in order, with at most `limit` outstanding: the broker confirms
/// in batches, so a window runs far faster than waiting for each confirm, while one channel
/// keeps the messages in order.
pub struct ConfirmWindow {
    pending: VecDeque<PublisherConfirm>,
    limit: usize,
}

impl ConfirmWindow {
    pub fn new(limit: usize) -> Self {
        ConfirmWindow {
            pending: VecDeque::with_capacity(limit),
            limit: limit.max(1),
        }
    }

    /// Adds a confirm; waits for the oldest one once the window is full.
    pub async fn push(&mut self, confirm: PublisherConfirm) -> anyhow::Result<()> {
        self.pending.push_back(confirm);
        if self.pending.len() >= self.limit
            && let Some(oldest) = self.pending.pop_front()
        {
            confirmed(oldest).await?;
        }
        Ok(())
    }

    /// Waits for every outstanding confirm.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        while let Some(confirm) = self.pending.pop_front() {
            confirmed(confirm).await?;
        }
        Ok(())
    }
}

async fn confirmed(confirm: PublisherConfirm) -> anyhow::Result<()> {
    match confirm.await.context("waiting for the publisher confirm")? {
        Confirmation::Ack(_) => Ok(()),
        other => anyhow::bail!("the broker did not confirm a message: {other:?}"),
    }
}

/// How a consumer acknowledges what it took, once per batch of `every` messages (and at the
/// end), as the bus consumer does after a batch's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// One `basic.ack` frame per message, sent together (as the bus consumer did at commit
    /// 6795667: a `join_all` over the batch's acks).
    EachMessage { every: u64 },
    /// One `basic.ack` with `multiple = true` for the whole batch.
    Multiple { every: u64 },
}

/// Takes `count` deliveries from `consumer`, hands each to `seen`, and acknowledges them as
/// `acks` says. Returns early (with what it took) if the queue stays silent for `idle`.
pub async fn take(
    consumer: &mut Consumer,
    count: u64,
    acks: Acks,
    idle: Duration,
    mut seen: impl FnMut(&Delivery),
) -> anyhow::Result<u64> {
    let every = match acks {
        Acks::EachMessage { every } | Acks::Multiple { every } => every.max(1),
    };
    let mut taken = 0u64;
    let mut unacked: Vec<Delivery> = Vec::with_capacity(usize::try_from(every).unwrap_or(1));
    while taken < count {
        let delivery = match tokio::time::timeout(idle, consumer.next()).await {
            Ok(Some(delivery)) => delivery.context("receiving a delivery")?,
            Ok(None) => anyhow::bail!("the broker closed the consumer"),
            Err(_) => break,
        };
        taken += 1;
        seen(&delivery);
        unacked.push(delivery);
        if taken.is_multiple_of(every) {
            acknowledge(&mut unacked, acks).await?;
        }
    }
    acknowledge(&mut unacked, acks).await?;
    Ok(taken)
}

async fn acknowledge(unacked: &mut Vec<Delivery>, acks: Acks) -> anyhow::Result<()> {
    match acks {
        Acks::EachMessage { .. } => {
            let each = unacked
                .iter()
                .map(|delivery| delivery.acker.ack(BasicAckOptions::default()));
            for acked in futures_util::future::join_all(each).await {
                acked.context("acknowledging")?;
            }
        }
        Acks::Multiple { .. } => {
            if let Some(last) = unacked.last() {
                last.acker
                    .ack(BasicAckOptions { multiple: true })
                    .await
                    .context("acknowledging")?;
            }
        }
    }
    unacked.clear();
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub amqp: String,
    /// Messages to publish, then consume: the first half acknowledged with one frame per
    /// message, the second half with one `multiple` ack per batch.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Messages published but not yet confirmed, at most (as `loadgen backlog`).
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
    /// The consumer's prefetch (the sync worker's default is 5,000).
    #[arg(long, default_value_t = 5000)]
    pub prefetch: u16,
    /// Messages acknowledged together (the sync worker's batch is up to 2,000).
    #[arg(long, default_value_t = 1000)]
    pub ack_every: u64,
    /// Give up (and delete the probe's queue) after this long.
    #[arg(long, default_value = "120s", value_parser = crate::limits::parse_duration)]
    pub timeout: Duration,
}

/// The pizzeria whose event the probe sends; nothing consumes the probe's queue but the probe.
const PROBE_PIZZERIA: u32 = 0xffff_fffd;

/// Publishes `messages` copies of a typical tracker event to a quorum queue of its own with
/// confirms, then consumes them, and prints the rates. The queue is deleted afterwards, whatever
/// happened, and expires by itself after ten minutes in case the probe is killed.
pub async fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.messages >= 2, "--messages must be at least 2");
    anyhow::ensure!(args.prefetch > 0, "--prefetch must be at least 1");
    let bus = crate::bus_settings(&args.amqp, "kitchen")?;
    let connection = bus::connection::connect(&bus, "loadgen-probe-broker")
        .await
        .context("connecting to the broker")?;
    let channel = connection.create_channel().await?;
    let queue = format!("loadgen.probe.{}", Uuid::new_v4().simple());
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    arguments.insert(
        ShortString::from("x-expires"),
        AMQPValue::LongLongInt(600_000),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .context("declaring the probe's quorum queue")?;
    let outcome = tokio::time::timeout(args.timeout, measure(&connection, &queue, &args)).await;
    let deleted = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = connection.close(200, "probed".into()).await;
    let rates = outcome
        .map_err(|_| anyhow::anyhow!("the probe did not finish within {:?}", args.timeout))??;
    deleted.context("deleting the probe's queue")?;
    println!(
        "broker limit: publish+confirm {:.0} msg/s ({} messages of {} bytes, window {})",
        rates.publish, args.messages, rates.body_bytes, args.window
    );
    println!(
        "broker limit: consume+ack {:.0} msg/s (an ack frame per message, sent {} at a time, prefetch {})",
        rates.consume_each, args.ack_every, args.prefetch
    );
    println!(
        "broker limit: consume+ack {:.0} msg/s (multiple acks, one per {} messages, prefetch {})",
        rates.consume_multiple, args.ack_every, args.prefetch
    );
    Ok(())
}

struct Rates {
    body_bytes: usize,
    publish: f64,
    consume_each: f64,
    consume_multiple: f64,
}

async fn measure(
    connection: &lapin::Connection,
    queue: &str,
    args: &ProbeArgs,
) -> anyhow::Result<Rates> {
    // A product's stage, the most common event a tap announces.
    let lifecycle = orders::tracker_lifecycle(orders::pizzeria_id(PROBE_PIZZERIA), 1, Utc::now())
        .context("building a sample event")?;
    let sample = lifecycle
        .get(2)
        .context("the lifecycle has no stage event")?;
    let body = serde_json::to_vec(&sample.envelope).context("encoding the sample event")?;
    let properties = event_properties(sample);

    let publish = connection.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut window = ConfirmWindow::new(args.window);
    let started = Instant::now();
    for _ in 0..args.messages {
        let confirm = publish
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                properties.clone(),
            )
            .await
            .context("publishing")?;
        window.push(confirm).await?;
    }
    window.finish().await?;
    let publish_rate = args.messages as f64 / started.elapsed().as_secs_f64();

    let consume: Channel = connection.create_channel().await?;
    consume
        .basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = consume
        .basic_consume(
            queue.into(),
            "loadgen-probe-broker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("consuming the probe's queue")?;
    let idle = Duration::from_secs(10);
    let each = args.messages / 2;
    let started = Instant::now();
    let taken = take(
        &mut consumer,
        each,
        Acks::EachMessage {
            every: args.ack_every,
        },
        idle,
        |_| {},
    )
    .await?;
    anyhow::ensure!(taken == each, "only {taken} of {each} messages came back");
    let consume_each = each as f64 / started.elapsed().as_secs_f64();
    let rest = args.messages - each;
    let started = Instant::now();
    let taken = take(
        &mut consumer,
        rest,
        Acks::Multiple {
            every: args.ack_every,
        },
        idle,
        |_| {},
    )
    .await?;
    anyhow::ensure!(taken == rest, "only {taken} of {rest} messages came back");
    let consume_multiple = rest as f64 / started.elapsed().as_secs_f64();
    // Closed before the queue is deleted: a consumer still open on it would be cancelled by
    // the delete, and lapin takes that cancel for a protocol error.
    drop(consumer);
    consume
        .close(200, "probed".into())
        .await
        .context("closing the consumer's channel")?;
    let _ = publish.close(200, "probed".into()).await;
    Ok(Rates {
        body_bytes: body.len(),
        publish: publish_rate,
        consume_each,
        consume_multiple,
    })
}
