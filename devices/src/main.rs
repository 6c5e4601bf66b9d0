use clap::Subcommand;
use devices::{
    config::{self, Settings},
    startup::Application,
};

const ABOUT: (&str, &str) = (
    "devices",
    "Kitchen devices: pairing by code, device tokens, management",
);

/// The devices service's commands besides `serve` (HTTP, the outbox relay and following auth's
/// events until Ctrl-C).
#[derive(Subcommand)]
enum Command {
    /// Apply the database migrations.
    Migrate,
}

async fn migrate(Command::Migrate: Command, settings: Settings) -> anyhow::Result<()> {
    service_kit::app::migrate(&settings.database, &devices::db::MIGRATOR).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let service = (config::load, Settings::check_secrets, Application::build);
    service_kit::app::main(ABOUT, service, migrate).await
}
