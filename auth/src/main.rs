use std::io::Read;

use anyhow::Context;
use auth::{
    config::{self, Settings},
    startup::Application,
};
use clap::Subcommand;

const ABOUT: (&str, &str) = ("auth", "Staff accounts, roles and sessions");

/// Auth's commands besides `serve` (HTTP, the outbox relay and the consumer of the tracker's
/// pizzerias until Ctrl-C).
#[derive(Subcommand)]
enum Command {
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

/// The commands of this service besides `serve`.
async fn own(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            service_kit::app::migrate(&settings.database, &auth::db::MIGRATOR).await
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let service = (config::load, Settings::check_secrets, Application::build);
    service_kit::app::main(ABOUT, service, own).await
}
