//! Scenario d: the tracker comes back after a long broker outage with its outbox full.
//! `loadgen outbox-fill` stages the events while the tracker is stopped, `loadgen relay-watch`
//! times the tracker's relay publishing them, and `loadgen relay-check` reads them back from
//! the sync worker's queue (the worker stopped) to check that each order's events arrived in
//! sequence.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use chrono::Utc;
use lapin::{
    options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde::Deserialize;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::time::{Instant, sleep};
use uuid::Uuid;

use crate::{
    broker::{Acks, take},
    orders::{self, Outgoing},
};

/// The pizzeria the relay scenario's orders belong to: not the backlog's (scenario c), so the
/// check can tell them apart.
const RELAY_PIZZERIA: u32 = 0xffff_fffe;

#[derive(Debug, Clone, clap::Args)]
pub struct OutboxFillArgs {
    /// How many events to stage.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// The tracker's database; the tracker must be stopped.
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub tracker_db: String,
    /// Rows per insert statement.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
    /// Orders whose events are interleaved, as a busy chain stages them: every order's first
    /// event, then every order's second, and so on.
    #[arg(long, default_value_t = 1000)]
    pub wave: u32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RelayWatchArgs {
    /// The tracker's database.
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub tracker_db: String,
    /// Give up after this long.
    #[arg(long, default_value = "30m", value_parser = crate::limits::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RelayCheckArgs {
    /// How many of the relay's events the queue should hold; everything in it is read.
    #[arg(long)]
    pub expect: u64,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub amqp: String,
    #[arg(long, default_value = "kitchen")]
    pub exchange: String,
    #[arg(long, default_value_t = 2000)]
    pub prefetch: u16,
    /// Give up once the queue has been silent this long.
    #[arg(long, default_value = "30s", value_parser = crate::limits::parse_duration)]
    pub idle: Duration,
}

async fn connect(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connecting to the tracker database")
}

async fn unpublished(pool: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar("select count(*) from outbox where published_at is null")
        .fetch_one(pool)
        .await
        .context("counting unpublished outbox rows")
}

/// Stages `events` events straight into the tracker's outbox, shaped as `Outbox::stage`
/// shapes them (the same `Envelope::wrap` with `sequence` counting up per order, the routing
/// key, the envelope as `jsonb`), several thousand rows per set-based insert.
pub async fn fill(args: OutboxFillArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.batch > 0 && args.wave > 0,
        "--batch and --wave must be at least 1"
    );
    let pool = connect(&args.tracker_db).await?;
    let pizzeria = orders::pizzeria_id(RELAY_PIZZERIA);
    let started = Instant::now();
    let mut rows = Rows::with_capacity(args.batch);
    let mut staged = 0u64;
    let mut number = 0u32;
    // Orders with at least one event staged: the last wave may be cut short.
    let mut orders_staged = 0u64;
    'waves: while staged < args.events {
        let mut wave = Vec::with_capacity(args.wave as usize);
        for _ in 0..args.wave {
            number = number.wrapping_add(1);
            wave.push(
                orders::tracker_lifecycle(pizzeria, number, Utc::now())
                    .context("building an order's events")?,
            );
        }
        let longest = wave.iter().map(Vec::len).max().unwrap_or(0);
        for step in 0..longest {
            for event in wave.iter().filter_map(|order| order.get(step)) {
                if staged == args.events {
                    break 'waves;
                }
                rows.push(event)?;
                staged += 1;
                if step == 0 {
                    orders_staged += 1;
                }
                if rows.len() == args.batch {
                    rows.insert(&pool).await?;
                }
            }
        }
    }
    rows.insert(&pool).await?;
    // What autovacuum would have done during a long outage; the relay's plan depends on it.
    sqlx::query("analyze outbox")
        .execute(&pool)
        .await
        .context("analysing the outbox")?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "outbox-fill: {staged} events of {orders_staged} orders staged in {secs:.1} s ({:.0} rows/s); \
         the outbox holds {} unpublished rows",
        staged as f64 / secs,
        unpublished(&pool).await?
    );
    Ok(())
}

/// Columns of the rows waiting to be inserted.
struct Rows {
    event_ids: Vec<Uuid>,
    routing_keys: Vec<String>,
    payloads: Vec<String>,
}

impl Rows {
    fn with_capacity(n: usize) -> Self {
        Rows {
            event_ids: Vec::with_capacity(n),
            routing_keys: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.event_ids.len()
    }

    fn push(&mut self, event: &Outgoing) -> anyhow::Result<()> {
        self.event_ids.push(event.envelope.id);
        self.routing_keys.push(event.routing_key.clone());
        self.payloads
            .push(serde_json::to_string(&event.envelope).context("encoding an envelope")?);
        Ok(())
    }

    /// One statement for the lot; ids are taken in array order (`order by n`), so each
    /// order's events get increasing ids, as separate transactions would have given them.
    async fn insert(&mut self, pool: &PgPool) -> anyhow::Result<()> {
        if self.event_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into outbox (event_id, routing_key, payload)
             select event_id, routing_key, payload::jsonb
             from unnest($1::uuid[], $2::text[], $3::text[]) with ordinality
                  as staged(event_id, routing_key, payload, n)
             order by n",
        )
        .bind(&self.event_ids)
        .bind(&self.routing_keys)
        .bind(&self.payloads)
        .execute(pool)
        .await
        .context("inserting outbox rows")?;
        self.event_ids.clear();
        self.routing_keys.clear();
        self.payloads.clear();
        Ok(())
    }
}

/// Waits until the outbox has no unpublished row left, and prints the rate by the wall clock
/// and by the rows' own `published_at`.
pub async fn watch(args: RelayWatchArgs) -> anyhow::Result<()> {
    let pool = connect(&args.tracker_db).await?;
    let expect = unpublished(&pool).await?;
    anyhow::ensure!(expect > 0, "the outbox has no unpublished rows to watch");
    let updates_baseline = outbox_updates(&pool).await?;
    println!("relay: {expect} unpublished outbox rows; waiting for the relay to publish them");
    let started = Instant::now();
    let give_up = started + args.timeout;
    let mut first_seen: Option<Instant> = None;
    let mut last_report = started;
    let mut last_done = 0i64;
    let mut last_change = (started, 0i64);
    loop {
        // Progress from the statistics: cheap, and up to a second behind while the relay is
        // busy (10 s once its connection idles at the end). What is left is counted exactly
        // only when they say it is done or stop moving for 3 s: that count walks the whole
        // partial index, 170 ms of PostgreSQL's CPU at a million rows.
        let done = outbox_updates(&pool).await? - updates_baseline;
        let now = Instant::now();
        if done > 0 && first_seen.is_none() {
            first_seen = Some(now);
        }
        if done != last_change.1 {
            last_change = (now, done);
        }
        let stalled =
            first_seen.is_some() && now.duration_since(last_change.0) >= Duration::from_secs(3);
        if (done >= expect || stalled) && unpublished(&pool).await? == 0 {
            break;
        }
        if stalled {
            last_change = (now, done);
        }
        anyhow::ensure!(
            now < give_up,
            "gave up after {:?}: about {done} of {expect} rows published",
            args.timeout
        );
        if now.duration_since(last_report) >= Duration::from_secs(5) {
            let window = now.duration_since(last_report).as_secs_f64();
            println!(
                "  about {done} of {expect} published, {:.0} events/s over the last {window:.0} s",
                (done - last_done.min(done)) as f64 / window
            );
            last_report = now;
            last_done = done;
        }
        sleep(if first_seen.is_some() {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(250)
        })
        .await;
    }
    let wall = first_seen
        .map(|first| first.elapsed())
        .unwrap_or_default()
        .as_secs_f64()
        .max(f64::EPSILON);
    println!(
        "relay: {expect} events published in {wall:.1} s from the first one seen: {:.0} events/s (wall clock, ±1.5 s)",
        expect as f64 / wall
    );
    let span: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from (max(published_at) - min(published_at)))::float8
         from (select published_at from outbox order by id desc limit $1) newest",
    )
    .bind(expect)
    .fetch_one(&pool)
    .await
    .context("reading the relay's time span")?;
    if let Some(span) = span {
        let span = span.max(f64::EPSILON);
        println!(
            "relay: by outbox.published_at, the newest {expect} rows span {span:.1} s: {:.0} events/s",
            expect as f64 / span
        );
    }
    Ok(())
}

/// Rows of the outbox ever updated, by PostgreSQL's statistics: the relay updates each row
/// once, to set `published_at`.
async fn outbox_updates(pool: &PgPool) -> anyhow::Result<i64> {
    let n: Option<i64> = sqlx::query_scalar(
        "select n_tup_upd from pg_stat_user_tables where relname = 'outbox' limit 1",
    )
    .fetch_optional(pool)
    .await
    .context("reading the outbox statistics")?;
    Ok(n.unwrap_or(0))
}

/// What the check reads of each event: the order, its sequence and its pizzeria.
#[derive(Deserialize)]
struct Sequenced {
    subject: String,
    sequence: i64,
    data: SequencedData,
}

#[derive(Deserialize)]
struct SequencedData {
    pizzeria_id: Option<Uuid>,
}

/// Per-order order of the events as they arrive.
#[derive(Debug, Default)]
struct OrderCheck {
    last: HashMap<String, i64>,
    /// The event right after the order's previous one.
    in_sequence: u64,
    /// An order's first event that was not its sequence 1.
    started_late: u64,
    /// An event at or below a sequence its order already showed: out of order or repeated.
    backwards: u64,
    /// An event that skipped sequences (the skipped ones come later, or never).
    skipped_ahead: u64,
    /// Events of other pizzerias, or unreadable ones: not the relay's.
    foreign: u64,
}

impl OrderCheck {
    fn see(&mut self, body: &[u8], pizzeria: Uuid) {
        let Ok(event) = serde_json::from_slice::<Sequenced>(body) else {
            self.foreign += 1;
            return;
        };
        if event.data.pizzeria_id != Some(pizzeria) {
            self.foreign += 1;
            return;
        }
        let expected = match self.last.get(&event.subject) {
            Some(&last) if event.sequence <= last => {
                self.backwards += 1;
                return;
            }
            Some(&last) => last + 1,
            None => 1,
        };
        if event.sequence == expected {
            self.in_sequence += 1;
        } else if expected == 1 {
            self.started_late += 1;
        } else {
            self.skipped_ahead += 1;
        }
        self.last.insert(event.subject, event.sequence);
    }

    fn ok(&self) -> bool {
        self.backwards == 0 && self.skipped_ahead == 0 && self.started_late == 0
    }
}

/// Reads every message in the sync worker's partitions, checks that `expect` of them are the
/// relay's, and that each order's sequences arrive one by one. The events are acknowledged, so the sync worker must be stopped, and
/// they never reach the legacy tables: this is for the benchmark's private stack only.
pub async fn check(args: RelayCheckArgs) -> anyhow::Result<()> {
    let bus = crate::bus_settings(&args.amqp, &args.exchange)?;
    let connection = bus::connection::connect(&bus, "loadgen-relay-check")
        .await
        .context("connecting to the broker")?;
    let pizzeria = orders::pizzeria_id(RELAY_PIZZERIA);
    let mut order_check = OrderCheck::default();
    let started = Instant::now();
    let mut taken = 0;
    // An order's events are all in one partition, so reading the partitions one after the
    // other still sees each order's events in the order the broker holds them.
    for queue in bus::topology::partition_queue_names(&bus, bus::topology::LEGACY_SYNC) {
        let channel = connection.create_channel().await?;
        let waiting = channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("looking up {queue}"))?
            .message_count();
        println!(
            "relay-check: {queue} holds {waiting} messages; reading them all, {} expected from \
             the relay in all partitions",
            args.expect
        );
        channel
            .basic_qos(args.prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "loadgen-relay-check".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("consuming the sync worker's queue")?;
        taken += take(
            &mut consumer,
            u64::from(waiting),
            Acks::Multiple { every: 500 },
            args.idle,
            |delivery| order_check.see(&delivery.data, pizzeria),
        )
        .await?;
        let _ = channel.close(200, "read".into()).await;
    }
    let _ = connection.close(200, "checked".into()).await;
    let ours = taken - order_check.foreign;
    println!(
        "relay-check: read {ours} events of {} orders in {:.1} s; {} in sequence, {} backwards \
         (out of order or repeated), {} skipped ahead, {} orders not starting at 1, and {} \
         messages that were not the relay's",
        order_check.last.len(),
        started.elapsed().as_secs_f64(),
        order_check.in_sequence,
        order_check.backwards,
        order_check.skipped_ahead,
        order_check.started_late,
        order_check.foreign
    );
    anyhow::ensure!(
        ours == args.expect,
        "{ours} of the relay's events were in the partitions, not {}",
        args.expect
    );
    anyhow::ensure!(
        order_check.ok(),
        "some orders' events did not arrive in sequence"
    );
    println!("relay-check: every order's events arrived in sequence");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(order: &str, sequence: i64, pizzeria: Uuid) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "subject": order, "sequence": sequence, "data": { "pizzeria_id": pizzeria }
        }))
        .unwrap_or_default()
    }

    #[test]
    fn orders_in_sequence_pass_interleaved() {
        let p = orders::pizzeria_id(RELAY_PIZZERIA);
        let mut check = OrderCheck::default();
        for (order, sequence) in [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3)] {
            check.see(&body(order, sequence, p), p);
        }
        assert!(check.ok());
        assert_eq!((check.in_sequence, check.last.len()), (5, 2));
    }

    #[test]
    fn a_late_event_is_caught() {
        let p = orders::pizzeria_id(RELAY_PIZZERIA);
        let mut check = OrderCheck::default();
        for sequence in [1, 3, 2] {
            check.see(&body("a", sequence, p), p);
        }
        assert!(!check.ok());
        assert_eq!((check.skipped_ahead, check.backwards), (1, 1));
        check.see(&body("b", 2, p), p);
        assert_eq!(check.started_late, 1);
    }

    #[test]
    fn other_pizzerias_are_not_counted() {
        let p = orders::pizzeria_id(RELAY_PIZZERIA);
        let mut check = OrderCheck::default();
        check.see(&body("a", 5, orders::pizzeria_id(1)), p);
        check.see(b"not json", p);
        assert_eq!((check.foreign, check.last.len()), (2, 0));
        assert!(check.ok());
    }
}
