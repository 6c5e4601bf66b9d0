use anyhow::Context;
use clap::{Parser, Subcommand};
use devices::{config, startup::Application};

#[derive(Parser)]
#[command(
    name = "devices",
    about = "Kitchen devices: pairing by code, device tokens, management"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP, relay the outbox and follow auth's events until Ctrl-C.
    Serve,
    /// Apply the database migrations.
    Migrate,
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
            tracing::info!(port = app.port(), "devices listening");
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let pool = settings
                .database
                .lazy_pool()
                .context("bad database settings")?;
            devices::db::MIGRATOR
                .run(&pool)
                .await
                .context("cannot migrate the devices database")?;
            println!("migrations applied");
            Ok(())
        }
    }
}
