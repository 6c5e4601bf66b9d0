//! Rebuilding the legacy mirror from history (`sync-worker rebuild`): reads the bus's history
//! stream (`bus::stream`) from a point in time to where it ended when the command started,
//! applies every event with the worker's own mirror code into a scratch database, and compares
//! the copy with the live legacy tables for what the stream covers ([`compare`]).
//!
//! It is the proof that the mirror is a pure function of the events: a copy rebuilt from the
//! same events must equal the live tables. A difference means a live row was changed by hand,
//! an event was lost on the way, or the mirror code changed how it writes since.

pub mod compare;

use std::collections::HashSet;

use anyhow::Context;
use bus::{
    HandlerError,
    stream::{HistoryReader, Retention, StartAt},
};
use contracts::{DeviceRegistered, Envelope, Event, OrderAcceptedByTracker, UserCreated};
use service_kit::{
    config::{BusSettings, DatabaseSettings},
    shutdown::Shutdown,
};
use sqlx::{ConnectOptions, PgPool, postgres::PgConnectOptions};
use uuid::Uuid;

use crate::{
    config::Settings,
    mirror::{self, Failure},
};

pub use compare::{Comparison, Covered};

/// Declares the history stream. The sync worker is the one service that does (and may): it
/// is the one that reads it back.
pub async fn declare_stream(bus: &BusSettings, retention: &Retention) -> anyhow::Result<()> {
    let (connection, channel) = bus::connection::open_channel(bus, "sync-worker-history").await?;
    bus::topology::declare_event_stream(&channel, bus, retention)
        .await
        .context("declaring the history stream")?;
    let _ = connection.close(200, "declared".into()).await;
    Ok(())
}

/// Declares the history stream when the worker starts, trying again with backoff while the
/// broker is away (`sync-worker run`).
pub async fn keep_stream_declared(bus: BusSettings, retention: Retention, shutdown: Shutdown) {
    let declared = std::sync::atomic::AtomicBool::new(false);
    bus::connection::keep_running("sync-worker-history", &declared, &shutdown, || async {
        declare_stream(&bus, &retention).await?;
        tracing::info!(stream = %bus::stream::stream_name(&bus.exchange), "history stream declared");
        Ok(())
    })
    .await;
}

/// What a rebuild did and found.
#[derive(Debug)]
pub struct Report {
    pub stream: String,
    pub start: StartAt,
    /// Messages read (marks not counted), and their first and last offsets.
    pub read: u64,
    pub offsets: Option<(i64, i64)>,
    /// Events applied to the copy (duplicates of an event already read are not counted).
    pub applied: u64,
    pub duplicates: u64,
    /// Messages or events the live consumer would have dead-lettered too, with the reason.
    pub refused: Vec<(String, String)>,
    /// Events whose order never came: its `OrderAcceptedByTracker` is before the start point,
    /// or gone with the retention.
    pub orphans: Vec<(Uuid, String)>,
    pub comparison: Comparison,
}

impl Report {
    pub fn equal(&self) -> bool {
        self.comparison.equal()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let start = match self.start {
            StartAt::First => "the first event it keeps".to_owned(),
            StartAt::Time(time) => time.to_rfc3339(),
            StartAt::Offset(offset) => format!("offset {offset}"),
        };
        write!(
            f,
            "Read {} messages from {} since {start}",
            self.read, self.stream
        )?;
        match self.offsets {
            Some((first, last)) => writeln!(f, " (offsets {first} to {last}).")?,
            None => writeln!(f, ".")?,
        }
        writeln!(
            f,
            "Applied {} events to the copy; {} repeated deliveries skipped.",
            self.applied, self.duplicates
        )?;
        if !self.refused.is_empty() {
            writeln!(
                f,
                "{} not applied, as the live worker would not apply them either:",
                self.refused.len()
            )?;
            for (what, why) in self.refused.iter().take(SHOWN) {
                writeln!(f, "  {what}: {why}")?;
            }
        }
        if !self.orphans.is_empty() {
            writeln!(
                f,
                "{} events for orders whose OrderAcceptedByTracker is not in what was read \
                 (before the start point or past the retention); their orders are not compared:",
                self.orphans.len()
            )?;
            for (id, why) in self.orphans.iter().take(SHOWN) {
                writeln!(f, "  event {id}: {why}")?;
            }
        }
        write!(f, "{}", self.comparison)
    }
}

/// How many refused events and differences a report lists.
pub const SHOWN: usize = 10;

/// Events applied to the copy per transaction.
const BATCH: usize = 500;

/// Rebuilds the mirror from the stream, starting at `start`, into the database at `scratch`
/// (created if missing, migrated, and required to hold no mirrored rows yet), then compares.
pub async fn rebuild(settings: &Settings, start: StartAt, scratch: &str) -> anyhow::Result<Report> {
    let scratch = scratch_settings(&settings.database, scratch)?;
    crate::db::migrate(&scratch)
        .await
        .context("migrating the scratch database")?;
    let copy = PgPool::connect_with(scratch.connect_options()?)
        .await
        .context("connecting to the scratch database")?;
    refuse_unless_empty(&copy).await?;

    let mut reader = HistoryReader::open(
        &settings.bus,
        "sync-worker-rebuild",
        start,
        settings.history.prefetch,
    )
    .await
    .context("opening the history stream")?;
    let mut report = Report {
        stream: bus::stream::stream_name(&settings.bus.exchange),
        start,
        read: 0,
        offsets: None,
        applied: 0,
        duplicates: 0,
        refused: Vec::new(),
        orphans: Vec::new(),
        comparison: Comparison::default(),
    };
    let mut applier = Applier {
        copy: &copy,
        max_sequence_jump: settings.mirror.max_sequence_jump,
        seen: HashSet::new(),
        waiting: Vec::new(),
        covered: Covered::default(),
    };
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(message) = reader.next().await? {
        report.read += 1;
        report.offsets = Some(match report.offsets {
            Some((first, _)) => (first, message.offset),
            None => (message.offset, message.offset),
        });
        match message.event(&settings.bus) {
            Ok(envelope) if !applier.seen.insert(envelope.id) => report.duplicates += 1,
            Ok(envelope) => {
                applier.cover(&envelope);
                batch.push(envelope);
            }
            Err(reason) => report.refused.push((
                format!("offset {} ({})", message.offset, message.routing_key),
                reason,
            )),
        }
        if batch.len() >= BATCH {
            applier
                .apply(std::mem::take(&mut batch), &mut report)
                .await?;
        }
    }
    reader.close().await;
    applier.apply(batch, &mut report).await?;
    applier.apply_waiting(&mut report).await?;

    let live = settings
        .database
        .connect_options()?
        .connect()
        .await
        .context("connecting to the live legacy database")?;
    let copy = copy.acquire().await?.detach();
    report.comparison = compare::compare(live, copy, &applier.covered).await?;
    Ok(report)
}

/// The scratch database from its URL; never the live one.
fn scratch_settings(live: &DatabaseSettings, url: &str) -> anyhow::Result<DatabaseSettings> {
    let options: PgConnectOptions = url
        .parse()
        .context("--into is not a PostgreSQL URL such as postgres://user@host:5432/scratch")?;
    let name = options
        .get_database()
        .filter(|name| !name.is_empty())
        .context("--into names no database")?
        .to_owned();
    let require_ssl = live.require_ssl;
    let live = live.connect_options()?;
    if options.get_host() == live.get_host()
        && options.get_port() == live.get_port()
        && Some(name.as_str()) == live.get_database()
    {
        anyhow::bail!("--into names the live legacy database; give a scratch database");
    }
    Ok(DatabaseSettings {
        url: Some(url.to_owned().into()),
        host: String::new(),
        port: 0,
        username: String::new(),
        password: String::new().into(),
        database_name: name,
        require_ssl,
        max_connections: 2,
    })
}

/// A copy made on top of older rows would compare those too: the scratch database must hold
/// no mirrored rows.
async fn refuse_unless_empty(copy: &PgPool) -> anyhow::Result<()> {
    let rows: i64 = sqlx::query_scalar(
        "select (select count(*) from orders) + (select count(*) from membership)
              + (select count(*) from devices)",
    )
    .fetch_one(copy)
    .await
    .context("looking at the scratch database")?;
    if rows > 0 {
        anyhow::bail!(
            "the scratch database already holds {rows} mirrored rows; give an empty or new one"
        );
    }
    Ok(())
}

/// Applies events to the copy as the live consumer does, minus the bus: one transaction per
/// batch; an event that fails is left out and the rest applied again.
struct Applier<'a> {
    copy: &'a PgPool,
    max_sequence_jump: i64,
    /// Every event id read: the stream holds an event once per publish, and a relay that lost
    /// a confirm publishes it again.
    seen: HashSet<Uuid>,
    /// Events whose order was not mirrored yet when they were applied, in stream order.
    waiting: Vec<Envelope>,
    covered: Covered,
}

impl Applier<'_> {
    /// An order, user or device counts as covered when the event that creates it was read:
    /// then the copy can hold all of it.
    fn cover(&mut self, envelope: &Envelope) {
        let Ok(subject) = envelope.subject.parse::<Uuid>() else {
            return;
        };
        let kind = envelope.event_type.as_str();
        if kind == OrderAcceptedByTracker::TYPE {
            self.covered.orders.push(subject);
        } else if kind == UserCreated::TYPE {
            self.covered.users.push(subject);
        } else if kind == DeviceRegistered::TYPE {
            self.covered.devices.push(subject);
        }
    }

    async fn apply(
        &mut self,
        mut events: Vec<Envelope>,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        while !events.is_empty() {
            let mut tx = self.copy.begin().await.context("starting a transaction")?;
            let envelopes: Vec<&Envelope> = events.iter().collect();
            match mirror::mirror(&mut tx, &envelopes, self.max_sequence_jump).await {
                Ok(()) => {
                    tx.commit().await.context("committing to the copy")?;
                    report.applied += events.len() as u64;
                    return Ok(());
                }
                Err(Failure::Database(error)) => {
                    return Err(error.context("applying events to the copy"));
                }
                Err(Failure::Events(failed)) => {
                    drop(tx);
                    let mut failed: Vec<(usize, mirror::MirrorError)> = failed;
                    // Take the failed events out from the back, so the positions stay right.
                    failed.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
                    for (index, error) in failed {
                        if index >= events.len() {
                            continue;
                        }
                        let envelope = events.remove(index);
                        match HandlerError::from(error) {
                            HandlerError::Waiting(_) => self.waiting.push(envelope),
                            other => report.refused.push((
                                format!("event {} ({})", envelope.id, envelope.event_type),
                                other.to_string(),
                            )),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the events that waited for their order, again and again while that helps (an
    /// order accepted later in the stream than its first tap), in stream order.
    async fn apply_waiting(&mut self, report: &mut Report) -> anyhow::Result<()> {
        loop {
            let waiting = std::mem::take(&mut self.waiting);
            let before = waiting.len();
            if before == 0 {
                return Ok(());
            }
            for chunk in waiting.chunks(BATCH) {
                self.apply(chunk.to_vec(), report).await?;
            }
            if self.waiting.len() == before {
                report.orphans = self
                    .waiting
                    .iter()
                    .map(|envelope| {
                        (
                            envelope.id,
                            format!("{} for order {}", envelope.event_type, envelope.subject),
                        )
                    })
                    .collect();
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> DatabaseSettings {
        DatabaseSettings {
            url: Some("postgres://postgres@db.example:5432/".to_owned().into()),
            host: String::new(),
            port: 0,
            username: String::new(),
            password: String::new().into(),
            database_name: "legacy".to_owned(),
            require_ssl: true,
            max_connections: 10,
        }
    }

    #[test]
    fn the_scratch_database_is_never_the_live_one() {
        let refused = scratch_settings(&live(), "postgres://other@db.example:5432/legacy")
            .expect_err("the live database");
        assert!(
            refused.to_string().contains("live legacy database"),
            "{refused}"
        );
        let scratch = scratch_settings(&live(), "postgres://postgres@db.example:5432/legacy_copy")
            .expect("a scratch database");
        assert_eq!(scratch.database_name, "legacy_copy");
        assert!(scratch.require_ssl, "as the live connection");
        // The same name on another server is another database.
        assert!(scratch_settings(&live(), "postgres://postgres@elsewhere:5432/legacy").is_ok());
        assert!(scratch_settings(&live(), "postgres://postgres@db.example:5432/").is_err());
        assert!(scratch_settings(&live(), "not a url").is_err());
    }
}
