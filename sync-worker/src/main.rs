use bus::topology::LEGACY_SYNC;
use clap::Subcommand;
use sync_worker::{config::Settings, db, rebuild, startup::Application};

const ABOUT: (&str, &str) = (
    "sync-worker",
    "Mirrors the tracker's events into the legacy monolith's tables",
);

/// The sync worker's commands besides `serve` (alias `run`: consume events and serve
/// /health/live, /health/ready, /metrics and the dead-letter API until Ctrl-C).
#[derive(Subcommand)]
enum Command {
    /// What the worker could not mirror.
    DeadLetters {
        #[command(subcommand)]
        command: bus::dead_letters::Command,
    },
    /// Create the legacy database if it is missing and apply the migrations.
    Migrate,
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

/// The commands of this service besides `serve`.
async fn own(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => db::migrate(&settings.database).await,
        Command::DeadLetters { command } => {
            bus::dead_letters::run(&settings.bus, LEGACY_SYNC, command).await
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let service = (Settings::load, Settings::check_secrets, Application::build);
    service_kit::app::main(ABOUT, service, own).await
}
