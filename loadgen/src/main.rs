//! The load generator: simulated pizzerias against the tracker's HTTP API and the bus, and a
//! backlog of tracker events for the sync worker. It only ever targets loopback addresses, and
//! every run is bounded in time and in requests. See docs/BENCHMARKS.md.

mod backlog;
mod kitchen;
mod legacy;
mod limits;
mod orders;
mod resources;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for the kitchen order tracker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pizzerias with station tablets, cashiers and pizzamakers, for a bounded time.
    Kitchen(kitchen::KitchenArgs),
    /// Publish tracker events for the sync worker to work through later.
    Backlog(backlog::BacklogArgs),
    /// Wait until the sync worker has mirrored N more events, and print the rate.
    Drain(backlog::DrainArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let outcome = match Cli::parse().command {
        Command::Kitchen(args) => kitchen::run(args).await,
        Command::Backlog(args) => backlog::backlog(args).await,
        Command::Drain(args) => backlog::drain(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
