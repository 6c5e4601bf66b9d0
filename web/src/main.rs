use service_kit::app::no_commands;
use web::{
    config::{self, Settings},
    startup::Application,
};

/// The web has one command, `serve`: the pages, following the tracker's events, until Ctrl-C.
const ABOUT: (&str, &str) = (
    "web",
    "The kitchen's screens: tablets, TV board, device login, managers",
);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let service = (config::load, Settings::check_secrets, Application::build);
    service_kit::app::main(ABOUT, service, no_commands).await
}
