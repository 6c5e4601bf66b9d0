//! Building and running the devices service: the HTTP server, the outbox relay and the
//! subscription that keeps the staff-session cache honest, tied to one shutdown signal.

use std::net::TcpListener;

use access::{CacheInvalidation, StaffVerifier};
use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use bus::outbox::Relay;
use service_kit::{
    http::{Readiness, not_found, ops_routes, trace_requests},
    shutdown::Shutdown,
};
use sqlx::PgPool;

use crate::{
    config::Settings,
    pairing::{Pairing, SERVICE},
    routes,
};

pub struct Application {
    port: u16,
    server: Server,
    pool: PgPool,
    settings: Settings,
    staff: StaffVerifier,
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
        let staff = StaffVerifier::new(&settings.access).context("the staff verifier")?;
        let readiness = Readiness::new(pool.clone());
        let server = run_server(
            listener,
            pool.clone(),
            staff.clone(),
            &settings,
            readiness.clone(),
        )?;
        Ok(Application {
            port,
            server,
            pool,
            settings,
            staff,
            readiness,
            shutdown: Shutdown::new(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Triggering it stops the server, the relay and the subscription.
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
        let relay = tokio::spawn(relay.run());
        let invalidation = tokio::spawn(
            CacheInvalidation::new(
                self.staff.clone(),
                self.settings.bus.clone(),
                SERVICE,
                self.shutdown.clone(),
            )
            .run(),
        );
        let pruning = {
            let (pool, settings) = (self.pool.clone(), self.settings.clone());
            tokio::spawn(service_kit::retention::run_every(
                pool.clone(),
                service_kit::retention::EVERY,
                self.shutdown.clone(),
                "expired pairing requests and code-entry windows",
                move || {
                    let (pool, settings) = (pool.clone(), settings.clone());
                    async move { crate::retention::prune(&pool, &settings).await }
                },
            ))
        };
        let handle = self.server.handle();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown.wait().await;
            handle.stop(true).await;
        });
        let served = self.server.await.context("the HTTP server failed");
        self.shutdown.trigger();
        for (name, task) in [
            ("outbox relay", relay),
            ("access cache", invalidation),
            ("pruning", pruning),
        ] {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the {name} panicked");
            }
        }
        served
    }
}

fn run_server(
    listener: TcpListener,
    pool: PgPool,
    staff: StaffVerifier,
    settings: &Settings,
    readiness: Readiness,
) -> anyhow::Result<Server> {
    let pool = web::Data::new(pool);
    let staff = web::Data::new(staff);
    let pairing = web::Data::new(Pairing::new(
        settings.oauth.clone(),
        settings.tokens.clone(),
        settings.pairing.clone(),
    ));
    let approval = web::Data::new(settings.approval.clone());
    let network = web::Data::new(settings.network.clone());
    let introspection = web::Data::new(settings.introspection.clone());
    let readiness = web::Data::new(readiness);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(trace_requests))
            .app_data(pool.clone())
            .app_data(staff.clone())
            .app_data(pairing.clone())
            .app_data(approval.clone())
            .app_data(network.clone())
            .app_data(introspection.clone())
            .app_data(readiness.clone())
            .configure(ops_routes)
            .configure(routes::configure)
            .default_service(web::to(unknown_route))
    })
    .keep_alive(service_kit::http::KEEP_ALIVE)
    .listen(listener)
    .context("cannot serve on the listener")?
    .disable_signals()
    .run();
    Ok(server)
}

async fn unknown_route() -> Result<actix_web::HttpResponse, service_kit::http::ClientError> {
    Err(not_found().await)
}
