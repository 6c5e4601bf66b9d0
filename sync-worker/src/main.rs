use bus::topology::LEGACY_SYNC;
use clap::{Parser, Subcommand};
use sync_worker::{config::Settings, db, rebuild, startup::Application};

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
    /// Rebuild the mirror from the history stream into a scratch database and compare it with
    /// the live legacy tables. Exit status: 0 equal, 1 different, 2 the rebuild failed.
    Rebuild {
        /// Where to start reading: `first` (the oldest event the stream keeps), an RFC 3339
        /// time such as 2026-12-01T09:00:00Z, or an offset in the stream.
        #[arg(long)]
        since: bus::stream::StartAt,
        /// The scratch database, e.g. postgres://postgres@127.0.0.1:5432/legacy_rebuild;
        /// created if missing and migrated; it must hold no mirrored rows.
        #[arg(long)]
        into: String,
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
            let retention = settings.history.retention();
            let bus = settings.bus.clone();
            let app = Application::build(settings).await?;
            app.shutdown().trigger_on_signals();
            tokio::spawn(rebuild::keep_stream_declared(
                bus,
                retention,
                app.shutdown(),
            ));
            tracing::info!(port = app.port(), "sync worker started");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            db::migrate(&settings.database).await?;
        }
        Command::DeadLetters { command } => {
            bus::dead_letters::run(&settings.bus, LEGACY_SYNC, command).await?;
        }
        Command::Rebuild { since, into } => {
            let code = match rebuild::rebuild(&settings, since, &into).await {
                Ok(report) => {
                    print!("{report}");
                    if report.equal() { 0 } else { 1 }
                }
                Err(e) => {
                    eprintln!("the rebuild failed: {e:#}");
                    2
                }
            };
            std::process::exit(code);
        }
    }
    Ok(())
}
