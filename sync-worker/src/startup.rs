use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use bus::{Consumer, dead_letters::http::DeadLetterQueue, topology::LEGACY_SYNC};
use service_kit::{
    http::{ClientError, Readiness, not_found, trace_requests},
    shutdown::Shutdown,
};

use crate::{config::Settings, mirror::LegacyMirror, routes};

/// The sync worker: the consumer that mirrors tracker events into the legacy tables, and a
/// small HTTP server for health, metrics and its dead letters.
pub struct Application {
    port: u16,
    server: Server,
    consumer: Consumer<LegacyMirror>,
    shutdown: Shutdown,
}

impl Application {
    /// Binds the ops server and prepares the consumer; nothing talks to the broker or the
    /// database until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = settings
            .database
            .lazy_pool()
            .context("preparing the legacy database pool")?;
        let shutdown = Shutdown::new();
        let readiness = Readiness::new(pool.clone());
        let consumer = Consumer::new(
            pool.clone(),
            settings.bus.clone(),
            LEGACY_SYNC,
            settings.consumer.clone(),
            Arc::new(LegacyMirror {
                max_sequence_jump: settings.mirror.max_sequence_jump,
            }),
            readiness.flag("consumer"),
            shutdown.clone(),
        );

        let staff = web::Data::new(
            access::StaffVerifier::new(&settings.access).context("the staff verifier")?,
        );
        let dead_letters = web::Data::new(DeadLetterQueue {
            bus: settings.bus.clone(),
            spec: LEGACY_SYNC,
            pool: pool.clone(),
        });
        let (listener, port) = settings.application.bind()?;
        let readiness = web::Data::new(readiness);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(trace_requests))
                .app_data(readiness.clone())
                .app_data(staff.clone())
                .app_data(dead_letters.clone())
                .configure(routes::configure)
                // service_kit's not_found returns a bare ClientError, which is not a Responder.
                .default_service(web::to(|| async {
                    Err::<HttpResponse, ClientError>(not_found().await)
                }))
        })
        // Health, metrics and the seldom-called dead-letter API: one worker thread is plenty
        // on a two-core box.
        .workers(1)
        // The shared shutdown signal stops the server, so that it stops together with the
        // consumer.
        .disable_signals()
        .keep_alive(service_kit::http::KEEP_ALIVE)
        .listen(listener)
        .context("starting the ops server")?
        .run();

        Ok(Application {
            port,
            server,
            consumer,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Triggering it stops the application; [`Application::run_until_stopped`] then returns.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Runs until the shutdown is triggered, or until the ops server fails, which stops the
    /// consumer too.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            server,
            consumer,
            shutdown,
            ..
        } = self;
        let handle = server.handle();
        let serve = async {
            let mut server = std::pin::pin!(server);
            let result = tokio::select! {
                result = &mut server => result,
                () = shutdown.wait() => {
                    // The server future carries out the stop, so it must be polled meanwhile.
                    let ((), result) = tokio::join!(handle.stop(true), server);
                    result
                }
            };
            shutdown.trigger();
            result.context("the ops server failed")
        };
        let consume = async {
            // The consumer reconnects on its own and returns only once shutdown is triggered.
            consumer.run().await;
        };
        let (served, ()) = tokio::join!(serve, consume);
        served
    }
}
