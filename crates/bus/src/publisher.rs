//! A plain publisher with confirms, for whoever publishes without an outbox: an order source
//! simulated by the load generator, tests acting as the cashier, the dead-letter replay.

use anyhow::Context;
use contracts::{Envelope, Event, routing_key};
use lapin::{BasicProperties, Channel, Connection, types::FieldTable};
use service_kit::config::BusSettings;

use crate::{
    confirm::{self, Outcome},
    connection, headers, topology,
};

pub struct Publisher {
    connection: Connection,
    channel: Channel,
    exchange: String,
    /// Stamped on every message as `user_id` (see `publishers`).
    user: String,
}

impl Publisher {
    /// Connects and declares the consumer queues, so nothing published is unroutable.
    pub async fn connect(bus: &BusSettings, role: &str) -> anyhow::Result<Self> {
        let connection = connection::connect(bus, role)
            .await
            .context("connecting to the broker")?;
        let channel = connection::confirmed_channel(&connection).await?;
        topology::declare_consumer_queues(&channel, bus)
            .await
            .context("declaring the topology")?;
        Ok(Publisher {
            connection,
            channel,
            exchange: bus.exchange.clone(),
            user: crate::publishers::own_user(bus),
        })
    }

    /// Wraps `event` as `service` would and publishes it; returns the envelope sent.
    pub async fn publish_event<E: Event>(
        &self,
        service: &str,
        sequence: i64,
        event: &E,
    ) -> anyhow::Result<Envelope> {
        let envelope = Envelope::wrap(service, event, sequence, None).context("wrapping")?;
        self.publish(&routing_key::<E>(service), &envelope).await?;
        Ok(envelope)
    }

    /// Publishes an envelope and waits for the broker's confirm.
    pub async fn publish(&self, routing_key: &str, envelope: &Envelope) -> anyhow::Result<()> {
        let body = serde_json::to_vec(envelope).context("encoding the envelope")?;
        let properties = BasicProperties::default()
            .with_message_id(envelope.id.to_string().into())
            .with_type(envelope.event_type.as_str().into());
        self.publish_bytes(routing_key, &body, properties, Some(&envelope.subject))
            .await
    }

    /// Publishes raw bytes: how a test sends a message that is not an event at all.
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) -> anyhow::Result<()> {
        self.publish_bytes(routing_key, body, BasicProperties::default(), None)
            .await
    }

    async fn publish_bytes(
        &self,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        subject: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut table = FieldTable::default();
        headers::set_str(&mut table, headers::ORIGINAL_ROUTING_KEY, routing_key);
        if let Some(subject) = subject {
            headers::set_str(&mut table, headers::SUBJECT, subject);
        }
        let properties = crate::publishers::stamp(
            properties
                .with_content_type("application/cloudevents+json".into())
                .with_delivery_mode(2)
                .with_headers(table),
            &self.user,
        );
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                routing_key.into(),
                confirm::mandatory(),
                body,
                properties,
            )
            .await
            .context("publishing")?
            .await
            .context("waiting for the publisher confirm")?;
        match confirm::outcome(&confirm)? {
            Outcome::Stored => Ok(()),
            // Nobody keeps such an event (see `topology::has_durable_consumer`).
            Outcome::Unroutable if !topology::has_durable_consumer(routing_key) => Ok(()),
            Outcome::Unroutable => {
                anyhow::bail!("{routing_key} came back unroutable: its consumer's queue is missing")
            }
            Outcome::Refused => anyhow::bail!("the broker refused the message"),
        }
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
