//! Auth as a service (`service_kit::app`): its routes, and its background work: the outbox relay,
//! the consumer of the tracker's pizzerias, the subscription that keeps the device cache honest
//! and the pruning of ended sessions; and the bootstrap commands (`create-admin`, `seed-demo`).

use access::{CacheInvalidation, DeviceVerifier, Role};
use anyhow::Context;
use bus::{
    BusTasks,
    dead_letters::http::{DeadLetterQueue, routes as dead_letter_routes},
    topology::AUTH_PIZZERIAS,
};
use service_kit::app::{Service, ServiceBuilder};
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

/// Auth; [`Application::build`] prepares it as a [`Service`] (`port`, `shutdown`,
/// `run_until_stopped`).
pub struct Application;

impl Application {
    /// Binds the listener (port 0 picks a free one) and prepares everything; nothing runs until
    /// [`Service::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let (mut service, pool) =
            ServiceBuilder::with_database(SERVICE, &settings.application, &settings.database)?;
        let accounts = accounts_for(&settings).await?;
        let devices =
            DeviceVerifier::new(&settings.device_access).context("the device verifier")?;
        let (prune_pool, sessions) = (pool.clone(), settings.sessions.clone());
        // `devices.#` keeps the device cache honest (auth checks its own sessions in its
        // database, so it has no staff cache to invalidate).
        let invalidation = CacheInvalidation::new(
            devices.clone(),
            settings.bus.clone(),
            SERVICE,
            service.shutdown().clone(),
        );
        service
            .outbox_relay(&pool, &settings.bus, SERVICE)
            .consumer(
                &pool,
                &settings.bus,
                (AUTH_PIZZERIAS, &settings.consumer),
                PizzeriaList,
                "pizzerias_consumer",
            )
            .spawn("device cache", invalidation.run())
            .periodic(&pool, "ended sessions", move || {
                let (pool, sessions) = (prune_pool.clone(), sessions.clone());
                async move { crate::retention::prune_sessions(&pool, &sessions).await }
            });

        service
            .data(DeadLetterQueue {
                bus: settings.bus.clone(),
                spec: AUTH_PIZZERIAS,
                pool: pool.clone(),
            })
            .data(pool)
            .data(accounts)
            .data(devices)
            .data(settings.network.clone())
            .data(settings.introspection.clone());
        service.serve(|cfg| {
            // The pizzerias consumer's dead letters, for the operations page (before the /api/v1
            // scope).
            cfg.configure(dead_letter_routes::<routes::Operator>)
                .configure(routes::configure);
        })
    }
}

/// The accounts context; hashing the dummy password takes a moment, so off the async threads.
async fn accounts_for(settings: &Settings) -> anyhow::Result<Accounts> {
    let (sessions, login) = (settings.sessions.clone(), settings.login.clone());
    tokio::task::spawn_blocking(move || Accounts::new(sessions, login))
        .await
        .context("preparing the password hasher")?
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
