use std::io::Read;

use anyhow::Context;
use auth::{config, startup::Application};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "auth", about = "Staff accounts, roles and sessions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP and relay the outbox until Ctrl-C.
    Serve,
    /// Apply the database migrations.
    Migrate,
    /// Create a chain admin. The password comes from --password, or else from standard input.
    CreateAdmin {
        #[arg(long)]
        login: String,
        #[arg(long, default_value = "Chain admin")]
        display_name: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// The demo pizzeria's shift manager and two kitchen staff (the pizzeria itself is the
    /// tracker's `seed-demo`), printing their logins with fresh passwords.
    SeedDemo,
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
            tracing::info!(port = app.port(), "auth listening");
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let pool = settings
                .database
                .lazy_pool()
                .context("bad database settings")?;
            auth::db::MIGRATOR
                .run(&pool)
                .await
                .context("cannot migrate the auth database")?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin {
            login,
            display_name,
            password,
        } => {
            let password = match password {
                Some(p) => p,
                None => {
                    let mut p = String::new();
                    std::io::stdin()
                        .read_to_string(&mut p)
                        .context("cannot read the password from standard input")?;
                    p.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let id =
                auth::startup::create_admin(&settings, &login, &display_name, &password).await?;
            println!("user_id={id}");
            println!("login={}", login.trim().to_lowercase());
            Ok(())
        }
        Command::SeedDemo => {
            let credentials = auth::startup::seed_demo(&settings).await?;
            println!("pizzeria_id={}", auth::startup::DEMO_PIZZERIA_ID);
            for (login, password) in credentials {
                println!("login={login} password={password}");
            }
            Ok(())
        }
    }
}
