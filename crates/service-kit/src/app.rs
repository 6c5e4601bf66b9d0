//! One way to start a service. A service's `startup.rs` says only what is its own: its
//! settings, its routes (a `configure` function) and its background work (the outbox relay,
//! consumers, subscriptions, periodic jobs); the [`ServiceBuilder`] does the rest the same way
//! for every service:
//!
//! - binds the listener (port 0 picks a free one, which the tests read back with
//!   [`Service::port`]) and, for a service whose main listener is public, an ops listener that
//!   alone serves `/metrics`;
//! - wraps every request in the shared middleware: telemetry and Prometheus counters
//!   ([`trace_requests`], which also turns actix's own errors into problem details), the body
//!   limit ([`BODY_LIMIT`]) and keep-alive ([`KEEP_ALIVE`]);
//! - serves `/health/live`, `/health/ready` (the database, if the service has one, and every
//!   flag its background tasks raise while connected) and `/metrics`, and a problem-details
//!   404 for unknown routes;
//! - spawns the background tasks when the service runs and stops them and the server together
//!   on one [`Shutdown`] (Ctrl-C, SIGTERM, or a test dropping its app), waiting for each.
//!
//! actix's `App` is generic over its middleware, so the builder cannot hand an `App` around;
//! the service's routes come in as a `configure` closure instead (`Fn(&mut ServiceConfig)`,
//! called once per worker thread), which can add routes, scopes and `app_data`. Middleware of a
//! service's own (the web's security headers) goes on a scope inside it.

use std::{future::Future, net::TcpListener, pin::Pin, sync::Arc};

use actix_web::{
    App, HttpResponse, HttpServer,
    dev::Server,
    middleware::from_fn,
    web::{self, ServiceConfig},
};
use anyhow::Context;

use crate::{
    config::{DatabaseSettings, HttpSettings},
    http::{
        ClientError, KEEP_ALIVE, Readiness, health_routes, not_found, ops_routes,
        private_metrics_route, trace_requests,
    },
    retention,
    shutdown::Shutdown,
};

/// The largest request body any service reads (actix's `PayloadConfig`); a larger one is a 413.
/// A service that wants less sets its own `PayloadConfig` in its `configure`.
pub const BODY_LIMIT: usize = 256 * 1024;

type Task = (&'static str, Pin<Box<dyn Future<Output = ()> + Send>>);

/// Registers one `web::Data` of the service on each worker's app.
type AppData = Arc<dyn Fn(&mut ServiceConfig) + Send + Sync>;

/// A service being put together: its listeners are bound, nothing runs yet.
pub struct ServiceBuilder {
    name: &'static str,
    listener: TcpListener,
    port: u16,
    ops: Option<(TcpListener, u16)>,
    readiness: Readiness,
    shutdown: Shutdown,
    tasks: Vec<Task>,
    data: Vec<AppData>,
    workers: Option<usize>,
    shutdown_timeout: Option<u64>,
}

impl ServiceBuilder {
    /// Binds `http` for the service `name`. `database`: the pool `/health/ready` checks, `None`
    /// for a service without a database (then only its tasks' flags count).
    pub fn bind(
        name: &'static str,
        http: &HttpSettings,
        database: Option<sqlx::PgPool>,
    ) -> anyhow::Result<Self> {
        let (listener, port) = http.bind()?;
        Ok(ServiceBuilder {
            name,
            listener,
            port,
            ops: None,
            readiness: database.map_or_else(Readiness::without_database, Readiness::new),
            shutdown: Shutdown::new(),
            tasks: Vec::new(),
            data: Vec::new(),
            workers: None,
            shutdown_timeout: None,
        })
    }

    /// [`ServiceBuilder::bind`] for a service with a database of its own: its pool (lazy: no
    /// connection until first used), which `/health/ready` checks.
    pub fn with_database(
        name: &'static str,
        http: &HttpSettings,
        database: &DatabaseSettings,
    ) -> anyhow::Result<(Self, sqlx::PgPool)> {
        let pool = database.lazy_pool().context("bad database settings")?;
        Ok((Self::bind(name, http, Some(pool.clone()))?, pool))
    }

    /// A second listener, for the operations routes: `/metrics` is served there only (health
    /// on both). For a service whose main listener faces the public (the web).
    pub fn ops_listener(mut self, ops: &HttpSettings) -> anyhow::Result<Self> {
        self.ops = Some(ops.bind()?);
        Ok(self)
    }

    /// How many worker threads serve HTTP (actix's default: one per core). A service whose
    /// HTTP is only health, metrics and rare calls needs one.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// How long a stop waits for requests in flight (actix's default: 30 s). A service with
    /// event streams, which never end by themselves, wants less.
    pub fn shutdown_timeout(mut self, seconds: u64) -> Self {
        self.shutdown_timeout = Some(seconds);
        self
    }

    /// What `/health/ready` checks: a background task takes a flag from it
    /// ([`Readiness::flag`]) and raises it while it works.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The signal every part of the service stops on; a background task is given a clone.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// A background task, spawned when the service runs; it must return once
    /// [`ServiceBuilder::shutdown`] is triggered. `name` says which one in the log if it
    /// panics.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> &mut Self {
        self.tasks.push((name, Box::pin(task)));
        self
    }

    /// A periodic clean-up (`retention::run_every` at `retention::EVERY`, in one replica at a
    /// time: a leader on `pool`): `prune` deletes what has outlived its use and says how many
    /// rows went.
    pub fn periodic<F, Fut>(
        &mut self,
        pool: &sqlx::PgPool,
        what: &'static str,
        prune: F,
    ) -> &mut Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        self.spawn(
            what,
            retention::run_every(pool.clone(), retention::EVERY, shutdown, what, prune),
        )
    }

    /// Shared state the service's handlers extract as `web::Data<T>` (its pool, its settings,
    /// its verifiers): one value for every worker thread.
    pub fn data<T: Send + Sync + 'static>(&mut self, value: T) -> &mut Self {
        let data = web::Data::new(value);
        self.data.push(Arc::new(move |cfg: &mut ServiceConfig| {
            cfg.app_data(data.clone());
        }));
        self
    }

    /// Builds the HTTP server around `routes` (the service's own routes and `app_data`) with
    /// the shared middleware and operations routes. Nothing is served until
    /// [`Service::run_until_stopped`].
    pub fn serve<F>(self, routes: F) -> anyhow::Result<Service>
    where
        F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
    {
        let readiness = web::Data::new(self.readiness);
        let data = self.data;
        let ops_port = self.ops.as_ref().map(|(_, port)| *port);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(trace_requests))
                .app_data(readiness.clone())
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .configure(move |cfg| match ops_port {
                    Some(port) => {
                        health_routes(cfg);
                        private_metrics_route(port)(cfg);
                    }
                    None => ops_routes(cfg),
                })
                .configure(|cfg| data.iter().for_each(|register| register(cfg)))
                .configure(routes.clone())
                .default_service(web::to(unknown_route))
        })
        .keep_alive(KEEP_ALIVE)
        // The shared Shutdown handles the signals, so that every task stops together.
        .disable_signals();
        if let Some(workers) = self.workers {
            server = server.workers(workers);
        }
        if let Some(seconds) = self.shutdown_timeout {
            server = server.shutdown_timeout(seconds);
        }
        server = server
            .listen(self.listener)
            .context("cannot serve on the listener")?;
        let ops_port = match self.ops {
            Some((listener, port)) => {
                server = server
                    .listen(listener)
                    .context("cannot serve on the ops listener")?;
                Some(port)
            }
            None => None,
        };
        Ok(Service {
            name: self.name,
            port: self.port,
            ops_port,
            server: server.run(),
            shutdown: self.shutdown,
            tasks: self.tasks,
        })
    }
}

/// `not_found` returns a bare `ClientError`, which is not a `Responder`; wrapping it in `Err`
/// gives actix the error response it builds.
async fn unknown_route() -> Result<HttpResponse, ClientError> {
    Err(not_found().await)
}

/// A service ready to run: its listeners bound, its server built, its tasks waiting.
pub struct Service {
    name: &'static str,
    port: u16,
    ops_port: Option<u16>,
    server: Server,
    shutdown: Shutdown,
    tasks: Vec<Task>,
}

impl Service {
    /// The port of the main listener (the real one when the settings said 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the ops listener, for a service that has one.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops_port
    }

    /// Triggering it stops the server and every background task.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// `serve` of the command line: stops on Ctrl-C or SIGTERM.
    pub async fn run_until_signalled(self) -> anyhow::Result<()> {
        self.shutdown.trigger_on_signals();
        tracing::info!(
            service = self.name,
            port = self.port,
            ops_port = self.ops_port,
            "listening"
        );
        self.run_until_stopped().await
    }

    /// Spawns the background tasks and serves until the shutdown is triggered or the server
    /// fails; either way everything stops together, and this returns once every task has.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let tasks: Vec<_> = self
            .tasks
            .into_iter()
            .map(|(name, task)| (name, tokio::spawn(task)))
            .collect();
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
        for (name, task) in tasks {
            if let Err(e) = task.await {
                tracing::error!(service = self.name, task = name, error = %e, "a background task panicked");
            }
        }
        served
    }
}

/// `migrate` of the command line: applies `migrator` to the service's database.
pub async fn migrate(
    database: &DatabaseSettings,
    migrator: &sqlx::migrate::Migrator,
) -> anyhow::Result<()> {
    let pool = database.lazy_pool().context("bad database settings")?;
    migrator
        .run(&pool)
        .await
        .with_context(|| format!("cannot migrate the database {}", database.database_name))?;
    println!("migrations applied");
    Ok(())
}

/// The `main` every service shares: telemetry, then the command line (`serve`, which starts
/// the service, plus the service's own commands `Own`, run by `own`), then the settings
/// (`load`). `serve` refuses demo secrets (`check`) before it builds the service (`build`).
pub async fn main<Own, S, B>(
    (name, about): (&'static str, &'static str),
    (load, check, build): (
        impl FnOnce() -> anyhow::Result<S>,
        impl FnOnce(&S) -> anyhow::Result<()>,
        impl FnOnce(S) -> B,
    ),
    own: impl AsyncFnOnce(Own, S) -> anyhow::Result<()>,
) -> anyhow::Result<()>
where
    Own: clap::Subcommand,
    B: Future<Output = anyhow::Result<Service>>,
{
    crate::telemetry::init();
    let serve = clap::Command::new("serve")
        .about("Serve HTTP and run the background work until Ctrl-C or SIGTERM")
        // The sync worker's word for it before every service had one.
        .alias("run");
    let command = clap::Command::new(name)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve);
    // After the service's commands: their derive would give the program the doc comment of the
    // service's command enum as its description.
    let matches = Own::augment_subcommands(command).about(about).get_matches();
    let settings = load()?;
    if matches.subcommand_name() == Some("serve") {
        check(&settings)?;
        return build(settings).await?.run_until_signalled().await;
    }
    match Own::from_arg_matches(&matches) {
        Ok(command) => own(command, settings).await,
        Err(e) => e.exit(),
    }
}

/// What a service without commands of its own runs for them: nothing, there are none.
pub async fn no_commands<S>(command: NoCommands, _: S) -> anyhow::Result<()> {
    match command {}
}

/// The own commands of a service that has none besides `serve` (the web).
#[derive(Debug, Clone, Copy)]
pub enum NoCommands {}

impl clap::FromArgMatches for NoCommands {
    fn from_arg_matches(_: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))
    }

    fn update_from_arg_matches(&mut self, _: &clap::ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl clap::Subcommand for NoCommands {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        command
    }

    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        command
    }

    fn has_subcommand(_: &str) -> bool {
        false
    }
}
