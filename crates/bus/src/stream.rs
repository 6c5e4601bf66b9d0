//! The history of the bus: every event published to the exchange also lands in one RabbitMQ
//! stream, `<exchange>.history`, kept for a configurable time or size. Unlike a queue, a
//! stream is not consumed away: any number of readers can read it again from any point. A new
//! or repaired consumer rebuilds its state from it with a [`HistoryReader`] (the sync worker's
//! `rebuild` command does that for the legacy tables).
//!
//! The stream is declared by one service only (the sync worker, with
//! [`topology::declare_event_stream`](crate::topology::declare_event_stream)); the other users
//! have no configure or read right on it, so they reach it only by publishing to the exchange.
//!
//! Where a read ends: a reader first appends a *mark* of its own (a message with the header
//! [`MARK`], sent to the stream through the default exchange, which the exchange's bindings
//! never see) and stops when it reads its mark back. Everything before the mark is the stream
//! as of the moment the reader opened; what is published while it reads comes after. The
//! broker's message count cannot tell this: it is refreshed only every few seconds. Readers skip
//! every mark, their own and other readers'.

use std::str::FromStr;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use contracts::Envelope;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use serde::Deserialize;
use service_kit::config::BusSettings;
use uuid::Uuid;

use crate::{
    confirm::{self, Outcome},
    connection, headers, publishers,
};

/// The header that makes a message a reader's mark (its value: the reader's id).
pub const MARK: &str = "x-history-mark";

/// The stream every event lands in.
pub fn stream_name(exchange: &str) -> String {
    format!("{exchange}.history")
}

/// How long the stream keeps events (`[history]` in the declaring service's settings). The
/// broker drops whole segments once they are older than `max_age` or the stream is larger than
/// `max_length_bytes`, whichever comes first; unset, that limit does not apply. A longer
/// retention lets a rebuild reach further back, at the cost of disk on every broker node.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Retention {
    /// RabbitMQ's `x-max-age`: a number and a unit, `Y`, `M`, `D`, `h`, `m` or `s` (`7D`).
    pub max_age: Option<String>,
    /// RabbitMQ's `x-max-length-bytes`.
    pub max_length_bytes: Option<u64>,
}

impl Retention {
    /// The stream's declare arguments: its type and its limits. A wrong `max_age` is refused
    /// here, naming the setting, rather than by the broker as a closed channel.
    pub(crate) fn arguments(&self) -> anyhow::Result<Vec<(&'static str, AMQPValue)>> {
        let mut arguments = vec![("x-queue-type", text("stream"))];
        if let Some(age) = &self.max_age {
            let (number, unit) = age.split_at(age.len().saturating_sub(1));
            let valid = !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
                && ["Y", "M", "D", "h", "m", "s"].contains(&unit);
            if !valid {
                anyhow::bail!(
                    "history.max_age {age:?} is not a number followed by Y, M, D, h, m or s"
                );
            }
            arguments.push(("x-max-age", text(age)));
        }
        if let Some(bytes) = self.max_length_bytes {
            let bytes = i64::try_from(bytes).context("history.max_length_bytes is too large")?;
            arguments.push(("x-max-length-bytes", AMQPValue::LongLongInt(bytes)));
        }
        Ok(arguments)
    }
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest event the stream still keeps.
    First,
    /// The first chunk the broker wrote at or after this time (to the second). A chunk holds
    /// the events of one write, so a few events from just before may come too; consumers are
    /// idempotent, so that does no harm.
    Time(DateTime<Utc>),
    /// A position in the stream ([`HistoryMessage::offset`]): where a consumer that keeps its
    /// own position goes on from, or, after the retention, the oldest one kept.
    Offset(u64),
}

impl FromStr for StartAt {
    type Err = String;

    /// `first`, an RFC 3339 time such as `2026-12-01T09:00:00Z`, or an offset (digits).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value == "first" {
            return Ok(StartAt::First);
        }
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value
                .parse()
                .map(StartAt::Offset)
                .map_err(|e| format!("{value:?} is not an offset: {e}"));
        }
        DateTime::parse_from_rfc3339(value)
            .map(|time| StartAt::Time(time.with_timezone(&Utc)))
            .map_err(|e| format!("{value:?} is neither `first` nor an RFC 3339 time: {e}"))
    }
}

impl StartAt {
    /// The consumer argument `x-stream-offset`.
    fn offset(self) -> AMQPValue {
        match self {
            StartAt::First => text("first"),
            // The broker takes seconds here (and compares in milliseconds).
            StartAt::Time(time) => {
                AMQPValue::Timestamp(u64::try_from(time.timestamp()).unwrap_or_default())
            }
            StartAt::Offset(offset) => {
                AMQPValue::LongLongInt(i64::try_from(offset).unwrap_or(i64::MAX))
            }
        }
    }
}

/// One message from the stream.
#[derive(Debug, Clone)]
pub struct HistoryMessage {
    /// Its position in the stream.
    pub offset: i64,
    /// The routing key it was published to the exchange with.
    pub routing_key: String,
    /// The RabbitMQ user that published it, as the broker vouches (`user_id`; see
    /// [`publishers`]). Every message in the stream came through the exchange, so this is the
    /// original publisher.
    pub publisher: Option<String>,
    pub body: Vec<u8>,
}

impl HistoryMessage {
    /// The event, if it is one the consumers would accept: a CloudEvents envelope, from the
    /// user that owns its routing key, under the routing key of its type. Otherwise why not,
    /// in the words a consumer's dead letter would use.
    pub fn event(&self, bus: &BusSettings) -> Result<Envelope, String> {
        let envelope = serde_json::from_slice::<Envelope>(&self.body)
            .map_err(|e| format!("the message is not a CloudEvents JSON envelope: {e}"))?;
        match publishers::refusal(
            bus,
            &self.routing_key,
            &envelope.event_type,
            self.publisher.as_deref(),
        ) {
            Some(reason) => Err(reason),
            None => Ok(envelope),
        }
    }
}

/// Reads the stream from a point in time up to its end as of [`HistoryReader::open`].
pub struct HistoryReader {
    connection: Connection,
    channel: Channel,
    deliveries: lapin::Consumer,
    mark: String,
    /// Deliveries taken but not acknowledged yet, and how many may be before an ack is due.
    unacked: (u32, u32),
    last_tag: u64,
}

impl HistoryReader {
    /// Connects as `role`, appends this reader's mark to the stream and starts reading at
    /// `start`. `prefetch` (required on a stream) is how many messages the broker sends ahead.
    /// Fails if the stream has not been declared yet.
    pub async fn open(
        bus: &BusSettings,
        role: &str,
        start: StartAt,
        prefetch: u16,
    ) -> anyhow::Result<Self> {
        if let StartAt::Time(time) = start
            && time > Utc::now()
        {
            anyhow::bail!("the start time {time} is in the future");
        }
        let connection = connection::connect(bus, role)
            .await
            .context("connecting to the broker")?;
        let stream = stream_name(&bus.exchange);
        let mark = Uuid::new_v4().to_string();
        append_mark(&connection, bus, &stream, &mark).await?;

        let channel = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        let prefetch = prefetch.max(1);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .context("setting prefetch")?;
        let mut arguments = FieldTable::default();
        arguments.insert(ShortString::from("x-stream-offset"), start.offset());
        let deliveries = channel
            .basic_consume(
                stream.as_str().into(),
                role.into(),
                BasicConsumeOptions::default(),
                arguments,
            )
            .await
            .with_context(|| format!("starting to read the stream {stream}"))?;
        Ok(HistoryReader {
            connection,
            channel,
            deliveries,
            mark,
            unacked: (0, (u32::from(prefetch) / 2).max(1)),
            last_tag: 0,
        })
    }

    /// The next event message, or `None` at the end (this reader's mark). Marks are skipped.
    pub async fn next(&mut self) -> anyhow::Result<Option<HistoryMessage>> {
        loop {
            let delivery = self
                .deliveries
                .next()
                .await
                .ok_or_else(|| anyhow!("the broker ended the stream consumer"))?
                .context("reading the stream")?;
            // A stream counts acknowledgements as credit: without them the broker stops
            // sending after `prefetch` messages. One ack per half window covers them all.
            self.last_tag = delivery.delivery_tag;
            self.unacked.0 += 1;
            if self.unacked.0 >= self.unacked.1 {
                self.acknowledge().await?;
            }
            let found = delivery.properties.headers().as_ref();
            if let Some(mark) = headers::get_str(found, MARK) {
                if mark == self.mark {
                    return Ok(None);
                }
                continue;
            }
            return Ok(Some(HistoryMessage {
                offset: headers::get_i64(found, "x-stream-offset").unwrap_or(-1),
                routing_key: delivery.routing_key.as_str().to_owned(),
                publisher: delivery
                    .properties
                    .user_id()
                    .as_ref()
                    .map(|user| user.as_str().to_owned()),
                body: delivery.data,
            }));
        }
    }

    async fn acknowledge(&mut self) -> anyhow::Result<()> {
        if self.unacked.0 > 0 {
            self.channel
                .basic_ack(self.last_tag, BasicAckOptions { multiple: true })
                .await
                .context("acknowledging stream messages")?;
            self.unacked.0 = 0;
        }
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// Appends `mark` to the stream through the default exchange, with a confirm: once confirmed,
/// everything published before it is before it in the stream.
async fn append_mark(
    connection: &Connection,
    bus: &BusSettings,
    stream: &str,
    mark: &str,
) -> anyhow::Result<()> {
    let channel = connection::confirmed_channel(connection).await?;
    let mut table = FieldTable::default();
    headers::set_str(&mut table, MARK, mark);
    let properties = publishers::stamp(
        BasicProperties::default().with_headers(table),
        &publishers::own_user(bus),
    );
    let confirmation = channel
        .basic_publish(
            "".into(),
            stream.into(),
            confirm::mandatory(),
            b"",
            properties,
        )
        .await
        .context("marking the end of the stream")?
        .await
        .context("waiting for the mark's confirm")?;
    match confirm::outcome(&confirmation)? {
        Outcome::Stored => {}
        Outcome::Unroutable => anyhow::bail!(
            "the stream {stream} does not exist yet: the sync worker declares it when it starts"
        ),
        Outcome::Refused => anyhow::bail!("the broker refused the mark"),
    }
    let _ = channel.close(200, "marked".into()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_first_or_a_time() {
        assert_eq!("first".parse::<StartAt>(), Ok(StartAt::First));
        assert_eq!("42".parse::<StartAt>(), Ok(StartAt::Offset(42)));
        let at = "2026-12-01T09:30:00+01:00"
            .parse::<StartAt>()
            .expect("a time");
        assert_eq!(
            at,
            StartAt::Time(
                DateTime::parse_from_rfc3339("2026-12-01T08:30:00Z")
                    .expect("time")
                    .with_timezone(&Utc)
            )
        );
        let refused = "yesterday".parse::<StartAt>().expect_err("not a time");
        assert!(refused.contains("RFC 3339"), "{refused}");
    }

    #[test]
    fn retention_becomes_the_streams_arguments() {
        let retention = Retention {
            max_age: Some("7D".to_owned()),
            max_length_bytes: Some(5_000_000_000),
        };
        let arguments = retention.arguments().expect("valid");
        let names: Vec<&str> = arguments.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["x-queue-type", "x-max-age", "x-max-length-bytes"]);
        for wrong in ["7", "D", "7d", "7 D", "-1D"] {
            let retention = Retention {
                max_age: Some(wrong.to_owned()),
                max_length_bytes: None,
            };
            assert!(retention.arguments().is_err(), "{wrong}");
        }
        let unlimited = Retention {
            max_age: None,
            max_length_bytes: None,
        };
        assert_eq!(unlimited.arguments().expect("valid").len(), 1);
    }
}
