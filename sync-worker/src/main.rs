use anyhow::Context;
use clap::{Parser, Subcommand};
use sync_worker::{config::Settings, db, dead_letters, startup::Application};
use uuid::Uuid;

/// Mirrors the tracker's events into the legacy monolith's tables.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume events and serve /health/live, /health/ready and /metrics.
    Run,
    /// Create the legacy database if it is missing and apply the migrations.
    Migrate,
    /// What the worker could not mirror.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// Print each dead letter: event id, type, routing key, attempts, error.
    List,
    /// Send dead letters back to the worker's queue, with their attempts reset.
    Replay {
        /// Replay only this event.
        #[arg(long)]
        event_id: Option<Uuid>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    service_kit::telemetry::init();
    let settings = Settings::load()?;
    match cli.command {
        Command::Run => {
            let app = Application::build(settings).await?;
            app.shutdown().trigger_on_signals();
            tracing::info!(port = app.port(), "sync worker started");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            db::migrate(&settings.database).await?;
        }
        Command::DeadLetters { command } => match command {
            DeadLettersCommand::List => {
                let count =
                    dead_letters::list(&settings.bus, &mut std::io::stdout().lock()).await?;
                eprintln!("{count} dead letter(s)");
            }
            DeadLettersCommand::Replay { event_id } => {
                let count = dead_letters::replay(&settings.bus, event_id)
                    .await
                    .context("replay failed")?;
                eprintln!("replayed {count} dead letter(s)");
            }
        },
    }
    Ok(())
}
