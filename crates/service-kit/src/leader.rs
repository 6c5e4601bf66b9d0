//! Jobs that must run once per cluster, however many replicas of a service run: the late
//! sweeper, the pruning of old rows. Each runs under a leader: the replica holding a
//! session-level PostgreSQL advisory lock, named after the job, on a connection of its own.
//!
//! - A replica that is not the leader tries for the lock every [`RETRY`], so a standby takes
//!   over within about that long after the leader's connection goes (its process died, it was
//!   cut off): PostgreSQL releases a session lock with the session.
//! - The leader checks its lock connection as often; when the check fails it stops the job
//!   (the future is dropped, so an open transaction rolls back) and goes back to trying.
//! - The jobs themselves stay safe if two replicas briefly both run them (a leader that has not
//!   yet noticed its connection is gone): they lock what they work on with `skip locked`, or
//!   delete in chunks. The leader only stops every replica doing the same work every time.
//!
//! The lock uses PostgreSQL's two-key form, (a kitchen-wide namespace, a hash of the job's
//! name), so it cannot collide with the single-key lock of the outbox relay (`bus::outbox`).

use std::{future::Future, sync::LazyLock, time::Duration};

use sqlx::{Connection, PgConnection, PgPool};

use crate::shutdown::Shutdown;

/// How often a standby tries for the lock, and how often the leader checks it still holds it.
pub const RETRY: Duration = Duration::from_millis(500);

/// The first key of every job's lock: "kitc" in ASCII.
const NAMESPACE: i32 = 0x6b69_7463;

static LEADING: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    crate::metrics::gauge_vec(
        "leader",
        "1 while this replica holds the lock of a once-per-cluster job and runs it, by job \
         (labelled `task`: Prometheus keeps `job` for the scrape target).",
        &["task"],
    )
});

/// The second key of a job's lock: FNV-1a of its name, the same in every build (the std hasher
/// makes no such promise across Rust versions, and replicas of two builds meet in a rolling
/// deploy).
fn job_key(job: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in job.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// A once-per-cluster job's leadership.
pub struct Leader {
    pool: PgPool,
    job: &'static str,
    shutdown: Shutdown,
}

impl Leader {
    /// `job` names the lock: every replica running the same job must pass the same name.
    pub fn new(pool: PgPool, job: &'static str, shutdown: Shutdown) -> Self {
        LEADING.with_label_values(&[job]).set(0);
        Leader {
            pool,
            job,
            shutdown,
        }
    }

    /// Runs `job` whenever this replica holds the lock, until shutdown. `job` is started anew
    /// each time leadership is won, and dropped when it is lost; it normally runs until
    /// dropped (a loop on a timer), and if it returns, it is started again a moment later.
    pub async fn run<F, Fut>(self, mut job: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let gauge = LEADING.with_label_values(&[self.job]);
        // The connection a standby tries the lock on, kept between tries.
        let mut connection = None;
        while !self.shutdown.is_triggered() {
            if !self.try_lead(&mut connection).await {
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => continue,
                    _ = self.shutdown.wait() => break,
                }
            }
            let Some(lock) = connection.as_mut() else {
                continue;
            };
            tracing::info!(job = self.job, "leading");
            gauge.set(1);
            let running = job();
            tokio::pin!(running);
            let mut check = tokio::time::interval(RETRY);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let lost = loop {
                tokio::select! {
                    () = &mut running => {
                        // Finished on its own: keep the lead, start it again after a pause.
                        tokio::time::sleep(RETRY).await;
                        running.set(job());
                    }
                    _ = check.tick() => {
                        if let Err(e) = sqlx::query("select 1").execute(&mut *lock).await {
                            break Some(e);
                        }
                    }
                    _ = self.shutdown.wait() => break None,
                }
            };
            gauge.set(0);
            if let Some(e) = lost {
                tracing::warn!(job = self.job, error = %e, "lost the lead");
            }
            // Closed either way: a broken one is useless, and on shutdown the lock is released
            // at once, so a standby need not wait for the connection to time out.
            if let Some(lock) = connection.take() {
                let _ = lock.close().await;
            }
        }
        if let Some(standby) = connection.take() {
            let _ = standby.close().await;
        }
    }

    /// Tries for the job's lock on `connection` (opened first if there is none); true if this
    /// replica now holds it. A connection that fails is dropped, to be opened again next time.
    /// It is taken out of the pool for good: a session lock must not go back into the pool.
    async fn try_lead(&self, connection: &mut Option<PgConnection>) -> bool {
        if connection.is_none() {
            match self.pool.acquire().await {
                Ok(pooled) => *connection = Some(pooled.detach()),
                Err(e) => {
                    tracing::debug!(job = self.job, error = %e, "cannot try for the lead");
                    return false;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            return false;
        };
        let won: Result<bool, sqlx::Error> =
            sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
                .bind(NAMESPACE)
                .bind(job_key(self.job))
                .fetch_one(conn)
                .await;
        match won {
            Ok(won) => won,
            Err(e) => {
                tracing::debug!(job = self.job, error = %e, "cannot try for the lead");
                *connection = None;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_key_is_fixed_by_its_name() {
        // FNV-1a of "late-sweeper": a changed hash would let two builds both lead.
        assert_eq!(job_key("late-sweeper"), job_key("late-sweeper"));
        assert_ne!(job_key("late-sweeper"), job_key("inbox-pruning"));
        assert_eq!(
            job_key(""),
            i32::from_ne_bytes(0x811c_9dc5_u32.to_ne_bytes())
        );
    }
}
