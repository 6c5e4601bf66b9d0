//! Building and running the auth service: the HTTP server, the outbox relay, the consumer of the
//! tracker's pizzerias and the subscription that keeps the device cache honest, tied to one
//! shutdown signal; and the bootstrap commands (`create-admin`, `seed-demo`).

use std::net::TcpListener;

use access::{CacheInvalidation, DeviceVerifier, Role};
use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use bus::{Consumer, outbox::Relay, topology::AUTH_PIZZERIAS};
use service_kit::{
    http::{Readiness, not_found, ops_routes, trace_requests},
    shutdown::Shutdown,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    accounts::{self, Accounts, AuthError, NewUser, Origin, SERVICE},
    config::Settings,
    db::{pizzerias, users},
    domain::{DisplayName, Login, Password, RoleGrant},
    pizzerias::PizzeriaList,
    routes,
    secrets::random_text,
};

pub struct Application {
    port: u16,
    server: Server,
    pool: PgPool,
    settings: Settings,
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
        let accounts = accounts_for(&settings).await?;
        let devices =
            DeviceVerifier::new(&settings.device_access).context("the device verifier")?;
        let readiness = Readiness::new(pool.clone());
        let server = run_server(
            listener,
            pool.clone(),
            accounts,
            devices.clone(),
            &settings,
            readiness.clone(),
        )?;
        Ok(Application {
            port,
            server,
            pool,
            settings,
            devices,
            readiness,
            shutdown: Shutdown::new(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Triggering it stops the server and the relay.
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
        // `devices.#` keeps the device cache honest (auth checks its own sessions in its
        // database, so it has no staff cache to invalidate).
        let invalidation = CacheInvalidation::new(
            self.devices.clone(),
            self.settings.bus.clone(),
            SERVICE,
            self.shutdown.clone(),
        );
        let pizzerias = Consumer::new(
            self.pool.clone(),
            self.settings.bus.clone(),
            AUTH_PIZZERIAS,
            self.settings.consumer.clone(),
            std::sync::Arc::new(PizzeriaList),
            self.readiness.flag("pizzerias_consumer"),
            self.shutdown.clone(),
        );
        let pruning = {
            let (pool, sessions) = (self.pool.clone(), self.settings.sessions.clone());
            service_kit::retention::run_every(
                pool.clone(),
                service_kit::retention::EVERY,
                self.shutdown.clone(),
                "ended sessions",
                move || {
                    let (pool, sessions) = (pool.clone(), sessions.clone());
                    async move { crate::retention::prune_sessions(&pool, &sessions).await }
                },
            )
        };
        let tasks = [
            tokio::spawn(relay.run()),
            tokio::spawn(invalidation.run()),
            tokio::spawn(pruning),
            tokio::spawn(pizzerias.run()),
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

/// The accounts context; hashing the dummy password takes a moment, so off the async threads.
async fn accounts_for(settings: &Settings) -> anyhow::Result<Accounts> {
    let (sessions, login) = (settings.sessions.clone(), settings.login.clone());
    tokio::task::spawn_blocking(move || Accounts::new(sessions, login))
        .await
        .context("preparing the password hasher")?
}

fn run_server(
    listener: TcpListener,
    pool: PgPool,
    accounts: Accounts,
    devices: DeviceVerifier,
    settings: &Settings,
    readiness: Readiness,
) -> anyhow::Result<Server> {
    let pool = web::Data::new(pool);
    let accounts = web::Data::new(accounts);
    let devices = web::Data::new(devices);
    let network = web::Data::new(settings.network.clone());
    let introspection = web::Data::new(settings.introspection.clone());
    let readiness = web::Data::new(readiness);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(trace_requests))
            .app_data(pool.clone())
            .app_data(accounts.clone())
            .app_data(devices.clone())
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

fn command_line() -> Origin {
    Origin {
        ip: "command-line".into(),
        user_agent: None,
    }
}

fn unexpected(e: AuthError) -> anyhow::Error {
    match e {
        AuthError::Unexpected(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

/// `auth create-admin`: a chain admin, the first account of a new installation.
pub async fn create_admin(
    settings: &Settings,
    login: &str,
    display_name: &str,
    password: &str,
) -> anyhow::Result<Uuid> {
    let pool = settings
        .database
        .lazy_pool()
        .context("bad database settings")?;
    let accounts = accounts_for(settings).await?;
    let user = NewUser {
        login: Login::parse(login)?,
        display_name: DisplayName::parse(display_name)?,
        password: Password::parse(password)?,
        roles: vec![RoleGrant::parse(Role::ChainAdmin.as_str(), None)?],
    };
    let mut tx = pool.begin().await.context("cannot start")?;
    let view = accounts::create_user(&mut tx, &accounts, user, None, &command_line())
        .await
        .map_err(unexpected)?;
    tx.commit().await.context("cannot commit the admin")?;
    Ok(view.id)
}

/// The demo pizzeria's id, the same as the tracker's demo.
pub const DEMO_PIZZERIA_ID: Uuid = Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);

/// Logins `seed-demo` creates, with their role in the demo pizzeria.
pub const DEMO_STAFF: [(&str, &str, Role); 3] = [
    ("demo.manager", "Demo Shift Manager", Role::ShiftManager),
    ("demo.kitchen1", "Pavel (kitchen)", Role::KitchenStaff),
    ("demo.kitchen2", "Olga (kitchen)", Role::KitchenStaff),
];

/// `auth seed-demo`: the demo pizzeria's staff, giving each a fresh random
/// password (the data outlives a `make run`, the printed passwords do not). Returns
/// (login, password) pairs.
pub async fn seed_demo(settings: &Settings) -> anyhow::Result<Vec<(String, String)>> {
    let pool = settings
        .database
        .lazy_pool()
        .context("bad database settings")?;
    let accounts = accounts_for(settings).await?;
    let origin = command_line();
    let mut tx = pool.begin().await.context("cannot start the seed")?;
    // The tracker's `seed-demo` announces the demo pizzeria, but this seed grants roles in it at
    // once, maybe before auth has run its consumer: a placeholder at sequence 0, which the
    // tracker's announcement (sequence 1 or later) overwrites.
    pizzerias::apply_announced_pizzeria(&mut tx, DEMO_PIZZERIA_ID, "Demo pizzeria", 0).await?;
    let mut credentials = Vec::new();
    for (login, name, role) in DEMO_STAFF {
        let password = random_text(12)?;
        let grant = RoleGrant::parse(role.as_str(), Some(DEMO_PIZZERIA_ID))?;
        match users::find_user_by_login(&mut tx, login).await? {
            Some(user) => {
                let hash = accounts.passwords.hash(Password::parse(&password)?).await?;
                users::set_password(&mut tx, user.id, &hash).await?;
                users::insert_role(&mut tx, user.id, grant, None).await?;
            }
            None => {
                let user = NewUser {
                    login: Login::parse(login)?,
                    display_name: DisplayName::parse(name)?,
                    password: Password::parse(&password)?,
                    roles: vec![grant],
                };
                accounts::create_user(&mut tx, &accounts, user, None, &origin)
                    .await
                    .map_err(unexpected)?;
            }
        }
        credentials.push((login.to_owned(), password));
    }
    tx.commit().await.context("cannot commit the seed")?;
    Ok(credentials)
}
