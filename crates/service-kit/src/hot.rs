//! A few long-lived connections for a service's hottest requests, handed out without the
//! pool's round trips.
//!
//! sqlx 0.9 pings every connection when it goes back to the pool (`PoolConnection`'s drop
//! spawns a task that sends a Sync and waits for the answer), and keeps the connection from
//! the next caller until that answer has come back and the task has run. For the tracker's
//! station polls (one statement each, about a thousand a second at ten times Dodo's 2020 load)
//! that doubled the round trips to PostgreSQL. Under load the connections waiting for their
//! ping, on a box whose two cores were busy, starved the pool: taps waited 100 ms to 1 s for a
//! connection with PostgreSQL's side of it idle (docs/BENCHMARKS.md, issue #8). A bigger pool
//! made it worse: more backends contending for the same two cores.
//!
//! Here a connection sits in a slot behind a mutex, and a request holds the slot only while it
//! runs. What happens to the connection afterwards:
//! - the request finished: the slot keeps it as it is;
//! - the request returned an error: the connection is pinged once, and kept if it answers (a
//!   conflict or a constraint violation leaves it fine; sqlx rolls back a dropped transaction
//!   before its next statement);
//! - the request's future was dropped half-way (the client went away mid-query): the
//!   connection is dropped, so nobody reads its half-read answer; PostgreSQL rolls back
//!   whatever was open.
//!
//! A slot reconnects on its next use, and tests a connection that sat idle for 100 ms first, as
//! the pool does (a PostgreSQL restart then costs no request). When every slot is busy, or a
//! free one cannot connect, the request takes a connection from the pool as before, so this
//! never makes a request wait that the pool alone would have served.
//! `db_hot_connection_requests_total{connection="hot"|"pool"}` counts which one each request
//! got. Under the heaviest benchmark about 15% go to the pool, with 16 slots or 32. Making them
//! wait for a slot instead, in arrival order, was tried and was much slower (tap p50 653 ms
//! against about 90 ms): on a busy box a request holds its connection for a while, so fewer
//! connections in use means more waiting (docs/BENCHMARKS.md, issue #8, third pass).

use std::{
    sync::{
        LazyLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use prometheus::IntCounterVec;
use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::sync::{Mutex, MutexGuard};

use crate::{config::PING_IF_IDLE_FOR, metrics};

/// Which connection each request ran on: `hot`, or `pool` when every slot was busy (or a free
/// one could not connect). A steady share of `pool` says the slots are too few for the load.
static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "db_hot_connection_requests_total",
        "Requests meant for a hot connection, by the connection they ran on (hot or pool).",
        &["connection"],
    )
});

pub struct HotConnections {
    pool: PgPool,
    options: PgConnectOptions,
    slots: Vec<Mutex<Option<Held>>>,
    next: AtomicUsize,
}

/// A slot's connection, and when a request last finished with it.
struct Held {
    conn: PgConnection,
    used: Instant,
}

/// A slot's connection while one request uses it.
struct Lease<'a> {
    slot: MutexGuard<'a, Option<Held>>,
    /// Set once the request's future has completed; a lease dropped without it was cancelled.
    completed: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.completed {
            // Dropping the connection closes its socket; PostgreSQL ends the backend.
            *self.slot = None;
        }
    }
}

impl HotConnections {
    /// `size` slots on `pool`'s database; none connects before its first use. `pool` serves
    /// what the slots cannot.
    pub fn new(pool: PgPool, size: usize) -> Self {
        HotConnections {
            options: (*pool.connect_options()).clone(),
            pool,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `work` on a free slot's connection, or on one from the pool when no slot is free.
    /// `work` must leave the connection as a pooled one would be left: its statements done, and
    /// a transaction it opened committed or dropped.
    pub async fn run<T, E>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<sqlx::Error>,
    {
        if let Some(mut lease) = self.lease().await
            && let Some(held) = lease.slot.as_mut()
        {
            REQUESTS.with_label_values(&["hot"]).inc();
            let result = work(&mut held.conn).await;
            held.used = Instant::now();
            if result.is_err() && held.conn.ping().await.is_err() {
                *lease.slot = None;
            }
            lease.completed = true;
            return result;
        }
        REQUESTS.with_label_values(&["pool"]).inc();
        let mut conn = self.pool.acquire().await?;
        work(&mut conn).await
    }

    /// A free slot, connected; `None` when all are busy or the free one cannot connect.
    async fn lease(&self) -> Option<Lease<'_>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.slots.len();
        for i in 0..count {
            let Ok(slot) = self.slots[(start + i) % count].try_lock() else {
                continue;
            };
            // Leased before the test below, so a request dropped during it drops the
            // connection too.
            let mut lease = Lease {
                slot,
                completed: false,
            };
            // One that sat idle may have lost its server (a PostgreSQL restart): tested as the
            // pool tests its own, so no request fails on a connection known to be stale.
            if let Some(held) = lease.slot.as_mut()
                && held.used.elapsed() >= PING_IF_IDLE_FOR
                && held.conn.ping().await.is_err()
            {
                *lease.slot = None;
            }
            if lease.slot.is_none() {
                match PgConnection::connect_with(&self.options).await {
                    Ok(conn) => {
                        *lease.slot = Some(Held {
                            conn,
                            used: Instant::now(),
                        })
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a hot connection cannot connect; using the pool");
                        return None;
                    }
                }
            }
            return Some(lease);
        }
        None
    }
}
