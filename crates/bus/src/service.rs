//! The bus's part in starting a service: the outbox relay and a consumer as background tasks of
//! a [`ServiceBuilder`], each with its readiness flag and the service's shutdown, so a service's
//! `startup.rs` names only its queue and handler.

use std::sync::Arc;

use service_kit::{app::ServiceBuilder, config::BusSettings};
use sqlx::PgPool;

use crate::{Consumer, ConsumerSettings, Handler, QueueSpec, Relay};

/// Background tasks of the bus, added to a [`ServiceBuilder`].
pub trait BusTasks {
    /// The outbox relay of `service` (readiness flag `outbox_relay`).
    fn outbox_relay(&mut self, pool: &PgPool, bus: &BusSettings, service: &str) -> &mut Self;

    /// A consumer of `queue` (its spec and settings) handing events to `handler` (readiness
    /// flag `ready`).
    fn consumer<H: Handler>(
        &mut self,
        pool: &PgPool,
        bus: &BusSettings,
        queue: (QueueSpec, &ConsumerSettings),
        handler: H,
        ready: &'static str,
    ) -> &mut Self;
}

impl BusTasks for ServiceBuilder {
    fn outbox_relay(&mut self, pool: &PgPool, bus: &BusSettings, service: &str) -> &mut Self {
        let relay = Relay::new(
            pool.clone(),
            bus.clone(),
            service,
            self.readiness().flag("outbox_relay"),
            self.shutdown().clone(),
        );
        self.spawn("outbox relay", relay.run())
    }

    fn consumer<H: Handler>(
        &mut self,
        pool: &PgPool,
        bus: &BusSettings,
        (spec, settings): (QueueSpec, &ConsumerSettings),
        handler: H,
        ready: &'static str,
    ) -> &mut Self {
        let consumer = Consumer::new(
            pool.clone(),
            bus.clone(),
            spec,
            settings.clone(),
            Arc::new(handler),
            self.readiness().flag(ready),
            self.shutdown().clone(),
        );
        self.spawn(spec.consumer, consumer.run())
    }
}
