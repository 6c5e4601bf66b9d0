//! `loadgen chaos`: the driver and checker of `scripts/chaos.sh`.
//!
//! It plays one pizzeria's whole day while the script kills and restarts things under it: the
//! cashier's till sells orders over the bus (and cancels some of them), a shift manager cancels
//! others over HTTP, and the kitchen taps every other order through its stations and hands it
//! over. Everyone retries as a real till or tablet would: until the broker confirms, or until
//! the tracker answers. Then it waits for the system to settle and counts what must be zero:
//! - orders lost: the broker confirmed them, the tracker does not have them;
//! - orders unfinished: neither handed over nor cancelled after the settle time;
//! - states that differ between the tracker and the legacy `orders` table;
//! - history rows applied twice: legacy `order_history` rows equal in all but their ids;
//! - dead letters in the tracker's intake and the sync worker's queues;
//! - outbox rows not yet published (tracker and auth).
//!
//! It prints the counts and fails on any that is not zero.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use chrono::Utc;
use contracts::OrderCancelled;
use reqwest::StatusCode;
use serde::Deserialize;
use sqlx::PgPool;
use tokio::{sync::Mutex, task::JoinSet, time::Instant};
use uuid::Uuid;

use crate::orders::{order_placed, pizzeria_id};

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Orders to sell.
    #[arg(long, default_value_t = 200)]
    pub orders: u32,
    /// Orders in the kitchen at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u32,
    /// Orders the till sells per second at most, so that the run lasts long enough for the
    /// faults to land in the middle of it.
    #[arg(long, default_value_t = 5.0)]
    pub pace: f64,
    /// The pizzeria (by loadgen's index); reruns use another one.
    #[arg(long, default_value_t = 900_000)]
    pub pizzeria: u32,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub tracker: String,
    /// The cashier's till on the bus (its own RabbitMQ user).
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub amqp: String,
    /// A user that may read the dead-letter queues' depth (the administrator).
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub admin_amqp: String,
    #[arg(long, default_value = "kitchen")]
    pub exchange: String,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub tracker_db: String,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub legacy_db: String,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub auth_db: String,
    /// How long one order may take through the kitchen, outages included.
    #[arg(long, default_value = "300s", value_parser = crate::limits::parse_duration)]
    pub order_timeout: Duration,
    /// How long to wait after the last order for the system to settle.
    #[arg(long, default_value = "180s", value_parser = crate::limits::parse_duration)]
    pub settle: Duration,
    /// Also count the orders whose legacy history rows were written out of the tracker's order
    /// (an event applied before an earlier one of its order). Off by default: a retried event
    /// may legitimately be applied late; the multi-replica run (scripts/chaos.sh replicas) has
    /// no handler failures, so there every order must come out in order.
    #[arg(long)]
    pub history_order: bool,
    /// Before settling, wait (up to `--order-timeout`) until this file exists. The fault
    /// injector creates it after its last fault, so that on a slow box, where the faults can
    /// outlast the orders, the counts are still taken after every fault.
    #[arg(long)]
    pub wait_for: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub session: crate::session::SessionArgs,
}

/// What happens to an order: its index decides, so a rerun does the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The till cancels it over the bus right after selling it.
    TillCancels,
    /// A manager cancels it over HTTP once the tracker has it.
    ManagerCancels,
    /// Tapped through every station, then handed over.
    HandedOver,
}

fn fate(index: u32) -> Fate {
    match index % 10 {
        0 => Fate::TillCancels,
        1 => Fate::ManagerCancels,
        _ => Fate::HandedOver,
    }
}

struct Driver {
    args: ChaosArgs,
    http: reqwest::Client,
    token: Mutex<String>,
    password: String,
    till: Mutex<Option<bus::Publisher>>,
    pizzeria: Uuid,
    next: AtomicU32,
    started: Instant,
}

#[derive(Deserialize)]
struct Detail {
    order: OrderStatus,
    products: Vec<Product>,
}

#[derive(Deserialize)]
struct OrderStatus {
    status: String,
}

#[derive(Deserialize)]
struct Product {
    id: Uuid,
    station: Option<String>,
}

/// How often a request that got no answer (or a 5xx) is sent again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building an HTTP client")?;
    let password = std::fs::read_to_string(&args.session.password_file)
        .context("reading the password file")?
        .trim_end_matches(['\r', '\n'])
        .to_owned();
    let pizzeria = pizzeria_id(args.pizzeria);
    let driver = Arc::new(Driver {
        http,
        token: Mutex::new(String::new()),
        password,
        till: Mutex::new(None),
        pizzeria,
        next: AtomicU32::new(0),
        started: Instant::now(),
        args: args.clone(),
    });
    driver.sign_in().await?;
    driver.create_pizzeria().await?;
    println!(
        "chaos: {} orders in pizzeria {pizzeria}, {} at a time",
        args.orders, args.concurrency
    );
    let started = Instant::now();
    let mut kitchen = JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let driver = driver.clone();
        kitchen.spawn(async move { driver.work().await });
    }
    let mut sold = Vec::new();
    let mut stuck = 0u64;
    while let Some(done) = kitchen.join_next().await {
        let (orders, late) = done.context("a kitchen worker panicked")?;
        sold.extend(orders);
        stuck += late;
    }
    println!(
        "chaos: {} orders sold in {:.0} s ({stuck} timed out in the kitchen); settling",
        sold.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.wait_for {
        wait_for_file(path, args.order_timeout).await?;
    }
    let counts = check(&args, &sold).await?;
    println!("chaos: results");
    let mut failed = stuck > 0;
    for (name, value) in [("orders timed out while driving", stuck)]
        .into_iter()
        .chain(counts)
    {
        println!("  {name:<40} {value}");
        failed |= value > 0;
    }
    anyhow::ensure!(!failed, "chaos: some counts are not zero");
    println!("chaos: every count is zero");
    Ok(())
}

impl Driver {
    /// Signs the manager in, retrying while auth is down.
    async fn sign_in(&self) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/sessions", self.args.session.auth);
        let deadline = Instant::now() + self.args.order_timeout;
        loop {
            let answer = self
                .http
                .post(&url)
                .json(&serde_json::json!({
                    "login": self.args.session.login, "password": self.password
                }))
                .send()
                .await;
            if let Ok(response) = answer {
                if response.status() == StatusCode::CREATED {
                    let body: serde_json::Value = response.json().await?;
                    let token = body["token"].as_str().context("no token")?.to_owned();
                    *self.token.lock().await = token;
                    return Ok(());
                }
                if response.status().is_client_error() {
                    anyhow::bail!("signing in: {}", response.status());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "auth never answered");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn create_pizzeria(&self) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/pizzerias/{}", self.args.tracker, self.pizzeria);
        let body = serde_json::json!({ "name": "Chaos pizzeria" });
        let status = self.send(reqwest::Method::PUT, &url, Some(body)).await?;
        anyhow::ensure!(status.is_success(), "creating the pizzeria: {status}");
        Ok(())
    }

    /// Sends a request until it gets an answer that is not a 5xx (or a 401 after a restart of
    /// auth lost nothing: a fresh sign-in). Returns the final status.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<StatusCode> {
        Ok(self.exchange(method, url, body).await?.0)
    }

    async fn exchange(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let deadline = Instant::now() + self.args.order_timeout;
        loop {
            let token = self.token.lock().await.clone();
            let mut request = self.http.request(method.clone(), url).bearer_auth(&token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Ok(response) = request.send().await {
                let status = response.status();
                if status == StatusCode::UNAUTHORIZED {
                    self.sign_in().await?;
                } else if !status.is_server_error() {
                    let bytes = response.bytes().await.unwrap_or_default();
                    return Ok((status, bytes.to_vec()));
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{method} {url}: no answer in time"
            );
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Publishes as the till does: until the broker confirms, reconnecting as needed.
    async fn till_publish<E: contracts::Event>(&self, event: &E) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.args.order_timeout;
        loop {
            let mut till = self.till.lock().await;
            if till.is_none() {
                let bus = crate::bus_settings(&self.args.amqp, &self.args.exchange)?;
                *till = bus::Publisher::connect(&bus, "chaos-till").await.ok();
            }
            if let Some(publisher) = till.as_ref() {
                if publisher.publish_event("cashier", 1, event).await.is_ok() {
                    return Ok(());
                }
                if let Some(broken) = till.take() {
                    broken.close().await;
                }
            }
            drop(till);
            anyhow::ensure!(Instant::now() < deadline, "the broker never took an order");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Takes orders until every one is sold; returns the ids sold and how many timed out.
    async fn work(self: Arc<Self>) -> (Vec<Uuid>, u64) {
        let mut sold = Vec::new();
        let mut stuck = 0;
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.args.orders {
                return (sold, stuck);
            }
            let slot = f64::from(index) / self.args.pace.max(0.01);
            tokio::time::sleep_until(self.started + Duration::from_secs_f64(slot)).await;
            let order = order_placed(self.pizzeria, index + 1, Utc::now());
            if let Err(e) = self.till_publish(&order).await {
                eprintln!("chaos: order {index}: {e:#}");
                stuck += 1;
                continue;
            }
            sold.push(order.order_id);
            if let Err(e) = self.cook(index, order.order_id).await {
                eprintln!("chaos: order {index}: {e:#}");
                stuck += 1;
            }
        }
    }

    async fn cook(&self, index: u32, order_id: Uuid) -> anyhow::Result<()> {
        let base = format!("{}/api/v1/pizzerias/{}", self.args.tracker, self.pizzeria);
        if fate(index) == Fate::TillCancels {
            return self
                .till_publish(&OrderCancelled {
                    order_id,
                    pizzeria_id: self.pizzeria,
                    cancelled_at: Utc::now(),
                    reason: Some("the guest left".into()),
                    actor: Some("till".into()),
                })
                .await;
        }
        let deadline = Instant::now() + self.args.order_timeout;
        loop {
            anyhow::ensure!(Instant::now() < deadline, "not finished in time");
            let (status, body) = self
                .exchange(
                    reqwest::Method::GET,
                    &format!("{base}/orders/{order_id}"),
                    None,
                )
                .await?;
            if status == StatusCode::NOT_FOUND {
                // Not accepted yet: the intake consumer may be restarting.
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            anyhow::ensure!(status.is_success(), "reading the order: {status}");
            let detail: Detail = serde_json::from_slice(&body).context("an order's detail")?;
            match (fate(index), detail.order.status.as_str()) {
                (_, "handed_over" | "cancelled") => return Ok(()),
                (Fate::ManagerCancels, _) => {
                    let url = format!("{base}/orders/{order_id}/cancel");
                    let reason = serde_json::json!({ "reason": "burnt" });
                    self.send(reqwest::Method::POST, &url, Some(reason)).await?;
                }
                (_, "packed") => {
                    let url = format!("{base}/orders/{order_id}/hand-over");
                    self.send(reqwest::Method::POST, &url, None).await?;
                }
                _ => {
                    // Tap what waits; a tap that was applied but whose answer was lost comes
                    // back as a 409 now, and the next read shows where the product is.
                    for product in &detail.products {
                        if let Some(station) = &product.station {
                            let url =
                                format!("{base}/stations/{station}/products/{}/tap", product.id);
                            self.send(reqwest::Method::POST, &url, None).await?;
                        }
                    }
                }
            }
        }
    }
}

/// Waits until `path` exists: the fault injector is done.
async fn wait_for_file(path: &std::path::Path, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !tokio::fs::try_exists(path).await.unwrap_or(false) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}: the fault injector did not finish",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("chaos: the faults are over; counting");
    Ok(())
}

/// Waits (up to `--settle`) until the tracker and the legacy tables agree and every outbox is
/// empty, then returns the counts.
async fn check(args: &ChaosArgs, sold: &[Uuid]) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let tracker = crate::legacy::connect(&args.tracker_db).await?;
    let legacy = crate::legacy::connect(&args.legacy_db).await?;
    let auth = crate::legacy::connect(&args.auth_db).await?;
    let deadline = Instant::now() + args.settle;
    loop {
        let counts = count(args, sold, &tracker, &legacy, &auth).await;
        match counts {
            Ok(counts) if counts.iter().all(|(_, n)| *n == 0) => return Ok(counts),
            Ok(counts) if Instant::now() >= deadline => return Ok(counts),
            Err(e) if Instant::now() >= deadline => return Err(e),
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

async fn count(
    args: &ChaosArgs,
    sold: &[Uuid],
    tracker: &PgPool,
    legacy: &PgPool,
    auth: &PgPool,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let tracked: HashMap<Uuid, String> =
        sqlx::query_as::<_, (Uuid, String)>("select id, status from orders where id = any($1)")
            .bind(sold)
            .fetch_all(tracker)
            .await
            .context("reading the tracker's orders")?
            .into_iter()
            .collect();
    let mirrored: HashMap<Uuid, i16> = sqlx::query_as::<_, (Uuid, i16)>(
        "select order_uuid, status from orders where order_uuid = any($1)",
    )
    .bind(sold)
    .fetch_all(legacy)
    .await
    .context("reading the legacy orders")?
    .into_iter()
    .collect();
    let lost = sold.iter().filter(|id| !tracked.contains_key(id)).count();
    let unfinished = tracked
        .values()
        .filter(|s| !matches!(s.as_str(), "handed_over" | "cancelled"))
        .count();
    let differ = tracked
        .iter()
        .filter(|(id, status)| mirrored.get(id).copied() != Some(legacy_code(status)))
        .count();
    let doubled: i64 = sqlx::query_scalar(
        "select coalesce(sum(n - 1), 0)::bigint from (
             select count(*) as n from order_history h join orders o on o.id = h.order_id
             where o.order_uuid = any($1)
             group by h.order_id, h.status, h.stage, h.station, h.order_item_id, h.happened_at
             having count(*) > 1) d",
    )
    .bind(sold)
    .fetch_one(legacy)
    .await
    .context("counting doubled history rows")?;
    let outbox = unpublished(tracker).await? + unpublished(auth).await?;
    let dead = dead_letters(args).await?;
    let mut counts = Vec::new();
    if args.history_order {
        counts.push((
            "histories out of the tracker's order",
            out_of_order(legacy, sold).await?,
        ));
    }
    Ok(counts
        .into_iter()
        .chain([
            ("orders lost", lost as u64),
            (
                "orders neither handed over nor cancelled",
                unfinished as u64,
            ),
            ("tracker and legacy states that differ", differ as u64),
            ("history rows applied twice", doubled as u64),
            ("dead letters", dead),
            ("unpublished outbox rows", outbox as u64),
        ])
        .collect())
}

/// Orders whose legacy history rows, in the order they were written (`id`), do not follow the
/// tracker's sequence (`event_sequence`, the sequence of the tracker event each row mirrors):
/// an event applied before an earlier one of its order.
async fn out_of_order(legacy: &PgPool, sold: &[Uuid]) -> anyhow::Result<u64> {
    let orders: i64 = sqlx::query_scalar(
        "select count(distinct order_id) from (
             select h.order_id, h.event_sequence,
                    lag(h.event_sequence) over (partition by h.order_id order by h.id) as before
             from order_history h join orders o on o.id = h.order_id
             where o.order_uuid = any($1) and h.event_sequence is not null) r
         where before > event_sequence",
    )
    .bind(sold)
    .fetch_one(legacy)
    .await
    .context("counting histories out of order")?;
    Ok(u64::try_from(orders).unwrap_or(0))
}

async fn unpublished(pool: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar("select count(*) from outbox where published_at is null")
        .fetch_one(pool)
        .await
        .context("counting unpublished outbox rows")
}

/// The legacy status code of a tracker status (migrations/legacy/README.md).
fn legacy_code(status: &str) -> i16 {
    match status {
        "accepted" => 1,
        "in_work" => 2,
        "packed" => 3,
        "handed_over" => 4,
        "cancelled" => 5,
        _ => 0,
    }
}

async fn dead_letters(args: &ChaosArgs) -> anyhow::Result<u64> {
    let bus = crate::bus_settings(&args.admin_amqp, &args.exchange)?;
    let connection = bus::connection::connect(&bus, "chaos-check")
        .await
        .context("connecting to the broker")?;
    let mut total = 0;
    for spec in bus::topology::ALL {
        // A passive declare of a missing queue closes its channel: one channel per queue.
        let channel = connection.create_channel().await?;
        let queue = bus::topology::dead_letter_queue_name(&args.exchange, *spec);
        let declared = channel
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        if let Ok(q) = declared {
            total += u64::from(q.message_count());
        }
    }
    let _ = connection.close(200, "checked".into()).await;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_order_in_ten_is_cancelled_by_the_till_and_one_by_a_manager() {
        let fates: Vec<Fate> = (0..10).map(fate).collect();
        assert_eq!(fates.iter().filter(|f| **f == Fate::TillCancels).count(), 1);
        assert_eq!(
            fates.iter().filter(|f| **f == Fate::ManagerCancels).count(),
            1
        );
    }

    #[test]
    fn tracker_statuses_map_to_the_legacy_codes() {
        assert_eq!(legacy_code("handed_over"), 4);
        assert_eq!(legacy_code("cancelled"), 5);
        assert_eq!(legacy_code("nonsense"), 0);
    }
}
