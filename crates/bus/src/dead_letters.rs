//! What ended in a dead-letter queue, and putting it back once the cause is fixed: listing and
//! filtering, replaying or discarding a selection or everything a filter matches. The
//! `dead-letters` commands and the services' HTTP API ([`http`], behind the operations page)
//! share this one implementation; [`audit`] records who did what.

pub mod audit;
pub mod http;
pub mod snapshot;

use anyhow::Context;
use chrono::{DateTime, Utc};
use lapin::{
    BasicProperties,
    options::{BasicAckOptions, BasicGetOptions},
};
use serde::{Deserialize, Serialize};
use service_kit::config::BusSettings;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    confirm::{self, Outcome},
    connection, headers, topology,
    topology::QueueSpec,
};

/// The `dead-letters` subcommand every service with a consumer offers, for on-call engineers.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print each dead letter: event id, type, routing key, attempts, when, error.
    List,
    /// Send dead letters back to the consumer's queue, with their attempts reset.
    Replay {
        /// Replay only this event.
        #[arg(long)]
        event_id: Option<Uuid>,
    },
}

/// Runs `command` against the dead letters of `spec`, printing to stdout and counting to stderr.
pub async fn run(bus: &BusSettings, spec: QueueSpec, command: Command) -> anyhow::Result<()> {
    match command {
        Command::List => {
            let count = print(bus, spec, &mut std::io::stdout().lock()).await?;
            eprintln!("{count} dead letter(s)");
        }
        Command::Replay { event_id } => {
            let count = replay(bus, spec, event_id)
                .await
                .context("replaying the dead letters")?;
            eprintln!("replayed {count} dead letter(s)");
        }
    }
    Ok(())
}

/// Writes one line per dead letter of `spec`'s queue; returns how many there are.
pub async fn print(
    bus: &BusSettings,
    spec: QueueSpec,
    out: &mut impl std::io::Write,
) -> anyhow::Result<usize> {
    let letters = list(bus, spec).await.context("listing the dead letters")?;
    for letter in &letters {
        writeln!(out, "{}", letter.describe()).context("writing the list")?;
    }
    Ok(letters.len())
}

/// The most messages one listing or replay looks at.
pub const LIMIT: usize = 100_000;

/// One message in a dead-letter queue, with what the consumer wrote about its failure.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Tells this message apart from every other in the queue, also when it has no event id
    /// (a body that is not an envelope): a digest of its id, failure time and body, the same
    /// on every listing. The page and the API name a letter by it.
    pub key: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// The routing key it was first published with.
    pub routing_key: Option<String>,
    pub error: Option<String>,
    /// The error and its causes, outermost first, joined by ` <- `.
    pub error_chain: Option<String>,
    pub attempts: Option<u32>,
    /// When it first failed (RFC 3339).
    pub first_failed_at: Option<String>,
    /// When it failed for the last time and was dead-lettered (RFC 3339).
    pub failed_at: Option<String>,
    /// The consumer that gave up on it.
    pub consumer: Option<String>,
    /// The trace id of its `traceparent`, to find its logs.
    pub trace_id: Option<String>,
    /// The body as text (lossy for binary garbage), so a poison message can be read.
    pub body: String,
}

impl DeadLetter {
    /// One line: id, type, routing key, attempts, when, error, tab-separated.
    pub fn describe(&self) -> String {
        let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
        format!(
            "{id}\t{kind}\t{key}\tattempts={attempts}\tfailed_at={at}\terror={error}",
            id = or_dash(&self.event_id),
            kind = or_dash(&self.event_type),
            key = or_dash(&self.routing_key),
            attempts = self
                .attempts
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            at = or_dash(&self.failed_at),
            error = or_dash(&self.error),
        )
    }

    /// The body pretty-printed when it is JSON, as it came otherwise.
    pub fn pretty_body(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| self.body.clone())
    }

    fn from_message(properties: &BasicProperties, data: &[u8]) -> Self {
        let h = properties.headers().as_ref();
        let event_id = properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned());
        let failed_at = headers::get_str(h, headers::FAILED_AT);
        let envelope: Option<serde_json::Value> = serde_json::from_slice(data).ok();
        DeadLetter {
            key: letter_key(event_id.as_deref(), failed_at.as_deref(), data),
            event_type: properties.kind().as_ref().map(|s| s.as_str().to_owned()),
            routing_key: headers::get_str(h, headers::ORIGINAL_ROUTING_KEY),
            error: headers::get_str(h, headers::ERROR),
            error_chain: headers::get_str(h, headers::ERROR_CHAIN),
            attempts: headers::get_u32(h, headers::ATTEMPTS),
            first_failed_at: headers::get_i64(h, headers::FIRST_FAILED_AT)
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|at| at.to_rfc3339()),
            failed_at,
            consumer: headers::get_str(h, headers::CONSUMER),
            trace_id: envelope
                .as_ref()
                .and_then(|e| e.get("traceparent"))
                .and_then(|t| t.as_str())
                .and_then(|t| t.split('-').nth(1))
                .map(str::to_owned),
            event_id,
            body: String::from_utf8_lossy(data).into_owned(),
        }
    }

    fn failed_at(&self) -> Option<DateTime<Utc>> {
        self.failed_at
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc))
    }
}

fn letter_key(event_id: Option<&str>, failed_at: Option<&str>, body: &[u8]) -> String {
    let mut digest = Sha256::new();
    for part in [
        event_id.unwrap_or_default().as_bytes(),
        b"\n",
        failed_at.unwrap_or_default().as_bytes(),
        b"\n",
        body,
    ] {
        digest.update(part);
    }
    digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which dead letters a listing shows or an action takes. Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// The event type, exactly (`OrderPacked`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Words in the error or its chain, in any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The original routing key, or its beginning (`tracker.order.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// Dead-lettered at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Dead-lettered before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl Filter {
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let same = |want: Option<String>, have: &Option<String>| {
            want.is_none_or(|w| have.as_deref() == Some(w.as_str()))
        };
        let error_ok = given(&self.error).is_none_or(|words| {
            let words = words.to_lowercase();
            [&letter.error, &letter.error_chain].iter().any(|text| {
                text.as_deref()
                    .is_some_and(|t| t.to_lowercase().contains(&words))
            })
        });
        let key_ok = given(&self.routing_key).is_none_or(|prefix| {
            letter
                .routing_key
                .as_deref()
                .is_some_and(|k| k.starts_with(&prefix))
        });
        let at = letter.failed_at();
        let since_ok = self
            .since
            .is_none_or(|since| at.is_some_and(|at| at >= since));
        let until_ok = self
            .until
            .is_none_or(|until| at.is_some_and(|at| at < until));
        same(given(&self.event_type), &letter.event_type)
            && same(given(&self.event_id), &letter.event_id)
            && error_ok
            && key_ok
            && since_ok
            && until_ok
    }
}

/// What an action takes: the letters of a selection (by key), or every letter that matches a
/// filter (an empty filter matches all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Keys(Vec<String>),
    Matching(Filter),
}

impl Selection {
    fn takes(&self, letter: &DeadLetter) -> bool {
        match self {
            Selection::Keys(keys) => keys.contains(&letter.key),
            Selection::Matching(filter) => filter.matches(letter),
        }
    }
}

/// What happens to the letters an action takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Back to the consumer's own queue, its attempt count reset.
    Replay,
    /// Removed for good (a reason is recorded in the audit).
    Discard,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replay => "replay",
            Action::Discard => "discard",
        }
    }
}

/// Lists the dead letters of a consumer without removing them: every message is fetched
/// unacknowledged and returns to the queue when the channel closes.
pub async fn list(bus: &BusSettings, spec: QueueSpec) -> anyhow::Result<Vec<DeadLetter>> {
    let (connection, channel) = connection::open_channel(bus, "dead-letters-list").await?;
    topology::declare_dead_letter_queue(&channel, bus, spec)
        .await
        .context("declaring the dead-letter queue")?;
    let queue = topology::dead_letter_queue_name(&bus.exchange, spec);
    let mut letters = Vec::new();
    while letters.len() < LIMIT {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .context("reading the dead-letter queue")?
        else {
            break;
        };
        letters.push(DeadLetter::from_message(
            &message.delivery.properties,
            &message.delivery.data,
        ));
    }
    let _ = connection.close(200, "listed".into()).await;
    Ok(letters)
}

/// Sends dead letters back to the consumer's own queue (not the exchange, so other consumers
/// do not see them again) with their attempt count reset. `only` limits it to one event id.
/// Returns how many were replayed.
pub async fn replay(
    bus: &BusSettings,
    spec: QueueSpec,
    only: Option<Uuid>,
) -> anyhow::Result<usize> {
    let selection = Selection::Matching(Filter {
        event_id: only.map(|id| id.to_string()),
        ..Filter::default()
    });
    Ok(act(bus, spec, &selection, Action::Replay).await?.len())
}

/// Replays or discards the dead letters `selection` takes; returns them. Each one is removed
/// from the dead-letter queue only after the broker confirmed its replay, so a failure midway
/// loses nothing: what was not done stays a dead letter.
pub async fn act(
    bus: &BusSettings,
    spec: QueueSpec,
    selection: &Selection,
    action: Action,
) -> anyhow::Result<Vec<DeadLetter>> {
    let connection = connection::connect(bus, "dead-letters-action")
        .await
        .context("connecting")?;
    let channel = connection::confirmed_channel(&connection).await?;
    // The partitions must exist: a replayed message that no queue takes would be dropped,
    // and the dead letter with it.
    topology::declare_exchange(&channel, &bus.exchange)
        .await
        .context("declaring the exchange")?;
    topology::declare_partitions(&channel, bus, spec)
        .await
        .context("declaring the consumer's partitions")?;
    topology::declare_dead_letter_queue(&channel, bus, spec)
        .await
        .context("declaring the dead-letter queue")?;
    let dead = topology::dead_letter_queue_name(&bus.exchange, spec);
    // Through the hash exchange, so a replayed event goes to its order's partition.
    let main = topology::hash_exchange_name(&bus.exchange, spec);
    let mut taken = Vec::new();
    for _ in 0..LIMIT {
        let Some(message) = channel
            .basic_get(dead.as_str().into(), BasicGetOptions::default())
            .await
            .context("reading the dead-letter queue")?
        else {
            break;
        };
        let delivery = message.delivery;
        let letter = DeadLetter::from_message(&delivery.properties, &delivery.data);
        if !selection.takes(&letter) {
            // Left unacknowledged: it returns to the dead-letter queue when we close.
            continue;
        }
        if action == Action::Replay {
            republish(&channel, spec, &main, &letter, &delivery).await?;
        }
        delivery
            .ack(BasicAckOptions::default())
            .await
            .context("removing the dead letter")?;
        taken.push(letter);
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(taken)
}

/// Sends a dead letter to the consumer's hash exchange `main` with the failure headers taken
/// off and a `replayed` hop added (from when it was dead-lettered), and waits for the confirm.
async fn republish(
    channel: &lapin::Channel,
    spec: QueueSpec,
    main: &str,
    letter: &DeadLetter,
    delivery: &lapin::message::Delivery,
) -> anyhow::Result<()> {
    let old = delivery.properties.headers().as_ref();
    let mut fresh = headers::without_broker_history(old);
    for key in [
        headers::ATTEMPT,
        headers::ERROR,
        headers::ERROR_CHAIN,
        headers::ATTEMPTS,
        headers::FAILED_AT,
        headers::CONSUMER,
        headers::FIRST_FAILED_AT,
    ] {
        fresh = remove(fresh, key);
    }
    // A letter dead-lettered before the queue was partitioned may lack its subject header.
    if let Ok(envelope) = serde_json::from_slice::<contracts::Envelope>(&delivery.data) {
        headers::set_str(&mut fresh, headers::SUBJECT, &envelope.subject);
    }
    let properties = delivery.properties.clone().with_headers(fresh);
    let hop = crate::hops::hop(
        spec.consumer,
        crate::hops::Step::Replayed,
        letter.failed_at().unwrap_or_else(Utc::now),
    );
    let body = crate::hops::add_hop(&delivery.data, &hop);
    let confirm = channel
        .basic_publish(
            main.into(),
            letter.routing_key.as_deref().unwrap_or_default().into(),
            confirm::mandatory(),
            &body,
            properties,
        )
        .await
        .context("republishing a dead letter")?
        .await
        .context("waiting for the confirm")?;
    if confirm::outcome(&confirm)? != Outcome::Stored {
        anyhow::bail!("{main} did not take the replayed message");
    }
    Ok(())
}

fn remove(table: lapin::types::FieldTable, key: &str) -> lapin::types::FieldTable {
    let mut out = lapin::types::FieldTable::default();
    for (k, v) in table.inner() {
        if k.as_str() != key {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> DeadLetter {
        DeadLetter {
            key: "k".to_owned(),
            event_id: None,
            event_type: None,
            routing_key: None,
            error: None,
            error_chain: None,
            attempts: None,
            first_failed_at: None,
            failed_at: None,
            consumer: None,
            trace_id: None,
            body: String::new(),
        }
    }

    #[test]
    fn a_filter_holds_when_every_condition_given_does() {
        let packed = DeadLetter {
            event_type: Some("OrderPacked".to_owned()),
            routing_key: Some("tracker.order.packed".to_owned()),
            error: Some("the database refused".to_owned()),
            error_chain: Some("the database refused <- Lock Not Available".to_owned()),
            failed_at: Some("2026-11-30T09:00:00+00:00".to_owned()),
            ..letter()
        };
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let pass = |f: Filter| f.matches(&packed);
        assert!(pass(Filter::default()));
        assert!(pass(Filter {
            event_type: Some("OrderPacked".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            event_type: Some("Order".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            error: Some("lock not".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            error: Some("decoded".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            routing_key: Some("tracker.order.".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            routing_key: Some("cashier.".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            since: at("2026-11-30T09:00:00Z"),
            until: at("2026-11-30T09:00:01Z"),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            until: at("2026-11-30T09:00:00Z"),
            ..Filter::default()
        }));
        // A blank field (an empty form input) filters nothing.
        assert!(pass(Filter {
            event_type: Some(" ".into()),
            ..Filter::default()
        }));
        // A letter that never says when it failed is outside every time window.
        let timeless = DeadLetter {
            failed_at: None,
            ..packed.clone()
        };
        assert!(
            !Filter {
                since: at("2000-01-01T00:00:00Z"),
                ..Filter::default()
            }
            .matches(&timeless)
        );
    }

    #[test]
    fn a_letter_is_read_from_its_headers_and_body() {
        let mut table = lapin::types::FieldTable::default();
        headers::set_str(&mut table, headers::ERROR, "cannot be decoded");
        headers::set_str(&mut table, headers::CONSUMER, "legacy-sync");
        headers::set_i64(&mut table, headers::FIRST_FAILED_AT, 1_764_493_200_000);
        headers::set_str(&mut table, headers::FAILED_AT, "2026-11-30T09:00:05+00:00");
        let properties = BasicProperties::default()
            .with_message_id("e-1".into())
            .with_headers(table);
        let body = br#"{"id":"e-1","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","data":{"n":1}}"#;
        let letter = DeadLetter::from_message(&properties, body);
        assert_eq!(
            letter.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(letter.consumer.as_deref(), Some("legacy-sync"));
        assert_eq!(
            letter.first_failed_at.as_deref(),
            Some("2025-11-30T09:00:00+00:00")
        );
        assert!(
            letter
                .pretty_body()
                .contains("\n  \"data\": {\n    \"n\": 1"),
            "{}",
            letter.pretty_body()
        );
        // The same message gives the same key; another failure of it, another key.
        assert_eq!(letter.key, DeadLetter::from_message(&properties, body).key);
        assert_eq!(letter.key.len(), 32);
        let garbage = DeadLetter::from_message(&BasicProperties::default(), b"{ not json");
        assert_ne!(garbage.key, letter.key);
        assert_eq!(garbage.pretty_body(), "{ not json");
        assert_eq!(garbage.trace_id, None);
    }

    #[test]
    fn a_dead_letter_fits_on_one_line() {
        let letter = DeadLetter {
            event_id: Some("0190f1d2-7c1e-7a3b-9f00-2b1c3d4e5f60".to_owned()),
            event_type: Some("OrderPacked".to_owned()),
            routing_key: Some("tracker.order.packed".to_owned()),
            error: Some("order x is not mirrored yet".to_owned()),
            attempts: Some(3),
            body: "{}".to_owned(),
            ..letter()
        };
        assert_eq!(
            letter.describe(),
            "0190f1d2-7c1e-7a3b-9f00-2b1c3d4e5f60\tOrderPacked\ttracker.order.packed\t\
             attempts=3\tfailed_at=-\terror=order x is not mirrored yet"
        );
    }
}
