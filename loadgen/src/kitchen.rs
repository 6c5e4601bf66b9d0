//! `loadgen kitchen`: pizzerias whose station tablets poll their queues, cashiers who sell
//! orders over the bus, and pizzamakers who tap what their tablet shows.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use reqwest::{
    StatusCode,
    header::{ETAG, IF_NONE_MATCH},
};
use serde::Deserialize;
use tokio::{
    task::JoinSet,
    time::{Instant, MissedTickBehavior, interval_at, sleep, sleep_until},
};
use uuid::Uuid;

use crate::{
    legacy::{self, PizzeriaRange},
    orders::{order_placed, pizzeria_id},
    resources::{MemoryTrack, mib, own_cpu_seconds},
    stats::{Counts, Latencies, Millis, Summary},
};

#[derive(Debug, Clone, clap::Args)]
pub struct KitchenArgs {
    /// How many pizzerias to simulate; ids are deterministic, so reruns reuse them.
    #[arg(long)]
    pub pizzerias: u32,
    /// Index of the first pizzeria, to run several generators side by side.
    #[arg(long, default_value_t = 0)]
    pub first_pizzeria: u32,
    /// Tablets per pizzeria: dough, topping, oven, packing, then the TV board; any beyond five
    /// are extra packing screens that only watch.
    #[arg(long, default_value_t = 5)]
    pub tablets_per_pizzeria: u32,
    #[arg(long, default_value = "10s", value_parser = crate::limits::parse_duration)]
    pub poll_interval: Duration,
    /// Orders each pizzeria's cashier sells per minute (0 for polls only).
    #[arg(long, default_value_t = 1.0)]
    pub orders_per_minute: f64,
    /// How long the load runs; then the generator stops by itself.
    #[arg(long, default_value = "60s", value_parser = crate::limits::parse_duration)]
    pub duration: Duration,
    /// Shortest and longest simulated work time between seeing a product and tapping it.
    #[arg(long, default_value = "1s", value_parser = crate::limits::parse_duration)]
    pub work_min: Duration,
    #[arg(long, default_value = "4s", value_parser = crate::limits::parse_duration)]
    pub work_max: Duration,
    /// A hard cap on HTTP requests, whatever the other settings say.
    #[arg(long, default_value_t = 5_000_000)]
    pub max_requests: u64,
    #[arg(long, default_value = "http://127.0.0.1:8081", value_parser = crate::limits::loopback_url)]
    pub tracker: String,
    #[arg(long, default_value = "http://127.0.0.1:8082/metrics", value_parser = crate::limits::loopback_url)]
    pub sync_worker_metrics: String,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub amqp: String,
    #[arg(long, default_value = "kitchen")]
    pub exchange: String,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub legacy_db: String,
    /// How long to wait after the load for the sync worker to mirror the run's taps.
    #[arg(long, default_value = "60s", value_parser = crate::limits::parse_duration)]
    pub settle: Duration,
    /// Loopback addresses the tablets connect from (127.0.1.1, 127.0.1.2, ...), dealt out to
    /// them in turn. Requests that time out lose their connection, and every closed connection
    /// holds its local port for a minute (TIME_WAIT); from one address, the kernel then spent
    /// most of the generator's CPU searching the 28,000 ephemeral ports for a free one.
    #[arg(long, default_value_t = 16)]
    pub source_addresses: u8,
    /// Pizzerias created at once during setup.
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,
    /// Only create the pizzerias, then stop: lets a benchmark reset its statistics after
    /// setup.
    #[arg(long)]
    pub setup_only: bool,
    #[command(flatten)]
    pub session: crate::session::SessionArgs,
}

/// What a tablet shows; the board polls like a station but never taps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Station(&'static str),
    Watcher(&'static str),
    Board,
}

fn screens(tablets: u32) -> Vec<Screen> {
    const STATIONS: [&str; 4] = ["dough", "topping", "oven", "packing"];
    (0..tablets as usize)
        .map(|i| match i {
            0..4 => Screen::Station(STATIONS[i]),
            4 => Screen::Board,
            _ => Screen::Watcher("packing"),
        })
        .collect()
}

#[derive(Debug, Default)]
struct Results {
    station_200: Latencies,
    station_304: Latencies,
    /// Station polls (200 and 304) that carried an ETag: every poll but a tablet's first, which
    /// fetches cold (all tablets start within one interval, so those come as a burst).
    station_conditional: Latencies,
    /// The fetches among those: a 200 to a poll with an ETag, because the queue changed. At
    /// low order rates most 200s are the cold first polls; these are the steady-state fetches.
    station_200_conditional: Latencies,
    board_200: Latencies,
    board_304: Latencies,
    taps: Latencies,
    publishes: Latencies,
    errors: Counts,
    taps_repeated: u64,
    orders_published: u64,
}

struct Shared {
    /// One per source address; a tablet and its pizzamaker always use the same one.
    clients: Vec<reqwest::Client>,
    tracker: String,
    /// The staff sessions the tablets send, dealt out in turn (see `crate::session`).
    tokens: Vec<String>,
    deadline: Instant,
    budget: AtomicU64,
    budget_exhausted: AtomicU64,
    work_min: Duration,
    work_max: Duration,
    results: Mutex<Results>,
}

impl Shared {
    /// Takes one request from the budget; false once it is spent.
    fn take_request(&self) -> bool {
        let taken = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if !taken {
            self.budget_exhausted.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    fn client(&self, slot: usize) -> &reqwest::Client {
        &self.clients[slot % self.clients.len()]
    }

    fn record(&self, f: impl FnOnce(&mut Results)) {
        if let Ok(mut results) = self.results.lock() {
            f(&mut results);
        }
    }

    fn work_time(&self) -> Duration {
        let spread = self.work_max.saturating_sub(self.work_min);
        self.work_min + spread.mul_f64(rand::random::<f64>())
    }
}

#[derive(Deserialize)]
struct QueueBody {
    products: Vec<QueueProduct>,
}

#[derive(Deserialize)]
struct QueueProduct {
    product_id: Uuid,
}

#[derive(Deserialize)]
struct TapBody {
    #[serde(default)]
    repeated: bool,
}

pub async fn run(args: KitchenArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.pizzerias > 0, "--pizzerias must be at least 1");
    anyhow::ensure!(
        args.poll_interval >= Duration::from_millis(100),
        "--poll-interval below 100ms is not a tablet"
    );
    anyhow::ensure!(
        args.orders_per_minute >= 0.0 && args.orders_per_minute <= 60.0,
        "--orders-per-minute must be between 0 and 60"
    );
    anyhow::ensure!(
        args.work_min <= args.work_max,
        "--work-min exceeds --work-max"
    );
    let tracker = args.tracker.trim_end_matches('/').to_owned();
    let client = http_client(None)?;
    // The tablets' clients, each connecting from its own loopback address (see
    // `--source-addresses`); setup, sign-ins and metrics use `client`, from 127.0.0.1.
    let tablet_clients = (0..args.source_addresses.max(1))
        .map(|i| http_client(Some(source_address(i))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let range = PizzeriaRange {
        first: pizzeria_id(args.first_pizzeria),
        last: pizzeria_id(args.first_pizzeria + args.pizzerias - 1),
    };
    let pizzerias: Vec<Uuid> = (args.first_pizzeria..args.first_pizzeria + args.pizzerias)
        .map(pizzeria_id)
        .collect();

    println!(
        "kitchen: {} pizzerias × {} tablets polling every {:?}, {} orders/min per pizzeria, for {:?}",
        args.pizzerias,
        args.tablets_per_pizzeria,
        args.poll_interval,
        args.orders_per_minute,
        args.duration
    );
    let legacy = legacy::connect(&args.legacy_db).await?;
    let tokens = crate::session::sign_in_all(&client, &args.session).await?;
    let admin = tokens.first().context("no session")?;
    set_up_pizzerias(&client, &tracker, admin, &pizzerias, args.setup_concurrency).await?;
    if args.setup_only {
        return Ok(());
    }

    let publisher = if args.orders_per_minute > 0.0 {
        let bus = crate::bus_settings(&args.amqp, &args.exchange)?;
        Some(Arc::new(
            bus::Publisher::connect(&bus, "loadgen-cashier")
                .await
                .context("connecting the cashiers to the broker")?,
        ))
    } else {
        None
    };

    let mut memory = [
        MemoryTrack::new("tracker", &format!("{tracker}/metrics")),
        MemoryTrack::new("sync-worker", &args.sync_worker_metrics),
    ];
    for track in &mut memory {
        track.sample(&client).await;
    }

    // bench.sh opens its CPU window on this line: the sign-ins above cost auth an argon2 hash
    // each, which is not the load's.
    println!("kitchen: load starts now");
    let cpu_before = own_cpu_seconds();
    let started_wall: DateTime<Utc> = Utc::now();
    let started = Instant::now();
    let deadline = started + args.duration;
    let shared = Arc::new(Shared {
        clients: tablet_clients,
        tracker: tracker.clone(),
        tokens,
        deadline,
        budget: AtomicU64::new(args.max_requests),
        budget_exhausted: AtomicU64::new(0),
        work_min: args.work_min,
        work_max: args.work_max,
        results: Mutex::new(Results::default()),
    });

    let screens = screens(args.tablets_per_pizzeria);
    let tablets_total = pizzerias.len() * screens.len();
    let mut tasks = JoinSet::new();
    for (p, pizzeria) in pizzerias.iter().enumerate() {
        for (s, screen) in screens.iter().enumerate() {
            // Spread first polls evenly over one interval, so the load is smooth from the start.
            let slot = p * screens.len() + s;
            let offset = args
                .poll_interval
                .mul_f64(slot as f64 / tablets_total as f64);
            tasks.spawn(tablet(
                shared.clone(),
                slot,
                slot % shared.tokens.len(),
                *pizzeria,
                *screen,
                started + offset,
                args.poll_interval,
            ));
        }
        if let Some(publisher) = &publisher {
            let every = Duration::from_secs_f64(60.0 / args.orders_per_minute);
            let offset = every.mul_f64(p as f64 / pizzerias.len() as f64);
            tasks.spawn(cashier(
                shared.clone(),
                publisher.clone(),
                *pizzeria,
                started + offset,
                every,
            ));
        }
    }

    // Sample memory while the load runs, for the peak.
    while Instant::now() < deadline {
        tokio::select! {
            _ = sleep(Duration::from_secs(5)) => {}
            _ = sleep_until(deadline) => {}
        }
        for track in &mut memory {
            track.sample(&client).await;
        }
    }
    // Tablets stop at the deadline; taps in flight finish (a request has a 10 s timeout).
    let stragglers = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if stragglers.is_err() {
        eprintln!("some tablets were still busy 30 s after the deadline; stopping them");
        tasks.shutdown().await;
    }
    let elapsed = started.elapsed();
    let ended_wall = Utc::now();
    // bench.sh closes its CPU window here: what follows (the tap → legacy lag queries over
    // the whole run) is the measurement's own cost, about 2 s of PostgreSQL in scenario b.
    println!("kitchen: load ends now");
    std::io::Write::flush(&mut std::io::stdout())?;
    let cpu_used = match (cpu_before, own_cpu_seconds()) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    if let Some(publisher) = publisher.and_then(|p| Arc::try_unwrap(p).ok()) {
        publisher.close().await;
    }

    let results = match shared.results.lock() {
        Ok(mut results) => std::mem::take(&mut *results),
        Err(_) => anyhow::bail!("a tablet panicked while recording"),
    };
    let taps_recorded = results.taps.len() as u64;
    let taps_mirrored_expected = taps_recorded - results.taps_repeated;
    let lag = legacy::wait_for_tap_rows(
        &legacy,
        &range,
        started_wall,
        ended_wall,
        taps_mirrored_expected,
        args.settle,
    )
    .await?;
    for track in &mut memory {
        track.sample(&client).await;
    }

    report(
        &results,
        elapsed,
        cpu_used,
        &memory,
        &lag,
        shared.budget_exhausted.load(Ordering::Relaxed),
    );
    Ok(())
}

/// The HTTP client of the setup (`local: None`) or of a group of tablets.
fn http_client(local: Option<IpAddr>) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        // Below actix-web's 5 s keep-alive: a connection the server is about to close is
        // never picked for the next poll, which would fail it with a transport error.
        .pool_idle_timeout(Duration::from_secs(4))
        .local_address(local)
        .build()
        .context("building the HTTP client")
}

/// The `i`th tablets' source address: 127.0.1.1 and up, all on the loopback interface.
fn source_address(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, i.saturating_add(1)))
}

/// Creates the pizzerias with the tracker's default stations and routes, or finds them.
async fn set_up_pizzerias(
    client: &reqwest::Client,
    tracker: &str,
    token: &str,
    pizzerias: &[Uuid],
    concurrency: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut created = 0;
    let mut in_flight = JoinSet::new();
    let mut next = pizzerias.iter().enumerate();
    loop {
        while in_flight.len() < concurrency.max(1) {
            let Some((i, id)) = next.next() else { break };
            let request = client
                .put(format!("{tracker}/api/v1/pizzerias/{id}"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "name": format!("Loadgen pizzeria {i:05}") }));
            in_flight.spawn(async move {
                let response = request.send().await?;
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                anyhow::Ok((status, body))
            });
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        let (status, body) = done
            .context("a setup task panicked")?
            .context("cannot reach the tracker to create the pizzerias")?;
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => anyhow::bail!("PUT pizzeria answered {other}: {body}"),
        }
    }
    println!(
        "setup: {} pizzerias ready in {:.1} s ({created} created, {} existed)",
        pizzerias.len(),
        started.elapsed().as_secs_f64(),
        pizzerias.len() - created
    );
    Ok(())
}

/// One tablet: polls its screen with `If-None-Match` every `interval` from `first` until the
/// deadline; a station tablet also has its pizzamaker tap each new product after a while.
async fn tablet(
    shared: Arc<Shared>,
    slot: usize,
    session: usize,
    pizzeria: Uuid,
    screen: Screen,
    first: Instant,
    interval: Duration,
) {
    let url = match screen {
        Screen::Station(code) | Screen::Watcher(code) => format!(
            "{}/api/v1/pizzerias/{pizzeria}/stations/{code}/queue",
            shared.tracker
        ),
        Screen::Board => format!("{}/api/v1/pizzerias/{pizzeria}/board", shared.tracker),
    };
    let mut ticker = interval_at(first, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut etag: Option<String> = None;
    // Products this tablet has already handed to its pizzamaker.
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut taps = JoinSet::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = sleep_until(shared.deadline) => break,
        }
        if Instant::now() >= shared.deadline || !shared.take_request() {
            break;
        }
        while taps.try_join_next().is_some() {}
        let conditional = etag.is_some();
        let mut request = shared
            .client(slot)
            .get(&url)
            .bearer_auth(&shared.tokens[session]);
        if let Some(tag) = &etag {
            request = request.header(IF_NONE_MATCH, tag);
        }
        let began = std::time::Instant::now();
        let outcome = async {
            let response = request.send().await?;
            let status = response.status();
            let tag = response
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, tag, body))
        }
        .await;
        let elapsed = began.elapsed();
        let board = screen == Screen::Board;
        let (status, tag, body) = match outcome {
            Ok(ok) => ok,
            Err(e) => {
                shared.record(|r| r.errors.add(failure("poll", &e)));
                continue;
            }
        };
        match status {
            StatusCode::OK => {
                shared.record(|r| {
                    if board {
                        r.board_200.record(elapsed);
                    } else {
                        r.station_200.record(elapsed);
                        if conditional {
                            r.station_conditional.record(elapsed);
                            r.station_200_conditional.record(elapsed);
                        }
                    }
                });
                etag = tag;
                if let Screen::Station(code) = screen {
                    let Ok(queue) = serde_json::from_slice::<QueueBody>(&body) else {
                        shared.record(|r| r.errors.add("poll 200 with an unreadable body"));
                        continue;
                    };
                    let current: HashSet<Uuid> =
                        queue.products.iter().map(|p| p.product_id).collect();
                    // A product that left the queue was tapped; forget it.
                    seen.retain(|id| current.contains(id));
                    for product in current {
                        if seen.insert(product) {
                            taps.spawn(tap(shared.clone(), slot, session, pizzeria, code, product));
                        }
                    }
                }
            }
            StatusCode::NOT_MODIFIED => shared.record(|r| {
                if board {
                    r.board_304.record(elapsed);
                } else {
                    r.station_304.record(elapsed);
                    r.station_conditional.record(elapsed);
                }
            }),
            other => {
                let what = if board { "board" } else { "poll" };
                shared.record(|r| r.errors.add(format!("{what} {}", other.as_u16())));
            }
        }
    }
    while taps.join_next().await.is_some() {}
}

/// A pizzamaker works on the product, then taps it done.
async fn tap(
    shared: Arc<Shared>,
    slot: usize,
    session: usize,
    pizzeria: Uuid,
    station: &'static str,
    product: Uuid,
) {
    let work_done = Instant::now() + shared.work_time();
    if work_done >= shared.deadline {
        return;
    }
    sleep_until(work_done).await;
    if !shared.take_request() {
        return;
    }
    let url = format!(
        "{}/api/v1/pizzerias/{pizzeria}/stations/{station}/products/{product}/tap",
        shared.tracker
    );
    let began = std::time::Instant::now();
    let outcome = async {
        let response = shared
            .client(slot)
            .post(&url)
            .bearer_auth(&shared.tokens[session])
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let elapsed = began.elapsed();
    match outcome {
        Ok((status, body)) if status.is_success() => {
            let repeated = serde_json::from_slice::<TapBody>(&body).is_ok_and(|b| b.repeated);
            shared.record(|r| {
                r.taps.record(elapsed);
                if repeated {
                    r.taps_repeated += 1;
                }
            });
        }
        Ok((status, _)) => shared.record(|r| r.errors.add(format!("tap {}", status.as_u16()))),
        Err(e) => shared.record(|r| r.errors.add(failure("tap", &e))),
    }
}

/// The error label of a request that got no response.
fn failure(what: &str, e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else {
        "transport error"
    };
    format!("{what} {kind}")
}

/// The pizzeria's cashier: sells an order every `every` until the deadline.
async fn cashier(
    shared: Arc<Shared>,
    publisher: Arc<bus::Publisher>,
    pizzeria: Uuid,
    first: Instant,
    every: Duration,
) {
    let mut ticker = interval_at(first, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut number = 0u32;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = sleep_until(shared.deadline) => break,
        }
        number += 1;
        let order = order_placed(pizzeria, number, Utc::now());
        let began = std::time::Instant::now();
        match publisher.publish_event("cashier", 1, &order).await {
            Ok(_) => shared.record(|r| {
                r.publishes.record(began.elapsed());
                r.orders_published += 1;
            }),
            Err(e) => shared.record(|r| r.errors.add(format!("publish: {e:#}"))),
        }
    }
}

fn line(name: &str, summary: Summary, per_second: Option<f64>) {
    let rate = per_second.map_or(String::new(), |r| format!(" ({r:.1}/s)"));
    println!(
        "  {name:<22} {:>8}{rate:<12}  p50 {:>12}  p99 {:>12}  max {:>12}",
        summary.count,
        Millis(summary.p50).to_string(),
        Millis(summary.p99).to_string(),
        Millis(summary.max).to_string(),
    );
}

fn report(
    results: &Results,
    elapsed: Duration,
    cpu_used: Option<f64>,
    memory: &[MemoryTrack],
    lag: &legacy::TapLag,
    budget_exhausted: u64,
) {
    let secs = elapsed.as_secs_f64().max(f64::EPSILON);
    let rate = |n: usize| Some(n as f64 / secs);
    let polls = results.station_200.len()
        + results.station_304.len()
        + results.board_200.len()
        + results.board_304.len();
    let mut stations = results.station_200.clone();
    stations.extend(results.station_304.clone());
    println!("results over {secs:.1} s:");
    println!(
        "  polls/s {:.1}   taps/s {:.1}   orders/s {:.2}",
        polls as f64 / secs,
        results.taps.len() as f64 / secs,
        results.orders_published as f64 / secs
    );
    line(
        "station polls (all)",
        stations.summary(),
        rate(stations.len()),
    );
    line(
        "station polls w/ ETag",
        results.station_conditional.summary(),
        rate(results.station_conditional.len()),
    );
    // What bench.sh divides each process's CPU by: every tap answered (a repeated one is a
    // transaction too) and every order the cashiers sold (the tracker's intake takes each).
    let transactions = results.taps.len() as u64 + results.orders_published;
    println!(
        "  order-flow transactions: {} taps + {} intakes = {transactions} ({:.1}/s)",
        results.taps.len(),
        results.orders_published,
        transactions as f64 / secs
    );
    line("station polls 200", results.station_200.summary(), None);
    line(
        "station polls 200 w/ ETag",
        results.station_200_conditional.summary(),
        None,
    );
    line("station polls 304", results.station_304.summary(), None);
    line("board polls 200", results.board_200.summary(), None);
    line("board polls 304", results.board_304.summary(), None);
    line("taps", results.taps.summary(), rate(results.taps.len()));
    line("order publish+confirm", results.publishes.summary(), None);
    if results.taps_repeated > 0 {
        println!("  repeated taps (no new stage): {}", results.taps_repeated);
    }
    if results.errors.total() == 0 {
        println!("  errors: none");
    } else {
        println!("  errors: {}", results.errors.total());
        for (label, n) in results.errors.iter() {
            println!("    {label:<40} {n}");
        }
    }
    if budget_exhausted > 0 {
        println!("  the --max-requests budget ran out: {budget_exhausted} requests not sent");
    }
    println!(
        "  tap → legacy row lag   {} rows for {} taps answered 200{}  p50 {:>12}  p99 {:>12}  max {:>12}",
        lag.summary.count,
        lag.expected,
        if lag.settled {
            ""
        } else {
            " (NOT all by the end of --settle)"
        },
        Millis(lag.summary.p50).to_string(),
        Millis(lag.summary.p99).to_string(),
        Millis(lag.summary.max).to_string(),
    );
    for track in memory {
        let show = |v: Option<u64>| v.map_or("n/a".to_owned(), mib);
        println!(
            "  {:<12} resident memory at the end {:>10}, peak sampled {:>10}{}",
            track.name,
            show(track.last),
            show(track.peak),
            if track.failures > 0 {
                format!(" ({} scrapes of {} failed)", track.failures, track.url)
            } else {
                String::new()
            }
        );
    }
    if let Some(cpu) = cpu_used {
        println!(
            "  loadgen CPU {cpu:.1} s over {secs:.1} s ({:.0}% of one core)",
            100.0 * cpu / secs
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_tablets_are_four_stations_and_the_board() {
        assert_eq!(
            screens(5),
            vec![
                Screen::Station("dough"),
                Screen::Station("topping"),
                Screen::Station("oven"),
                Screen::Station("packing"),
                Screen::Board,
            ]
        );
        assert_eq!(screens(6)[5], Screen::Watcher("packing"));
        assert_eq!(screens(2).len(), 2);
    }

    #[test]
    fn tablets_connect_from_their_own_loopback_addresses() {
        assert_eq!(source_address(0).to_string(), "127.0.1.1");
        assert_eq!(source_address(15).to_string(), "127.0.1.16");
        assert!(source_address(u8::MAX).is_loopback());
    }

    #[test]
    fn the_budget_runs_out() {
        let shared = Shared {
            clients: vec![reqwest::Client::new()],
            tracker: String::new(),
            tokens: vec![String::new()],
            deadline: Instant::now(),
            budget: AtomicU64::new(2),
            budget_exhausted: AtomicU64::new(0),
            work_min: Duration::from_millis(10),
            work_max: Duration::from_millis(20),
            results: Mutex::new(Results::default()),
        };
        assert!(shared.take_request());
        assert!(shared.take_request());
        assert!(!shared.take_request());
        assert_eq!(shared.budget_exhausted.load(Ordering::Relaxed), 1);
        let work = shared.work_time();
        assert!(work >= Duration::from_millis(10) && work <= Duration::from_millis(20));
    }
}
