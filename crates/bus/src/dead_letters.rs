//! What ended in a dead-letter queue, and putting it back once the cause is fixed.

use anyhow::Context;
use lapin::{
    BasicProperties,
    options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions},
};
use serde::Serialize;
use service_kit::config::BusSettings;
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
const LIMIT: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub routing_key: Option<String>,
    pub error: Option<String>,
    pub error_chain: Option<String>,
    pub attempts: Option<u32>,
    pub failed_at: Option<String>,
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

    fn from_message(properties: &BasicProperties, data: &[u8]) -> Self {
        let h = properties.headers().as_ref();
        DeadLetter {
            event_id: properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            event_type: properties.kind().as_ref().map(|s| s.as_str().to_owned()),
            routing_key: headers::get_str(h, headers::ORIGINAL_ROUTING_KEY),
            error: headers::get_str(h, headers::ERROR),
            error_chain: headers::get_str(h, headers::ERROR_CHAIN),
            attempts: headers::get_u32(h, headers::ATTEMPTS),
            failed_at: headers::get_str(h, headers::FAILED_AT),
            body: String::from_utf8_lossy(data).into_owned(),
        }
    }
}

/// Lists the dead letters of a consumer without removing them: every message is fetched
/// unacknowledged and returns to the queue when the channel closes.
pub async fn list(bus: &BusSettings, spec: QueueSpec) -> anyhow::Result<Vec<DeadLetter>> {
    let connection = connection::connect(bus, "dead-letters-list")
        .await
        .context("connecting")?;
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
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
    let connection = connection::connect(bus, "dead-letters-replay")
        .await
        .context("connecting")?;
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("enabling publisher confirms")?;
    // The main queue must exist: a message sent to a missing queue through the default
    // exchange would be dropped, and the dead letter with it.
    topology::declare_main_queue(&channel, bus, spec)
        .await
        .context("declaring the consumer's queue")?;
    topology::declare_dead_letter_queue(&channel, bus, spec)
        .await
        .context("declaring the dead-letter queue")?;
    let dead = topology::dead_letter_queue_name(&bus.exchange, spec);
    let main = topology::queue_name(&bus.exchange, spec);
    let wanted = only.map(|id| id.to_string());
    let mut replayed = 0;
    for _ in 0..LIMIT {
        let Some(message) = channel
            .basic_get(dead.as_str().into(), BasicGetOptions::default())
            .await
            .context("reading the dead-letter queue")?
        else {
            break;
        };
        let delivery = message.delivery;
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned());
        if wanted.is_some() && id != wanted {
            // Left unacknowledged: it returns to the dead-letter queue when we close.
            continue;
        }
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
        let properties = delivery.properties.clone().with_headers(fresh);
        let confirm = channel
            .basic_publish(
                "".into(),
                main.as_str().into(),
                confirm::mandatory(),
                &delivery.data,
                properties,
            )
            .await
            .context("republishing a dead letter")?
            .await
            .context("waiting for the confirm")?;
        if confirm::outcome(&confirm)? != Outcome::Stored {
            anyhow::bail!("{main} did not take the replayed message");
        }
        delivery
            .ack(BasicAckOptions::default())
            .await
            .context("removing the dead letter")?;
        replayed += 1;
    }
    let _ = connection.close(200, "replayed".into()).await;
    Ok(replayed)
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

    #[test]
    fn a_dead_letter_fits_on_one_line() {
        let letter = DeadLetter {
            event_id: Some("0190f1d2-7c1e-7a3b-9f00-2b1c3d4e5f60".to_owned()),
            event_type: Some("OrderPacked".to_owned()),
            routing_key: Some("tracker.order.packed".to_owned()),
            error: Some("order x is not mirrored yet".to_owned()),
            error_chain: None,
            attempts: Some(3),
            failed_at: None,
            body: "{}".to_owned(),
        };
        assert_eq!(
            letter.describe(),
            "0190f1d2-7c1e-7a3b-9f00-2b1c3d4e5f60\tOrderPacked\ttracker.order.packed\t\
             attempts=3\tfailed_at=-\terror=order x is not mirrored yet"
        );
    }
}
