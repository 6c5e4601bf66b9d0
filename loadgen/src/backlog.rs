//! `loadgen backlog` fills the bus with tracker events as fast as the broker confirms them;
//! `loadgen drain` watches the sync worker work through them.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use tokio::time::{Instant, sleep};

use crate::{
    broker::{ConfirmWindow, event_properties},
    legacy, orders,
};

#[derive(Debug, Clone, clap::Args)]
pub struct BacklogArgs {
    /// How many events to publish.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub amqp: String,
    #[arg(long, default_value = "kitchen")]
    pub exchange: String,
    /// Messages published but not yet confirmed by the broker, at most.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DrainArgs {
    /// How many new inbox rows to wait for.
    #[arg(long)]
    pub expect: u64,
    #[arg(long, value_parser = crate::limits::loopback_url)]
    pub legacy_db: String,
    /// Give up after this long.
    #[arg(long, default_value = "30m", value_parser = crate::limits::parse_duration)]
    pub timeout: Duration,
}

/// The pizzeria the backlog's orders belong to; the legacy tables do not check it.
const BACKLOG_PIZZERIA: u32 = 0xffff_ffff;

/// Publishes `events` tracker events, order by order in sequence, on one channel with a window
/// of unconfirmed messages ([`ConfirmWindow`]); one channel keeps each order's events in order.
pub async fn backlog(args: BacklogArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.window > 0, "--window must be at least 1");
    let bus = crate::bus_settings(&args.amqp, &args.exchange)?;
    // Connecting a `bus::Publisher` declares the exchange and the consumer queues, so nothing
    // published here is unroutable. It waits for each confirm in turn, though, so the
    // publishing itself needs a channel of its own.
    bus::Publisher::connect(&bus, "loadgen-backlog-topology")
        .await
        .context("declaring the topology")?
        .close()
        .await;
    let connection = bus::connection::connect(&bus, "loadgen-backlog")
        .await
        .context("connecting to the broker")?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    // As the tracker's relay does: the sync worker applies only what the owner of `tracker.*`
    // published (`bus::publishers`), so run this as the tracker's RabbitMQ user.
    let user = bus::publishers::own_user(&bus);
    let pizzeria = orders::pizzeria_id(BACKLOG_PIZZERIA);
    let started = Instant::now();
    let mut last_report = started;
    let mut window = ConfirmWindow::new(args.window);
    let mut sent = 0u64;
    let mut number = 0u32;
    println!(
        "backlog: publishing {} tracker events to exchange {} ({} unconfirmed at most)",
        args.events, args.exchange, args.window
    );
    'orders: while sent < args.events {
        number = number.wrapping_add(1);
        for event in orders::tracker_lifecycle(pizzeria, number, Utc::now())
            .context("building an order's events")?
        {
            if sent == args.events {
                break 'orders;
            }
            let body = serde_json::to_vec(&event.envelope).context("encoding an envelope")?;
            let confirm = channel
                .basic_publish(
                    args.exchange.as_str().into(),
                    event.routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    bus::publishers::stamp(event_properties(&event), &user),
                )
                .await
                .context("publishing")?;
            window.push(confirm).await?;
            sent += 1;
            if last_report.elapsed() >= Duration::from_secs(5) {
                last_report = Instant::now();
                println!(
                    "  {sent} published, {:.0} events/s",
                    sent as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    window.finish().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backlog: {sent} events ({number} orders) published and confirmed in {secs:.1} s, {:.0} events/s",
        sent as f64 / secs
    );
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// Waits until the legacy inbox holds `expect` more rows than when it started, and prints the
/// rate, by the wall clock from the first new row and by the rows' own `processed_at`.
pub async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let pool = legacy::connect(&args.legacy_db).await?;
    let baseline = legacy::inbox_rows(&pool).await?;
    let inserts_baseline = legacy::inbox_inserts(&pool).await?;
    println!(
        "drain: inbox has {baseline} rows; waiting for {} more",
        args.expect
    );
    let started = Instant::now();
    let give_up = started + args.timeout;
    let mut first_row_at: Option<Instant> = None;
    let mut last_report = started;
    let mut last_done = 0u64;
    let mut stalled_since = started;
    let done = loop {
        // Progress from the statistics; an exact count only to confirm the end.
        let mut done = legacy::inbox_inserts(&pool)
            .await?
            .saturating_sub(inserts_baseline);
        if done >= args.expect {
            done = legacy::inbox_rows(&pool).await?.saturating_sub(baseline);
        }
        let now = Instant::now();
        if done > 0 && first_row_at.is_none() {
            // Polled every 250 ms until the first row; the statistics lag up to a second.
            first_row_at = Some(now);
        }
        if done != last_done {
            stalled_since = now;
        }
        if done >= args.expect {
            break done;
        }
        if now >= give_up {
            anyhow::bail!(
                "gave up after {:?}: {done} of {} events mirrored; look for retries and dead letters \
                 (sync-worker dead-letters list)",
                args.timeout,
                args.expect
            );
        }
        if now.duration_since(last_report) >= Duration::from_secs(5) {
            let window = now.duration_since(last_report).as_secs_f64();
            println!(
                "  {done} of {} mirrored, {:.0} events/s over the last {window:.0} s{}",
                args.expect,
                (done - last_done.min(done)) as f64 / window,
                if done > 0 && now.duration_since(stalled_since) > Duration::from_secs(30) {
                    " (no progress for 30 s)"
                } else {
                    ""
                }
            );
            last_report = now;
            last_done = done;
        }
        sleep(if first_row_at.is_some() {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(250)
        })
        .await;
    };
    let wall = first_row_at
        .map(|first| first.elapsed())
        .unwrap_or_default()
        .as_secs_f64()
        .max(f64::EPSILON);
    println!(
        "drain: {done} events mirrored in {wall:.1} s from the first row: {:.0} events/s (wall clock, ±1.5 s)",
        done as f64 / wall
    );
    if let Some(span) = legacy::newest_span(&pool, args.expect).await? {
        let span = span.as_secs_f64().max(f64::EPSILON);
        println!(
            "drain: by inbox.processed_at, the newest {} rows span {span:.1} s: {:.0} events/s",
            args.expect,
            args.expect as f64 / span
        );
    }
    Ok(())
}
