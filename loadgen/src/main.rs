//! The load generator: simulated pizzerias against the tracker's HTTP API and the bus, a
//! backlog of tracker events for the sync worker, a full outbox for the tracker's relay, and a
//! probe of the broker's own limit. It only ever targets loopback addresses, and
//! every run is bounded in time and in requests. See docs/BENCHMARKS.md.

mod backlog;
mod broker;
mod chaos;
mod kitchen;
mod legacy;
mod limits;
mod orders;
mod relay;
mod resources;
mod session;
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
    /// One pizzeria's orders, taps, cancellations and hand-overs while `scripts/chaos.sh`
    /// kills and restarts things; then counts what was lost, doubled or left behind.
    Chaos(Box<chaos::ChaosArgs>),
    /// Pizzerias with station tablets, cashiers and pizzamakers, for a bounded time.
    Kitchen(Box<kitchen::KitchenArgs>),
    /// Publish tracker events for the sync worker to work through later.
    Backlog(backlog::BacklogArgs),
    /// Wait until the sync worker has mirrored N more events, and print the rate.
    Drain(backlog::DrainArgs),
    /// Measure the broker's own limit: publish+confirm, then consume+ack, on a throwaway
    /// quorum queue that is deleted afterwards.
    ProbeBroker(broker::ProbeArgs),
    /// Stage tracker events straight into the tracker's outbox (the tracker stopped).
    OutboxFill(relay::OutboxFillArgs),
    /// Wait until the tracker's relay has published every outbox row, and print the rate.
    RelayWatch(relay::RelayWatchArgs),
    /// Read the relay's events back from the sync worker's queue (the worker stopped) and
    /// check each order's sequence.
    RelayCheck(relay::RelayCheckArgs),
}

/// Bus settings for the broker at `url`. Read through serde like a service's configuration,
/// so settings added later keep their defaults here too.
fn bus_settings(url: &str, exchange: &str) -> anyhow::Result<service_kit::config::BusSettings> {
    let mut settings = serde_json::json!({ "url": url, "exchange": exchange });
    // The partition count must be the services' own (the load generator declares the
    // consumers' partitions as they do), so it reads the same variable they read.
    if let Ok(partitions) = std::env::var("APP_BUS__PARTITIONS") {
        let partitions: u16 = partitions
            .parse()
            .map_err(|e| anyhow::anyhow!("APP_BUS__PARTITIONS: {e}"))?;
        settings["partitions"] = partitions.into();
    }
    serde_json::from_value(settings).map_err(|e| anyhow::anyhow!("bus settings: {e}"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let outcome = match Cli::parse().command {
        Command::Chaos(args) => chaos::run(*args).await,
        Command::Kitchen(args) => kitchen::run(*args).await,
        Command::Backlog(args) => backlog::backlog(args).await,
        Command::Drain(args) => backlog::drain(args).await,
        Command::ProbeBroker(args) => broker::probe(args).await,
        Command::OutboxFill(args) => relay::fill(args).await,
        Command::RelayWatch(args) => relay::watch(args).await,
        Command::RelayCheck(args) => relay::check(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bus_settings_fill_in_the_defaults() {
        let bus = super::bus_settings("amqp://guest:guest@127.0.0.1:55674/%2f", "kitchen")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bus.exchange, "kitchen");
    }
}
