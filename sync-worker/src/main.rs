use bus::topology::LEGACY_SYNC;
use clap::{Parser, Subcommand};
use sync_worker::{config::Settings, db, startup::Application};

/// Mirrors the tracker's events into the legacy monolith's tables.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume events and serve /health/live, /health/ready, /metrics and the dead-letter API.
    Run,
    /// Create the legacy database if it is missing and apply the migrations.
    Migrate,
    /// What the worker could not mirror.
    DeadLetters {
        #[command(subcommand)]
        command: bus::dead_letters::Command,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    service_kit::telemetry::init();
    let settings = Settings::load()?;
    match cli.command {
        Command::Run => {
            settings.check_secrets()?;
            let app = Application::build(settings).await?;
            app.shutdown().trigger_on_signals();
            tracing::info!(port = app.port(), "sync worker started");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            db::migrate(&settings.database).await?;
        }
        Command::DeadLetters { command } => {
            bus::dead_letters::run(&settings.bus, LEGACY_SYNC, command).await?;
        }
    }
    Ok(())
}
