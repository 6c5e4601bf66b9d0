//! Building and running the tracker: the HTTP server, the outbox relay, the intake consumer, the
//! late-order sweeper, the subscription that keeps the staff and device caches honest and the
//! listener behind the in-memory queue versions, all tied to one shutdown signal.

use bus::dead_letters::http::{DeadLetterQueue, routes as dead_letter_routes};
use std::{net::TcpListener, sync::Arc};

use access::{CacheInvalidation, DeviceVerifier, StaffVerifier};
use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use bus::{consumer::Consumer, outbox::Relay, topology};
use service_kit::{
    http::{Readiness, not_found, ops_routes, trace_requests},
    shutdown::Shutdown,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    config::Settings,
    domain::PizzeriaName,
    events::IntakeHandler,
    kitchen::{self, Kitchen, LateSweeper, PizzeriaConfig, SERVICE},
    routes,
    sources::SourceKeys,
    versions::VersionListener,
};

pub struct Application {
    port: u16,
    server: Server,
    pool: PgPool,
    settings: Settings,
    kitchen: Kitchen,
    staff: StaffVerifier,
    devices: DeviceVerifier,
    readiness: Readiness,
    shutdown: Shutdown,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and prepares everything; nothing runs until
    /// [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = settings
            .database
            .lazy_pool()
            .context("bad database settings")?;
        let (listener, port) = settings.application.bind()?;
        let kitchen = Kitchen::new(settings.kitchen.undo_window());
        let readiness = Readiness::new(pool.clone());
        let access = Access {
            staff: StaffVerifier::new(&settings.access).context("the staff verifier")?,
            devices: DeviceVerifier::new(&settings.device_access).context("the device verifier")?,
            sources: settings.source_keys()?,
            kitchen_staff: crate::routes::KitchenStaff::new(&settings.access)?,
        };
        if access.sources.is_empty() {
            tracing::warn!("no order source has a key: orders come over the bus only");
        }
        let dead_letters = DeadLetterQueue {
            bus: settings.bus.clone(),
            spec: bus::topology::TRACKER_INTAKE,
            pool: pool.clone(),
        };
        let server = run_server(
            listener,
            pool.clone(),
            kitchen.clone(),
            access.clone(),
            readiness.clone(),
            dead_letters,
        )?;
        Ok(Application {
            port,
            server,
            pool,
            settings,
            kitchen,
            staff: access.staff,
            devices: access.devices,
            readiness,
            shutdown: Shutdown::new(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Triggering it stops the server and every background task.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let relay = Relay::new(
            self.pool.clone(),
            self.settings.bus.clone(),
            SERVICE,
            self.readiness.flag("outbox_relay"),
            self.shutdown.clone(),
        );
        let consumer = Consumer::new(
            self.pool.clone(),
            self.settings.bus.clone(),
            topology::TRACKER_INTAKE,
            self.settings.intake.clone(),
            Arc::new(IntakeHandler::new(self.kitchen.clone())),
            self.readiness.flag("intake_consumer"),
            self.shutdown.clone(),
        );
        let sweeper = LateSweeper {
            pool: self.pool.clone(),
            kitchen: self.kitchen.clone(),
            interval: self.settings.kitchen.late_sweep_interval(),
            batch: self.settings.kitchen.late_sweep_batch,
            shutdown: self.shutdown.clone(),
        };
        // One subscription (`auth.#` and `devices.#`) keeps both caches honest.
        let invalidation = CacheInvalidation::new(
            (self.staff.clone(), self.devices.clone()),
            self.settings.bus.clone(),
            SERVICE,
            self.shutdown.clone(),
        );
        // Feeds the in-memory queue and board versions that answer unchanged polls.
        let versions = VersionListener::new(
            self.kitchen.versions.clone(),
            self.settings.database.clone(),
            self.shutdown.clone(),
        );
        let tasks = [
            tokio::spawn(relay.run()),
            tokio::spawn(consumer.run()),
            tokio::spawn(sweeper.run()),
            tokio::spawn(invalidation.run()),
            tokio::spawn(versions.run()),
        ];
        let handle = self.server.handle();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown.wait().await;
            // Graceful: requests in flight finish, their transactions commit.
            handle.stop(true).await;
        });
        let served = self.server.await.context("the HTTP server failed");
        // However the server ended, the background tasks end with it.
        self.shutdown.trigger();
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a background task panicked");
            }
        }
        served
    }
}

/// Who may call: staff sessions, kitchen devices and the order sources' keys.
#[derive(Clone)]
struct Access {
    staff: StaffVerifier,
    devices: DeviceVerifier,
    sources: SourceKeys,
    kitchen_staff: crate::routes::KitchenStaff,
}

fn run_server(
    listener: TcpListener,
    pool: PgPool,
    kitchen: Kitchen,
    access: Access,
    readiness: Readiness,
    dead_letters: DeadLetterQueue,
) -> anyhow::Result<Server> {
    let pool = web::Data::new(pool);
    let dead_letters = web::Data::new(dead_letters);
    let kitchen = web::Data::new(kitchen);
    let staff = web::Data::new(access.staff);
    let devices = web::Data::new(access.devices);
    let sources = web::Data::new(access.sources);
    let kitchen_staff = web::Data::new(access.kitchen_staff);
    let readiness = web::Data::new(readiness);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(trace_requests))
            .app_data(pool.clone())
            .app_data(kitchen.clone())
            .app_data(staff.clone())
            .app_data(devices.clone())
            .app_data(sources.clone())
            .app_data(kitchen_staff.clone())
            .app_data(readiness.clone())
            .app_data(dead_letters.clone())
            .configure(ops_routes)
            // The intake's dead letters, for the operations page (before the /api/v1 scope).
            .configure(dead_letter_routes::<access::Staff>)
            .configure(routes::configure)
            .default_service(web::to(unknown_route))
    })
    .keep_alive(service_kit::http::KEEP_ALIVE)
    .listen(listener)
    .context("cannot serve on the listener")?
    // Our Shutdown handles the signals, so every task stops together.
    .disable_signals()
    .run();
    Ok(server)
}

/// `service_kit::http::not_found` returns a bare `ClientError`, which is not a `Responder`;
/// wrapping it in `Err` gives actix the error response it builds.
async fn unknown_route() -> Result<actix_web::HttpResponse, service_kit::http::ClientError> {
    Err(not_found().await)
}

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
