use clap::{Parser, Subcommand};
use web::{config, startup::Application};

#[derive(Parser)]
#[command(
    name = "web",
    about = "The kitchen's screens: tablets, TV board, device login, managers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the pages and follow the tracker's events until Ctrl-C.
    Serve,
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
            tracing::info!(port = app.port(), "web listening");
            app.run_until_stopped().await
        }
    }
}
