use anyhow::Context;
use clap::Subcommand;
use tracker::{
    config::{self, Settings},
    startup::Application,
};

const ABOUT: (&str, &str) = ("tracker", "The kitchen order tracker");

/// The tracker's commands besides `serve` (HTTP, the outbox relay, the intake consumer and the
/// late-order sweeper until Ctrl-C).
#[derive(Subcommand)]
enum Command {
    /// Apply the database migrations.
    Migrate,
    /// What the intake could not take from the order sources (malformed orders, unknown
    /// pizzerias), and putting it back after a fix.
    DeadLetters {
        #[command(subcommand)]
        command: bus::dead_letters::Command,
    },
    /// Create (or refresh) the demo pizzeria with its stations and default routes.
    SeedDemo,
}

/// The commands of this service besides `serve`.
async fn own(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            service_kit::app::migrate(&settings.database, &tracker::db::MIGRATOR).await
        }
        Command::DeadLetters { command } => {
            bus::dead_letters::run(&settings.bus, bus::topology::TRACKER_INTAKE, command).await
        }
        Command::SeedDemo => {
            let pool = settings
                .database
                .lazy_pool()
                .context("bad database settings")?;
            let (pizzeria_id, stations) = tracker::startup::seed_demo(&pool).await?;
            println!("pizzeria_id={pizzeria_id}");
            println!("stations={}", stations.join(","));
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let service = (config::load, Settings::check_secrets, Application::build);
    service_kit::app::main(ABOUT, service, own).await
}
