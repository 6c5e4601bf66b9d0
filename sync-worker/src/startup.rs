//! The sync worker as a service (`service_kit::app`): the consumer that mirrors tracker events
//! into the legacy tables, and a small HTTP server for health, metrics and its dead letters.

use anyhow::Context;
use bus::{BusTasks, dead_letters::http::DeadLetterQueue, topology::LEGACY_SYNC};
use service_kit::app::{Service, ServiceBuilder};

use crate::{config::Settings, mirror::LegacyMirror, rebuild, routes};

/// The sync worker; [`Application::build`] prepares it as a [`Service`] (`port`, `shutdown`,
/// `run_until_stopped`).
pub struct Application;

impl Application {
    /// Binds the ops server and prepares the consumer; nothing talks to the broker or the
    /// database until [`Service::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let (service, pool) = ServiceBuilder::with_database(
            "sync-worker",
            &settings.application,
            &settings.database,
        )?;
        // Health, metrics and the seldom-called dead-letter API: one worker thread is plenty
        // on a two-core box.
        let mut service = service.workers(1);
        service.consumer(
            &pool,
            &settings.bus,
            (LEGACY_SYNC, &settings.consumer),
            LegacyMirror {
                max_sequence_jump: settings.mirror.max_sequence_jump,
            },
            "consumer",
        );
        // The history stream a rebuild reads (`sync-worker rebuild`), declared while it runs.
        service.spawn(
            "history stream",
            rebuild::keep_stream_declared(
                settings.bus.clone(),
                settings.history.retention(),
                service.shutdown().clone(),
            ),
        );

        service
            .data(access::StaffVerifier::new(&settings.access).context("the staff verifier")?)
            .data(DeadLetterQueue {
                bus: settings.bus.clone(),
                spec: LEGACY_SYNC,
                pool,
            });
        service.serve(routes::configure)
    }
}
