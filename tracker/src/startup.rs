//! The tracker as a service (`service_kit::app`): its routes, and its background work: the outbox
//! relay, the intake consumer, the late-order sweeper, the subscription that keeps the staff
//! and device caches honest and the listener behind the in-memory queue versions.

use access::{CacheInvalidation, DeviceVerifier, StaffVerifier};
use anyhow::Context;
use bus::{
    BusTasks,
    dead_letters::http::{DeadLetterQueue, routes as dead_letter_routes},
    topology,
};
use service_kit::{
    app::{Service, ServiceBuilder},
    hot::HotConnections,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    config::Settings,
    domain::PizzeriaName,
    events::IntakeHandler,
    kitchen::{self, Kitchen, LateSweeper, PizzeriaConfig, SERVICE},
    routes,
    versions::VersionListener,
};

/// The tracker; [`Application::build`] prepares it as a [`Service`] (`port`, `shutdown`,
/// `run_until_stopped`).
pub struct Application;

impl Application {
    /// Binds the listener (port 0 picks a free one) and prepares everything; nothing runs until
    /// [`Service::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let (mut service, pool) =
            ServiceBuilder::with_database(SERVICE, &settings.application, &settings.database)?;
        let kitchen = Kitchen::new(settings.kitchen.undo_window());
        let staff = StaffVerifier::new(&settings.access).context("the staff verifier")?;
        let devices =
            DeviceVerifier::new(&settings.device_access).context("the device verifier")?;
        let sources = settings.source_keys()?;
        if sources.is_empty() {
            tracing::warn!("no order source has a key: orders come over the bus only");
        }
        let shutdown = service.shutdown().clone();
        service
            .outbox_relay(&pool, &settings.bus, SERVICE)
            .consumer(
                &pool,
                &settings.bus,
                (topology::TRACKER_INTAKE, &settings.intake),
                IntakeHandler::new(kitchen.clone()),
                "intake_consumer",
            )
            .spawn(
                "late-order sweeper",
                LateSweeper {
                    pool: pool.clone(),
                    kitchen: kitchen.clone(),
                    interval: settings.kitchen.late_sweep_interval(),
                    batch: settings.kitchen.late_sweep_batch,
                    shutdown: shutdown.clone(),
                }
                .run(),
            )
            // One subscription (`auth.#` and `devices.#`) keeps both caches honest.
            .spawn(
                "access caches",
                CacheInvalidation::new(
                    (staff.clone(), devices.clone()),
                    settings.bus.clone(),
                    SERVICE,
                    shutdown.clone(),
                )
                .run(),
            )
            // Feeds the in-memory queue and board versions that answer unchanged polls.
            .spawn(
                "queue versions",
                VersionListener::new(
                    kitchen.versions.clone(),
                    settings.database.clone(),
                    shutdown,
                )
                .run(),
            );

        service
            .data(DeadLetterQueue {
                bus: settings.bus.clone(),
                spec: topology::TRACKER_INTAKE,
                pool: pool.clone(),
            })
            .data(routes::KitchenStaff::new(&settings.access)?)
            // The station polls, the board and the taps: connections without the pool's
            // ping on every return (service_kit::hot). When all are busy a request takes a
            // pooled connection.
            .data(HotConnections::new(pool.clone(), HOT_CONNECTIONS))
            .data(pool)
            .data(kitchen)
            .data(staff)
            .data(devices)
            .data(sources);
        service.serve(|cfg| {
            // The intake's dead letters, for the operations page (before the /api/v1 scope).
            cfg.configure(dead_letter_routes::<access::Staff>)
                .configure(routes::configure);
        })
    }
}

/// How many connections the polls, the board and the taps keep besides the pool (the pool has
/// `database.max_connections`, 20 by default).
const HOT_CONNECTIONS: usize = 16;

/// The demo pizzeria's id: fixed, so scripts and tablets in a demo can name it.
pub const DEMO_PIZZERIA_ID: Uuid = Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);

/// Creates the demo pizzeria with the default stations and routes, or leaves it as it is.
/// Returns its id and its station codes.
pub async fn seed_demo(pool: &PgPool) -> anyhow::Result<(Uuid, Vec<String>)> {
    let mut tx = pool.begin().await.context("cannot start the seed")?;
    let config = PizzeriaConfig {
        name: PizzeriaName::parse("Demo pizzeria").context("demo name")?,
        // Left as it is (UTC for a new pizzeria): the demo runs wherever the machine is.
        time_zone: None,
        stations: None,
        routes: None,
    };
    let outbox = bus::outbox::Outbox::new(SERVICE);
    kitchen::configure_pizzeria(&mut tx, &outbox, DEMO_PIZZERIA_ID, &config)
        .await
        .map_err(|e| anyhow::anyhow!(e).context("cannot create the demo pizzeria"))?;
    let stations = crate::db::pizzerias::list_stations(&mut *tx, DEMO_PIZZERIA_ID)
        .await?
        .into_iter()
        .map(|s| s.code)
        .collect();
    tx.commit().await.context("cannot commit the seed")?;
    Ok((DEMO_PIZZERIA_ID, stations))
}
