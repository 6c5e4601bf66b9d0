//! Connecting to RabbitMQ, with the backoff every long-running task uses between attempts.

use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use lapin::{Connection, ConnectionProperties};
use secrecy::ExposeSecret;
use service_kit::config::BusSettings;
use service_kit::shutdown::Shutdown;
use sqlx::PgPool;

/// Opens a connection named after its role (it shows in the management UI and in
/// `rabbitmqctl list_connections`). Recovery is ours, not lapin's: every task reconnects in
/// its own loop, because only the task knows what to redo (re-declare, re-apply prefetch,
/// republish what was not confirmed).
pub async fn connect(bus: &BusSettings, role: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name(role.into());
    Connection::connect(bus.url.expose_secret(), properties).await
}

/// A channel on `connection` with publisher confirms on: how every publisher of ours publishes.
pub async fn confirmed_channel(connection: &Connection) -> anyhow::Result<lapin::Channel> {
    use anyhow::Context;
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .context("enabling publisher confirms")?;
    Ok(channel)
}

/// Connects as `role` and opens one channel: what a one-shot tool (a declare, a listing) needs.
pub async fn open_channel(
    bus: &BusSettings,
    role: &str,
) -> anyhow::Result<(Connection, lapin::Channel)> {
    use anyhow::Context;
    let connection = connect(bus, role)
        .await
        .context("connecting to the broker")?;
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    Ok((connection, channel))
}

/// Runs `session` again and again until it returns `Ok` (it saw the shutdown) or shutdown is
/// triggered, waiting with backoff after each failure. A session raises `ready` once it is
/// connected; a failure lowers it, and a failure after having been connected starts the
/// backoff over, so a long-lived connection that drops reconnects at once.
pub async fn keep_running<F, Fut>(
    role: &str,
    ready: &AtomicBool,
    shutdown: &Shutdown,
    mut session: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut backoff = Backoff::default();
    while !shutdown.is_triggered() {
        match session().await {
            Ok(()) => break,
            Err(e) => {
                if ready.swap(false, Ordering::Relaxed) {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::warn!(
                    role,
                    error = format!("{e:#}"),
                    ?delay,
                    "connection lost; retrying"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {},
                    _ = shutdown.wait() => break,
                }
            }
        }
    }
    ready.store(false, Ordering::Relaxed);
}

/// Waits until the database answers, backing off between tries. Returns false if shutdown came
/// first. A consumer calls it before it takes deliveries: while the database is away every
/// message could only fail, and reconnecting every few seconds would fetch a whole prefetch
/// window from the broker each time just to hand it back.
pub async fn wait_for_database(pool: &PgPool, role: &str, shutdown: &Shutdown) -> bool {
    let mut backoff = Backoff::default();
    loop {
        match sqlx::query("select 1").execute(pool).await {
            Ok(_) => return true,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(role, error = %e, ?delay, "the database is unavailable; waiting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {},
                    _ = shutdown.wait() => return false,
                }
            }
        }
    }
}

/// Exponential backoff from 100 ms to 10 s between reconnection attempts.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(10));
        delay
    }

    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(&delays[..4], &[100, 200, 400, 800]);
        assert_eq!(delays[9], 10_000);
        backoff.reset();
        assert_eq!(backoff.next_delay().as_millis(), 100);
    }
}
