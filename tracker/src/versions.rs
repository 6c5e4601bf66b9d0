//! The station queue and board versions, held in memory so that an unchanged poll (thousands of
//! tablets every 10 s, most of them unchanged) costs no database round trip.
//!
//! PostgreSQL tells every tracker instance about every bump: a trigger on `stations` and
//! `pizzerias` (migration `..._version_notify.sql`) sends `pg_notify('kitchen_versions', ...)`
//! from the transaction that bumps, so the notification is delivered when, and only if, it
//! commits. [`VersionListener`] holds a `LISTEN` connection of its own and feeds [`Versions`].
//!
//! The map is trusted only under a *lease*, as the access caches are (ARCHITECTURE.md, "Staff
//! access"): once listening, the task proves its connection with a round trip every
//! [`PROBE_EVERY`], and each proof lets the map be used for [`LEASE`] from the moment the probe
//! was sent (PostgreSQL sends the notifications of everything committed before a query ahead of
//! its answer, so a proof also means nothing committed before it is still on its way). A
//! dropped connection ends the lease at once, a silent one lets it lapse; either way the map is
//! cleared and every poll reads the database until the listener is back and primed again.
//! So a version served from memory is behind a committed change by at most the notification's
//! latency (milliseconds), and never by more than [`LEASE`].
//!
//! Read-your-writes within one instance: a transaction that bumps a version also tells the map
//! which version it is about to commit ([`Versions::expect`]). Until the map has seen that
//! version, polls of that key go to the database, so the tablet that tapped sees its change on
//! its very next poll, even before the notification has arrived. Other instances see it when
//! their notification arrives.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use anyhow::Context;
use bus::connection::Backoff;
use service_kit::{config::DatabaseSettings, shutdown::Shutdown};
use sqlx::{
    PgPool,
    postgres::{PgListener, PgPoolOptions},
};
use uuid::Uuid;

/// The notification channel the version triggers send on.
pub const CHANNEL: &str = "kitchen_versions";
/// How long one proof of the `LISTEN` connection lets the map be used.
pub const LEASE: Duration = Duration::from_millis(750);
/// How often the listener proves its connection.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// The listener's connection shows under this name in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "tracker-versions";
/// A probe slower than this counts as a lost connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a version this process is committing keeps its key on the database when its
/// notification never comes (the transaction rolled back). Reading the database is always
/// correct, so this only bounds the cost of a rollback.
const EXPECT_FOR: Duration = Duration::from_secs(5);

/// What a version counts the changes of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionKey {
    /// `stations.queue_version`.
    Station { pizzeria_id: Uuid, code: String },
    /// `pizzerias.board_version`.
    Board(Uuid),
}

impl VersionKey {
    pub fn station(pizzeria_id: Uuid, code: &str) -> Self {
        VersionKey::Station {
            pizzeria_id,
            code: code.to_owned(),
        }
    }

    /// Reads a notification: `s <pizzeria> <version> <station>` or `b <pizzeria> <version>`.
    pub fn parse_notification(payload: &str) -> Option<(Self, i64)> {
        let mut parts = payload.splitn(4, ' ');
        let kind = parts.next()?;
        let pizzeria_id: Uuid = parts.next()?.parse().ok()?;
        let version: i64 = parts.next()?.parse().ok()?;
        let key = match (kind, parts.next()) {
            ("s", Some(code)) if !code.is_empty() => VersionKey::station(pizzeria_id, code),
            ("b", None) => VersionKey::Board(pizzeria_id),
            _ => return None,
        };
        Some((key, version))
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The current version, as far as committed changes go (up to the notification latency).
    Known(i64),
    /// Ask the database; pass `generation` to [`Versions::store`] with what it said.
    Miss { generation: u64 },
}

/// The in-process map (pizzeria, station) → queue version and pizzeria → board version. Cheap to
/// clone: every clone shares the map.
#[derive(Clone, Default)]
pub struct Versions {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    versions: HashMap<VersionKey, i64>,
    /// Versions this process is committing that the map has not seen yet, and until when to
    /// wait for them.
    expected: HashMap<VersionKey, (i64, Instant)>,
    /// Bumped whenever the map is cleared, so a database read that started before does not
    /// store what it read into the new map.
    generation: u64,
    lease_until: Option<Instant>,
}

impl State {
    fn usable(&self, now: Instant) -> bool {
        self.lease_until.is_some_and(|until| now < until)
    }

    fn clear(&mut self) {
        self.versions.clear();
        self.generation += 1;
    }

    /// Versions only grow, so the larger of what is known and what was heard wins, whatever
    /// order a notification and a database read arrive in.
    fn merge(&mut self, key: VersionKey, version: i64) {
        if let Some((want, _)) = self.expected.get(&key)
            && version >= *want
        {
            self.expected.remove(&key);
        }
        let known = self.versions.entry(key).or_insert(version);
        *known = (*known).max(version);
    }
}

impl Versions {
    pub fn new() -> Self {
        Versions::default()
    }

    pub fn lookup(&self, key: &VersionKey) -> Lookup {
        let now = Instant::now();
        let state = self.state();
        let miss = Lookup::Miss {
            generation: state.generation,
        };
        if !state.usable(now) {
            return miss;
        }
        let known = state.versions.get(key).copied();
        if let Some((want, until)) = state.expected.get(key)
            && now < *until
            && known.is_none_or(|v| v < *want)
        {
            return miss;
        }
        known.map_or(miss, Lookup::Known)
    }

    /// Stores what the database said after a miss, unless the map was cleared since.
    pub fn store(&self, key: VersionKey, version: i64, generation: u64) {
        let mut state = self.state();
        if state.usable(Instant::now()) && state.generation == generation {
            state.merge(key, version);
        }
    }

    /// What a notification said.
    pub fn heard(&self, key: VersionKey, version: i64) {
        let mut state = self.state();
        if state.usable(Instant::now()) {
            state.merge(key, version);
        }
    }

    /// A transaction of this process is about to commit `version` of `key`: until the map has
    /// seen it, `key` is read from the database.
    pub fn expect(&self, key: VersionKey, version: i64) {
        let mut state = self.state();
        let until = Instant::now() + EXPECT_FOR;
        let entry = state.expected.entry(key).or_insert((version, until));
        *entry = (entry.0.max(version), until);
    }

    /// Whether the map is being used right now (the listener holds its lease).
    pub fn in_use(&self) -> bool {
        self.state().usable(Instant::now())
    }

    pub fn len(&self) -> usize {
        self.state().versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// After a lapse the map starts empty, because notifications may have been missed.
    fn renew_lease(&self, until: Instant) {
        let now = Instant::now();
        let mut state = self.state();
        if !state.usable(now) {
            state.clear();
        }
        state.lease_until = Some(until);
        state.expected.retain(|_, (_, until)| now < *until);
    }

    fn end_lease(&self) {
        let mut state = self.state();
        state.lease_until = None;
        state.clear();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Entries are independent numbers; a panic elsewhere cannot leave one half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The background task behind [`Versions`]: `LISTEN kitchen_versions` on a connection of its
/// own, primed with every version, reconnecting with backoff. Without it the map is never used
/// and every poll reads the database.
pub struct VersionListener {
    versions: Versions,
    database: DatabaseSettings,
    shutdown: Shutdown,
}

enum Step {
    Heard(Option<sqlx::postgres::PgNotification>),
    Probe,
    Stop,
}

impl VersionListener {
    pub fn new(versions: Versions, database: DatabaseSettings, shutdown: Shutdown) -> Self {
        VersionListener {
            versions,
            database,
            shutdown,
        }
    }

    /// Runs until shutdown; the map is bypassed while the listener is down.
    pub async fn run(self) {
        let pool = match self.database.connect_options() {
            // One connection, outside the request pool, so listening never takes a slot from
            // the handlers.
            Ok(options) => PgPoolOptions::new()
                .max_lifetime(None)
                .idle_timeout(None)
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(options.application_name(APPLICATION_NAME)),
            Err(e) => {
                tracing::error!(error = %e, "bad database settings; queue versions come from the database");
                return;
            }
        };
        let mut backoff = Backoff::default();
        while !self.shutdown.is_triggered() {
            let result = self.session(&pool, &mut backoff).await;
            self.versions.end_lease();
            match result {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        error = format!("{e:#}"),
                        ?delay,
                        "queue version listener lost its connection; polls read the database until it is back"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = self.shutdown.wait() => break,
                    }
                }
            }
        }
        self.versions.end_lease();
        pool.close().await;
    }

    async fn session(&self, pool: &PgPool, backoff: &mut Backoff) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(pool)
            .await
            .context("connecting the listener")?;
        // A lost connection must end the session (and the lease), not be papered over.
        listener.eager_reconnect(false);
        listener
            .listen(CHANNEL)
            .await
            .with_context(|| format!("LISTEN {CHANNEL}"))?;
        // Listening from here on: everything committed after this read is heard.
        let started = Instant::now();
        let stations: Vec<(Uuid, String, i64)> =
            sqlx::query_as("select pizzeria_id, code, queue_version from stations")
                .fetch_all(&mut listener)
                .await
                .context("reading the queue versions")?;
        let boards: Vec<(Uuid, i64)> = sqlx::query_as("select id, board_version from pizzerias")
            .fetch_all(&mut listener)
            .await
            .context("reading the board versions")?;
        self.versions.renew_lease(started + LEASE);
        let primed = stations.len() + boards.len();
        for (pizzeria_id, code, version) in stations {
            self.versions
                .heard(VersionKey::Station { pizzeria_id, code }, version);
        }
        for (pizzeria_id, version) in boards {
            self.versions.heard(VersionKey::Board(pizzeria_id), version);
        }
        self.drain(&mut listener);
        backoff.reset();
        tracing::info!(primed, "queue version listener is listening");

        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `try_recv` is cancel-safe (sqlx reads whole messages into its own buffer), so
            // losing the race to the probe loses no notification.
            let step = tokio::select! {
                heard = listener.try_recv() => Step::Heard(heard.context("receiving notifications")?),
                _ = probe.tick() => Step::Probe,
                _ = self.shutdown.wait() => Step::Stop,
            };
            match step {
                Step::Heard(Some(notification)) => self.apply(notification.payload()),
                Step::Heard(None) => anyhow::bail!("the listener's connection was lost"),
                Step::Probe => {
                    let started = Instant::now();
                    tokio::time::timeout(
                        PROBE_TIMEOUT,
                        sqlx::query("select 1").execute(&mut listener),
                    )
                    .await
                    .context("the database did not answer the probe in time")?
                    .context("probing the listener's connection")?;
                    // What was committed before the probe has arrived with its answer.
                    self.drain(&mut listener);
                    self.versions.renew_lease(started + LEASE);
                }
                Step::Stop => return Ok(()),
            }
        }
    }

    /// Applies the notifications that arrived while a query ran.
    fn drain(&self, listener: &mut PgListener) {
        while let Some(notification) = listener.next_buffered() {
            self.apply(notification.payload());
        }
    }

    fn apply(&self, payload: &str) {
        match VersionKey::parse_notification(payload) {
            Some((key, version)) => self.versions.heard(key, version),
            None => {
                // Only our triggers send on this channel; an unknown payload means a newer
                // schema. Forgetting everything is always safe.
                tracing::warn!(
                    payload,
                    "an unreadable version notification; clearing the map"
                );
                self.versions.state().clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leased() -> Versions {
        let versions = Versions::new();
        versions.renew_lease(Instant::now() + Duration::from_secs(60));
        versions
    }

    fn oven(p: Uuid) -> VersionKey {
        VersionKey::station(p, "oven")
    }

    #[test]
    fn notifications_parse() {
        let p = Uuid::now_v7();
        assert_eq!(
            VersionKey::parse_notification(&format!("s {p} 42 oven")),
            Some((oven(p), 42))
        );
        assert_eq!(
            VersionKey::parse_notification(&format!("b {p} 7")),
            Some((VersionKey::Board(p), 7))
        );
        for bad in [
            format!("b {p} 7 oven"),
            format!("s {p} 7"),
            format!("s {p} x oven"),
            "s nope 1 oven".to_owned(),
            "x".to_owned(),
            String::new(),
        ] {
            assert_eq!(VersionKey::parse_notification(&bad), None, "{bad}");
        }
    }

    #[test]
    fn without_a_lease_nothing_is_known_or_stored() {
        let versions = Versions::new();
        let p = Uuid::now_v7();
        versions.heard(oven(p), 3);
        let Lookup::Miss { generation } = versions.lookup(&oven(p)) else {
            panic!("a miss without a lease");
        };
        versions.store(oven(p), 3, generation);
        assert!(versions.is_empty());
        assert!(!versions.in_use());
    }

    #[test]
    fn versions_only_grow_whatever_the_order_of_arrival() {
        let versions = leased();
        let p = Uuid::now_v7();
        let Lookup::Miss { generation } = versions.lookup(&oven(p)) else {
            panic!("empty map");
        };
        versions.heard(oven(p), 5);
        // A database read that started before the notification arrived.
        versions.store(oven(p), 4, generation);
        assert_eq!(versions.lookup(&oven(p)), Lookup::Known(5));
        versions.heard(VersionKey::Board(p), 2);
        assert_eq!(versions.lookup(&VersionKey::Board(p)), Lookup::Known(2));
        assert!(matches!(
            versions.lookup(&VersionKey::station(p, "dough")),
            Lookup::Miss { .. }
        ));
    }

    #[test]
    fn a_lost_lease_clears_the_map_and_stale_reads_are_not_stored() {
        let versions = leased();
        let p = Uuid::now_v7();
        versions.heard(oven(p), 5);
        let Lookup::Miss { generation } = versions.lookup(&VersionKey::Board(p)) else {
            panic!("unknown board");
        };
        versions.end_lease();
        assert!(matches!(versions.lookup(&oven(p)), Lookup::Miss { .. }));
        versions.renew_lease(Instant::now() + Duration::from_secs(60));
        assert!(versions.is_empty(), "a new lease starts empty");
        versions.store(VersionKey::Board(p), 1, generation);
        assert!(
            versions.is_empty(),
            "a read from before the loss is dropped"
        );
        // A lapsed lease clears too, at the next renewal.
        versions.heard(oven(p), 6);
        versions.renew_lease(Instant::now());
        versions.renew_lease(Instant::now() + Duration::from_secs(60));
        assert!(versions.is_empty());
    }

    #[test]
    fn a_version_this_process_commits_is_read_from_the_database_until_heard() {
        let versions = leased();
        let p = Uuid::now_v7();
        versions.heard(oven(p), 5);
        versions.expect(oven(p), 6);
        let Lookup::Miss { generation } = versions.lookup(&oven(p)) else {
            panic!("expected version not heard yet");
        };
        // The database still says 5 (not committed yet): stored, still a miss.
        versions.store(oven(p), 5, generation);
        assert!(matches!(versions.lookup(&oven(p)), Lookup::Miss { .. }));
        versions.heard(oven(p), 6);
        assert_eq!(versions.lookup(&oven(p)), Lookup::Known(6));
        // Another key is unaffected.
        versions.heard(VersionKey::Board(p), 1);
        assert_eq!(versions.lookup(&VersionKey::Board(p)), Lookup::Known(1));
    }
}
