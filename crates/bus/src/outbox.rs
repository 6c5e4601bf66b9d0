//! The transactional outbox and its relay.
//!
//! A service never publishes from a request handler. It stages the event in its `outbox` table
//! inside the transaction that changes its state, so the change and the announcement commit
//! together or not at all. The [`Relay`] then publishes staged rows with publisher confirms
//! and marks a row published only after the broker acknowledged it.
//!
//! The relay reads *unpublished rows*, not "rows after the last id it saw": a transaction that
//! took id 10 but committed after id 11 is still found on the next pass, so nothing is skipped.
//! A crash between the broker's ack and the `update` republishes the row: consumers are
//! idempotent on the event id, so at-least-once delivery is safe.

use std::{
    collections::{HashMap, VecDeque, hash_map::Entry},
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use contracts::{Envelope, Event, routing_key};
use lapin::{BasicProperties, Channel, types::FieldTable};
use prometheus::{Histogram, IntCounter, IntGauge};
use service_kit::{config::BusSettings, shutdown::Shutdown, telemetry::current_traceparent};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgListener};
use uuid::Uuid;

use crate::{
    confirm::{self, Outcome},
    connection, headers, retention, topology,
};

static PUBLISHED: LazyLock<IntCounter> = LazyLock::new(|| {
    service_kit::metrics::counter(
        "outbox_published_total",
        "Events the relay published and the broker confirmed.",
    )
});

static PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    service_kit::metrics::gauge(
        "outbox_pending",
        "Outbox rows seen unpublished at the relay's last pass.",
    )
});

/// Long enough for a broker under load (confirms of a 500-row batch take milliseconds), short
/// enough that a revocation still reaches the caches within seconds after a half-open
/// connection.
const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock a database's leading relay holds (advisory locks are per database, and
/// every service has a database of its own).
const RELAY_LOCK: i64 = 0x6b69_7463_6865_6e01;

/// Rows per pass. A pass publishes its rows pipelined and then waits for their confirms, so the
/// broker idles while the relay reads and marks rows: with 500 a pass spent about 11 of its
/// 52 ms in those two statements (docs/BENCHMARKS.md, scenario d). Larger passes spread that
/// over more events.
const DEFAULT_BATCH_SIZE: i64 = 2_000;

/// How long the relay waits after a wake-up before it looks, to gather the rows that commit
/// meanwhile into one pass. It bounds the passes to about a hundred a second however many
/// commits notify.
const GATHER: Duration = Duration::from_millis(10);

/// How often a standby relay asks for the leadership.
const TAKEOVER_POLL: Duration = Duration::from_millis(500);

/// Published rows stay this long, for whoever wants to look at what went out recently.
const DEFAULT_KEEP_PUBLISHED: Duration = Duration::from_secs(24 * 60 * 60);

static CONFIRM_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    service_kit::metrics::histogram_vec(
        "relay_confirm_seconds",
        "From a batch's first publish to its last publisher confirm.",
        &[],
    )
    .with_label_values::<&str>(&[])
});

static BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    service_kit::metrics::gauge(
        "outbox_backlog",
        "Unpublished outbox rows, counted by the leading relay every 5 s.",
    )
});

static OLDEST_AGE: LazyLock<IntGauge> = LazyLock::new(|| {
    service_kit::metrics::gauge(
        "outbox_oldest_unpublished_age_seconds",
        "Age of the oldest unpublished outbox row (0 when none), read by the leading relay \
         every 5 s.",
    )
});

/// How often the leading relay counts its backlog for the metrics.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Stages events of one service.
#[derive(Debug, Clone)]
pub struct Outbox {
    service: Arc<str>,
}

impl Outbox {
    /// `service` becomes the first part of the routing key and the CloudEvents source.
    pub fn new(service: &str) -> Self {
        Outbox {
            service: service.into(),
        }
    }

    /// Stages `event` in the caller's transaction. `sequence` is the subject's event counter
    /// (the order's version), which consumers use to order and drop stale events.
    #[tracing::instrument(skip(self, conn, event), fields(event_type = E::TYPE))]
    pub async fn stage<E: Event>(
        &self,
        conn: &mut PgConnection,
        sequence: i64,
        event: &E,
    ) -> anyhow::Result<Uuid> {
        let staged = self.envelope(sequence, event)?;
        sqlx::query(
            "insert into outbox (event_id, routing_key, payload) values ($1, $2, $3::jsonb)",
        )
        .bind(staged.event_id)
        .bind(&staged.routing_key)
        .bind(&staged.payload)
        .execute(conn)
        .await
        .context("staging the event in the outbox")?;
        Ok(staged.event_id)
    }

    /// What [`Outbox::stage`] inserts, for a caller that inserts it itself, together with other
    /// rows of its change in one statement (the tracker's `finish_order_change`). The envelope
    /// is made here, at the same point of the request, so it carries the same trace context.
    pub fn envelope<E: Event>(&self, sequence: i64, event: &E) -> anyhow::Result<Staged> {
        let envelope = Envelope::wrap(&self.service, event, sequence, current_traceparent())
            .context("serialising the event")?;
        Ok(Staged {
            event_id: envelope.id,
            routing_key: routing_key::<E>(&self.service),
            payload: serde_json::to_string(&envelope).context("serialising the envelope")?,
        })
    }
}

/// An outbox row to insert: the envelope as JSON text, cast to `jsonb` by the insert.
#[derive(Debug, Clone)]
pub struct Staged {
    pub event_id: Uuid,
    pub routing_key: String,
    pub payload: String,
}

/// Publishes staged events. Several relays may run against one database (one per service
/// instance); one leads and publishes, the others stand by to take over (see `Relay::lead`).
/// Rows are still claimed with `for update skip locked`, so a tool reading the outbox never
/// blocks the relay.
pub struct Relay {
    pool: PgPool,
    bus: BusSettings,
    role: String,
    /// The service, as its hops name it.
    service: String,
    batch_size: i64,
    confirm_timeout: Duration,
    keep_published: Duration,
    ready: Arc<AtomicBool>,
    shutdown: Shutdown,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        bus: BusSettings,
        service: &str,
        ready: Arc<AtomicBool>,
        shutdown: Shutdown,
    ) -> Self {
        Relay {
            pool,
            bus,
            role: format!("{service}-outbox-relay"),
            service: service.to_owned(),
            batch_size: DEFAULT_BATCH_SIZE,
            confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
            keep_published: DEFAULT_KEEP_PUBLISHED,
            ready,
            shutdown,
        }
    }

    /// How long the relay waits for the broker to confirm a batch before it gives the
    /// connection up.
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> Self {
        self.confirm_timeout = timeout;
        self
    }

    /// How long published rows are kept before the relay prunes them.
    pub fn with_keep_published(mut self, keep: Duration) -> Self {
        self.keep_published = keep;
        self
    }

    /// Runs until shutdown, reconnecting to the broker and the database as often as needed.
    pub async fn run(self) {
        connection::keep_running(&self.role, &self.ready, &self.shutdown, || self.session()).await;
    }

    /// One connection's worth of publishing. Returns Ok on shutdown, Err when anything breaks;
    /// rows not confirmed by then stay unpublished and go out on the next session.
    async fn session(&self) -> anyhow::Result<()> {
        let connection = connection::connect(&self.bus, &self.role)
            .await
            .context("connecting to the broker")?;
        let channel = connection::confirmed_channel(&connection).await?;
        topology::declare_consumer_queues(&channel, &self.bus)
            .await
            .context("declaring the topology")?;
        // Listen before the first pass, so a row committed during it still wakes us.
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .context("listening for outbox notifications")?;
        listener.listen("outbox").await.context("LISTEN outbox")?;
        // Connected: healthy, whether this relay leads or stands by.
        self.ready.store(true, Ordering::Relaxed);
        tracing::info!(exchange = %self.bus.exchange, "outbox relay connected");
        let Some(mut leader) = self.lead().await? else {
            let _ = connection.close(200, "shutdown".into()).await;
            return Ok(());
        };
        tracing::info!("outbox relay leads");

        let mut next_prune = tokio::time::Instant::now() + retention::EVERY;
        let mut next_count = tokio::time::Instant::now();
        loop {
            // This pass publishes every row committed so far: the notifications already here
            // would each wake an empty pass (under load, a pass per commit).
            while listener.next_buffered().is_some() {}
            let published = self.publish_batch(&mut leader, &channel).await?;
            if tokio::time::Instant::now() >= next_count {
                next_count = tokio::time::Instant::now() + BACKLOG_EVERY;
                let (backlog, oldest): (i64, i64) = sqlx::query_as(
                    "select count(*), coalesce(extract(epoch from now() - min(created_at)), 0)::bigint \
                     from outbox where published_at is null",
                )
                .fetch_one(&mut leader)
                .await
                .context("counting the outbox backlog")?;
                BACKLOG.set(backlog);
                OLDEST_AGE.set(oldest);
            }
            if tokio::time::Instant::now() >= next_prune {
                next_prune += retention::EVERY;
                match retention::prune_outbox(&self.pool, self.keep_published).await {
                    Ok(pruned) => tracing::debug!(pruned, "pruned published outbox rows"),
                    // Pruning is housekeeping: the next round tries again.
                    Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
                }
            }
            if published as i64 == self.batch_size {
                continue;
            }
            tokio::select! {
                notification = listener.recv() => { notification.context("waiting for outbox notifications")?; },
                // A notification can be lost with a dropped listener connection; polling
                // bounds how long a row can wait in that case.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {},
                _ = self.shutdown.wait() => {
                    let _ = connection.close(200, "shutdown".into()).await;
                    return Ok(());
                }
            }
            // Under load every committed change notifies, and a pass costs four round trips to
            // PostgreSQL and a confirm round trip. Looking at once after each notification ran
            // a pass per commit, most of them empty: the notification of a row the pass before
            // had already published arrived after it (7,222 of 8,832 passes found nothing in
            // scenario b, docs/BENCHMARKS.md). Waiting a moment after the wake-up lets the rows
            // committed meanwhile, and their notifications, go out in one pass.
            tokio::time::sleep(GATHER).await;
        }
    }

    /// Waits until this relay is the one that publishes for its database, and returns the
    /// connection that holds the leadership (`None` on shutdown).
    ///
    /// One relay per database publishes; the others stand by. Two relays sharing the rows
    /// (`skip locked`) would publish one order's events side by side, and relay B's sequence 6
    /// could reach the broker before relay A's sequence 5. Leadership is a session-level
    /// advisory lock on a connection of its own, and every publishing transaction runs on that
    /// same connection: if it drops, the lock goes with it, and so does this relay's ability to
    /// mark anything published. A relay killed with `kill -9` closes its socket, PostgreSQL
    /// frees the lock at once, and a standby takes over within [`TAKEOVER_POLL`].
    async fn lead(&self) -> anyhow::Result<Option<PgConnection>> {
        let mut conn = PgConnection::connect_with(&self.pool.connect_options())
            .await
            .context("connecting for the relay's leadership")?;
        loop {
            let leads: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
                .bind(RELAY_LOCK)
                .fetch_one(&mut conn)
                .await
                .context("asking for the relay's leadership")?;
            if leads {
                return Ok(Some(conn));
            }
            tokio::select! {
                _ = tokio::time::sleep(TAKEOVER_POLL) => {},
                _ = self.shutdown.wait() => return Ok(None),
            }
        }
    }

    /// Publishes up to one batch of unpublished rows, pipelined, then waits for every confirm.
    ///
    /// The body is the stored payload as PostgreSQL prints it: no decoding and re-encoding in
    /// the relay, which is cheaper and publishes exactly what the service staged, whatever
    /// version of the contracts the relay was built with.
    async fn publish_batch(
        &self,
        leader: &mut PgConnection,
        channel: &Channel,
    ) -> anyhow::Result<usize> {
        let mut tx = leader
            .begin()
            .await
            .context("starting the relay transaction")?;
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "select id, event_id, routing_key, payload::text as body, \
                    coalesce(payload->>'subject', event_id::text) as order_key, \
                    payload->>'type' as event_type, payload->>'traceparent' as traceparent, \
                    payload->>'subject' as subject, \
                    extract(epoch from created_at)::bigint as staged_at, created_at \
             from outbox where published_at is null order by id limit $1 for update skip locked",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await
        .context("reading unpublished outbox rows")?;
        PENDING.set(rows.len() as i64);
        if rows.is_empty() {
            // Ended now rather than when the next pass starts: a dropped transaction sat idle
            // until then (up to 500 ms on a quiet database), holding back vacuum's horizon.
            tx.rollback()
                .await
                .context("ending the relay transaction")?;
            return Ok(0);
        }

        // One event per order in flight: an order's next event of the batch is published only
        // once the broker confirmed the one before, while the other orders' events keep the
        // pipeline full. A refused event (a nack) stops its order for this pass; a missing
        // confirm ends the session. Either way no later event of that order has left, so the
        // next pass republishes the order from the refused or unconfirmed event on, in sequence.
        // Publishing the whole batch at once let a nacked sequence 5 be overtaken by an acked 6.
        let started = std::time::Instant::now();
        let mut published = Vec::with_capacity(rows.len());
        let mut later: HashMap<&str, VecDeque<&OutboxRow>> = HashMap::new();
        let mut ready = Vec::new();
        for row in &rows {
            match later.entry(row.order_key.as_str()) {
                // The order's first event of the batch goes out at once.
                Entry::Vacant(entry) => {
                    entry.insert(VecDeque::new());
                    ready.push(row);
                }
                Entry::Occupied(mut entry) => entry.get_mut().push_back(row),
            }
        }
        let user = crate::publishers::own_user(&self.bus);
        let mut in_flight = VecDeque::with_capacity(ready.len());
        for row in ready {
            in_flight.push_back((row, self.publish(channel, &user, row).await?));
        }
        while let Some((row, confirm)) = in_flight.pop_front() {
            // A half-open connection never confirms; without a bound the relay would hold these
            // rows locked, and look ready, for as long as TCP takes to notice (minutes). Giving
            // up ends the session: readiness drops, the rows are unlocked, and the next session
            // republishes them.
            let confirmation = tokio::time::timeout(self.confirm_timeout, confirm)
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no publisher confirm within {:?}; dropping the connection",
                        self.confirm_timeout
                    )
                })?
                .context("waiting for a publisher confirm")?;
            match confirm::outcome(&confirmation)? {
                Outcome::Stored => published.push(row.id),
                // No queue takes it. Fine for an event no durable consumer binds (only the
                // caches' private queues want `auth.session.revoked`, and none may be up); for
                // one that a consumer's queue binds, that queue has gone missing: stop, declare
                // the topology again and republish.
                Outcome::Unroutable if !topology::has_durable_consumer(&row.routing_key) => {
                    published.push(row.id)
                }
                Outcome::Unroutable => anyhow::bail!(
                    "{} came back unroutable: its consumer's queue is missing",
                    row.routing_key
                ),
                // Left unpublished with the rest of its order: they go out again on the next
                // pass.
                Outcome::Refused => {
                    tracing::warn!(outbox_id = row.id, "broker refused an event");
                    later.remove(row.order_key.as_str());
                    continue;
                }
            }
            if let Some(next) = later
                .get_mut(row.order_key.as_str())
                .and_then(VecDeque::pop_front)
            {
                in_flight.push_back((next, self.publish(channel, &user, next).await?));
            }
        }
        CONFIRM_SECONDS.observe(started.elapsed().as_secs_f64());
        sqlx::query("update outbox set published_at = now() where id = any($1)")
            .bind(&published)
            .execute(&mut *tx)
            .await
            .context("marking outbox rows published")?;
        tx.commit()
            .await
            .context("committing the relay transaction")?;
        PUBLISHED.inc_by(published.len() as u64);
        Ok(rows.len())
    }

    /// Publishes one outbox row; the returned confirm resolves when the broker has taken it.
    async fn publish(
        &self,
        channel: &Channel,
        user: &str,
        row: &OutboxRow,
    ) -> anyhow::Result<lapin::PublisherConfirm> {
        let mut headers = FieldTable::default();
        headers::set_str(
            &mut headers,
            headers::ORIGINAL_ROUTING_KEY,
            &row.routing_key,
        );
        if let Some(traceparent) = &row.traceparent {
            headers::set_str(&mut headers, "traceparent", traceparent);
        }
        if let Some(subject) = &row.subject {
            headers::set_str(&mut headers, headers::SUBJECT, subject);
        }
        let mut properties = BasicProperties::default()
            .with_message_id(row.event_id.to_string().into())
            .with_content_type("application/cloudevents+json".into())
            .with_delivery_mode(2)
            .with_timestamp(row.staged_at.max(0) as u64)
            .with_user_id(user.into())
            .with_headers(headers);
        if let Some(event_type) = &row.event_type {
            properties = properties.with_type(event_type.as_str().into());
        }
        // The relay's hop: from staging to this publish.
        let hop = crate::hops::hop(&self.service, crate::hops::Step::Published, row.created_at);
        let body = crate::hops::add_hop(row.body.as_bytes(), &hop);
        channel
            .basic_publish(
                self.bus.exchange.as_str().into(),
                row.routing_key.as_str().into(),
                confirm::mandatory(),
                &body,
                properties,
            )
            .await
            .context("publishing an outbox row")
    }
}

/// An unpublished row as the relay reads it: the payload as text, and what goes into the
/// message's properties.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    event_id: Uuid,
    routing_key: String,
    /// The order the event belongs to (the envelope's subject; the event id when it has none):
    /// the relay keeps one order's events in sequence.
    order_key: String,
    body: String,
    event_type: Option<String>,
    traceparent: Option<String>,
    /// The order id (or user, device): what the consumers' hash exchanges partition by.
    subject: Option<String>,
    staged_at: i64,
    created_at: chrono::DateTime<chrono::Utc>,
}
