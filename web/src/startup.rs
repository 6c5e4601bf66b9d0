//! Building and running the web: the HTTP server, the live-updates subscription and the access
//! cache's invalidation, all tied to one shutdown signal.

use std::net::TcpListener;

use access::{CacheInvalidation, DeviceVerifier, StaffVerifier};
use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use service_kit::{
    http::{Readiness, health_routes, private_metrics_route, trace_requests},
    shutdown::Shutdown,
};

use crate::{
    config::Settings,
    push::Push,
    routes::{self, AppState},
    session::Cookies,
};

pub struct Application {
    port: u16,
    ops_port: u16,
    server: Server,
    settings: Settings,
    push: Push,
    verifiers: (StaffVerifier, DeviceVerifier),
    shutdown: Shutdown,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and prepares everything; nothing runs until
    /// [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (listener, port) = settings.application.bind()?;
        let (ops_listener, ops_port) = settings.ops.bind()?;
        let staff = StaffVerifier::new(&settings.access).context("bad access settings")?;
        let devices =
            DeviceVerifier::new(&settings.device_access).context("bad device access settings")?;
        // No database: ready while the live-updates subscription is up. The pages work without
        // it (they poll), but an instance without it cannot keep the 1 s promise.
        let readiness = Readiness::without_database();
        let push = Push::new(
            readiness.flag("live_updates"),
            settings.screens.max_streams_per_viewer,
        );
        let shutdown = Shutdown::new();
        let state = AppState::new(&settings, push.clone(), shutdown.clone())?;
        let server = run_server(
            (listener, ops_listener),
            &settings,
            state,
            readiness,
            (staff.clone(), devices.clone()),
        )?;
        Ok(Application {
            port,
            ops_port,
            server,
            settings,
            push,
            verifiers: (staff, devices),
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The listener that serves `/metrics` (and health), not to be exposed.
    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// Triggering it stops the server and every background task.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let tasks = [
            tokio::spawn(
                self.push
                    .clone()
                    .run(self.settings.bus.clone(), self.shutdown.clone()),
            ),
            tokio::spawn(
                CacheInvalidation::new(
                    self.verifiers.clone(),
                    self.settings.bus.clone(),
                    "web",
                    self.shutdown.clone(),
                )
                .run(),
            ),
        ];
        let handle = self.server.handle();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown.wait().await;
            handle.stop(true).await;
        });
        let served = self.server.await.context("the HTTP server failed");
        self.shutdown.trigger();
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a background task panicked");
            }
        }
        served
    }
}

fn run_server(
    (listener, ops_listener): (TcpListener, TcpListener),
    settings: &Settings,
    state: AppState,
    readiness: Readiness,
    (staff, devices): (StaffVerifier, DeviceVerifier),
) -> anyhow::Result<Server> {
    let state = web::Data::new(state);
    let readiness = web::Data::new(readiness);
    let settings = web::Data::new(settings.clone());
    let cookies = web::Data::new(Cookies {
        secure: settings.cookies.secure,
    });
    let staff = web::Data::new(staff);
    let devices = web::Data::new(devices);
    let metrics = private_metrics_route(
        ops_listener
            .local_addr()
            .context("no local address for the ops listener")?
            .port(),
    );
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(trace_requests))
            .wrap(from_fn(routes::security_headers))
            .wrap(from_fn(crate::i18n::negotiate))
            .app_data(state.clone())
            .app_data(settings.clone())
            .app_data(cookies.clone())
            .app_data(staff.clone())
            .app_data(devices.clone())
            .app_data(readiness.clone())
            .app_data(web::FormConfig::default().limit(16 * 1024))
            // The pages' own form extractor reads the body as bytes: the same 16 KiB for it.
            .app_data(web::PayloadConfig::new(16 * 1024))
            .configure(health_routes)
            .configure(metrics.clone())
            .configure(routes::configure)
            .default_service(web::to(routes::unknown_page))
    })
    .keep_alive(service_kit::http::KEEP_ALIVE)
    .listen(listener)
    .context("cannot serve on the listener")?
    .listen(ops_listener)
    .context("cannot serve on the ops listener")?
    .disable_signals()
    // Event streams never end by themselves; do not wait long for them on shutdown.
    .shutdown_timeout(3)
    .run();
    Ok(server)
}
