//! The devices service (`service_kit::app`): its routes, and its background work: the outbox
//! relay, the subscription that keeps the staff-session cache honest and the pruning of expired
//! pairing requests.

use access::{CacheInvalidation, StaffVerifier};
use anyhow::Context;
use bus::BusTasks;
use service_kit::app::{Service, ServiceBuilder};

use crate::{
    config::Settings,
    pairing::{Pairing, SERVICE},
    routes,
};

/// The devices service; [`Application::build`] prepares it as a [`Service`] (`port`,
/// `shutdown`, `run_until_stopped`).
pub struct Application;

impl Application {
    /// Binds the listener (port 0 picks a free one) and prepares everything; nothing runs until
    /// [`Service::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let (mut service, pool) =
            ServiceBuilder::with_database(SERVICE, &settings.application, &settings.database)?;
        let staff = StaffVerifier::new(&settings.access).context("the staff verifier")?;
        let invalidation = CacheInvalidation::new(
            staff.clone(),
            settings.bus.clone(),
            SERVICE,
            service.shutdown().clone(),
        );
        let (prune_pool, prune_settings) = (pool.clone(), settings.clone());
        service
            .outbox_relay(&pool, &settings.bus, SERVICE)
            .spawn("access cache", invalidation.run())
            .periodic(
                &pool,
                "expired pairing requests and code-entry windows",
                move || {
                    let (pool, settings) = (prune_pool.clone(), prune_settings.clone());
                    async move { crate::retention::prune(&pool, &settings).await }
                },
            );

        service
            .data(Pairing::new(
                settings.oauth.clone(),
                settings.tokens.clone(),
                settings.pairing.clone(),
            ))
            .data(pool)
            .data(staff)
            .data(settings.approval.clone())
            .data(settings.network.clone())
            .data(settings.introspection.clone());
        service.serve(routes::configure)
    }
}
