use anyhow::Context;
use clap::{Parser, Subcommand};
use tracker::{config, startup::Application};

#[derive(Parser)]
#[command(name = "tracker", about = "The kitchen order tracker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP, relay the outbox, consume intake and sweep late orders until Ctrl-C.
    Serve,
    /// Apply the database migrations.
    Migrate,
    /// Create (or refresh) the demo pizzeria with its stations and default routes.
    SeedDemo,
    /// What the intake could not take from the order sources (malformed orders, unknown
    /// pizzerias), and putting it back after a fix.
    DeadLetters {
        #[command(subcommand)]
        command: bus::dead_letters::Command,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init();
    let cli = Cli::parse();
    let settings = config::load()?;
    match cli.command {
        Command::Serve => {
            settings.check_secrets()?;
            let app = Application::build(settings).await?;
            app.shutdown().trigger_on_signals();
            tracing::info!(port = app.port(), "tracker listening");
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let pool = settings
                .database
                .lazy_pool()
                .context("bad database settings")?;
            tracker::db::MIGRATOR
                .run(&pool)
                .await
                .context("cannot migrate the tracker database")?;
            println!("migrations applied");
            Ok(())
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
